"""Blast-radius caps, the per-incident cool-down and the circuit breaker: refusals name their rule, and a refusal
that lifts by itself (a new run, a new day, the cool-down passing, a reset) is decided again on the next failures,
while a permanent one is not."""

from __future__ import annotations

import pytest

from shared.core import incidents as inc
from shared.engine.approvals import reset_breaker
from shared.engine.scan import run_scan
from tests.engine.common import (
    ACCOUNT,
    BILLING,
    OPERATOR,
    ORDERS,
    SEARCH,
    STRANGER,
    by_status,
    incident_of,
    refusals,
)
from tests.support.fakes import breaker_state


@pytest.mark.parametrize("cap", [0, 1])
def test_the_run_cap_tickets_further_grants_and_the_next_run_makes_them(make_runtime, traffic, store, roles, sink,
                                                                        cap):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS, BILLING], TRIAGE_MAX_GRANTS_PER_RUN=str(cap))
    traffic(3, failing=[ORDERS, BILLING])

    report = run_scan(rt)

    assert report.grants == cap == len(roles.grants)
    ticketed = by_status(store, ORDERS, BILLING)[inc.TICKETED]
    assert len(ticketed) == 2 - cap
    for incident in ticketed:
        assert refusals(store, incident.id) == [["run_cap"]]
    assert sink.created() == 2 - cap
    assert "run_cap" in next(iter(sink.tickets.values())).content.action

    granted = [g.principal_id for g in roles.grants]  # the granted caller succeeds once its role is in place
    traffic(5, failing=[oid for oid in (ORDERS, BILLING) if oid not in granted], succeeding=granted)
    run_scan(rt)
    # A run cap is per run: with a cap of 1 the other grant comes in the next run; a cap of 0 never grants.
    assert len(roles.grants) == (2 if cap else 0)
    assert sink.created() == 2 - cap


def test_the_daily_cap_holds_for_24_hours(make_runtime, traffic, store, roles, sink, clock):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS, BILLING], TRIAGE_MAX_GRANTS_PER_DAY="1")
    traffic(3, failing=[ORDERS, BILLING])
    run_scan(rt)
    assert len(roles.grants) == 1
    [refused] = by_status(store, ORDERS, BILLING)[inc.TICKETED]
    assert refusals(store, refused.id) == [["daily_cap"]]
    tickets_written = len(sink.calls)

    for _ in range(3):  # the same day: still refused, still one ticket and no rewrite of it
        traffic(5, failing=[refused.principal_id])
        run_scan(rt)
    assert len(roles.grants) == 1
    assert incident_of(store, refused.principal_id).status == inc.TICKETED
    assert sink.created() == 1
    assert all(c.comment for c in sink.calls[tickets_written:])  # recurrence comments only
    assert refusals(store, refused.id) == [["daily_cap"]]

    clock.advance(hours=24)
    traffic(2, failing=[refused.principal_id])
    run_scan(rt)
    assert len(roles.grants) == 2
    assert incident_of(store, refused.principal_id).status == inc.VERIFYING


def test_the_cool_down_refuses_a_second_grant_for_the_same_incident_until_it_has_passed(make_runtime, traffic, store,
                                                                                        evidence, roles, clock):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS], TRIAGE_INCIDENT_COOLDOWN_MINUTES="60")
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    traffic(4, succeeding=[ORDERS])
    assert run_scan(rt).verifications == {"resolved": 1}

    # The assignment disappears behind the service's back and the caller fails again: the incident reopens.
    [assignment] = evidence.of(ORDERS)
    evidence.remove(assignment.id)
    traffic(3, failing=[ORDERS])
    run_scan(rt)
    incident = incident_of(store, ORDERS)
    assert incident.status == inc.TICKETED
    assert refusals(store, incident.id)[-1] == ["cooldown"]
    assert len(roles.grants) == 1

    traffic(20, failing=[ORDERS])  # still within the hour
    run_scan(rt)
    assert len(roles.grants) == 1

    clock.advance(minutes=40)
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    assert len(roles.grants) == 2
    assert incident_of(store, ORDERS).status == inc.VERIFYING


