"""Verification after propagation: resolved closes the ticket, escalated raises it, no traffic keeps checking and
closes unverified at the deadline, and the group-membership case is given a day."""

from __future__ import annotations

from datetime import timedelta

from shared.core import incidents as inc
from shared.engine.approvals import approve
from shared.engine.scan import run_scan
from tests.engine.common import ACCOUNT, ALICE, OPENAI_USER, ORDERS, incident_of
from tests.support.fakes import breaker_state, verify_due


def test_a_grant_keeps_failing_while_it_propagates_then_resolves(make_runtime, traffic, store, evidence, roles, sink,
                                                                 publisher, clock):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    traffic(3, failing=[ORDERS])
    first = run_scan(rt)
    granted = incident_of(store, ORDERS)
    assert granted.status == inc.VERIFYING

    traffic(2, failing=[ORDERS])  # the role is not effective yet: expected failures, and the check is not due
    assert run_scan(rt).verifications == {}
    assert incident_of(store, ORDERS).status == inc.VERIFYING

    traffic(2, succeeding=[ORDERS])
    last = run_scan(rt)
    assert last.verifications == {"resolved": 1}
    resolved = incident_of(store, ORDERS)
    assert resolved.status == inc.RESOLVED and resolved.closed_at == clock.now()
    # Failures re-read from the propagation window do not rewrite the cause that was verified.
    assert resolved.cause == "missing_data_role" and resolved.diagnosis.role_id == OPENAI_USER
    assert "cause-changed" not in [a.kind for a in resolved.actions]
    assert len(roles.grants) == 1 and sink.calls == []
    [verification] = [a for a in store.list_audit(granted.id) if a.kind == "verification"]
    assert verification.correlation_id == last.correlation_id
    assert verification.inputs["failures"] == 0 and verification.inputs["successes"] == 4
    assert verification.correlation_id != first.correlation_id
    assert publisher.types() == ["aoai.triage.assignment.created", "aoai.triage.verification.resolved"]
    assert breaker_state(store)["consecutive_failures"] == 0


def test_resolution_closes_the_recommendations_ticket(make_runtime, traffic, store, sink):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    incident = incident_of(store, ORDERS)
    ticket = sink.ticket_of(incident.id)
    approve(rt, incident.id, ALICE)
    traffic(4, succeeding=[ORDERS])
    assert run_scan(rt).verifications == {"resolved": 1}
    assert not ticket.is_open and "Verified" in ticket.comments[-1]
    assert sink.created() == 1


def test_a_grant_still_failing_after_the_window_escalates_once(make_runtime, traffic, store, evidence, roles, sink,
                                                               publisher):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    traffic(3, failing=[ORDERS])
    run_scan(rt)
    granted = incident_of(store, ORDERS)
    evidence.remove(granted.assignment_id)  # undone behind the service's back: the failures go on

    traffic(4, failing=[ORDERS])
    report = run_scan(rt)
    assert report.verifications == {"escalated": 1}
    assert incident_of(store, ORDERS).status == inc.ESCALATED
    [ticket] = sink.tickets.values()
    assert ticket.is_open and ticket.content.escalated and "Escalated" in ticket.content.action
    assert "aoai.triage.incident.escalated" in publisher.types()

    for _ in range(3):  # later scans over the continuing failures neither grant again nor open a second ticket
        traffic(5, failing=[ORDERS])
        run_scan(rt)
    assert len(roles.grants) == 1
    assert sink.created() == 1 and len(sink.tickets) == 1
    assert incident_of(store, ORDERS).status == inc.ESCALATED
    [verification] = [a for a in store.list_audit(granted.id) if a.kind == "verification"]
    assert verification.correlation_id == report.correlation_id and verification.inputs["failures"] > 0
    breaker = breaker_state(store)
    assert breaker["consecutive_failures"] == 1 and breaker["open"] is False


def test_no_traffic_keeps_checking_until_the_deadline_then_closes_unverified(make_runtime, traffic, store, source,
                                                                             sink, clock):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS], TRIAGE_VERIFY_MAX_HOURS="1")
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    granted = incident_of(store, ORDERS)
    assert granted.verify_deadline == granted.assignment_created_at + timedelta(hours=1)

    clock.advance(minutes=5)  # the caller went quiet
    assert verify_due(rt) == {"keep_checking": 1}
    checking = incident_of(store, ORDERS)
    assert checking.status == inc.VERIFYING and checking.verify_due == clock.now() + timedelta(minutes=15)
    assert verify_due(rt) == {}  # the next check is not due yet
    checks = len(source.activity_calls)

    clock.set(granted.verify_deadline)
    assert run_scan(rt).verifications == {"closed_unverified": 1}
    assert len(source.activity_calls) == checks + 1
    closed = incident_of(store, ORDERS)
    assert closed.status == inc.CLOSED_UNVERIFIED and closed.closed_at == clock.now()
    assert breaker_state(store) is None  # says nothing about the grant
    assert sink.calls == []  # there was no ticket to close

    clock.advance(minutes=1)
    traffic(1, failing=[ORDERS])  # a new failure reopens it
    run_scan(rt)
    reopened = incident_of(store, ORDERS)
    assert reopened.is_open and "reopened" in [a.kind for a in reopened.actions]


