"""Azure Policy on ARM: policy assignments, definitions, set definitions and exemptions, read-only.

The routes and bodies follow the Azure Policy REST reference (Microsoft.Authorization, api-versions 2023-04-01 and
later for assignments and definitions, 2022-07-01-preview for exemptions):
- `GET {scope}/providers/Microsoft.Authorization/policyAssignments[?$filter=atScope()]`: for a resource, the
  unfiltered list holds the assignments at the resource and at every containing scope, and those on resources
  contained in it; `atScope()` leaves out the last ones ("Policy Assignments - List For Resource");
- `GET {scope}/providers/Microsoft.Authorization/policyExemptions[?$filter=atScope()|excludeExpired()]`, the same
  way ("Policy Exemptions - List For Resource");
- `GET [/subscriptions/{s}|/providers/Microsoft.Management/managementGroups/{mg}]/providers/Microsoft.Authorization/
  policyDefinitions/{name}` (and `policySetDefinitions/{name}`): one definition by its id; a built-in's id has no
  scope prefix. A missing one answers 404 `PolicyDefinitionNotFound` / `PolicySetDefinitionNotFound`.
Each item is `{"id", "type", "name", "properties": {...}}` with the documented property names. A caller without
`Microsoft.Authorization/policyAssignments/read` at a scope gets ARM's 403 `AuthorizationFailed`: a scenario says
which scopes (`policies.unreadable_scopes`).

Two built-in definitions are always served, with their published ids, names, effects and the alias they test
(Azure/azure-policy `built-in-policies/policyDefinitions/Azure Ai Services/DisableLocalAuth_Audit.json` and the
Cognitive Services "disable local authentication methods" Modify policy); the rule bodies are written here in the
documented shape, not copied.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from localazure import scopes
from localazure.clock import as_utc
from localazure.frontdoor import error
from localazure.https import Request, Response

_AUTHZ = "/providers/microsoft.authorization/"
_FAMILIES = {"policyassignments": "policyAssignments", "policydefinitions": "policyDefinitions",
             "policysetdefinitions": "policySetDefinitions", "policyexemptions": "policyExemptions"}
_LOCAL_AUTH_FIELD = "Microsoft.CognitiveServices/accounts/disableLocalAuth"

KEY_ACCESS_DISABLED = "71ef260a-8f18-47b7-abcb-62d0673d94dc"  # Audit, Deny, Disabled
CONFIGURE_LOCAL_AUTH_DISABLED = "14de9e63-1b31-492e-a5a3-c3f7fd57f555"  # Modify, Disabled

BUILT_IN_DEFINITIONS: dict[str, dict[str, Any]] = {
    KEY_ACCESS_DISABLED: {
        "displayName": "Azure AI Services resources should have key access disabled (disable local authentication)",
        "policyType": "BuiltIn", "mode": "Indexed", "version": "1.1.0",
        "metadata": {"version": "1.1.0", "category": "Azure Ai Services"},
        "parameters": {"effect": {"type": "String", "allowedValues": ["Audit", "Deny", "Disabled"],
                                  "defaultValue": "Audit", "metadata": {"displayName": "Effect"}}},
        "policyRule": {
            "if": {"allOf": [{"field": "type", "equals": "Microsoft.CognitiveServices/accounts"},
                             {"field": _LOCAL_AUTH_FIELD, "notEquals": True}]},
            "then": {"effect": "[parameters('effect')]"},
        },
    },
    CONFIGURE_LOCAL_AUTH_DISABLED: {
        "displayName": "Configure Cognitive Services accounts to disable local authentication methods",
        "policyType": "BuiltIn", "mode": "Indexed", "version": "1.0.0",
        "metadata": {"version": "1.0.0", "category": "Cognitive Services"},
        "parameters": {"effect": {"type": "String", "allowedValues": ["Modify", "Disabled"],
                                  "defaultValue": "Modify", "metadata": {"displayName": "Effect"}}},
        "policyRule": {
            "if": {"allOf": [{"field": "type", "equals": "Microsoft.CognitiveServices/accounts"},
                             {"field": _LOCAL_AUTH_FIELD, "notEquals": True}]},
            "then": {"effect": "[parameters('effect')]", "details": {
                "roleDefinitionIds": ["/providers/Microsoft.Authorization/roleDefinitions/"
                                      "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68"],
                "operations": [{"operation": "addOrReplace", "field": _LOCAL_AUTH_FIELD, "value": True}]}},
        },
    },
}


@dataclass
class PolicyWorld:
    """What the scenario's `policies` declare. Ids are normalized lower-case; bodies are ARM's JSON."""

    definitions: dict[str, dict[str, Any]] = field(default_factory=dict)  # lower id -> body
    assignments: list[dict[str, Any]] = field(default_factory=list)
    exemptions: list[dict[str, Any]] = field(default_factory=list)
    unreadable_scopes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        for guid, properties in BUILT_IN_DEFINITIONS.items():
            self.add_definition(f"/providers/Microsoft.Authorization/policyDefinitions/{guid}", properties)

    def add_definition(self, definition_id: str, properties: dict[str, Any]) -> str:
        definition_id = scopes.normalize(definition_id)
        family = "policySetDefinitions" if "/policysetdefinitions/" in definition_id.lower() else "policyDefinitions"
        body = {"id": definition_id, "type": f"Microsoft.Authorization/{family}",
                "name": definition_id.rsplit("/", 1)[-1], "properties": copy.deepcopy(properties)}
        self.definitions[definition_id.lower()] = body
        return definition_id

    def add_assignment(self, scope: str, name: str, definition_id: str, *, parameters: dict[str, Any] | None = None,
                       enforcement_mode: str = "Default", display_name: str = "",
                       not_scopes: list[str] | None = None) -> str:
        scope = scopes.normalize(scope)
        assignment_id = f"{'' if scope == '/' else scope}/providers/Microsoft.Authorization/policyAssignments/{name}"
        self.assignments.append({
            "id": assignment_id, "type": "Microsoft.Authorization/policyAssignments", "name": name,
            "properties": {"displayName": display_name or name, "policyDefinitionId": definition_id, "scope": scope,
                           "notScopes": list(not_scopes or []),
                           "parameters": {k: {"value": v} for k, v in (parameters or {}).items()},
                           "enforcementMode": enforcement_mode, "metadata": {}, "nonComplianceMessages": []},
        })
        return assignment_id

    def add_exemption(self, scope: str, name: str, assignment_id: str, *, category: str = "Waiver",
                      expires_on: datetime | None = None, reference_ids: list[str] | None = None) -> str:
        scope = scopes.normalize(scope)
        exemption_id = f"{scope}/providers/Microsoft.Authorization/policyExemptions/{name}"
        self.exemptions.append({
            "id": exemption_id, "type": "Microsoft.Authorization/policyExemptions", "name": name,
            "properties": {"policyAssignmentId": assignment_id, "policyDefinitionReferenceIds": reference_ids or [],
                           "exemptionCategory": category, "displayName": name, "metadata": {},
                           "expiresOn": expires_on.isoformat().replace("+00:00", "Z") if expires_on else None,
                           "assignmentScopeValidation": "Default"},
        })
        return exemption_id


def _target(path: str) -> tuple[str, str, str] | None:
    """(family, scope, name) of a Microsoft.Authorization policy path, None for any other path."""
    lower = path.lower()
    for marker, family in _FAMILIES.items():
        at = lower.find(_AUTHZ + marker)
        if at >= 0:
            rest = path[at + len(_AUTHZ) + len(marker):].strip("/")
            return family, path[:at] or "/", rest
    return None


def scope_of(item: dict[str, Any]) -> str:
    """The scope a policy assignment or exemption was created at: its id before `/providers/Microsoft.Authorization`."""
    return item["id"][: item["id"].lower().find("/providers/microsoft.authorization/")] or "/"


_scope_of = scope_of


class PolicyRoutes:
    def __init__(self, world: Callable[[], PolicyWorld], now: Callable[[], datetime]):
        self._world = world
        self._now = now

    def route(self, request: Request, path: str) -> tuple[str, Callable[..., Response]] | None:
        """(route name, handler) for a policy GET, None when the path is not Azure Policy's."""
        found = _target(path)
        if found is None or request.method.upper() != "GET":
            return None
        family, scope, name = found
        if family in ("policyDefinitions", "policySetDefinitions"):
            return f"{family}.get", lambda r, c: self._definition(family, path)
        if name:
            return f"{family}.get", lambda r, c: self._one(family, path)
        return f"{family}.list", lambda r, c: self._list(family, scope, r.param("$filter") or "")

    def _forbidden(self, family: str, scope: str) -> Response | None:
        for unreadable in self._world().unreadable_scopes:
            if scopes.is_at_or_above(unreadable, scope):  # the read permission is inherited from above
                action = f"Microsoft.Authorization/{family}/read"
                return error(403, "AuthorizationFailed",
                             f"The client does not have authorization to perform action '{action}' over scope "
                             f"'{scope}' or the scope is invalid. If access was recently granted, please refresh "
                             "your credentials.")
        return None

    def _definition(self, family: str, path: str) -> Response:
        body = self._world().definitions.get(scopes.normalize(path).lower())
        if body is None or body["type"].split("/")[-1] != family:
            code = "PolicySetDefinitionNotFound" if family == "policySetDefinitions" else "PolicyDefinitionNotFound"
            noun = "policy set definition" if family == "policySetDefinitions" else "policy definition"
            return error(404, code, f"The {noun} '{path.rsplit('/', 1)[-1]}' could not be found.")
        return Response.json(body)

    def _items(self, family: str) -> list[dict[str, Any]]:
        world = self._world()
        return world.assignments if family == "policyAssignments" else world.exemptions

    def _one(self, family: str, path: str) -> Response:
        for item in self._items(family):
            if scopes.same(item["id"], path):
                return self._forbidden(family, _scope_of(item)) or Response.json(item)
        code = "PolicyAssignmentNotFound" if family == "policyAssignments" else "PolicyExemptionNotFound"
        return error(404, code, f"The policy item '{path.rsplit('/', 1)[-1]}' is not found.")

    def _list(self, family: str, scope: str, expression: str) -> Response:
        forbidden = self._forbidden(family, scope)
        if forbidden is not None:
            return forbidden
        clauses = {c.strip().lower() for c in re.split(r"\s+and\s+", expression.strip(), flags=re.I) if c.strip()}
        allowed = {"atscope()", "atexactscope()"} | ({"excludeexpired()"} if family == "policyExemptions" else set())
        if not clauses <= allowed:
            return error(400, "InvalidFilterInQueryString", f"The filter '{expression}' is not supported.")
        items = []
        for item in self._items(family):
            where = _scope_of(item)
            if "atexactscope()" in clauses:
                keep = scopes.same(where, scope)
            else:
                keep = scopes.is_at_or_above(where, scope) or (
                    "atscope()" not in clauses and scopes.is_at_or_above(scope, where))
            expires = (item["properties"].get("expiresOn") if family == "policyExemptions" else None)
            if keep and "excludeexpired()" in clauses and expires and as_utc(expires) <= self._now():
                keep = False
            if keep:
                items.append(item)
        return Response.json({"value": items})


