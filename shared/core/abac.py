"""The ABAC condition on the service's Role Based Access Control Administrator assignments, generated from the policy.

It is Microsoft's documented "Constrain roles and principal types" delegation condition (conditionVersion 2.0):
a role-assignment write is allowed only when the request names one of the policy's grantable roles and an allowed
principal type (`@Request[...]`), and a delete only when the existing assignment does (`@Resource[...]`). Conditions
cannot test the scope, so the assignment itself is made on each account, never on a resource group.

The roles are exactly `roles.GRANTABLE`; the principal types are ServicePrincipal, plus User and Group only when the
policy may grant to them (TRIAGE_ALLOW_USER_GRANTS / TRIAGE_ALLOW_GROUP_GRANTS). `python -m shared abac-condition`
prints it, and the Bicep template takes it as a parameter (a test keeps the two equal).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from shared.core.roles import GRANTABLE

CONDITION_VERSION = "2.0"
ROLE_ASSIGNMENT_WRITE = "Microsoft.Authorization/roleAssignments/write"
ROLE_ASSIGNMENT_DELETE = "Microsoft.Authorization/roleAssignments/delete"
SERVICE_PRINCIPAL, USER, GROUP = "ServicePrincipal", "User", "Group"
PRINCIPAL_TYPES = (SERVICE_PRINCIPAL, USER, GROUP)  # the order they are listed in

_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_ATTRIBUTE = "Microsoft.Authorization/roleAssignments"


def allowed_principal_types(*, allow_user_grants: bool = False, allow_group_grants: bool = False) -> tuple[str, ...]:
    """The principal types the policy may grant to (policy rule `principal_type`)."""
    return tuple(t for t, allowed in ((SERVICE_PRINCIPAL, True), (USER, allow_user_grants),
                                      (GROUP, allow_group_grants)) if allowed)


def _clause(action: str, source: str, role_list: str, type_list: str) -> str:
    return (f"((!(ActionMatches{{'{action}'}})) OR\n"
            f" (@{source}[{_ATTRIBUTE}:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{role_list}}}\n"
            f"  AND @{source}[{_ATTRIBUTE}:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {{{type_list}}}))")


def delegation_condition(role_guids: Iterable[str], principal_types: Iterable[str]) -> str:
    """The condition allowing writes and deletes of assignments of exactly these roles to these principal types.

    GUIDs are lower-cased and sorted, principal types put in a fixed order, so the same policy always gives the
    same text (a deployment compares it character for character)."""
    guids = sorted({g.strip().lower() for g in role_guids})
    bad = [g for g in guids if not _GUID.fullmatch(g)]
    if bad or not guids:
        raise ValueError(f"role definition GUIDs expected, got {bad or 'none'}")
    wanted = set(principal_types)
    unknown = wanted - set(PRINCIPAL_TYPES)
    if unknown or not wanted:
        raise ValueError(f"principal types must be some of {', '.join(PRINCIPAL_TYPES)}; got {sorted(unknown)}")
    role_list = ", ".join(guids)
    type_list = ", ".join(f"'{t}'" for t in PRINCIPAL_TYPES if t in wanted)
    return (_clause(ROLE_ASSIGNMENT_WRITE, "Request", role_list, type_list) + "\nAND\n"
            + _clause(ROLE_ASSIGNMENT_DELETE, "Resource", role_list, type_list))


def policy_condition(*, allow_user_grants: bool = False, allow_group_grants: bool = False) -> str:
    """The condition for the policy's grantable roles and the principal types these settings allow."""
    return delegation_condition(GRANTABLE, allowed_principal_types(allow_user_grants=allow_user_grants,
                                                                   allow_group_grants=allow_group_grants))
