"""Scenario files (JSON): the world the stand-in starts with. The format is documented in docs/localazure.md.

Times are relative to the stand-in clock at load time (`created_ago_seconds`, `replicating_for_seconds`,
`since_ago_seconds`, `ago_seconds`), so a scenario replays the same story whatever day it runs.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from localazure import roles, scopes
from localazure.apim import Gateway
from localazure.clock import as_utc
from localazure.dataplane import CallSpec
from localazure.logshape import log_shape_from
from localazure.logstore import TABLES
from localazure.state import (
    PRINCIPAL_TYPES,
    Account,
    Assignment,
    OwnIdentity,
    Principal,
    Project,
    Settings,
    State,
)
from localazure.traffic import spec_from

BUNDLED = Path(__file__).parent / "scenarios"
TOP_LEVEL = frozenset({
    "description", "subscription_id", "tenant_id", "workspace_id", "clock", "settings", "resource_groups",
    "principals", "resources", "app_resources", "gateways", "assignments", "traffic", "logs", "faults", "workspaces",
    "policies",
})
WORKSPACE_KEYS = frozenset({"id", "missing_tables", "missing_columns"})
FAULT_KEYS = frozenset({"service", "route", "status", "retry_after", "times", "delay", "drop", "partial", "method"})


@dataclass
class Loaded:
    """What a scenario asks for beyond the state itself; the caller installs it."""

    traffic: list[CallSpec] = field(default_factory=list)
    logs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    faults: list[dict[str, Any]] = field(default_factory=list)
    workspaces: list[dict[str, Any]] = field(default_factory=list)  # keyword arguments of LocalAzure.add_workspace


class ScenarioError(ValueError):
    pass


def read(source: str | Path | dict | None) -> dict[str, Any]:
    """A scenario dict from a dict, a path, or the name of a bundled scenario ("basic")."""
    if source is None:
        return {}
    if isinstance(source, dict):
        return source
    path = Path(source)
    if not path.exists() and (BUNDLED / f"{source}.json").exists():
        path = BUNDLED / f"{source}.json"
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ScenarioError(f"cannot read scenario {source}: {exc}") from exc


def _check_keys(where: str, item: dict, allowed: set[str] | frozenset[str]) -> None:
    unknown = sorted(set(item) - set(allowed))
    if unknown:
        raise ScenarioError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")


def _ago(now: datetime, seconds: float | None) -> datetime | None:
    return None if seconds is None else now - timedelta(seconds=float(seconds))


def settings_from(raw: dict[str, Any], base: Settings | None = None) -> Settings:
    settings = base or Settings()
    _check_keys("settings", raw, set(Settings.__dataclass_fields__))
    for key, value in raw.items():
        if key == "own_identity":
            settings.own_identity = own_identity_from(value)
        elif key == "log_shape":
            try:
                settings.log_shape = log_shape_from(value)
            except (TypeError, ValueError) as exc:
                raise ScenarioError(str(exc)) from exc
        else:
            setattr(settings, key, type(getattr(settings, key))(value))
    return settings


def _lower_set(values: list[str] | None) -> frozenset[str] | None:
    return None if values is None else frozenset(v.lower() for v in values)


def own_identity_from(raw: dict[str, Any]) -> OwnIdentity:
    _check_keys("settings.own_identity", raw, set(OwnIdentity.__dataclass_fields__))
    fields = dict(raw)
    if fields.get("allowed_roles") is not None:
        fields["allowed_roles"] = frozenset(roles.require(r).guid for r in fields["allowed_roles"])
    for key in ("allowed_principal_types", "allowed_principals"):
        if key in fields:
            fields[key] = _lower_set(fields[key])
    return OwnIdentity(**fields)


def resolve_scope(state: State, text: str) -> str:
    """`subscription`, `rg:NAME`, `account:NAME`, `project:ACCOUNT/PROJECT`, `root`, or a full ARM scope."""
    kind, sep, rest = text.partition(":")
    sub = f"/subscriptions/{state.subscription_id}"
    if text in ("root", "/"):
        return "/"
    if text == "subscription":
        return sub
    if sep and kind in ("rg", "resource_group"):
        return f"{sub}/resourceGroups/{rest}"
    if sep and kind == "account":
        return state.require_account(rest).id
    if sep and kind == "project":
        account_name, _, project = rest.partition("/")
        account = state.require_account(account_name)
        if project.lower() not in account.projects:
            raise ScenarioError(f"scope {text!r}: account {account_name} has no project {project!r}")
        return account.project_id(account.projects[project.lower()].name)
    if text.startswith("/"):
        return scopes.normalize(text)
    raise ScenarioError(f"scope {text!r}: use subscription, rg:NAME, account:NAME, project:ACCOUNT/PROJECT or an id")


def principal_from(raw: dict[str, Any], now: datetime) -> Principal:
    _check_keys("principal", raw, {"id", "type", "display_name", "managed_identity", "groups",
                                    "replicating_for_seconds", "replicating_until"})
    if "id" not in raw:
        raise ScenarioError(f"principal without id: {raw}")
    ptype = raw.get("type", "ServicePrincipal")
    if ptype not in PRINCIPAL_TYPES:
        raise ScenarioError(f"principal {raw['id']}: type must be one of {PRINCIPAL_TYPES}")
    groups: dict[str, datetime] = {}
    for g in raw.get("groups", []):
        if isinstance(g, str):
            groups[g] = now - timedelta(days=3650)
        else:
            groups[g["id"]] = _ago(now, g.get("since_ago_seconds", 10 * 365 * 86400))
    replicating_until = None
    if raw.get("replicating_until"):
        replicating_until = as_utc(raw["replicating_until"])
    elif "replicating_for_seconds" in raw:
        replicating_until = now + timedelta(seconds=float(raw["replicating_for_seconds"]))
    return Principal(
        object_id=raw["id"],
        type=ptype,
        display_name=raw.get("display_name", ""),
        managed_identity=bool(raw.get("managed_identity", False)),
        groups=groups,
        replicating_until=replicating_until,
    )


_ACCOUNT_KEYS = {"name", "kind", "resource_group", "location", "custom_subdomain", "disable_local_auth",
                 "public_network_access", "network", "private_endpoints", "deployments", "projects", "tenant_id",
                 "tags", "keys", "diagnostic_categories"}


def account_from(raw: dict[str, Any], subscription_id: str) -> Account:
    _check_keys(f"resource {raw.get('name')}", raw, _ACCOUNT_KEYS)
    network = raw.get("network", {})
    _check_keys(f"resource {raw.get('name')}.network", network, {"default_action", "ip_rules", "virtual_network_rules"})
    projects = {}
    for p in raw.get("projects", []):
        p = {"name": p} if isinstance(p, str) else p
        _check_keys(f"project {p.get('name')}", p, {"name", "display_name", "description", "is_default",
                                                     "identity_principal_id"})
        projects[p["name"].lower()] = Project(**p)
    kind = raw.get("kind", "OpenAI")
    if projects and kind.lower() != "aiservices":
        raise ScenarioError(f"resource {raw['name']}: only kind AIServices accounts have projects")
    return Account(
        name=raw["name"],
        subscription_id=subscription_id,
        resource_group=raw.get("resource_group", "rg"),
        kind=kind,
        location=raw.get("location", "eastus"),
        custom_subdomain=raw.get("custom_subdomain", ""),
        disable_local_auth=bool(raw.get("disable_local_auth", False)),
        public_network_access=raw.get("public_network_access", "Enabled"),
        default_action=network.get("default_action", "Allow"),
        ip_rules=list(network.get("ip_rules", [])),
        virtual_network_rules=list(network.get("virtual_network_rules", [])),
        private_endpoints=list(raw.get("private_endpoints", [])),
        deployments=raw.get("deployments"),
        projects=projects,
        keys=tuple(raw.get("keys", ("", ""))),
        tenant_id=raw.get("tenant_id", ""),
        tags=dict(raw.get("tags", {})),
        **({"diagnostic_categories": list(raw["diagnostic_categories"])} if "diagnostic_categories" in raw else {}),
    )


_GATEWAY_KEYS = {"name", "principal_id", "resource_group", "location", "user_assigned", "public_ip", "api_id",
                 "log_backend_body"}


def gateway_from(raw: dict[str, Any], state: State) -> Gateway:
    """An API Management gateway. Its identity is declared as a managed-identity service principal when the
    scenario does not declare it (a new object id when `principal_id` is left out)."""
    _check_keys(f"gateway {raw.get('name')}", raw, _GATEWAY_KEYS)
    if not raw.get("name"):
        raise ScenarioError(f"gateway without name: {raw}")
    principal_id = raw.get("principal_id") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"apim|{raw['name']}"))
    if state.principal(principal_id) is None:
        state.put_principal(Principal(object_id=principal_id, managed_identity=True,
                                      display_name=f"{raw['name']} (API Management, managed identity)"))
    fields = {k: v for k, v in raw.items() if k != "principal_id" and v is not None}
    return Gateway(subscription_id=state.subscription_id, principal_id=principal_id, **fields)


def assignment_from(state: State, raw: dict[str, Any], now: datetime) -> Assignment:
    _check_keys("assignment", raw, {"principal", "role", "scope", "created_ago_seconds", "created_on", "name",
                                    "description", "condition", "condition_version", "principal_type"})
    principal = state.principal(raw.get("principal"))
    if principal is None:
        raise ScenarioError(f"assignment {raw}: principal {raw.get('principal')!r} is not declared")
    role = roles.resolve(raw.get("role", ""))
    if role is None:
        raise ScenarioError(f"assignment {raw}: unknown role {raw.get('role')!r}")
    scope = resolve_scope(state, raw.get("scope", "subscription"))
    created = as_utc(raw["created_on"]) if "created_on" in raw else _ago(now, raw.get("created_ago_seconds", 86400))
    name = raw.get("name") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"{scope}|{principal.object_id}|{role.guid}"))
    return Assignment(name=name, scope=scope, role_guid=role.guid, principal_id=principal.object_id,
                      principal_type=raw.get("principal_type", principal.type), created_on=created,
                      updated_on=created, created_by="scenario", description=raw.get("description"),
                      condition=raw.get("condition"), condition_version=raw.get("condition_version"))


def traffic_from(raw: dict[str, Any]) -> CallSpec:
    try:
        return spec_from(raw)
    except (TypeError, ValueError) as exc:
        raise ScenarioError(f"traffic {raw.get('name', raw)}: {exc}") from exc


def apply(state: State, scenario: dict[str, Any]) -> Loaded:
    """Load a scenario into `state`; returns the traffic, log rows and faults for the caller to install."""
    _check_keys("scenario", scenario, TOP_LEVEL)
    now = state.clock.now()
    for key in ("subscription_id", "tenant_id", "workspace_id"):
        if key in scenario:
            setattr(state, key, scenario[key])
    settings_from(scenario.get("settings", {}), state.settings)
    state.extra_resource_groups |= {rg.lower() for rg in scenario.get("resource_groups", [])}
    for raw in scenario.get("principals", []):
        state.put_principal(principal_from(raw, now))
    for principal in list(state.principals.values()):
        for group in principal.groups:
            declared = state.principal(group)
            if declared is None or declared.type != "Group":
                raise ScenarioError(f"principal {principal.object_id}: group {group} is not a declared Group")
    for raw in scenario.get("resources", []):
        state.put_account(account_from(raw, state.subscription_id))
    for raw in scenario.get("app_resources", []):
        _check_keys("app_resource", raw, {"id", "principal_id", "user_assigned"})
        state.put_app_resource(raw["id"], raw["principal_id"], user_assigned=bool(raw.get("user_assigned", False)))
    for raw in scenario.get("gateways", []):
        state.put_gateway(gateway_from(raw, state))
    for raw in scenario.get("assignments", []):
        state.put_assignment(assignment_from(state, raw, now))
    if "policies" in scenario:
        from localazure.policy import apply_scenario

        apply_scenario(state.policies, scenario["policies"], lambda text: resolve_scope(state, text), now,
                       state.subscription_id)
    traffic = [traffic_from(raw) for raw in scenario.get("traffic", [])]
    for spec in traffic:
        if state.account(spec.resource) is None and state.account_by_id(spec.resource) is None:
            raise ScenarioError(f"traffic {spec.name or spec.route}: unknown resource {spec.resource!r}")
        if spec.gateway is not None and state.gateway(spec.gateway) is None:
            raise ScenarioError(f"traffic {spec.name or spec.route}: unknown gateway {spec.gateway!r}")
    logs: dict[str, list[dict[str, Any]]] = {}
    for table, rows in scenario.get("logs", {}).items():
        logs[table] = []
        for row in rows:
            row = dict(row)
            if "ago_seconds" in row:
                row["TimeGenerated"] = _ago(now, row.pop("ago_seconds"))
            row.setdefault("TimeGenerated", now)
            logs[table].append(row)
    faults = []
    for raw in scenario.get("faults", []):
        _check_keys("fault", raw, FAULT_KEYS)
        faults.append(dict(raw))
    return Loaded(traffic, logs, faults, [workspace_from(raw) for raw in scenario.get("workspaces", [])])


def workspace_from(raw: dict[str, Any]) -> dict[str, Any]:
    """{"id", "missing_tables": [table], "missing_columns": {table: [column]}}: a workspace (the main one when
    `id` is its id) that has not received those tables or columns yet."""
    _check_keys(f"workspace {raw.get('id')}", raw, WORKSPACE_KEYS)
    tables = list(raw.get("missing_tables", []))
    columns = {t: list(c) for t, c in (raw.get("missing_columns") or {}).items()}
    for table in [*tables, *columns]:
        if table not in TABLES:
            raise ScenarioError(f"workspace {raw.get('id')}: unknown table {table!r}; known: {', '.join(TABLES)}")
    for table, names in columns.items():
        unknown = sorted(set(names) - {c for c, _ in TABLES[table]})
        if unknown:
            raise ScenarioError(f"workspace {raw.get('id')}: {table} has no columns {unknown}")
    return {"workspace_id": raw.get("id"), "missing_tables": tables, "missing_columns": columns}
