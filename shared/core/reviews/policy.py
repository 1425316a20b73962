"""Which Azure Policy assignments on an account's scope chain touch `disableLocalAuth`, and what each would do to a
rollback (the guide: "A deny policy can block re-enabling local authentication, and modify or deploy-if-not-exists
policies can reapply the disabled setting").

Pure over the ARM JSON of the definitions (`properties`: `parameters`, `policyRule`; a set's `policyDefinitions`):
a definition concerns local auth when its rule names the alias `Microsoft.CognitiveServices/accounts/disableLocalAuth`
(the built-ins "Azure AI Services resources should have key access disabled" and "Configure Azure AI Services
resources to disable local key access" do); its effect is `then.effect`, resolved through `[parameters('…')]`
from the assignment's values, the set's references and the defaults.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from shared.core.resource_ids import applies_at
from shared.core.reviews.model import PolicyAssignmentFacts, PolicyExemptionFacts, PolicyFinding

LOCAL_AUTH_ALIAS = "disablelocalauth"  # Microsoft.CognitiveServices/accounts/disableLocalAuth, lower-cased
_PARAMETER = re.compile(r"^\[parameters\('([^']+)'\)\]$", re.IGNORECASE)

DENY, MODIFY, DINE, AUDIT, AINE, DISABLED, UNKNOWN = (
    "deny", "modify", "deployifnotexists", "audit", "auditifnotexists", "disabled", "unknown")
BLOCKING_EFFECTS = frozenset({DENY, MODIFY, DINE})

_ROLLBACK = {
    DENY: "denies setting disableLocalAuth back to false: a rollback fails until an exemption covers the account",
    MODIFY: "sets disableLocalAuth to true again on the next create or update of the account (and on remediation): "
            "a rollback does not hold without an exemption",
    DINE: "redeploys the disabled setting through its remediation task: a rollback does not hold without an "
          "exemption",
    AUDIT: "reports the account non-compliant after a rollback; does not block it",
    AINE: "reports the account non-compliant after a rollback; does not block it",
    DISABLED: "the effect is Disabled: no effect on a rollback",
    UNKNOWN: "its effect could not be resolved: check it by hand before disabling local authentication",
}


def mentions_local_auth(definition: Mapping[str, Any] | None) -> bool:
    rule = (definition or {}).get("policyRule")
    return rule is not None and LOCAL_AUTH_ALIAS in json.dumps(rule).lower()


def _resolve(value: Any, parameters: Mapping[str, Any], declared: Mapping[str, Any]) -> Any:
    """A value that may be `[parameters('name')]`: the given value, else the declared default."""
    if isinstance(value, str):
        match = _PARAMETER.match(value.strip())
        if match:
            name = match.group(1)
            given = {k.lower(): v for k, v in parameters.items()}
            if name.lower() in given:
                return given[name.lower()]
            spec = {k.lower(): v for k, v in declared.items()}.get(name.lower()) or {}
            return spec.get("defaultValue") if isinstance(spec, Mapping) else None
    return value


def effect_of(definition: Mapping[str, Any], parameters: Mapping[str, Any]) -> str:
    """The definition's effect, lower-cased, with `parameters` (name -> value) applied; UNKNOWN when unresolvable."""
    then = ((definition.get("policyRule") or {}).get("then")) or {}
    effect = _resolve(then.get("effect"), parameters, definition.get("parameters") or {})
    if not isinstance(effect, str) or effect.startswith("["):
        return UNKNOWN
    lowered = effect.strip().lower()
    return lowered if lowered in _ROLLBACK else UNKNOWN


def _exempting(assignment: PolicyAssignmentFacts, reference_id: str, exemptions: tuple[PolicyExemptionFacts, ...],
               now: datetime) -> PolicyExemptionFacts | None:
    for exemption in exemptions:
        if exemption.policy_assignment_id.lower() != assignment.assignment_id.lower():
            continue
        if exemption.expires_on is not None and exemption.expires_on <= now:
            continue
        if exemption.reference_ids and reference_id.lower() not in {r.lower() for r in exemption.reference_ids}:
            continue
        return exemption
    return None


def _finding(assignment: PolicyAssignmentFacts, definition_id: str, effect: str,
             exemption: PolicyExemptionFacts | None) -> PolicyFinding:
    enforced = assignment.enforcement_mode.lower() != "donotenforce"
    blocks = effect in BLOCKING_EFFECTS and enforced and exemption is None
    if exemption is not None:
        rollback = f"exempted by {exemption.name} ({exemption.category or 'exemption'}): no effect on a rollback"
    elif not enforced:
        rollback = "not enforced (enforcementMode DoNotEnforce): no effect on a rollback"
    else:
        rollback = _ROLLBACK[effect]
    return PolicyFinding(assignment.assignment_id, assignment.name, assignment.scope, definition_id, effect,
                         enforced, exemption is not None, blocks, rollback)


def local_auth_policies(assignments: tuple[PolicyAssignmentFacts, ...], exemptions: tuple[PolicyExemptionFacts, ...],
                        now: datetime, account_id: str = "") -> tuple[list[PolicyFinding], list[str]]:
    """(findings, what could not be checked): one finding per assigned definition (or set member) that concerns
    `disableLocalAuth`; a definition that could not be read is named, never passed over. An assignment whose
    `notScopes` hold the account does not apply to it."""
    findings: list[PolicyFinding] = []
    unreadable: list[str] = []
    for assignment in assignments:
        if account_id and any(applies_at(excluded, account_id) for excluded in assignment.not_scopes):
            continue
        definition = assignment.definition
        if definition is None:
            unreadable.append(f"policy assignment {assignment.name}: its definition {assignment.definition_id} "
                              f"could not be read ({assignment.definition_error or 'no answer'})")
            continue
        members = definition.get("policyDefinitions")
        if members is None:  # a policy definition
            if mentions_local_auth(definition):
                findings.append(_finding(assignment, assignment.definition_id,
                                         effect_of(definition, assignment.parameters),
                                         _exempting(assignment, "", exemptions, now)))
            continue
        declared = definition.get("parameters") or {}
        for reference in members:
            member_id = str(reference.get("policyDefinitionId") or "")
            member = assignment.members.get(member_id.lower())
            if member is None:
                unreadable.append(f"policy assignment {assignment.name}: member {member_id} of its set could not be "
                                  "read")
                continue
            if not mentions_local_auth(member):
                continue
            values = {name: _resolve((spec or {}).get("value"), assignment.parameters, declared)
                      for name, spec in (reference.get("parameters") or {}).items() if isinstance(spec, Mapping)}
            exemption = _exempting(assignment, str(reference.get("policyDefinitionReferenceId") or ""), exemptions,
                                   now)
            findings.append(_finding(assignment, member_id, effect_of(member, values), exemption))
    return findings, unreadable


def exemption_command(finding: PolicyFinding, account_id: str) -> str:
    return (f"az policy exemption create --name local-auth-rollback --exemption-category Waiver "
            f"--policy-assignment \"{finding.assignment_id}\" --scope \"{account_id}\"")
