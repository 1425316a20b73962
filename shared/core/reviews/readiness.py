"""Local-auth readiness: may this account's API keys be turned off? (docs/reviews.md, rules R1-R5)

The guide: "Don't disable local authentication until you complete readiness checks. Disabling local authentication
prevents API-key use and can break applications, scripts, or operational processes that still depend on keys."
Each check that could not be made (logs, role assignments or policy unreadable, no traffic logged at all) is a
blocking reason of its own: the review never reads silence as "ready".
"""

from __future__ import annotations

from datetime import datetime

from shared.core import roles
from shared.core.endpoints import row_hint
from shared.core.resource_ids import applies_at
from shared.core.reviews.apps import account_apps, apps_beside, apps_unread
from shared.core.reviews.model import (
    AccountFacts,
    AppActivity,
    CallerActivity,
    EntraCaller,
    HeldAssignment,
    KeyCaller,
    PolicyFinding,
    Readiness,
    Reason,
    RoleDefinitionFacts,
)
from shared.core.reviews.policy import exemption_command, local_auth_policies
from shared.core.surfaces import OPENAI, SURFACES

READY, NOT_READY, ALREADY_DISABLED = "ready", "not_ready", "already_disabled"
VERDICTS = (READY, NOT_READY, ALREADY_DISABLED)

KEY_CALLERS = "R1-key-callers"
ENTRA_ROLES = "R2-entra-callers-hold-roles"
POLICY = "R3-policy-rollback"
ALREADY = "R4-already-disabled"
UNCHECKED = "R5-could-not-check"


def mask_ip(ip: str) -> str:
    """The caller address with its host part hidden: IPv4's last octet, IPv6 past the first three groups (Azure
    already masks the last octet; an address logged whole by a gateway is masked here too)."""
    text = ip.strip()
    if not text:
        return ""
    if ":" in text and "." not in text:
        groups = text.split(":")
        return ":".join(groups[:3]) + ":****" if len(groups) > 3 else text
    parts = text.split(".")
    return ".".join([*parts[:3], "***"]) if len(parts) == 4 else "***"


