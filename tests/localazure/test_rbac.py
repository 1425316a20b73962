"""Properties of the stand-in's RBAC semantics, checked in-process against independent formulations."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localazure import abac, rbac
from localazure.clock import Clock
from localazure.roles import BUILT_IN, ROLE_ASSIGNMENT_DELETE, ROLE_ASSIGNMENT_WRITE, permission_matches, resolve
from localazure.state import Assignment, Principal, State

# A scope tree as (level, branch) nodes: 0 subscription, 1 resource group, 2 account, 3 project.
# Branch b of level n hangs under branch b // 2 of level n - 1, so ancestry is pure arithmetic.
SUB = "/subscriptions/s1"


def scope_of(level: int, branch: int) -> str:
    parts = [SUB]
    chain = [branch >> (level - n) for n in range(1, level + 1)]
    names = ["resourceGroups/rg{}", "providers/Microsoft.CognitiveServices/accounts/a{}", "projects/p{}"]
    for n, b in enumerate(chain):
        parts.append(names[n].format(b))
    return "/".join(parts)


def is_ancestor_or_self(a: tuple[int, int], b: tuple[int, int]) -> bool:
    (la, ba), (lb, bb) = a, b
    return la <= lb and (bb >> (lb - la)) == ba


nodes = st.integers(0, 3).flatmap(lambda level: st.tuples(st.just(level), st.integers(0, 2 ** level - 1)))
holders = st.sampled_from(["alice", "bob", "devs"])


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(holders, nodes), max_size=12),
    nodes,
    st.sampled_from(["none", "atScope", "principal", "atScope+principal", "assignedTo"]),
)
def test_list_filters_match_the_scope_tree(assignments, query_node, form):
    state = State(clock=Clock.frozen("2025-01-01T00:00:00Z"))
    state.put_principal(Principal("devs", type="Group"))
    state.put_principal(Principal("alice", type="User", groups={"devs": state.clock.now()}))
    state.put_principal(Principal("bob", type="User"))
    now = state.clock.now()
    for i, (holder, node) in enumerate(assignments):
        state.put_assignment(Assignment(f"n{i}", scope_of(*node), BUILT_IN[0].guid, holder, "User", now, now))
    flt = {
        "none": "",
        "atScope": "atScope()",
        "principal": "principalId eq 'alice'",
        "atScope+principal": "atScope() and principalId eq 'alice'",
        "assignedTo": "assignedTo('alice')",
    }[form]
    got = {a.name for a in rbac.list_assignments(state, scope_of(*query_node), rbac.parse_filter(flt))}

    expected = set()
    for i, (holder, node) in enumerate(assignments):
        above = is_ancestor_or_self(node, query_node)
        below = is_ancestor_or_self(query_node, node) and node != query_node
        in_scope = above if "atScope" in form else (above or below)
        who = {"none": True, "atScope": True, "assignedTo": holder in ("alice", "devs")}.get(form, holder == "alice")
        if in_scope and who:
            expected.add(f"n{i}")
    assert got == expected


@pytest.mark.parametrize("bad", ["principalId eq alice", "roleDefinitionId eq 'x'", "atScope() or atScope()",
                                 "principalId eq 'a' and assignedTo('a')", "atScope() and atScope()"])
def test_unsupported_filters_are_refused(bad):
    with pytest.raises(rbac.FilterError):
        rbac.parse_filter(bad)


ALLOWED = {"5e0bd9bd-7b93-4f28-af87-19fc36ad61bd", "53ca6127-db72-4b80-b1b0-d745d6d5456d"}
CONDITION = (
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
    "(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
    "{5e0bd9bd-7b93-4f28-af87-19fc36ad61bd, 53ca6127-db72-4b80-b1b0-d745d6d5456d} AND "
    "@Request[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase "
    "{'ServicePrincipal'})) AND ((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR "
    "(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
    "{5e0bd9bd-7b93-4f28-af87-19fc36ad61bd, 53ca6127-db72-4b80-b1b0-d745d6d5456d} AND "
    "@Resource[Microsoft.Authorization/roleAssignments:PrincipalType] ForAnyOfAnyValues:StringEqualsIgnoreCase "
    "{'ServicePrincipal'}))"
)


@settings(max_examples=150, deadline=None)
@given(
    st.sampled_from([r.guid for r in BUILT_IN]),
    st.sampled_from(["ServicePrincipal", "serviceprincipal", "User", "Group"]),
    st.sampled_from([ROLE_ASSIGNMENT_WRITE, ROLE_ASSIGNMENT_DELETE, "Microsoft.Authorization/roleAssignments/read"]),
    st.booleans(),
)
def test_delegation_condition_allows_exactly_the_listed_roles_for_service_principals(role, ptype, action, full_id):
    value = f"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{role}" if full_id else role
    attrs = {"roledefinitionid": value, "principaltype": ptype}
    ctx = abac.Context(action, attrs if action == ROLE_ASSIGNMENT_WRITE else {},
                       attrs if action == ROLE_ASSIGNMENT_DELETE else {})
    expected = action.endswith("read") or (role in ALLOWED and ptype.lower() == "serviceprincipal")
    assert abac.evaluate(CONDITION, ctx) is expected


@pytest.mark.parametrize("text", ["@Request[x] Frobnicate {'a'}", "((ActionMatches{'x'})", "AND", "@Request[x]"])
def test_unreadable_conditions_raise(text):
    assert not abac.is_readable(text)


def test_wildcards_in_permissions_span_segments_and_ignore_case():
    assert permission_matches("Microsoft.CognitiveServices/*", "microsoft.cognitiveservices/accounts/MaaS/chat/x")
    assert permission_matches("*/read", "Microsoft.Authorization/roleAssignments/read")
    assert not permission_matches("Microsoft.CognitiveServices/accounts/OpenAI/*",
                                  "Microsoft.CognitiveServices/accounts/MaaS/chat/completions/action")
    contributor = resolve("Contributor")
    assert contributor.allows_action("Microsoft.CognitiveServices/accounts/write")
    assert not contributor.allows_action(ROLE_ASSIGNMENT_WRITE)
    openai_user = resolve("cognitive services openai user")
    assert not openai_user.allows_data_action("Microsoft.CognitiveServices/accounts/OpenAI/stored-completions/read")
    assert openai_user.allows_data_action("Microsoft.CognitiveServices/accounts/OpenAI/models/read")
    assert resolve("Azure AI User") is resolve("53ca6127-db72-4b80-b1b0-d745d6d5456d")
