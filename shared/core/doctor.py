"""The self-check (`python -m shared doctor`, `GET /api/health/deep`): what each check found, judged without I/O.

The command gathers (tokens, its own role assignments, diagnostic settings, log rows, a read per ticket sink) through
a `SelfCheckProbe`; the functions here turn each answer into a `Check`: ok, warn (works, but look), fail (something
the service needs is missing: the command exits 1) or skip (not checked, and why).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.core import roles
from shared.core.resource_ids import account_key, applies_at, normalize_scope, short_name
from shared.core.sources import redact

OK, WARN, FAIL, SKIP = "ok", "warn", "fail", "skip"
STATUSES = (OK, WARN, FAIL, SKIP)

# Event Grid's token scope (publishing outcome events with the managed identity).
EVENTGRID_SCOPE = "https://eventgrid.azure.net/.default"
ARRIVING_WINDOW = timedelta(hours=24)  # rows this recent are "arriving"
DENIED_STATUSES = ("401", "403")
DETAIL_LIMIT = 400


@dataclass(frozen=True)
class Check:
    area: str  # settings, store, token, identity, roles, workspace, account, sink
    name: str
    status: str
    detail: str
    hint: str = ""

    def to_json(self) -> dict[str, str]:
        return asdict(self)


@dataclass(frozen=True)
class Report:
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return not any(c.status == FAIL for c in self.checks)

    def counts(self) -> dict[str, int]:
        return {status: sum(1 for c in self.checks if c.status == status) for status in STATUSES}

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, "counts": self.counts(), "checks": [c.to_json() for c in self.checks]}


# ---- what the probe hands back --------------------------------------------------------------------------------


@dataclass(frozen=True)
class HeldRole:
    """A role assignment that applies to the service's identity (directly or through a group)."""

    role_guid: str
    scope: str
    principal_id: str = ""
    condition: str | None = None
    condition_version: str | None = None

    @property
    def role_name(self) -> str:
        return roles.display_name(self.role_guid)


@dataclass(frozen=True)
class DiagnosticSetting:
    name: str
    workspace_id: str  # the destination workspace's ARM id; "" when the setting sends nothing to one
    logs: tuple[tuple[str, bool], ...] = ()  # (category, or category group, enabled)

    def sends_request_response(self) -> bool:
        return bool(self.workspace_id) and any(
            enabled and name.lower() in ("requestresponse", "alllogs") for name, enabled in self.logs)


@dataclass(frozen=True)
class TrafficRow:
    """RequestResponse rows of one account with one status in the query's window."""

    resource_id: str
    status: str
    rows: int
    last_seen: datetime | None = None


@dataclass(frozen=True)
class Traffic:
    rows: tuple[TrafficRow, ...] = ()
    no_data: str = ""  # the workspace has no AzureDiagnostics table (or column) yet: the whole answer


class SelfCheckProbe(Protocol):
    """The Azure calls the self-check makes, each read-only; a failure raises with the whole message."""

    def token(self, scope: str) -> str: ...
    def held_roles(self, principal_id: str, subscription_id: str) -> list[HeldRole]: ...
    def accounts(self, subscription_id: str) -> list[str]: ...
    def diagnostic_settings(self, account_id: str) -> list[DiagnosticSetting]: ...
    def traffic(self, workspace_id: str, since: datetime, until: datetime) -> Traffic: ...


@dataclass(frozen=True)
class SinkProbe:
    """A ticket sink's read-only call: `probe()` returns what it saw, or raises; None: the sink has none."""

    name: str
    probe: Any = None


@dataclass
class DoctorPorts:
    """What the composition root hands the self-check."""

    azure: SelfCheckProbe
    ping_store: Any  # () -> None: one round trip to the state store; raises when it cannot
    sinks: Sequence[SinkProbe] = field(default_factory=tuple)


# ---- small helpers ----------------------------------------------------------------------------------------------