def _time(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def key_callers(activity: tuple[CallerActivity, ...], apps: tuple[AppActivity, ...] = ()) -> tuple[KeyCaller, ...]:
    """Rows with an empty objectId, by operation: who still calls with keys; with the apps (of the account's
    hosts) seen calling in the same window."""
    found = [KeyCaller(a.operation, a.calls, _time(a.first_seen), _time(a.last_seen),
                       tuple(sorted({mask_ip(ip) for ip in a.caller_ips if ip})), a.app, apps_beside(a, apps))
             for a in activity if not a.object_id and a.calls > 0]
    return tuple(sorted(found, key=lambda k: (-k.calls, k.operation)))


def role_for(guid: str, definitions: tuple[RoleDefinitionFacts, ...]) -> roles.Role | None:
    found = roles.BY_GUID.get(roles.guid_of(guid))
    if found is not None:
        return found
    for d in definitions:
        if roles.guid_of(d.guid) == roles.guid_of(guid):
            return roles.from_definition(d.guid, d.name, d.actions, d.not_actions, d.data_actions, d.not_data_actions)
    return None


def role_name(guid: str, definitions: tuple[RoleDefinitionFacts, ...]) -> str:
    role = role_for(guid, definitions)
    return role.name if role else roles.guid_of(guid)


def held_by(object_id: str, account_id: str, assignments: tuple[HeldAssignment, ...]) -> list[HeldAssignment]:
    """What the caller holds at the account: its own assignments and those of its groups, at or above it, or on
    one of its projects (the log rows name the account, never the project, so a project's role counts)."""
    oid = object_id.lower()
    return [a for a in assignments if (a.principal_id.lower() == oid or a.via_group_of.lower() == oid)
            and (applies_at(a.scope, account_id) or applies_at(account_id, a.scope))]


def surfaces_called(rows: list[CallerActivity]) -> tuple[str, ...]:
    """The surfaces a caller's rows reach (apiName, then OperationName); a row that names none counts as Azure
    OpenAI, the surface whose rows this log table records."""
    return tuple(sorted({row_hint(r.api_name or None, r.operation or None)[0] or OPENAI for r in rows}))


def assign_command(object_id: str, principal_type: str, role: roles.Role, scope: str) -> str:
    """The guide's form: `--assignee-object-id` with `--assignee-principal-type` where the type is known."""
    typed = f" --assignee-principal-type {principal_type}" if principal_type else ""
    return f"az role assignment create --assignee-object-id {object_id}{typed} --role {role.guid} --scope \"{scope}\""


def entra_callers(facts: AccountFacts, assignments: tuple[HeldAssignment, ...]) -> tuple[EntraCaller, ...]:
    by_caller: dict[str, list[CallerActivity]] = {}
    for row in facts.activity or ():
        if row.object_id:
            by_caller.setdefault(row.object_id.lower(), []).append(row)
    found = []
    for oid, rows in sorted(by_caller.items()):
        surfaces = surfaces_called(rows)
        held = [(a, role_for(a.role_guid, facts.definitions)) for a in held_by(oid, facts.account_id, assignments)]
        missing = [s for s in surfaces
                   if not any(role is not None and role.covers(SURFACES[s].data_action) for _, role in held)]
        names = tuple(sorted({role.name if role else roles.guid_of(a.role_guid) for a, role in held}))
        recommended = roles.least_privilege_for(missing[0]) if missing else None
        found.append(EntraCaller(
            oid, facts.principal_names.get(oid, ""), surfaces, sum(r.calls for r in rows), not missing, names,
            recommended.name if recommended else "",
            assign_command(oid, facts.principal_kinds.get(oid, ""), recommended, facts.account_id)
            if recommended else ""))
    return tuple(found)


def disable_command(account_id: str) -> str:
    return (f"az resource update --ids \"{account_id}\" --set properties.disableLocalAuth=true")


BICEP = "properties: { disableLocalAuth: true }  // on the Microsoft.CognitiveServices/accounts resource"


def rollback_steps(account_id: str, *, blocking: list[PolicyFinding]) -> tuple[str, ...]:
    steps = []
    for finding in blocking:
        steps.append(f"Policy {finding.name} ({finding.effect}) {finding.rollback_effect}. Before re-enabling: "
                     f"{exemption_command(finding, account_id)}")
    steps.append(f"Re-enable local authentication: az resource update --ids \"{account_id}\" "
                 "--set properties.disableLocalAuth=false")
    steps.append("Allow a few minutes for the change to propagate, then retest a key caller.")
    if any(f.effect in ("modify", "deployifnotexists") for f in blocking):
        steps.append("Check the policy's remediation tasks (az policy remediation list) so none reapplies the "
                     "disabled setting after the rollback.")
    return tuple(steps)


def readiness(facts: AccountFacts, *, days: int, now: datetime) -> Readiness:
    reasons: list[Reason] = []
    unchecked: list[str] = []
    if facts.account_error:
        unchecked.append(f"account settings: {facts.account_error}")
    keys: tuple[KeyCaller, ...] = ()
    if facts.activity is None:
        unchecked.append(f"callers: the logs could not be read ({facts.activity_error or 'no answer'})")
    elif not facts.activity:
        unchecked.append(f"callers: no RequestResponse rows for this account in {days} day(s) (is its diagnostic "
                         "setting sending them?): who still uses keys cannot be told")
    else:
        keys = key_callers(facts.activity, account_apps(facts.apps or (), facts.custom_subdomain))
        if keys:
            total = sum(k.calls for k in keys)
            reasons.append(Reason(KEY_CALLERS, True, f"{total} key call(s) in {days} day(s), last at "
                                  f"{max(k.last_seen for k in keys)}: move them to Entra ID first"))
    callers: tuple[EntraCaller, ...] = ()
    if facts.activity:
        if facts.assignments is None:
            unchecked.append(f"role assignments: {facts.assignments_error or 'not read'}")
        else:
            callers = entra_callers(facts, facts.assignments)
            for caller in callers:
                if not caller.covered:
                    reasons.append(Reason(ENTRA_ROLES, True, f"Entra caller {caller.object_id} holds no role covering "
                                          f"{', '.join(caller.surfaces)}: assign {caller.recommended_role}"))
    policies: list[PolicyFinding] = []
    if facts.policies is None or facts.exemptions is None:
        unchecked.append(f"Azure Policy: {facts.policy_error or 'not read'}")
    else:
        policies, unreadable = local_auth_policies(facts.policies, facts.exemptions, now, facts.account_id)
        unchecked += [f"Azure Policy: {line}" for line in unreadable]
        if facts.policy_caveat:  # said, not blocking: the policies that could be read are listed as read
            reasons.append(Reason(POLICY, False, f"Azure Policy {facts.policy_caveat}"))
        for finding in policies:
            if finding.blocks_rollback:
                reasons.append(Reason(POLICY, False, f"policy {finding.name} at {finding.scope} ({finding.effect}) "
                                      f"{finding.rollback_effect}"))
    blocking_policies = [p for p in policies if p.blocks_rollback]
    if facts.disable_local_auth is True:
        verdict = ALREADY_DISABLED  # what would have blocked is still said, for the callers whose keys now fail
        reasons = [Reason(ALREADY, False, "disableLocalAuth is already true: keys are refused"),
                   *(Reason(r.rule, False, r.text) for r in reasons)]
    else:
        reasons += [Reason(UNCHECKED, True, f"could not check {line}") for line in unchecked]
        verdict = NOT_READY if any(r.blocking for r in reasons) else READY
    return Readiness(facts.account_id, verdict, facts.disable_local_auth, days, tuple(reasons), keys, callers,
                     tuple(policies), tuple(unchecked), disable_command(facts.account_id), BICEP,
                     rollback_steps(facts.account_id, blocking=blocking_policies),
                     apps_unread(facts.apps, facts.apps_error, facts.custom_subdomain) if keys else "")
