"""TRIAGE_REVIEW_SCHEDULE: the slot it names, the last time that slot came round, and whether a tick runs the
reviews given the run record (never run, done, running elsewhere, killed, unreadable, moved back)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.review_schedule import RUN_LEASE, ReviewSlot, finished, latest_slot, parse_review_schedule, plan_tick

NOW = datetime(2026, 12, 2, 10, 15, tzinfo=UTC)  # a Wednesday


@pytest.mark.parametrize(("text", "slot"), [
    ("off", None), ("", None), (" OFF ", None),
    ("mon 06:00", ReviewSlot(0, 6, 0)), ("Monday 6:00", ReviewSlot(0, 6, 0)), ("SUN 23:59", ReviewSlot(6, 23, 59)),
    ("thurs 00:30", ReviewSlot(3, 0, 30)), ("daily 07:05", ReviewSlot(None, 7, 5)),
])
def test_the_schedule_names_a_weekly_or_daily_slot_or_is_off(text, slot):
    assert parse_review_schedule(text) == slot


@pytest.mark.parametrize("text", ["mo 06:00", "funday 06:00", "mon 24:00", "mon 06:60", "mon", "0 0 6 * * 1",
                                  "weekly", "mon 6", "mon 06:00 07:00"])
def test_anything_else_is_refused_with_the_expected_form(text):
    with pytest.raises(ValueError, match="off, `<day> HH:MM`"):
        parse_review_schedule(text)


def test_a_slot_reads_back_the_way_it_is_written():
    for text in ("mon 06:00", "sun 23:59", "daily 07:05"):
        assert str(parse_review_schedule(text)) == text


slots = st.builds(ReviewSlot, st.one_of(st.none(), st.integers(0, 6)), st.integers(0, 23), st.integers(0, 59))
moments = st.datetimes(min_value=datetime(2020, 1, 1), max_value=datetime(2035, 1, 1)).map(
    lambda d: d.replace(tzinfo=UTC))


@given(slots, moments)
def test_the_latest_slot_is_the_last_time_it_came_round(slot, now):
    at = latest_slot(slot, now)
    period = timedelta(days=1 if slot.weekday is None else 7)
    assert at <= now < at + period
    assert (at.hour, at.minute, at.second, at.microsecond) == (slot.hour, slot.minute, 0, 0)
    assert slot.weekday is None or at.weekday() == slot.weekday


def test_the_latest_weekly_slot_of_a_wednesday_morning():
    assert latest_slot(ReviewSlot(0, 6, 0), NOW) == datetime(2026, 11, 30, 6, 0, tzinfo=UTC)
    assert latest_slot(ReviewSlot(2, 11, 0), NOW) == datetime(2026, 11, 25, 11, 0, tzinfo=UTC)  # later today
    assert latest_slot(ReviewSlot(None, 10, 15), NOW) == NOW


MONDAY = ReviewSlot(0, 6, 0)
DUE = datetime(2026, 11, 30, 6, 0, tzinfo=UTC)


def test_off_never_runs_and_a_slot_never_taken_runs():
    assert not plan_tick(None, None, NOW).run
    tick = plan_tick(MONDAY, None, NOW)
    assert tick.run and tick.slot == DUE
    assert tick.claim == {"slot": DUE.isoformat(), "state": "running", "until": (NOW + RUN_LEASE).isoformat()}
    assert plan_tick(MONDAY, {"slot": "", "state": "released", "until": None}, NOW).run  # given back


def test_a_slot_runs_once_and_the_next_slot_runs_again():
    done = finished(plan_tick(MONDAY, None, NOW), NOW)
    assert not plan_tick(MONDAY, done, NOW + timedelta(hours=1)).run
    assert not plan_tick(MONDAY, done, NOW + timedelta(days=4)).run  # Sunday: still that week's slot
    assert plan_tick(MONDAY, done, NOW + timedelta(days=5)).slot == DUE + timedelta(days=7)


def test_a_run_under_way_is_left_alone_until_its_lease_expires():
    claim = plan_tick(MONDAY, None, NOW).claim
    assert not plan_tick(MONDAY, claim, NOW + RUN_LEASE - timedelta(seconds=1)).run
    again = plan_tick(MONDAY, claim, NOW + RUN_LEASE)
    assert again.run and again.slot == DUE and "killed" in again.reason


def test_an_unreadable_record_or_one_from_a_later_slot_is_not_run_over():
    assert not plan_tick(MONDAY, {"slot": "yesterday"}, NOW).run
    assert plan_tick(MONDAY, {"state": "done"}, NOW).run  # no slot in it: as one given back
    later = {"slot": (DUE + timedelta(days=7)).isoformat(), "state": "done", "until": None}
    tick = plan_tick(MONDAY, later, NOW)
    assert not tick.run and "later slot" in tick.reason
