"""Evidence through Resource Graph (TRIAGE_RESOURCE_GRAPH): the same evidence as the per-principal ARM reads, in a
few queries, and ARM wherever Resource Graph cannot answer for sure. Real SDK clients against the stand-in."""

from __future__ import annotations

import pytest

from shared.adapters.resource_graph import (
    NAME_MAX,
    ResourceGraphReader,
    accounts_query,
    assignments_query,
    display_name,
    identities_query,
)
from shared.core import roles
from tests.adapters.test_evidence import GROUP, P1, P2, make_clients

pytestmark = pytest.mark.slow

OPENAI_USER = roles.COGNITIVE_SERVICES_OPENAI_USER.guid
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
GRAPH = "resourceGraph.resources"


@pytest.fixture
def az(local_azure_factory):
    az = local_azure_factory(None)
    az.add_principal(P1, type="ServicePrincipal")
    az.add_principal(P2, type="User", groups=[GROUP])
    az.add_principal(GROUP, type="Group")
    return az


def _arm_reads(az) -> int:
    return az.calls.count(service="arm", kind="read") - az.calls.count(service="arm", route=GRAPH)


def _world(az, principals: int = 30, accounts: int = 6):
    ids = [az.add_account(f"acct-{n}", kind="AIServices" if n % 2 else "OpenAI", disable_local_auth=n % 3 == 0,
                          default_action="Deny" if n % 2 else "Allow") for n in range(accounts)]
    oids = [az.add_principal().object_id for _ in range(principals)]
    for n, oid in enumerate(oids):
        if n % 3 == 0:
            az.add_assignment(oid, OPENAI_USER, ids[n % accounts])
        if n % 5 == 0:
            az.add_assignment(oid, CONTRIBUTOR, f"/subscriptions/{az.subscription_id}")
    pairs = {(oid, ids[n % accounts]) for n, oid in enumerate(oids)} | {(None, ids[0])}
    return ids, oids, pairs


def _same_evidence(graph_evidence, arm_evidence):
    assert graph_evidence.keys() == arm_evidence.keys()
    for pair, expected in arm_evidence.items():
        got = graph_evidence[pair]
        assert got.failed == expected.failed == ()
        assert got.resource == expected.resource, pair
        assert got.principal_type == expected.principal_type
        key = lambda found: sorted((a.role_definition_id, a.scope.lower(), a.via_group) for a in found or ())  # noqa: E731
        assert (got.assignments is None) == (expected.assignments is None)
        assert key(got.assignments) == key(expected.assignments), pair


def test_a_batch_reads_resource_graph_not_arm_and_finds_the_same(az):
    ids, oids, pairs = _world(az)
    arm = make_clients(az).evidence.gather_evidence(pairs)
    arm_reads = _arm_reads(az)
    assert arm_reads == len(oids) + len(ids)
    az.calls.reset()
    clients = make_clients(az, resource_graph=True)
    graph = clients.evidence.gather_evidence(pairs)
    _same_evidence(graph, arm)
    assert _arm_reads(az) == 0
    # accounts, assignments, and the managed identities among the principals (their display names)
    assert az.calls.count(service="arm", route=GRAPH) == clients.resource_graph.queries == 3
    assert clients.evidence.graph_fallbacks == [] and clients.evidence.failures() == ()


def test_queries_are_chunked_and_paged(az):
    ids, oids, pairs = _world(az, principals=12, accounts=3)
    clients = make_clients(az, resource_graph=True)
    reader = ResourceGraphReader(clients.resource_graph.client, chunk=5)
    found = reader.assignments(oids, [az.subscription_id])
    assert reader.queries == 3  # 12 principals, 5 a query
    assert sum(len(v) for v in found.direct.values()) == len(az.assignments())
    assert set(reader.accounts(ids, [az.subscription_id])) == {i.lower() for i in ids}


def test_an_account_a_group_holds_a_role_on_is_read_through_arm(az):
    a = az.add_account("acct-a")
    b = az.add_account("acct-b")
    az.add_assignment(GROUP, OPENAI_USER, b)  # P2 holds it through the group: not visible in Resource Graph
    az.add_assignment(P1, OPENAI_USER, a)
    clients = make_clients(az, resource_graph=True)
    evidence = clients.evidence.gather_evidence({(P1, a), (P2, b)})
    assert [x.via_group for x in evidence[(P2, b)].assignments] == [True]
    assert [x.role_definition_id for x in evidence[(P1, a)].assignments] == [OPENAI_USER]
    assert az.calls.count(service="arm", route="roleAssignments.list") == 1  # P2's, with assignedTo()
    assert az.calls.count(service="arm", route="accounts.get") == 0


def test_resource_graph_unreadable_falls_back_to_arm_and_says_why(az):
    ids, oids, pairs = _world(az, principals=6, accounts=2)
    az.faults.add("arm", route=GRAPH, status=403, times=None)
    clients = make_clients(az, {"retry_total": 0}, resource_graph=True)
    evidence = clients.evidence.gather_evidence(pairs)
    assert all(e.complete for e in evidence.values())
    assert clients.evidence.failures() == ()  # ARM answered: not an evidence error
    assert len(clients.evidence.graph_fallbacks) == 1 and "403" in clients.evidence.graph_fallbacks[0]
    assert _arm_reads(az) == len(oids) + len(ids)