_SCENARIO_KEYS = frozenset({"definitions", "assignments", "exemptions", "unreadable_scopes"})


def apply_scenario(world: PolicyWorld, raw: dict[str, Any], resolve_scope: Callable[[str], str], now: datetime,
                   subscription_id: str) -> None:
    """A scenario's `policies` (docs/localazure.md, "Azure Policy"). Scopes take the scenario's shorthands."""
    from datetime import timedelta

    from localazure.scenario import ScenarioError

    def check(where: str, item: dict[str, Any], allowed: set[str]) -> None:
        unknown = sorted(set(item) - allowed)
        if unknown:
            raise ScenarioError(f"{where}: unknown keys {unknown}; allowed: {sorted(allowed)}")

    check("policies", raw, set(_SCENARIO_KEYS))
    names: dict[str, str] = {}
    for item in raw.get("definitions", []):
        check(f"policy definition {item.get('name')}", item, {"name", "set", "management_group", "properties"})
        if not item.get("name") or not isinstance(item.get("properties"), dict):
            raise ScenarioError(f"policy definition needs a name and properties: {item}")
        family = "policySetDefinitions" if item.get("set") else "policyDefinitions"
        where = (f"/providers/Microsoft.Management/managementGroups/{item['management_group']}"
                 if item.get("management_group") else f"/subscriptions/{subscription_id}")
        names[item["name"].lower()] = world.add_definition(
            f"{where}/providers/Microsoft.Authorization/{family}/{item['name']}", item["properties"])
    assignments: dict[str, str] = {}
    for item in raw.get("assignments", []):
        check(f"policy assignment {item.get('name')}", item,
              {"name", "scope", "definition", "parameters", "enforcement_mode", "display_name", "not_scopes"})
        definition = str(item.get("definition") or "")
        definition_id = names.get(definition.lower()) or (
            f"/providers/Microsoft.Authorization/policyDefinitions/{definition}" if definition.lower()
            in BUILT_IN_DEFINITIONS else definition)
        if definition_id.lower() not in world.definitions:
            raise ScenarioError(f"policy assignment {item.get('name')}: unknown definition {definition!r}")
        assignments[str(item["name"]).lower()] = world.add_assignment(
            resolve_scope(item.get("scope", "subscription")), item["name"], definition_id,
            parameters=item.get("parameters"), enforcement_mode=item.get("enforcement_mode", "Default"),
            display_name=item.get("display_name", ""),
            not_scopes=[resolve_scope(s) for s in item.get("not_scopes", [])])
    for item in raw.get("exemptions", []):
        check(f"policy exemption {item.get('name')}", item,
              {"name", "scope", "assignment", "category", "expires_in_seconds", "reference_ids"})
        assignment_id = assignments.get(str(item.get("assignment") or "").lower())
        if assignment_id is None:
            raise ScenarioError(f"policy exemption {item.get('name')}: unknown assignment {item.get('assignment')!r}")
        expires = (now + timedelta(seconds=float(item["expires_in_seconds"]))
                   if "expires_in_seconds" in item else None)
        world.add_exemption(resolve_scope(item.get("scope", "subscription")), item["name"], assignment_id,
                            category=item.get("category", "Waiver"), expires_on=expires,
                            reference_ids=list(item.get("reference_ids", [])))
    world.unreadable_scopes += [resolve_scope(s) for s in raw.get("unreadable_scopes", [])]
