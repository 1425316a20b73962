"""The access reviews' reads (`core.ports.ReviewReader`), all GETs or log queries, on the clients the service uses:
the accounts and role assignments through ARM, the callers through the watched Log Analytics workspaces
(`kql.caller_activity_query`), and Azure Policy through azure-mgmt-resource-policy's `PolicyClient` (the policy
client azure-mgmt-resource carried before its 26.0.0 split) for assignments and definitions; exemptions, which that
client does not carry, through a plain ARM GET on the same pipeline (api-version 2022-07-01-preview, the Policy
Exemptions REST reference). SDK modules are imported inside functions."""

from __future__ import annotations

import threading
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from shared.adapters import kql
from shared.adapters.azure import AzureClients
from shared.adapters.logs import NoDataYet
from shared.adapters.resources import to_evidence
from shared.core import roles
from shared.core.allowlist import normalize_object_id
from shared.core.model import ResourceEvidence
from shared.core.resource_ids import account_key, enclosing_account
from shared.core.reviews.model import (
    AppActivity,
    CallerActivity,
    HeldAssignment,
    PolicyAssignmentFacts,
    PolicyExemptionFacts,
    RoleDefinitionFacts,
)

POLICY_SDK_PACKAGE = "azure-mgmt-resource-policy"
EXEMPTIONS_API_VERSION = "2022-07-01-preview"
_ANY_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _ips(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            return (value,) if value else ()
    return tuple(str(v) for v in value or () if v)


def _app_insights_app(row: dict[str, Any]) -> AppActivity:
    return AppActivity(str(row.get("Host") or "").lower(), str(row.get("App") or ""), "appinsights",
                       int(row.get("Calls") or 0), _time(row.get("FirstSeen")), _time(row.get("LastSeen")))


def _gateway_app(row: dict[str, Any]) -> AppActivity:
    """The caller's API Management subscription where the API requires one, else the gateway itself."""
    gateway = str(row.get("GatewayId") or "").rstrip("/").rsplit("/", 1)[-1]
    subscription = str(row.get("Subscription") or "")
    name = f"{subscription} (subscription on {gateway})" if subscription else f"{gateway} (gateway)"
    return AppActivity(str(row.get("Host") or "").lower(), name, "gateway", int(row.get("Calls") or 0),
                       _time(row.get("FirstSeen")), _time(row.get("LastSeen")))


GRAPH_POLICY_CAVEAT = ("was read through Resource Graph, which leaves out the scopes this identity cannot read (and "
                       "may leave out management groups): an assignment there is not listed. Reader at every scope "
                       "above the account, or TRIAGE_RESOURCE_GRAPH off, makes the list complete.")


class AzureReviewReader:
    def __init__(self, clients: AzureClients):
        self._clients = clients
        self._policy_clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._graph_answers: dict[str, list[dict[str, Any]] | None] = {}  # account key -> policyresources rows
        self.graph_fallbacks: list[str] = []  # why Resource Graph could not answer for an account (ARM did)

    # ---- accounts, logs, role assignments ----------------------------------------------------------------

    def account_ids(self) -> list[str]:
        subscription = self._clients.config.settings.subscription_id
        if not subscription:
            raise ValueError("TRIAGE_SUBSCRIPTION_ID is empty: name the account with --account, or set it")
        return sorted(str(a.id) for a in self._clients.accounts.list_in(subscription) if a.id)

    def account(self, account_id: str) -> ResourceEvidence | None:
        found = self._clients.accounts.get(account_id)
        return to_evidence(found, account_id) if found is not None else None

    def caller_activity(self, account_ids: Sequence[str], since: datetime, until: datetime
                        ) -> dict[str, tuple[CallerActivity, ...]]:
        workspaces = self._clients.config.settings.workspace_ids
        if not workspaces:
            raise ValueError("TRIAGE_WORKSPACE_IDS is empty: no RequestResponse rows can be read")
        text = kql.caller_activity_query(account_ids=tuple(account_ids), since=since, until=until)
        found: dict[str, list[CallerActivity]] = {account_key(a): [] for a in account_ids}
        for workspace in workspaces:
            try:
                rows, partial = self._clients.workspace_query(workspace).run(text, since, until)
            except NoDataYet:
                continue
            if partial:
                raise RuntimeError(f"workspace {workspace}: partial result: {'; '.join(partial)}")
            for row in rows:
                key = account_key(str(row.get("ResourceId") or ""))
                found.setdefault(key, []).append(CallerActivity(
                    key, str(row.get("ObjectId") or ""), str(row.get("OperationName") or ""),
                    str(row.get("ApiName") or ""), int(row.get("Calls") or 0), _time(row.get("FirstSeen")),
                    _time(row.get("LastSeen")), _ips(row.get("CallerIps"))))
        return {key: tuple(rows) for key, rows in found.items()}

    def app_activity(self, since: datetime, until: datetime) -> tuple[AppActivity, ...]:
        """The apps calling inference hosts, from the App Insights and the API Management workspaces; a workspace
        without the table yet has no rows. Raises when neither is configured, or when every workspace failed."""
        settings = self._clients.config.settings
        sources = [(w, kql.app_calls_query(since=since, until=until), _app_insights_app)
                   for w in settings.appinsights_workspace_ids]
        sources += [(w, kql.gateway_app_calls_query(since=since, until=until), _gateway_app)
                    for w in settings.apim_workspace_ids]
        if not sources:
            raise ValueError("neither TRIAGE_APPINSIGHTS_WORKSPACE_IDS nor TRIAGE_APIM_WORKSPACE_IDS is set: no "
                             "App Insights or gateway logs name the apps")
        found: list[AppActivity] = []
        problems = []
        for workspace, text, to_app in sources:
            try:
                rows, partial = self._clients.workspace_query(workspace).run(text, since, until)
            except NoDataYet:
                continue
            except Exception as exc:  # noqa: BLE001 - one unreadable workspace leaves the others' apps
                problems.append(f"workspace {workspace}: {type(exc).__name__}: {exc}".splitlines()[0])
                continue
            if partial:
                problems.append(f"workspace {workspace}: partial result: {'; '.join(partial)}")
                continue
            found += [to_app(row) for row in rows]
        if problems and len(problems) == len(sources):
            raise RuntimeError("; ".join(problems))
        return tuple(found)

    def assignments(self, account_id: str, callers: Sequence[str]) -> tuple[HeldAssignment, ...]:
        listed = self._clients.roles.client.role_assignments.list_for_scope(account_id)
        found: dict[tuple[str, str], HeldAssignment] = {}
        for a in listed:
            found[(str(a.id).lower(), "")] = HeldAssignment(
                str(a.id), roles.guid_of(a.role_definition_id or ""), a.scope or "",
                normalize_object_id(a.principal_id) or str(a.principal_id or ""), a.principal_type or "",
                description=a.description or "")
        for caller in callers:
            for held in self._clients.roles.list_for(caller, account_id):
                if held.via_group and held.assignment_id:
                    found.setdefault((held.assignment_id.lower(), caller), HeldAssignment(
                        held.assignment_id, roles.guid_of(held.role_definition_id), held.scope,
                        held.principal_id or "", held.principal_type or "Group", via_group_of=caller))
        return tuple(found.values())

    def role_definitions(self, account_id: str, role_guids: Iterable[str]) -> tuple[RoleDefinitionFacts, ...]:
        parsed = enclosing_account(account_id)
        subscription = parsed.subscription if parsed is not None else ""
        found = []
        for guid in sorted({roles.guid_of(g) for g in role_guids} - set(roles.BY_GUID)):
            info = self._clients.roles.definition(subscription, guid)
            if info is not None:
                found.append(RoleDefinitionFacts(guid, info.name, info.actions, info.not_actions, info.data_actions,
                                                 info.not_data_actions, info.custom))
        return tuple(found)

    # ---- Azure Policy ---------------------------------------------------------------------------------------

    def _policy(self, subscription: str) -> Any:
        with self._lock:
            client = self._policy_clients.get(subscription)
            if client is None:
                from azure.mgmt.resource.policy import PolicyClient

                config = self._clients.config
                client = PolicyClient(config.credential, subscription or _ANY_SUBSCRIPTION, **config.arm_kwargs())
                self._policy_clients[subscription] = client
            return client

    def policy_assignments(self, account_id: str) -> tuple[PolicyAssignmentFacts, ...]:
        parsed = enclosing_account(account_id)
        if parsed is None:
            raise ValueError(f"{account_id!r} is not an account id")
        graph = self._graph_policy(account_id)
        if graph is not None:
            return tuple(self._assignment_facts(row) for row in graph if _is(row, _POLICY_ASSIGNMENT))
        client = self._policy(parsed.subscription)
        listed = client.policy_assignments.list_for_resource(
            parsed.resource_group, "Microsoft.CognitiveServices", "", "accounts", parsed.account_name,
            filter="atScope()")
        return tuple(self._assignment_facts(item.as_dict()) for item in listed)

    def _assignment_facts(self, item: dict[str, Any]) -> PolicyAssignmentFacts:
        """A policy assignment as ARM's or Resource Graph's JSON (the SDK model's `as_dict` is flattened:
        `policy_definition_id` and so on at the top; ARM's and Resource Graph's JSON has them under `properties`)."""
        props = item.get("properties") or item
        definition_id = str(props.get("policyDefinitionId") or props.get("policy_definition_id") or "")
        definition, members, problem = self._definition(definition_id)
        parameters = {name: (value or {}).get("value") for name, value in (props.get("parameters") or {}).items()}
        mode = props.get("enforcementMode") or props.get("enforcement_mode") or "Default"
        return PolicyAssignmentFacts(
            str(item.get("id") or ""), str(item.get("name") or ""), str(props.get("scope") or ""), definition_id,
            str(mode), parameters, definition, members, problem,
            tuple(str(s) for s in props.get("notScopes") or props.get("not_scopes") or ()))

    def policy_caveat(self, account_id: str) -> str:
        """What the policy read of an account cannot show: Resource Graph answers only with what this identity may
        read (no 403 for the rest) and may leave out management groups; the ARM reads say what they could not
        read, so they need no caveat."""
        with self._lock:
            answered = self._graph_answers.get(account_key(account_id)) is not None
        return (GRAPH_POLICY_CAVEAT if answered else "")

    def _graph_policy(self, account_id: str) -> list[dict[str, Any]] | None:
        """The policy assignments and exemptions created at the account's scope chain, in one Resource Graph query
        (`policyresources`); None when TRIAGE_RESOURCE_GRAPH is off or Resource Graph could not be read (a 403,
        anything): the ARM policy client reads them then. One answer serves both reads of an account."""
        graph = self._clients.resource_graph
        parsed = enclosing_account(account_id)
        if graph is None or parsed is None:
            return None
        key = account_key(account_id)
        with self._lock:
            if key in self._graph_answers:
                return self._graph_answers[key]
        try:
            rows: list[dict[str, Any]] | None = graph.query_rows(policy_resources_query(account_id),
                                                                 [parsed.subscription])
        except Exception as exc:  # noqa: BLE001 - Resource Graph unreadable: ARM answers instead
            self.graph_fallbacks.append(f"{account_id}: {type(exc).__name__}: {exc}".splitlines()[0])
            rows = None
        with self._lock:
            self._graph_answers[key] = rows
        return rows

    def _definition(self, definition_id: str) -> tuple[dict[str, Any] | None, dict[str, dict[str, Any]], str]:
        """(the definition's properties, a set's members' properties by lower-cased id, why it is unreadable)."""
        try:
            properties = self._get_definition(definition_id)
        except Exception as exc:  # noqa: BLE001 - reported as "could not check" for this assignment
            return None, {}, f"{type(exc).__name__}: {exc}".splitlines()[0]
        members: dict[str, dict[str, Any]] = {}
        for reference in properties.get("policyDefinitions") or ():
            member_id = str(reference.get("policyDefinitionId") or "")
            try:
                members[member_id.lower()] = self._get_definition(member_id)
            except Exception:  # noqa: BLE001, S112 - an absent member is named by the core as unreadable
                continue
        return properties, members, ""

    def _get_definition(self, definition_id: str) -> dict[str, Any]:
        """A policy (set) definition by id: a built-in (`/providers/...`), a subscription's or a management
        group's, through the matching PolicyClient operation; its `properties` as ARM's JSON."""
        parts = definition_id.strip("/").split("/")
        lowered = [p.lower() for p in parts]
        name = parts[-1]
        is_set = "policysetdefinitions" in lowered
        kind = "policy_set_definitions" if is_set else "policy_definitions"
        if lowered[0] == "subscriptions":
            operations = getattr(self._policy(parts[1]), kind)
            model = operations.get(name)
        elif lowered[:3] == ["providers", "microsoft.management", "managementgroups"]:
            operations = getattr(self._policy(""), kind)
            model = operations.get_at_management_group(parts[3], name)
        else:
            operations = getattr(self._policy(""), kind)
            model = operations.get_built_in(name)
        return dict(model.as_dict().get("properties") or {}) if hasattr(model, "as_dict") else {}

    def policy_exemptions(self, account_id: str) -> tuple[PolicyExemptionFacts, ...]:
        graph = self._graph_policy(account_id)
        if graph is not None:
            return tuple(_exemption_facts(row) for row in graph if _is(row, _POLICY_EXEMPTION))
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest

        parsed = enclosing_account(account_id)
        client = self._policy(parsed.subscription if parsed is not None else "")
        request = HttpRequest("GET", f"{self._clients.config.settings.arm_endpoint.rstrip('/')}{account_id}"
                              "/providers/Microsoft.Authorization/policyExemptions",
                              params={"api-version": EXEMPTIONS_API_VERSION, "$filter": "atScope()"})
        found = []
        while True:
            response = client.send_request(request)
            if response.status_code >= 400:
                raise HttpResponseError(response=response)
            page = response.json()
            found += [_exemption_facts(item) for item in page.get("value") or ()]
            next_link = page.get("nextLink")
            if not next_link:
                return tuple(found)
            request = HttpRequest("GET", next_link)


_POLICY_ASSIGNMENT = "microsoft.authorization/policyassignments"
_POLICY_EXEMPTION = "microsoft.authorization/policyexemptions"
_MANAGEMENT_GROUPS = "/providers/microsoft.management/managementgroups/"


def _is(row: dict[str, Any], kind: str) -> bool:
    return str(row.get("type") or "").lower() == kind


def _exemption_facts(item: dict[str, Any]) -> PolicyExemptionFacts:
    props = item.get("properties") or {}
    return PolicyExemptionFacts(
        str(item.get("id") or ""), str(item.get("name") or ""), str(props.get("policyAssignmentId") or ""),
        str(props.get("exemptionCategory") or ""), _time(props.get("expiresOn")),
        tuple(props.get("policyDefinitionReferenceIds") or ()))


def scope_chain(account_id: str) -> tuple[str, ...]:
    """The account's subscription, resource group and the account itself, lower-cased."""
    parsed = enclosing_account(account_id)
    if parsed is None:
        return ()
    subscription = f"/subscriptions/{parsed.subscription}".lower()
    group = f"{subscription}/resourcegroups/{parsed.resource_group}".lower()
    return subscription, group, account_key(account_id)


def policy_resources_query(account_id: str) -> str:
    """Resource Graph: the policy assignments and exemptions created at the account, its resource group or its
    subscription (their ids start `<scope>/providers/Microsoft.Authorization/`), and any management group's
    that Resource Graph returns for the subscription."""
    prefixes = [f"{scope}/providers/microsoft.authorization/" for scope in scope_chain(account_id)]
    where = " or ".join([*(f"tolower(id) startswith {kql.literal(p)}" for p in prefixes),
                         f"tolower(id) startswith {kql.literal(_MANAGEMENT_GROUPS)}"])
    return (f"policyresources | where type in~ ({kql.literal(_POLICY_ASSIGNMENT)}, {kql.literal(_POLICY_EXEMPTION)}) "
            f"| where {where} | project id, name, type, properties | order by id asc")
