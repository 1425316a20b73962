"""The least-privilege review of every role assignment that covers an AI account (docs/reviews.md, rules A1-A6).

Each finding names the principal, role and scope, whether the principal calls the account (from the logs), and the
recommended change as exact commands. A removal is always a recommendation for a person: the service never removes
a role it did not create, and a review writes nothing at all.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.core import roles
from shared.core.resource_ids import enclosing_account, normalize_scope
from shared.core.reviews.model import AccessFinding, AccessReview, AccountFacts, HeldAssignment
from shared.core.reviews.readiness import assign_command, held_by, role_for, surfaces_called
from shared.core.surfaces import MODELS, OPENAI, PROJECT, SURFACES

CONTROL_PLANE_FOR_INFERENCE = "A1-control-plane-role-for-inference"
AI_DEVELOPER_ON_FOUNDRY = "A2-azure-ai-developer-on-foundry"
BROAD_SCOPE = "A3-data-role-at-broad-scope"
GROUP_ONLY_IDENTITY = "A4-identity-role-only-through-group"
UNUSED = "A5-unused-data-role"
PRE_UPGRADE_CS_USER = "A6-pre-upgrade-cognitive-services-user"
PRE_UPGRADE_WILDCARD = "A6-pre-upgrade-wildcard-custom-role"
RULES = (CONTROL_PLANE_FOR_INFERENCE, AI_DEVELOPER_ON_FOUNDRY, BROAD_SCOPE, GROUP_ONLY_IDENTITY, UNUSED,
         PRE_UPGRADE_CS_USER, PRE_UPGRADE_WILDCARD)

# "Avoid assigning Owner, Contributor, Foundry Owner, or Foundry Account Owner for routine inference or development";
# Cognitive Services Contributor "by itself, can't make Microsoft Entra-authenticated inference API calls".
CONTROL_PLANE_ROLES = frozenset({
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",  # Owner
    "b24988ac-6180-42a0-ab88-20f7382dd24c",  # Contributor
    "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68",  # Cognitive Services Contributor
    "c883944f-8b7b-4483-af10-35834be79c4a",  # Foundry Owner
    "e47c6f54-e4a2-4754-9501-8e0985b135e1",  # Foundry Account Owner
})
AZURE_AI_DEVELOPER = "64702f94-c441-49e6-a78b-ef80e0188fee"
# What a classic account's roles gain after an upgrade to Foundry: the project surface and Foundry Models.
_UPGRADE_WIDENS = (SURFACES[PROJECT].data_action, SURFACES[MODELS].data_action)


def scope_level(scope: str) -> str:
    """project | account | resource group | subscription | management group | root | resource."""
    normalized = normalize_scope(scope)
    parts = normalized.strip("/").split("/") if normalized != "/" else []
    if not parts:
        return "root"
    if parts[:3] == ["providers", "microsoft.management", "managementgroups"]:
        return "management group"
    if parts[0] == "subscriptions" and len(parts) == 2:
        return "subscription"
    if parts[0] == "subscriptions" and len(parts) == 4 and parts[2] == "resourcegroups":
        return "resource group"
    account = enclosing_account(scope)
    if account is not None:
        return "project" if "/projects/" in normalized else "account"
    return "resource"


_BROAD = frozenset({"resource group", "subscription", "management group", "root"})


def _create(principal: str, principal_type: str, role: roles.Role, scope: str) -> str:
    return assign_command(principal, principal_type, role, scope)


def _remove(assignment: HeldAssignment) -> str:
    return f"az role assignment delete --ids \"{assignment.assignment_id}\"  # for a person to run, after review"


def _covers_ai(role: roles.Role | None) -> bool:
    return role is not None and bool(role.data_surfaces)


def _callers(facts: AccountFacts) -> dict[str, list]:
    found: dict[str, list] = {}
    for row in facts.activity or ():
        if row.object_id:
            found.setdefault(row.object_id.lower(), []).append(row)
    return found


def access_review(facts: AccountFacts, *, days: int, pre_upgrade: bool = False) -> AccessReview:
    unchecked: list[str] = []
    if facts.assignments is None:
        return AccessReview(facts.account_id, (), (f"role assignments: {facts.assignments_error or 'not read'}",),
                            pre_upgrade)
    logs_read = bool(facts.activity)
    if facts.activity is None:
        unchecked.append(f"callers: the logs could not be read ({facts.activity_error or 'no answer'}); whether a "
                         "principal calls the account, and unused assignments, are not known")
    elif not facts.activity:
        unchecked.append(f"callers: no RequestResponse rows for this account in {days} day(s); whether a principal "
                         "calls the account, and unused assignments, are not known")
    callers = _callers(facts)
    account = facts.account_id
    findings: list[AccessFinding] = []

    def calls(principal: str) -> bool | None:
        return (principal.lower() in callers) if logs_read else None

    def finding(rule: str, a: HeldAssignment, principal: str, text: str, recommendation: str,
                commands: Iterable[str]) -> None:
        findings.append(AccessFinding(account, rule, principal, facts.principal_names.get(principal.lower(), ""),
                                      role_name_of(a), a.scope, calls(principal), text, recommendation,
                                      tuple(commands)))

    def role_name_of(a: HeldAssignment) -> str:
        role = role_for(a.role_guid, facts.definitions)
        return role.name if role else roles.guid_of(a.role_guid)

    direct = [a for a in facts.assignments if not a.via_group_of]  # at, above and below (projects) the account
    for a in direct:
        role = role_for(a.role_guid, facts.definitions)
        guid = roles.guid_of(a.role_guid)
        level = scope_level(a.scope)
        principal = a.principal_id.lower()
        if guid in CONTROL_PLANE_ROLES and principal in callers:
            surfaces = surfaces_called(callers[principal])
            data_role = roles.least_privilege_for(surfaces[0] if surfaces else OPENAI)
            finding(CONTROL_PLANE_FOR_INFERENCE, a, principal,
                    f"{role_name_of(a)} is a control-plane role; this principal's only use of the account in the logs "
                    f"is inference ({', '.join(surfaces)})",
                    f"assign {data_role.name} at the account, then remove {role_name_of(a)} (control-plane use is "
                    "not in these logs: confirm before removing)",
                    (_create(principal, a.principal_type, data_role, account), _remove(a)))
        if guid == AZURE_AI_DEVELOPER and ((facts.kind or "").lower() == "aiservices" or level == "project"):
            target = a.scope if level in ("account", "project") else account
            finding(AI_DEVELOPER_ON_FOUNDRY, a, principal,
                    "Azure AI Developer applies to Azure Machine Learning workspaces and Foundry hubs, not Foundry "
                    "projects or resources",
                    "assign Foundry User instead, then remove Azure AI Developer",
                    (_create(principal, a.principal_type, roles.FOUNDRY_USER, target), _remove(a)))
        if _covers_ai(role) and level in _BROAD and role is not None:
            finding(BROAD_SCOPE, a, principal,
                    f"a data role assigned at {level} scope is inherited by every account below it",
                    f"assign {role.name} at the account (or its project) instead, then remove the {level} assignment",
                    (_create(principal, a.principal_type, role, account), _remove(a)))
        if (_covers_ai(role) and logs_read and a.principal_type.lower() in ("user", "serviceprincipal")
                and principal not in callers):
            finding(UNUSED, a, principal, f"no call from this principal to the account in {days} day(s)",
                    "review whether the assignment is still needed (report only)", ())
        if pre_upgrade and (facts.kind or "").lower() == "openai":
            if guid == roles.COGNITIVE_SERVICES_USER.guid:
                finding(PRE_UPGRADE_CS_USER, a, principal,
                        "after an upgrade to Foundry, Cognitive Services User grants access to every Foundry feature",
                        "for OpenAI features assign Cognitive Services OpenAI User before the upgrade, then remove "
                        "Cognitive Services User",
                        (_create(principal, a.principal_type, roles.COGNITIVE_SERVICES_OPENAI_USER, account),
                         _remove(a)))
            elif (role is not None and not role.built_in and any("*" in d for d in role.data_actions)
                  and any(role.covers(action) for action in _UPGRADE_WIDENS)):
                finding(PRE_UPGRADE_WILDCARD, a, principal,
                        f"custom role {role.name} has wildcard data actions ({', '.join(role.data_actions)}) that "
                        "reach Foundry features after an upgrade",
                        "replace the wildcard with the explicit OpenAI data actions before the upgrade", ())

    for oid, rows in sorted(callers.items()):
        held = [(a, role_for(a.role_guid, facts.definitions)) for a in held_by(oid, account, facts.assignments)]
        needed = [SURFACES[s].data_action for s in surfaces_called(rows)]
        covering_roles = [(a, role) for a, role in held if role is not None and any(role.covers(d) for d in needed)]
        kind = facts.principal_kinds.get(oid, "")
        if covering_roles and all(a.via_group_of for a, _ in covering_roles) and kind.lower() != "user":
            a, role = covering_roles[0]
            findings.append(AccessFinding(
                account, GROUP_ONLY_IDENTITY, oid, facts.principal_names.get(oid, ""), role.name if role else "",
                a.scope, True,
                f"this caller ({kind or 'type unknown to ARM'}) holds {role.name if role else 'its role'} only "
                f"through group {a.principal_id}: managed identity tokens cache group membership for about 24 hours",
                f"assign {role.name if role else 'the role'} directly to the identity at the account",
                (_create(oid, kind, role, account),) if role else ()))
    return AccessReview(account, tuple(findings), tuple(unchecked), pre_upgrade)
