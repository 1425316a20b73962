"""ABAC conditions on role-assignment writes and deletes, in the documented "constrain roles and principal types"
form (role-based-access-control/delegate-role-assignments-examples.md), as test data for the self-check.

The service's own generator (`python -m shared abac-condition`) is the reference for deployments; this builder only
lets a test state the condition an assignment carries.
"""

from __future__ import annotations

from collections.abc import Iterable

_ATTR = "Microsoft.Authorization/roleAssignments"


def constrain_roles_condition(role_guids: Iterable[str], principal_types: Iterable[str] = ("ServicePrincipal",),
                              *, actions: Iterable[str] = ("write", "delete")) -> str:
    guids = ", ".join(sorted(role_guids))
    types = ", ".join(f"'{t}'" for t in principal_types)
    parts = []
    for action in actions:
        source = "@Request" if action == "write" else "@Resource"
        parts.append(
            f"((!(ActionMatches{{'{_ATTR}/{action}'}})) OR "
            f"({source}[{_ATTR}:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals {{{guids}}} AND "
            f"{source}[{_ATTR}:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase {{{types}}}))")
    return " AND ".join(parts)
