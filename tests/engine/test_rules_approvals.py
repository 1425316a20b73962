"""On-call actions: approve grants once after re-checking the policy and the live evidence; revoke deletes only the
service's own assignment, and a revoked grant is not made again on the same cause."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.core import incidents as inc
from shared.engine.approvals import ActionRefused, NotFound, approve, revoke, suppress
from shared.engine.scan import run_scan
from tests.engine.common import ACCOUNT, ALICE, OPENAI_USER, ORDERS, incident_of

BOB = "bob@contoso.example"


@pytest.fixture
def recommended(make_runtime, traffic, store):
    """A recommend-mode runtime and the recommendation it made for ORDERS."""
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    traffic(3, failing=[ORDERS])
    run_scan(rt)
    incident = incident_of(store, ORDERS)
    assert incident.status == inc.RECOMMENDED
    return rt, incident


def test_approval_grants_once_and_records_the_approver(recommended, store, evidence, roles):
    rt, incident = recommended

    result = approve(rt, incident.id, ALICE)

    assert result.status == inc.VERIFYING
    [grant] = roles.grants
    assert grant.role_guid == OPENAI_USER and grant.scope.lower() == ACCOUNT.lower()
    granted = incident_of(store, ORDERS)
    assert granted.approved_by == ALICE and granted.approval_handle is None
    [assignment] = evidence.of(ORDERS)
    assert granted.assignment_id == assignment.id
    by_alice = [a for a in store.list_audit(incident.id) if a.actor == ALICE]
    assert [a.kind for a in by_alice] == ["approval", "action"]
    assert len({a.correlation_id for a in by_alice}) == 1
    assert by_alice[1].inputs["outcome"] == "created"

    with pytest.raises(ActionRefused, match="not recommended"):
        approve(rt, incident.id, BOB)
    assert len(roles.grants) == 1


def test_approval_needs_an_identity_and_a_known_incident(recommended, roles):
    rt, incident = recommended
    with pytest.raises(ActionRefused, match="identity"):
        approve(rt, incident.id, "  ")
    with pytest.raises(NotFound):
        approve(rt, "inc-0000000000000000", ALICE)
    assert roles.grants == []


def test_an_expired_approval_is_refused_and_the_next_scan_issues_a_fresh_one(make_runtime, traffic, store, roles,
                                                                             clock):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS], TRIAGE_APPROVAL_TTL_HOURS="1")
    traffic(3, failing=[ORDERS])
    run_scan(rt)
    incident = incident_of(store, ORDERS)
    clock.advance(minutes=61)

    with pytest.raises(ActionRefused, match="expired"):
        approve(rt, incident.id, ALICE)
    assert roles.grants == []

    traffic(2, failing=[ORDERS])  # still failing: a new recommendation with a new expiry
    run_scan(rt)
    fresh = incident_of(store, ORDERS)
    assert fresh.status == inc.RECOMMENDED and fresh.approval_expires_at > clock.now()
    approve(rt, incident.id, ALICE)
    assert len(roles.grants) == 1


def test_approval_re_checks_the_policy(recommended, store, roles):
    rt, incident = recommended
    suppress(rt, ORDERS, timedelta(hours=1), "migration in progress", BOB)

    with pytest.raises(ActionRefused, match=r"policy refused.*\[suppression\]"):
        approve(rt, incident.id, ALICE)
    assert roles.grants == []
    [record] = [a for a in store.list_audit(incident.id) if a.kind == "approval"]
    assert record.actor == ALICE and "suppression" in record.inputs["refusals"]
    assert incident_of(store, ORDERS).status == inc.RECOMMENDED


def test_approval_is_refused_when_the_live_evidence_shows_another_cause(recommended, store, evidence, roles):
    rt, incident = recommended
    # An engineer assigned the role by hand an hour ago, and the caller is still denied: no role fixes that.
    evidence.assign(ORDERS, OPENAI_USER, ACCOUNT, age=timedelta(hours=1))

    with pytest.raises(ActionRefused, match="live evidence now says role_present_still_denied"):
        approve(rt, incident.id, ALICE)
    assert roles.grants == []
    [record] = [a for a in store.list_audit(incident.id) if a.kind == "approval"]
    assert "not applied" in record.detail and record.actor == ALICE


def test_revoke_deletes_the_services_own_assignment_and_it_is_not_granted_again(make_runtime, traffic, store,
                                                                                evidence, roles, clock):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    traffic(3, failing=[ORDERS])
    run_scan(rt)
    incident = incident_of(store, ORDERS)
    assert len(evidence.of(ORDERS)) == 1

    revoke(rt, incident.id, ALICE)

    assert evidence.of(ORDERS) == [] and roles.deletes == [incident.assignment_id]
    revoked = incident_of(store, ORDERS)
    assert revoked.status == inc.TICKETED and revoked.assignment_id is None and revoked.verify_due is None
    [record] = [a for a in store.list_audit(incident.id) if a.kind == "revoke"]
    assert record.actor == ALICE and record.inputs["assignment_id"] == incident.assignment_id

    # The caller fails again, well past the cool-down: a revoked grant is not silently made again.
    clock.advance(hours=2)
    traffic(3, failing=[ORDERS])
    run_scan(rt)
    assert len(roles.grants) == 1
    assert incident_of(store, ORDERS).status == inc.TICKETED
    with pytest.raises(ActionRefused, match="no assignment"):
        revoke(rt, incident.id, ALICE)


def test_revoke_refuses_incidents_without_an_assignment_of_the_service(make_runtime, traffic, store, evidence,
                                                                       roles):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    evidence.assign(ORDERS, OPENAI_USER, ACCOUNT, age=timedelta(seconds=30))  # by hand, still propagating
    traffic(1, failing=[ORDERS])
    assert run_scan(rt).actions == {"wait": 1}
    waiting = incident_of(store, ORDERS)
    assert waiting.cause == "propagation_pending" and waiting.assignment_id is None

    with pytest.raises(ActionRefused, match="no assignment created by this service"):
        revoke(rt, waiting.id, ALICE)
    assert roles.deletes == [] and roles.grants == []
    assert len(evidence.of(ORDERS)) == 1  # the engineer's own assignment is untouched


def test_revoke_refuses_an_assignment_that_no_longer_carries_the_services_marker(make_runtime, traffic, store,
                                                                                 evidence):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    incident = incident_of(store, ORDERS)
    [assignment] = evidence.of(ORDERS)
    assert assignment.description.startswith("Created by aoai-auth-triage")
    assignment.description = "Owned by the platform team"  # someone took it over

    with pytest.raises(ActionRefused, match="marker"):
        revoke(rt, incident.id, ALICE)
    assert evidence.of(ORDERS) == [assignment]
    assert incident_of(store, ORDERS).assignment_id == incident.assignment_id
