"""Revocations are keyed by what was revoked (issue 13, item 2): no later incident, cause or project of the same
account re-grants a revoked (principal, role, scope) until an engineer lifts it, with an audit record. And decisions
are per scope (item 4): a refusal on one project never blocks a grant on another project or on the account."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.core import incidents as inc
from shared.engine.approvals import ActionRefused, NotFound, revocations, revoke, unrevoke
from shared.engine.queries import incident_detail
from shared.engine.scan import run_scan
from tests.engine.common import ACCOUNT, ALICE, OPERATOR, ORDERS, incident_of

PROJECTS_ROUTE = "/api/projects/{}/assistants"


@pytest.fixture
def granted_and_revoked(make_runtime, traffic, store, evidence, roles):
    """An enforce-mode runtime, ORDERS granted OpenAI User at the account, then revoked by ALICE."""
    rt = make_runtime(mode="enforce", allowlist=[ORDERS], TRIAGE_INCIDENT_COOLDOWN_MINUTES="0")
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    incident = incident_of(store, ORDERS)
    revoke(rt, incident.id, ALICE)
    assert evidence.of(ORDERS) == [] and len(roles.grants) == 1
    return rt, incident


def test_a_revocation_is_recorded_by_what_was_revoked_and_listed(granted_and_revoked, store):
    rt, incident = granted_and_revoked
    [revoked] = revocations(rt)
    assert (revoked.principal_id, revoked.role_name, revoked.scope.lower(), revoked.by) == (
        ORDERS, "Cognitive Services OpenAI User", ACCOUNT.lower(), ALICE)
    assert revoked.incident_id == incident.id
    assert incident_detail(rt, incident.id)["revocations"][0]["id"] == revoked.id
    [record] = [a for a in store.list_audit(incident.id) if a.kind == "revoke"]
    assert record.inputs["revocation"]["id"] == revoked.id


def test_a_changed_cause_does_not_re_grant_a_revoked_role(granted_and_revoked, traffic, store, evidence, roles,
                                                          clock):
    rt, incident = granted_and_revoked
    evidence.assign(ORDERS, "Reader", ACCOUNT)  # someone gives the caller Reader: the cause changes
    clock.advance(hours=2)
    traffic(3, failing=[ORDERS])
    run_scan(rt)
    again = incident_of(store, ORDERS)
    assert again.cause == "control_plane_role_only" and again.status == inc.TICKETED
    assert "revoked" in again.actions[-1].rules
    assert len(roles.grants) == 1


def test_a_project_of_the_revoked_account_is_not_granted_either(granted_and_revoked, traffic, source, store,
                                                                roles, evidence, clock):
    rt, _ = granted_and_revoked
    evidence.add_account(ACCOUNT, kind="AIServices")
    clock.advance(hours=2)
    source.fail(ORDERS, ACCOUNT, count=2, route=PROJECTS_ROUTE.format("p1"), operation=None, message=None)
    clock.advance(minutes=1)
    run_scan(rt)
    [project] = [i for i in store.list_incidents() if i.fingerprint.split("|")[1].endswith("/projects/p1")]
    assert project.status == inc.TICKETED and "revoked" in project.actions[-1].rules
    assert len(roles.grants) == 1


def test_lifting_a_revocation_is_audited_and_the_next_failure_is_granted(granted_and_revoked, traffic, store, roles,
                                                                         clock):
    rt, incident = granted_and_revoked
    [revoked] = revocations(rt)
    with pytest.raises(ActionRefused, match="reason"):
        unrevoke(rt, revoked.id, OPERATOR, " ")
    with pytest.raises(NotFound):
        unrevoke(rt, "rev-000000000000", OPERATOR, "typo")

    lifted = unrevoke(rt, revoked.id, OPERATOR, "the migration is over")
    assert lifted == revoked and revocations(rt) == []
    global_records = [a for a in store.list_audit() if a.kind == "unrevoke" and a.incident_id is None]
    assert global_records[0].actor == OPERATOR and global_records[0].inputs["reason"] == "the migration is over"
    assert incident_of(store, ORDERS).actions[-1].kind == "unrevoked"

    clock.advance(hours=2)
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    assert len(roles.grants) == 2 and incident_of(store, ORDERS).status == inc.VERIFYING


def test_a_revocation_made_while_a_run_is_under_way_is_honoured(make_runtime, traffic, store, roles):
    from shared.engine.runtime import new_correlation_id
    from shared.engine.signals import handle_signal
    from shared.engine.unit_of_work import RunState

    rt = make_runtime(mode="enforce", allowlist=[ORDERS], TRIAGE_INCIDENT_COOLDOWN_MINUTES="0")
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    run = RunState.begin(rt, new_correlation_id())  # a run begins, and reads no revocation
    revoke(rt, incident_of(store, ORDERS).id, ALICE)
    traffic(2, failing=[ORDERS])
    [batch] = [s.read(rt.clock() - timedelta(minutes=3), rt.clock()) for s in rt.sources]
    for signal in batch.signals:
        handle_signal(rt, run, signal, rt.evidence.gather_evidence({(ORDERS, signal.resource_id)}).get(
            (ORDERS, signal.resource_id)))
    assert len(roles.grants) == 1


def test_a_refusal_on_one_project_does_not_block_another_project_or_the_account(make_runtime, source, clock, store,
                                                                                roles, evidence):
    evidence.add_account(ACCOUNT, kind="AIServices")
    p2 = f"{ACCOUNT}/projects/p2"
    rt = make_runtime(mode="enforce", allowlist=[{"object_id": ORDERS, "scopes": [p2, ACCOUNT]}])
    suppressed_p1 = f"{ACCOUNT}/projects/p1"
    from shared.engine.approvals import suppress

    suppress(rt, suppressed_p1, timedelta(days=1), "p1 is being rebuilt", OPERATOR)
    source.fail(ORDERS, ACCOUNT, count=2, route=PROJECTS_ROUTE.format("p1"), operation=None, message=None)
    clock.advance(minutes=1)
    run_scan(rt)
    assert roles.grants == []

    source.fail(ORDERS, ACCOUNT, count=2, route=PROJECTS_ROUTE.format("p2"), operation=None, message=None)
    clock.advance(minutes=1)
    run_scan(rt)
    [grant] = roles.grants
    assert grant.scope.lower() == p2.lower()

    source.fail(ORDERS, ACCOUNT, count=2)  # and the account (the /openai surface) is its own decision too
    clock.advance(minutes=1)
    run_scan(rt)
    assert [g.scope.lower() for g in roles.grants] == [p2.lower(), ACCOUNT.lower()]
    statuses = sorted(i.status for i in store.list_incidents())
    assert statuses == sorted([inc.SUPPRESSED, inc.VERIFYING, inc.VERIFYING])


def test_a_ticketed_project_does_not_block_a_later_grant_on_an_allowed_project(make_runtime, source, clock, store,
                                                                               roles, evidence, sink):
    evidence.add_account(ACCOUNT, kind="AIServices")
    p2 = f"{ACCOUNT}/projects/p2"
    rt = make_runtime(mode="enforce", allowlist=[{"object_id": ORDERS, "scopes": [p2]}])
    source.fail(ORDERS, ACCOUNT, count=2, route=PROJECTS_ROUTE.format("p1"), operation=None, message=None)
    clock.advance(minutes=1)
    run_scan(rt)
    [p1] = store.list_incidents()
    assert p1.status == inc.TICKETED and p1.actions[-1].rules == ("allowlist_scope",)

    for _ in range(2):
        source.fail(ORDERS, ACCOUNT, count=2, route=PROJECTS_ROUTE.format("p2"), operation=None, message=None)
        clock.advance(minutes=1)
        run_scan(rt)
    [grant] = roles.grants
    assert grant.scope.lower() == p2.lower()
    assert store.get_incident(p1.id).status == inc.TICKETED and sink.created() == 1
