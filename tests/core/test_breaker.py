"""The circuit breaker: opens after N failed grant verifications in a row; only an operator closes it."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.breaker import BreakerState, after_verification, reset
from shared.core.verification import CLOSED_UNVERIFIED, ESCALATED, KEEP_CHECKING, OUTCOMES, RESOLVED

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def feed(outcomes, threshold=3, state=None):
    state = state or BreakerState()
    for i, outcome in enumerate(outcomes):
        state = after_verification(state, outcome, threshold, T0 + timedelta(minutes=i))
    return state


def test_starts_closed():
    state = BreakerState()
    assert (state.open, state.consecutive_failures, state.opened_at) == (False, 0, None)


def test_opens_after_threshold_failures_in_a_row():
    two = feed([ESCALATED, ESCALATED])
    assert not two.open and two.consecutive_failures == 2
    three = after_verification(two, ESCALATED, 3, T0 + timedelta(hours=1))
    assert three.open and three.opened_at == T0 + timedelta(hours=1)
    assert "3 grants in a row" in three.reason


def test_a_resolved_grant_resets_the_run():
    state = feed([ESCALATED, ESCALATED, RESOLVED, ESCALATED, ESCALATED])
    assert not state.open and state.consecutive_failures == 2


def test_outcomes_that_say_nothing_change_nothing():
    two = feed([ESCALATED, ESCALATED])
    assert feed([KEEP_CHECKING, CLOSED_UNVERIFIED], state=two) == two
    assert feed([ESCALATED], state=feed([KEEP_CHECKING, CLOSED_UNVERIFIED], state=two)).open


def test_once_open_only_a_reset_closes_it():
    opened = feed([ESCALATED] * 3)
    still = feed([RESOLVED, RESOLVED, ESCALATED], state=opened)
    assert still.open and still.opened_at == opened.opened_at
    closed = reset(still, "oncall@contoso.com", T0 + timedelta(days=1))
    assert not closed.open and closed.consecutive_failures == 0 and closed.opened_at is None
    assert (closed.reset_by, closed.reset_at) == ("oncall@contoso.com", T0 + timedelta(days=1))
    assert feed([ESCALATED, ESCALATED], state=closed).open is False
    assert feed([ESCALATED] * 3, state=closed).open


def test_threshold_below_one_opens_at_the_first_failure():
    assert feed([ESCALATED], threshold=0).open
    assert feed([ESCALATED], threshold=1).open
    assert not feed([RESOLVED], threshold=0).open


def test_round_trips_through_storage_as_json():
    state = reset(feed([ESCALATED] * 4), "ops", T0)
    state = feed([ESCALATED] * 3, state=state)
    stored = json.loads(json.dumps(state.to_dict()))
    assert BreakerState.from_dict(stored) == state


def test_nothing_stored_is_closed():
    assert BreakerState.from_dict(None) == BreakerState()
    assert BreakerState.from_dict({}) == BreakerState()


def test_an_unreadable_record_fails_safe_to_open():
    for broken in ({"consecutive_failures": "three"}, {"open": "no"}, {"opened_at": "yesterday"},
                   {"consecutive_failures": -1}, {"reset_at": 5}, {"open": 1}):
        state = BreakerState.from_dict(broken)
        assert state.open, broken
        assert "unreadable" in state.reason


@settings(max_examples=300, deadline=None)
@given(outcomes=st.lists(st.sampled_from(OUTCOMES), max_size=30), threshold=st.integers(1, 6))
def test_open_exactly_when_a_run_of_failures_reached_the_threshold(outcomes, threshold):
    state = feed(outcomes, threshold)
    run = longest = 0
    for outcome in outcomes:
        if outcome == ESCALATED:
            run += 1
            longest = max(longest, run)
        elif outcome == RESOLVED:
            run = 0
    assert state.open == (longest >= threshold)
    assert state.consecutive_failures == run