def test_a_permanent_refusal_is_not_decided_again_when_the_policy_would_now_allow_it(make_runtime, traffic, store,
                                                                                     roles, sink):
    traffic(3, failing=[STRANGER])
    run_scan(make_runtime(mode="enforce", allowlist=[ORDERS]))
    incident = incident_of(store, STRANGER)
    assert incident.status == inc.TICKETED and "allowlist" in refusals(store, incident.id)[0]

    # An operator allowlists the caller afterwards: the ticketed incident stays with the people it went to.
    rt = make_runtime(mode="enforce", allowlist=[ORDERS, STRANGER])
    for _ in range(2):
        traffic(5, failing=[STRANGER])
        run_scan(rt)
    assert incident_of(store, STRANGER).status == inc.TICKETED
    assert roles.grants == []
    assert len(refusals(store, incident.id)) == 1
    assert sink.created() == 1


def test_the_breaker_opens_after_grants_escalate_and_only_an_operator_closes_it(make_runtime, traffic, store,
                                                                                 evidence, roles, sink):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS, BILLING, SEARCH], TRIAGE_BREAKER_THRESHOLD="2")
    traffic(3, failing=[ORDERS, BILLING])
    run_scan(rt)
    assert len(roles.grants) == 2
    # Both grants are undone behind the service's back: both callers keep failing past the window.
    for oid in (ORDERS, BILLING):
        evidence.remove(incident_of(store, oid).assignment_id)
    traffic(4, failing=[ORDERS, BILLING])
    report = run_scan(rt)
    assert report.verifications == {"escalated": 2}
    breaker = breaker_state(store)
    assert breaker["open"] is True and breaker["consecutive_failures"] == 2
    [opened] = [a for a in store.list_audit() if a.kind == "breaker"]
    assert opened.correlation_id == report.correlation_id and opened.actor == "service"

    # A new role-fixable failure is ticketed with the breaker's refusal, scan after scan.
    for _ in range(2):
        traffic(3, failing=[SEARCH, ORDERS, BILLING])
        run_scan(rt)
    blocked = incident_of(store, SEARCH)
    assert blocked.status == inc.TICKETED
    assert refusals(store, blocked.id) == [["circuit_breaker"]]
    assert len(roles.grants) == 2
    assert sink.created() == 3  # two escalations and the refused grant

    reset_breaker(rt, OPERATOR)
    breaker = breaker_state(store)
    assert breaker["open"] is False and breaker["reset_by"] == OPERATOR
    [reset] = [a for a in store.list_audit() if a.kind == "breaker" and a.actor == OPERATOR]
    assert reset.correlation_id

    traffic(3, failing=[SEARCH, ORDERS, BILLING])
    run_scan(rt)
    # The refused grant is made now; the escalated incidents are not granted again.
    assert len(roles.grants) == 3 and roles.grants[-1].principal_id == SEARCH
    assert incident_of(store, SEARCH).status == inc.VERIFYING
    assert {incident_of(store, oid).status for oid in (ORDERS, BILLING)} == {inc.ESCALATED}


def test_a_grant_azure_refuses_is_ticketed_with_the_command_and_not_retried(make_runtime, traffic, store, roles,
                                                                            sink):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    roles.answer_next("forbidden", message="AuthorizationFailed: no roleAssignments/write at the account")
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    incident = incident_of(store, ORDERS)
    assert incident.status == inc.TICKETED and incident.actions[-1].kind == "grant-forbidden"
    ticket = sink.ticket_of(incident.id)
    assert "AuthorizationFailed" in ticket.content.action and ticket.content.fix_command

    traffic(5, failing=[ORDERS])
    run_scan(rt)
    assert len(roles.grants) == 1


def test_a_grant_deferred_by_directory_replication_is_tried_again_on_the_next_scan(make_runtime, traffic, store,
                                                                                  roles):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    roles.answer_next("retry_later", message="PrincipalNotFound (directory replication)")
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    deferred = incident_of(store, ORDERS)
    assert deferred.status == inc.DIAGNOSED and deferred.actions[-1].kind == "grant-retry-later"

    traffic(1, failing=[ORDERS])
    run_scan(rt)
    assert len(roles.grants) == 2
    assert incident_of(store, ORDERS).status == inc.VERIFYING


def test_an_assignment_that_already_exists_counts_as_a_grant_but_is_not_the_services_own(make_runtime, traffic,
                                                                                           store, roles):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    roles.answer_next("exists")
    traffic(2, failing=[ORDERS], resource_id=ACCOUNT)
    assert run_scan(rt).grants == 1
    incident = incident_of(store, ORDERS)
    assert incident.status == inc.VERIFYING and incident.assignment_id is None
    assert incident.actions[-1].kind == "assignment-exists"
