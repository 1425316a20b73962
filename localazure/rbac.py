"""RBAC semantics over the stand-in state: list filters with inheritance, effective data-plane grants with
propagation and group caching, and authorization of role-assignment writes (own-identity limits + ABAC)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from localazure import abac, scopes
from localazure.roles import ROLE_ASSIGNMENT_DELETE, ROLE_ASSIGNMENT_WRITE, RoleDefinition
from localazure.state import Assignment, Principal, State


class FilterError(ValueError):
    pass


@dataclass(frozen=True)
class ListFilter:
    at_scope: bool = False
    principal_id: str | None = None
    assigned_to: str | None = None


_CLAUSES = (
    (re.compile(r"atScope\(\)", re.IGNORECASE), "at_scope"),
    (re.compile(r"principalId\s+eq\s+'([^']+)'", re.IGNORECASE), "principal_id"),
    (re.compile(r"assignedTo\('([^']+)'\)", re.IGNORECASE), "assigned_to"),
)


def parse_filter(expression: str | None) -> ListFilter:
    """The `$filter` forms the role assignments list accepts: atScope(), principalId eq '…', assignedTo('…'),
    combined with `and`."""
    if not expression or not expression.strip():
        return ListFilter()
    found: dict[str, object] = {}
    for clause in re.split(r"\s+and\s+", expression.strip(), flags=re.IGNORECASE):
        for pattern, key in _CLAUSES:
            m = pattern.fullmatch(clause.strip())
            if m:
                if key in found:
                    raise FilterError(expression)
                found[key] = True if key == "at_scope" else m.group(1).lower()
                break
        else:
            raise FilterError(expression)
    if "principal_id" in found and "assigned_to" in found:
        raise FilterError(expression)
    return ListFilter(**found)  # type: ignore[arg-type]


def group_ids(state: State, principal_id: str) -> set[str]:
    principal = state.principal(principal_id)
    return {g.lower() for g in principal.groups} if principal else set()


def list_assignments(state: State, scope: str, flt: ListFilter) -> list[Assignment]:
    """At or above the scope, plus below it unless atScope(); then narrowed to the principal (or, for
    assignedTo, the principal and its groups). Stable order, so paging is deterministic."""
    who: set[str] | None = None
    if flt.principal_id:
        who = {flt.principal_id}
    elif flt.assigned_to:
        who = {flt.assigned_to} | group_ids(state, flt.assigned_to)
    out = []
    for a in state.all_assignments():
        related = scopes.is_at_or_above(a.scope, scope) or (not flt.at_scope and scopes.is_below(a.scope, scope))
        if related and (who is None or a.principal_id.lower() in who):
            out.append(a)
    return sorted(out, key=lambda a: (a.created_on, a.name))


# ---------------------------------------------------------------- data-plane grants


@dataclass(frozen=True)
class Grant:
    assignment: Assignment
    role: RoleDefinition
    via_group: str | None  # the group object id when held through a group
    effective_at: datetime  # when the data plane starts honouring it


def grants(state: State, principal: Principal, scope: str) -> list[Grant]:
    """Every assignment at or above `scope` held by the principal directly or through one of its groups."""
    propagation = timedelta(seconds=state.settings.propagation_seconds)
    group_cache = timedelta(seconds=state.settings.group_cache_seconds)
    memberships = {g.lower(): since for g, since in principal.groups.items()}
    out = []
    for a in state.all_assignments():
        role = state.role(a.role_guid)
        if role is None or not scopes.is_at_or_above(a.scope, scope):
            continue
        holder = a.principal_id.lower()
        if holder == principal.object_id.lower():
            out.append(Grant(a, role, None, a.created_on + propagation))
        elif holder in memberships:
            since = memberships[holder]
            if principal.managed_identity:
                # Managed identity tokens cache group membership ~24 h: a group change lands only after that.
                effective = max(a.created_on, since) + group_cache
            else:
                effective = max(a.created_on, since) + propagation
            out.append(Grant(a, role, holder, effective))
    return out


# ---------------------------------------------------------------- control-plane authorization


def _condition_holds(condition: str | None, ctx: abac.Context) -> bool:
    if not condition:
        return True
    try:
        return abac.evaluate(condition, ctx)
    except abac.ConditionError:
        return False  # an unreadable condition never grants


def authorize(
    state: State,
    caller_id: str,
    action: str,
    scope: str,
    request_attrs: dict[str, str],
    resource_attrs: dict[str, str],
) -> bool:
    """May `caller_id` perform a roleAssignments write/delete at `scope`?

    The own identity is limited by its settings (like an ABAC condition on its delegation). Any caller
    with `use_assignments` (and every other known principal) also needs a role that grants the action at
    or above the scope, whose own condition holds.
    """
    own = state.settings.own_identity
    ctx = abac.Context(action=action, request=request_attrs, resource=resource_attrs)
    is_own = caller_id.lower() == own.principal_id.lower()
    if is_own:
        if action == ROLE_ASSIGNMENT_WRITE and not own.can_write:
            return False
        if action == ROLE_ASSIGNMENT_DELETE and not own.can_delete:
            return False
        attrs = request_attrs if action == ROLE_ASSIGNMENT_WRITE else resource_attrs
        if own.allowed_roles is not None and attrs.get("roledefinitionid", "").lower() not in own.allowed_roles:
            return False
        if own.allowed_principal_types is not None and (
            attrs.get("principaltype", "").lower() not in own.allowed_principal_types
        ):
            return False
        if own.allowed_principals is not None and attrs.get("principalid", "").lower() not in own.allowed_principals:
            return False
        if not own.use_assignments:
            return True
    principal = state.principal(caller_id)
    if principal is None:
        return False
    for grant in grants(state, principal, scope):
        if grant.role.allows_action(action) and _condition_holds(grant.assignment.condition, ctx):
            return True
    return False


def assignment_attrs(role_guid: str, principal_id: str, principal_type: str) -> dict[str, str]:
    return {"roledefinitionid": role_guid.lower(), "principalid": principal_id.lower(), "principaltype": principal_type}