def clipped(text: str, limit: int = DETAIL_LIMIT) -> str:
    """One line, secrets redacted, at most `limit` characters."""
    line = redact(" ".join(text.split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def jwt_claims(token: str) -> dict[str, Any] | None:
    """The payload of a JWT (not verified: the service only reads who it is); None when it is not one."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        payload = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return None
    return payload if isinstance(payload, dict) else None


def credential_hint(error: str) -> str:
    """One line on what to do when no token could be had."""
    text = error.lower()
    if "managedidentitycredential" in text or "managed identity" in text or "imds" in text:
        return ("the managed identity answered no token: in Azure, assign one to the Function App and name a "
                "user-assigned one by its client id (TRIAGE_MANAGED_IDENTITY_CLIENT_ID; AzureWebJobsStorage__clientId "
                "for the state store)")
    if "defaultazurecredential" in text or "credentialunavailable" in text or "unavailable" in text:
        return "no credential is available: locally run `az login`; in Azure, give the Function App a managed identity"
    if "aadsts" in text or "invalid_client" in text or "unauthorized_client" in text:
        return "Entra ID refused the identity: check its client id, tenant and that it still exists"
    return "check the identity the service runs as (TRIAGE_MANAGED_IDENTITY_CLIENT_ID) and its network path to Entra ID"


# ---- the checks --------------------------------------------------------------------------------------------------


def token_check(service: str, scope: str, error: str | None, *, needed: bool = True) -> Check:
    if error is None:
        return Check("token", f"{service} token", OK, f"got a token for {scope}")
    return Check("token", f"{service} token", FAIL if needed else WARN, clipped(f"no token for {scope}: {error}"),
                 credential_hint(error) + ("" if needed else " (needed only to publish outcome events)"))


def identity_check(token: str) -> tuple[Check, str | None]:
    """Who the service is: the `oid` of its ARM token (and tenant, application)."""
    claims = jwt_claims(token)
    oid = str(claims.get("oid") or "") if claims else ""
    if not oid:
        return Check("identity", "who am I", FAIL, "the ARM token is not a JWT carrying an oid claim",
                     "a static token (TRIAGE_LOCAL_TOKEN) must be a JWT for this check"), None
    parts = [f"object id {oid}"]
    parts += [f"{label} {claims[key]}" for key, label in (("tid", "tenant"), ("appid", "application"))
              if claims and claims.get(key)]
    return Check("identity", "who am I", OK, ", ".join(parts)), oid.lower()


def settings_checks(unknown: Iterable[tuple[str, str]], host_problems: Iterable[tuple[str, str]],
                    missing_host: Iterable[tuple[str, str]], *, running_in_azure: bool) -> list[Check]:
    checks = [Check("settings", "settings", OK, "every setting is valid")]
    for key, closest in unknown:
        checks.append(Check("settings", key, WARN, "unknown setting: ignored",
                            f"did you mean {closest}?" if closest else "no setting has a similar name"))
    for key, why in host_problems:
        checks.append(Check("settings", key, FAIL, clipped(why), "the Functions host refuses it: the timer never runs"))
    for key, why in missing_host:
        checks.append(Check("settings", key, FAIL if running_in_azure else WARN, clipped(why)))
    return checks


@dataclass(frozen=True)
class ConditionTerms:
    """What a role-assignment condition allows, read for the 'constrain roles and principal types' form."""

    actions: frozenset[str]  # "write" and/or "delete": the actions it constrains
    roles: Mapping[str, frozenset[str]]  # action -> role GUIDs allowed
    types: Mapping[str, frozenset[str]]  # action -> principal types allowed (lower case)
    unreadable: tuple[str, ...] = ()  # clauses of another form


_CLAUSE = re.compile(
    r"@(?P<source>Request|Resource)\[Microsoft\.Authorization/roleAssignments:(?P<attr>\w+)\]\s*"
    r"(?P<op>(?:For(?:Any|All)Of(?:Any|All)Values:)?[A-Za-z]+)\s*\{(?P<values>[^}]*)\}", re.IGNORECASE)
_ACTION = re.compile(r"ActionMatches\s*\{\s*'Microsoft\.Authorization/roleAssignments/(write|delete)'\s*\}",
                     re.IGNORECASE)
_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def condition_terms(condition: str) -> ConditionTerms:
    actions = frozenset(m.group(1).lower() for m in _ACTION.finditer(condition))
    found_roles: dict[str, set[str]] = {"write": set(), "delete": set()}
    found_types: dict[str, set[str]] = {"write": set(), "delete": set()}
    unreadable = []
    for m in _CLAUSE.finditer(condition):
        action = "write" if m.group("source").lower() == "request" else "delete"
        attr, op = m.group("attr").lower(), m.group("op").lower()
        if "not" in op.split(":")[-1]:
            unreadable.append(m.group(0))
        elif attr == "roledefinitionid" and op.endswith("guidequals"):
            found_roles[action] |= {g.lower() for g in _GUID.findall(m.group("values"))}
        elif attr == "principaltype" and op.endswith(("stringequalsignorecase", "stringequals")):
            found_types[action] |= {v.strip().strip("'\"").lower() for v in m.group("values").split(",") if v.strip()}
        elif attr != "principalid":
            unreadable.append(m.group(0))
    return ConditionTerms(actions, {a: frozenset(v) for a, v in found_roles.items()},
                          {a: frozenset(v) for a, v in found_types.items()}, tuple(unreadable))


def _role_names(guids: Iterable[str]) -> str:
    return ", ".join(sorted(roles.display_name(g) for g in guids))


def condition_problems(condition: str | None, version: str | None, grantable: frozenset[str],
                       principal_types: Sequence[str]) -> list[str]:
    """How a role assigner's ABAC condition differs from the policy: exactly the grantable roles and principal
    types, for both role-assignment writes and deletes, conditionVersion 2.0. Empty: it matches."""
    if not (condition or "").strip():
        return ["no condition: it may assign any role, Owner included, to any principal"]
    problems = [] if version == "2.0" else [f"conditionVersion is {version!r}, expected '2.0'"]
    terms = condition_terms(condition or "")
    expected_types = frozenset(t.lower() for t in principal_types)
    for action, verb in (("write", "assign"), ("delete", "remove")):
        if action not in terms.actions:
            problems.append(f"role-assignment {action}s are not constrained: it may {verb} any role")
            continue
        held = terms.roles[action]
        if not held:
            problems.append(f"{action}s are not constrained to roles")
        else:
            if grantable - held:
                problems.append(f"{action}s do not allow {_role_names(grantable - held)}: the service's "
                                f"{'grants' if action == 'write' else 'revocations'} of it would get 403")
            if held - grantable:
                problems.append(f"{action}s also allow {_role_names(held - grantable)}, which the policy never grants")
        types = terms.types[action]
        if not types:
            problems.append(f"{action}s do not constrain the principal type")
        else:
            if expected_types - types:
                problems.append(f"{action}s do not allow principal type {', '.join(sorted(expected_types - types))}")
            if types - expected_types:
                problems.append(f"{action}s also allow principal type {', '.join(sorted(types - expected_types))}, "
                                "which the policy does not grant to")
    problems += [f"cannot read {clause!r}" for clause in terms.unreadable]
    return problems


def _writes_assignments(role_guid: str) -> bool:
    role = roles.BY_GUID.get(roles.guid_of(role_guid))
    return bool(role and role.writes_role_assignments)


def assignments_check(oid: str, held: Sequence[HeldRole], subscriptions: Sequence[str]) -> Check:
    where = ", ".join(subscriptions) or "no subscription"
    if not held:
        return Check("roles", "own role assignments", WARN, f"none found for {oid} in {where}",
                     "the service needs Reader on each watched subscription to read evidence")
    listed = "; ".join(f"{h.role_name} on {short_scope(h.scope)}" for h in held)
    return Check("roles", "own role assignments", OK, clipped(f"{len(held)} for {oid} (assignedTo, in {where}): "
                                                              f"{listed}", 1000))


def short_scope(scope: str) -> str:
    parts = normalize_scope(scope).strip("/").split("/")
    if len(parts) <= 2:
        return "/" + "/".join(parts)
    if len(parts) <= 4:
        return f"resource group {parts[3] if len(parts) > 3 else ''}".strip()
    return short_name(scope)


def assigner_check(account_id: str, held: Sequence[HeldRole], *, mode: str, grantable: frozenset[str],
                   principal_types: Sequence[str]) -> Check:
    """Whether the identity may write role assignments on the account, and only as the policy grants: a role that
    writes assignments (Role Based Access Control Administrator) on the account itself, with the condition. A
    problem is a failure in enforce mode and a warning otherwise (the service then writes nothing, yet the identity
    holds more than it uses)."""
    name = f"{short_name(account_id)}: role assigner"
    assigners = [h for h in held if _writes_assignments(h.role_guid) and applies_at(h.scope, account_id)]
    if not assigners:
        if mode == "enforce":
            return Check("account", name, FAIL, "no Role Based Access Control Administrator applies here: enforce "
                         "mode cannot grant", "assign it on the account with the generated condition "
                         "(python -m shared abac-condition)")
        return Check("account", name, SKIP, f"none (needed only in enforce mode; mode is {mode})")
    problems = []
    for h in assigners:
        issues = condition_problems(h.condition, h.condition_version, grantable, principal_types)
        if normalize_scope(h.scope) != account_key(account_id):
            issues.append(f"assigned at {short_scope(h.scope)}, above the account: a condition cannot constrain "
                          "scope, so it may write on everything there")
        if issues:
            problems.append(f"{h.role_name} on {short_scope(h.scope)}: " + "; ".join(issues))
    if not problems:
        listed = ", ".join(sorted({h.role_name for h in assigners}))
        return Check("account", name, OK, f"{listed} on the account, condition matches the policy "
                     f"({_role_names(grantable)}; {', '.join(principal_types)})")
    status = FAIL if mode == "enforce" else WARN
    hint = ("assign Role Based Access Control Administrator on each account with the condition from "
            "`python -m shared abac-condition`" + ("" if mode == "enforce" else
                                                   "; or remove it: observe and recommend modes write nothing"))
    return Check("account", name, status, clipped(" | ".join(problems), 1200), hint)


def diagnostics_check(account_id: str, found: Sequence[DiagnosticSetting] | None, error: str | None) -> Check:
    name = f"{short_name(account_id)}: diagnostic settings"
    if error is not None:
        return Check("account", name, FAIL, clipped(error), "the service needs Reader on the account")
    sending = [s for s in found or () if s.sends_request_response()]
    if sending:
        where = ", ".join(f"{s.name} -> {short_name(s.workspace_id)}" for s in sending)
        return Check("account", name, OK, f"RequestResponse goes to a workspace: {where}")
    return Check("account", name, FAIL, f"{len(found or ())} setting(s), none sends RequestResponse to a Log Analytics "
                 "workspace", "add a diagnostic setting sending RequestResponse (or allLogs) to a watched workspace")


def workspace_check(workspace_id: str, traffic: Traffic | None, error: str | None, oid: str | None,
                    now: datetime) -> Check:
    name = f"workspace {workspace_id}"
    if error is not None:
        hint = (f"grant Log Analytics Reader on the workspace to {oid or 'the service identity'}" if " 403" in error
                or "insufficient" in error.lower() else
                "check the workspace id (the workspace's Workspace ID GUID)" if " 404" in error else "")
        return Check("workspace", name, FAIL, clipped(error), hint)
    assert traffic is not None
    if traffic.no_data:
        return Check("workspace", name, WARN, clipped(f"readable, but no diagnostics received yet: {traffic.no_data}"),
                     "first rows arrive up to about 2 hours after a diagnostic setting is made")
    accounts = {r.resource_id for r in traffic.rows}
    recent = [r for r in traffic.rows if r.last_seen is not None and r.last_seen >= now - ARRIVING_WINDOW]
    denied = [r for r in traffic.rows if r.status in DENIED_STATUSES]
    detail = (f"readable; RequestResponse rows from {len(accounts)} account(s), "
              f"{sum(r.rows for r in recent)} in the last 24 h; "
              + (f"{sum(r.rows for r in denied)} 401/403 row(s), the last at {_iso(_latest(denied))}" if denied else
                 "no 401/403 row seen yet"))
    return Check("workspace", name, OK, detail)


def traffic_check(account_id: str, per_workspace: Mapping[str, Traffic], now: datetime) -> Check:
    """Whether RequestResponse rows of the account arrive in a watched workspace: proof of both the diagnostic
    setting and the service's read access."""
    name = f"{short_name(account_id)}: RequestResponse rows"
    key = account_key(account_id)
    mine = {ws: [r for r in t.rows if account_key(r.resource_id) == key] for ws, t in per_workspace.items()}
    arriving = {ws: rows for ws, rows in mine.items()
                if any(r.last_seen is not None and r.last_seen >= now - ARRIVING_WINDOW for r in rows)}
    denied = sum(r.rows for rows in mine.values() for r in rows if r.status in DENIED_STATUSES)
    denied_text = f"{denied} 401/403 row(s) seen" if denied else "no 401/403 row seen yet"
    if arriving:
        latest = _latest([r for rows in arriving.values() for r in rows])
        return Check("account", name, OK, f"arriving in {', '.join(sorted(arriving))} (last at {_iso(latest)}); "
                     f"{denied_text}")
    if any(mine.values()):
        return Check("account", name, WARN, f"none in the last 24 h (older rows exist); {denied_text}",
                     "no traffic lately, or the diagnostic setting stopped sending")
    return Check("account", name, WARN, "none in any watched workspace",
                 "no traffic yet, or no diagnostic setting sends RequestResponse to a watched workspace")


def sink_check(name: str, result: str | None, error: str | None, *, probed: bool) -> Check:
    if not probed:
        return Check("sink", f"ticket sink {name}", SKIP, "no read-only call to make")
    if error is not None:
        return Check("sink", f"ticket sink {name}", FAIL, clipped(error), "check the sink's URL and credentials")
    return Check("sink", f"ticket sink {name}", OK, clipped(result or "reachable"))


def _latest(rows: Sequence[TrafficRow]) -> datetime | None:
    times = [r.last_seen for r in rows if r.last_seen is not None]
    return max(times) if times else None


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value is not None else "-"