def test_a_managed_identity_holding_the_role_only_through_a_group_gets_a_direct_grant_a_ticket_and_a_day(
        make_runtime, traffic, store, evidence, roles, sink):
    mi, group = "6a0c0f00-0000-4000-8000-0000000000a1", "6a0c0f00-0000-4000-8000-0000000000b1"
    evidence.assign(group, OPENAI_USER, ACCOUNT, age=timedelta(days=1), principal_type="Group")
    evidence.add_group_member(mi, group)  # joined just now: its token cache won't see it for ~24 h
    # The allowlist declares the identity a service principal: with no direct assignment, nothing else says so.
    rt = make_runtime(mode="enforce", allowlist=[mi], TRIAGE_VERIFY_MAX_HOURS="1")
    traffic(2, failing=[mi])
    run_scan(rt)

    incident = incident_of(store, mi)
    assert incident.cause == "group_membership_cache" and incident.status == inc.VERIFYING
    [grant] = roles.grants
    assert (grant.principal_id, grant.role_guid) == (mi, OPENAI_USER)
    assert incident.verify_deadline - incident.last_grant_at >= timedelta(hours=24)
    ticket = sink.ticket_of(incident.id)
    assert ticket.is_open and "group" in ticket.content.action.lower()

    # Failures while the identity's cache may still hold the old membership mean "keep checking", not escalation.
    traffic(5, failing=[mi])
    assert run_scan(rt).verifications == {"keep_checking": 1}
    assert incident_of(store, mi).status == inc.VERIFYING

    # The direct role takes effect. Each check counts from the previous one (less the ingestion lag), so the
    # failures seen before are not held against it, but those of the last minute before it still are.
    traffic(15, succeeding=[mi])
    assert run_scan(rt).verifications == {"keep_checking": 1}
    traffic(15, succeeding=[mi])
    assert run_scan(rt).verifications == {"resolved": 1}
    assert incident_of(store, mi).status == inc.RESOLVED
    assert not ticket.is_open


def test_a_recent_assignment_waits_for_propagation_without_a_second_grant(make_runtime, traffic, store, evidence,
                                                                         roles, sink):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    evidence.assign(ORDERS, OPENAI_USER, ACCOUNT, age=timedelta(seconds=30))  # by hand, still propagating
    traffic(1, failing=[ORDERS])

    assert run_scan(rt).actions == {"wait": 1}
    waiting = incident_of(store, ORDERS)
    assert waiting.cause == "propagation_pending"
    assert waiting.status == inc.VERIFYING and waiting.assignment_id is None and waiting.verify_due

    traffic(1, failing=[ORDERS])  # still failing, check not due yet
    run_scan(rt)
    traffic(2, succeeding=[ORDERS])
    assert run_scan(rt).verifications == {"resolved": 1}
    assert incident_of(store, ORDERS).status == inc.RESOLVED
    assert roles.grants == [] and len(evidence.of(ORDERS)) == 1
    # Someone else's assignment says nothing about the service's own grants: the breaker is untouched.
    assert breaker_state(store) is None
    assert sink.calls == []


def test_a_role_assigned_by_hand_after_a_recommendation_is_verified_and_the_ticket_closed(make_runtime, traffic,
                                                                                          store, evidence, roles,
                                                                                          sink):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    incident = incident_of(store, ORDERS)
    assert incident.status == inc.RECOMMENDED
    # An engineer runs the fix command from the ticket: the caller fails two more minutes, then succeeds.
    evidence.assign(ORDERS, OPENAI_USER, ACCOUNT, age=timedelta(0))
    traffic(2, failing=[ORDERS])
    traffic(3, succeeding=[ORDERS])

    # Every failure the scan reads happened while the role propagated: that is what it must conclude (not "role
    # present, still denied"), and the check that follows closes the incident and its ticket.
    report = run_scan(rt)
    assert report.actions == {"wait": 1} and report.verifications == {"resolved": 1}
    assert incident_of(store, ORDERS).status == inc.RESOLVED
    assert not sink.ticket_of(incident.id).is_open
    assert roles.grants == []


def test_an_outcome_event_that_cannot_be_published_does_not_fail_the_run(make_runtime, traffic, store, roles,
                                                                         publisher):
    publisher.failing = True
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    traffic(2, failing=[ORDERS])
    assert run_scan(rt).grants == 1
    assert incident_of(store, ORDERS).status == inc.VERIFYING and len(roles.grants) == 1
    assert publisher.events == []
