"""Propagation-aware verification: when to check, what the traffic means at and around the deadline, the group
case's 24 h horizon, and the incident after each outcome."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core import incidents as inc
from shared.core import roles
from shared.core.lifecycle import open_or_update, record_grant
from shared.core.model import HIGH, Diagnosis, FailureSignal
from shared.core.verification import (
    CLOSED_UNVERIFIED,
    ESCALATED,
    KEEP_CHECKING,
    OUTCOMES,
    PENDING_ACTION,
    RESOLVED,
    apply_verification,
    check_since,
    effective_time,
    evaluate,
    next_check,
    verification_due,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ACCOUNT = ("/subscriptions/6a2c1f3e-1b2c-4d5e-8f90-0123456789ab/resourceGroups/rg-ai/providers/"
           "Microsoft.CognitiveServices/accounts/contoso-aoai")
SP = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
WINDOW, LAG, MAX_VERIFY = timedelta(minutes=10), timedelta(minutes=5), timedelta(hours=24)
DEADLINE = T0 + timedelta(hours=24)
SECOND = timedelta(seconds=1)


def granted(cause: str = "missing_data_role", max_verify: timedelta = MAX_VERIFY) -> inc.Incident:
    diagnosis = Diagnosis(cause=cause, role_fixable=True, confidence=HIGH, summary="s",
                          role_name=roles.COGNITIVE_SERVICES_OPENAI_USER.name,
                          role_id=roles.COGNITIVE_SERVICES_OPENAI_USER.guid, scope=ACCOUNT)
    failure = FailureSignal(status=401, code="PermissionDenied", message="PermissionDenied: lacks data action",
                            object_id=SP, auth="entra", resource_id=ACCOUNT, first_seen=T0 - timedelta(minutes=5),
                            last_seen=T0 - timedelta(minutes=1))
    incident = open_or_update(None, failure, diagnosis, T0)
    return record_grant(incident, "created", "ra-1", T0, T0, WINDOW, LAG, max_verify)


def test_verification_is_due_after_the_window_and_the_lag():
    assert verification_due(T0, WINDOW, LAG) == T0 + timedelta(minutes=15)
    assert verification_due(T0, timedelta(0), timedelta(0)) == T0


@pytest.mark.parametrize(("failures", "successes", "now", "cause", "expected"), [
    (0, 4, T0 + timedelta(minutes=15), "missing_data_role", RESOLVED),
    (0, 1, DEADLINE + SECOND, "missing_data_role", RESOLVED),
    (2, 0, T0 + timedelta(minutes=15), "missing_data_role", ESCALATED),
    (2, 9, T0 + timedelta(minutes=15), "missing_data_role", ESCALATED),  # failures continue
    (0, 0, DEADLINE - SECOND, "missing_data_role", KEEP_CHECKING),
    (0, 0, DEADLINE, "missing_data_role", CLOSED_UNVERIFIED),
    (0, 0, DEADLINE + SECOND, "missing_data_role", CLOSED_UNVERIFIED),
    (0, 0, DEADLINE - SECOND, "propagation_pending", KEEP_CHECKING),
    (1, 0, T0 + timedelta(minutes=15), "propagation_pending", ESCALATED),
    # Group case: failures before the deadline are the identity's cache, not a failed fix.
    (3, 0, DEADLINE - SECOND, "group_membership_cache", KEEP_CHECKING),
    (3, 5, T0 + timedelta(hours=2), "group_membership_cache", KEEP_CHECKING),
    (3, 0, DEADLINE, "group_membership_cache", ESCALATED),
    (0, 2, T0 + timedelta(hours=2), "group_membership_cache", RESOLVED),
    (0, 0, DEADLINE, "group_membership_cache", CLOSED_UNVERIFIED),
    (-1, -1, DEADLINE - SECOND, "missing_data_role", KEEP_CHECKING),  # nonsense counts mean nothing seen
])
def test_evaluate(failures, successes, now, cause, expected):
    assert evaluate(failures, successes, now=now, deadline=DEADLINE, cause=cause) == expected


@settings(max_examples=300, deadline=None)
@given(failures=st.integers(0, 50), successes=st.integers(0, 50),
       offset=st.timedeltas(min_value=timedelta(hours=-30), max_value=timedelta(hours=30)),
       cause=st.sampled_from(["missing_data_role", "propagation_pending", "group_membership_cache",
                              "wrong_role_for_surface"]))
def test_evaluate_properties(failures, successes, offset, cause):
    now = DEADLINE + offset
    outcome = evaluate(failures, successes, now=now, deadline=DEADLINE, cause=cause)
    assert outcome in OUTCOMES
    if now >= DEADLINE:
        assert outcome != KEEP_CHECKING  # checking always ends at the deadline
    if outcome == RESOLVED:
        assert failures == 0 and successes > 0
    if failures and cause != "group_membership_cache":
        assert outcome == ESCALATED
    if outcome == ESCALATED and cause == "group_membership_cache":
        assert now >= DEADLINE


def test_next_check_is_an_interval_on_but_never_past_the_deadline():
    assert next_check(T0, DEADLINE) == T0 + timedelta(minutes=15)
    assert next_check(T0, DEADLINE, timedelta(hours=1)) == T0 + timedelta(hours=1)
    assert next_check(DEADLINE - timedelta(minutes=5), DEADLINE) == DEADLINE
    assert next_check(DEADLINE + timedelta(minutes=5), DEADLINE) == DEADLINE + timedelta(minutes=5)


def test_resolved_closes_the_incident():
    incident = granted()
    now = incident.verify_due
    resolved = apply_verification(incident, RESOLVED, now, failures=0, successes=12)
    assert resolved.status == inc.RESOLVED and not resolved.is_open
    assert resolved.closed_at == now and resolved.verify_due is None
    assert resolved.actions[-1].kind == "resolved" and "12 successful" in resolved.actions[-1].detail


def test_escalation_says_the_role_is_in_place_shows_evidence_and_next_steps():
    incident = granted()
    escalated = apply_verification(incident, ESCALATED, incident.verify_due, failures=7, successes=0)
    assert escalated.status == inc.ESCALATED and escalated.is_open and escalated.verify_due is None
    text = escalated.actions[-1].detail
    assert escalated.actions[-1].kind == "escalated"
    for expected in ("Cognitive Services OpenAI User is in place", ACCOUNT, "7 failure(s)",
                     "PermissionDenied: lacks data action", "fresh token", "restart", "group", "another cause"):
        assert expected in text


def test_group_escalation_points_at_a_direct_assignment():
    incident = granted("group_membership_cache")
    text = apply_verification(incident, ESCALATED, incident.verify_deadline, failures=1).actions[-1].detail
    assert "24 h group-membership cache horizon has passed" in text


def test_closed_unverified():
    incident = granted()
    closed = apply_verification(incident, CLOSED_UNVERIFIED, incident.verify_deadline)
    assert closed.status == inc.CLOSED_UNVERIFIED and closed.closed_at == incident.verify_deadline
    assert "no traffic" in closed.actions[-1].detail


def test_keep_checking_reschedules_without_growing_the_record():
    incident = granted()
    now = incident.verify_due
    checked = apply_verification(incident, KEEP_CHECKING, now, failures=0, successes=0)
    assert checked.status == inc.VERIFYING and checked.verify_due == now + timedelta(minutes=15)
    for step in range(1, 20):
        checked = apply_verification(checked, KEEP_CHECKING, now + step * timedelta(minutes=15),
                                     failures=0, successes=0)
    assert len(checked.actions) == len(incident.actions) + 1
    assert checked.actions[-1].kind == PENDING_ACTION
    last = apply_verification(checked, KEEP_CHECKING, incident.verify_deadline - timedelta(minutes=1))
    assert last.verify_due == incident.verify_deadline


def test_unknown_outcome_is_an_error():
    with pytest.raises(ValueError, match="unknown verification outcome"):
        apply_verification(granted(), "maybe", T0)


def test_check_since_starts_at_the_effective_time():
    incident = granted()
    assert effective_time(incident, WINDOW) == T0 + WINDOW
    assert check_since(incident, WINDOW, LAG) == T0 + WINDOW
    later = apply_verification(incident, KEEP_CHECKING, T0 + timedelta(hours=3))
    assert check_since(later, WINDOW, LAG) == T0 + WINDOW  # no traffic yet: keep counting from the start
    assert effective_time(replace(incident, assignment_created_at=None), WINDOW) is None


def test_group_case_only_counts_failures_since_the_previous_check():
    incident = granted("group_membership_cache")
    checked = apply_verification(incident, KEEP_CHECKING, T0 + timedelta(hours=3), failures=4, successes=0)
    assert check_since(checked, WINDOW, LAG) == T0 + timedelta(hours=3) - LAG


def test_group_case_never_escalates_before_its_day_and_ends_at_it():
    """Simulate checks every 15 min while the identity's cache still denies it."""
    incident = granted("group_membership_cache", max_verify=timedelta(hours=1))
    assert incident.verify_deadline == T0 + timedelta(hours=24)
    now = incident.verify_due
    outcomes = []
    while True:
        outcome = evaluate(3, 0, now=now, deadline=incident.verify_deadline, cause=incident.cause)
        outcomes.append(outcome)
        incident = apply_verification(incident, outcome, now, failures=3, successes=0)
        if outcome != KEEP_CHECKING:
            break
        assert incident.verify_due > now
        now = incident.verify_due
    assert outcomes[-1] == ESCALATED and now == T0 + timedelta(hours=24)
    assert set(outcomes[:-1]) == {KEEP_CHECKING}
    assert len(incident.actions) <= 5  # diagnosed, assigned, one pending, escalated


def test_an_ordinary_grant_escalates_at_its_first_failing_check():
    incident = granted()
    outcome = evaluate(3, 0, now=incident.verify_due, deadline=incident.verify_deadline, cause=incident.cause)
    assert outcome == ESCALATED