def test_an_account_resource_graph_does_not_return_is_read_from_arm(az):
    ids, oids, pairs = _world(az, principals=4, accounts=2)
    gone = f"/subscriptions/{az.subscription_id}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/gone"
    clients = make_clients(az, resource_graph=True)
    evidence = clients.evidence.gather_evidence(pairs | {(oids[0], gone)})
    assert evidence[(oids[0], gone)].resource is None and evidence[(oids[0], gone)].complete
    assert az.calls.count(service="arm", route="accounts.get") == 1
    # The principal asked about the missing account is listed through ARM; the others are not.
    assert az.calls.count(service="arm", route="roleAssignments.list") == 1
    assert "did not return 1 account" in clients.evidence.graph_fallbacks[0]


def test_a_single_pair_reads_arm(az):
    a = az.add_account("acct-a")
    az.add_assignment(P1, OPENAI_USER, a)
    clients = make_clients(az, resource_graph=True)
    evidence = clients.evidence.gather_evidence({(P1, a)})
    assert [x.role_definition_id for x in evidence[(P1, a)].assignments] == [OPENAI_USER]
    # ARM for the evidence (Resource Graph lags); Resource Graph only for the caller's display name
    assert az.calls.count(service="arm", route=GRAPH) == 1 and _arm_reads(az) == 2


def test_queries_quote_safely():
    assert "'abc'" in assignments_query(["abc"]) and "o'brien" not in accounts_query(["/x/o'brien"])


UAMI_OID = "5b1d0c2e-7a3f-4e61-9d2a-000000000a01"
SITE_OID = "5b1d0c2e-7a3f-4e61-9d2a-000000000a02"


def _identities(az):
    az.add_managed_identity("orders-identity", UAMI_OID)
    az.add_managed_identity("orders-api", SITE_OID, resource_group="rg-apps", resource_type="Microsoft.Web/sites")


def test_managed_identities_are_named_by_their_resources_in_one_query_per_chunk(az):
    _identities(az)
    clients = make_clients(az, resource_graph=True)
    reader = ResourceGraphReader(clients.resource_graph.client, chunk=2)
    names = reader.principal_names([UAMI_OID.upper(), SITE_OID, P1, "not-a-guid"], [az.subscription_id])
    assert names == {UAMI_OID: "orders-identity", SITE_OID: "orders-api"}  # P1 has no managed-identity resource
    assert reader.queries == 2  # 3 object ids, 2 a query


def test_a_batch_carries_the_identities_names_in_its_evidence_and_asks_once_per_process(az):
    _identities(az)
    a = az.add_account("acct-a")
    pairs = {(UAMI_OID, a), (SITE_OID, a), (P1, a)}
    clients = make_clients(az, resource_graph=True)
    evidence = clients.evidence.gather_evidence(pairs)
    assert {oid: evidence[(oid, a)].principal_name for oid, _ in pairs} == {
        UAMI_OID: "orders-identity", SITE_OID: "orders-api", P1: None}
    assert clients.resource_graph.queries == 3
    clients.evidence.gather_evidence(pairs)  # same run: names known, P1 known to have none
    assert clients.resource_graph.queries == 5
    clients.new_run()
    clients.evidence.gather_evidence(pairs)  # next run: only P1 is asked again (a new identity may lag)
    assert clients.resource_graph.queries == 8
    assert evidence == clients.evidence.gather_evidence(pairs)


def test_a_failed_names_query_leaves_object_ids_and_reads_no_arm(az):
    _identities(az)
    a = az.add_account("acct-a")
    clients = make_clients(az, resource_graph=True)

    def denied(*_args):
        raise PermissionError("403 AuthorizationFailed")

    clients.resource_graph.principal_names = denied
    evidence = clients.evidence.gather_evidence({(UAMI_OID, a), (SITE_OID, a)})
    assert [e.principal_name for e in evidence.values()] == [None, None]
    assert all(e.complete for e in evidence.values()) and clients.evidence.graph_fallbacks == []
    assert _arm_reads(az) == 0


def test_without_resource_graph_names_cost_no_arm_call(az):
    _identities(az)
    a = az.add_account("acct-a")
    clients = make_clients(az)
    evidence = clients.evidence.gather_evidence({(UAMI_OID, a), (SITE_OID, a)})
    assert [e.principal_name for e in evidence.values()] == [None, None]
    assert _arm_reads(az) == 3  # two assignments lists and the account: as before


def test_names_query_quotes_safely_and_names_are_one_bounded_line():
    assert "o'brien" not in identities_query(["o'brien"])
    assert display_name("a\nb\tc  d") == "a b c d"
    assert display_name("x" * 500) == "x" * NAME_MAX
    assert display_name("  ") is None and display_name(None) is None
    # A user-like name never reaches the evidence: the diagnosis compares the caller's name with a user an error names.
    assert display_name("dana@contoso.example") is None
