"""When the scheduled access reviews run (TRIAGE_REVIEW_SCHEDULE), and whether this tick should run them.

The setting is `off` (the default), `<day> HH:MM` for a weekly slot (`mon 06:00`; a day is any leading part of
its English name of three letters or more) or `daily HH:MM`, in UTC. The Functions timer behind it fires every hour
on a fixed schedule, so an unset or bad setting never stops the host from indexing the app (a timer bound to an app
setting that is missing does); each tick runs the reviews when a slot has passed that no run has taken yet. Several
instances, overlapping ticks and a run killed half-way are decided here, over the run record the store keeps:
`{"slot": ISO time, "state": "running" | "done", "until": ISO time}` (an empty slot: a failed run gave it back).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

OFF = "off"
EXPECTED = "off, `<day> HH:MM` (weekly, e.g. `mon 06:00`) or `daily HH:MM`, in UTC"
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
_SLOT = re.compile(r"^\s*([a-z]+)\s+([01]?\d|2[0-3]):([0-5]\d)\s*$", re.IGNORECASE)
# A run that holds the slot this long without finishing was killed (the host's timeout is 10 minutes on
# Consumption): the next tick runs the reviews again.
RUN_LEASE = timedelta(minutes=30)


@dataclass(frozen=True)
class ReviewSlot:
    weekday: int | None  # 0 = Monday; None = every day
    hour: int
    minute: int

    def __str__(self) -> str:
        day = "daily" if self.weekday is None else WEEKDAYS[self.weekday][:3]
        return f"{day} {self.hour:02d}:{self.minute:02d}"


def parse_review_schedule(text: str) -> ReviewSlot | None:
    """None for `off` (or empty); ValueError naming the expected form for anything else that is not a slot."""
    if not text.strip() or text.strip().lower() == OFF:
        return None
    matched = _SLOT.match(text)
    if matched is None:
        raise ValueError(f"expected {EXPECTED}")
    day, hour, minute = matched.group(1).lower(), int(matched.group(2)), int(matched.group(3))
    if day == "daily":
        return ReviewSlot(None, hour, minute)
    days = [n for n, name in enumerate(WEEKDAYS) if len(day) >= 3 and name.startswith(day)]
    if len(days) != 1:
        raise ValueError(f"expected {EXPECTED}; {day!r} is not a day")
    return ReviewSlot(days[0], hour, minute)


def latest_slot(slot: ReviewSlot, now: datetime) -> datetime:
    """The last time at or before `now` the slot came round (`now` is timezone-aware, UTC)."""
    at = now.replace(hour=slot.hour, minute=slot.minute, second=0, microsecond=0)
    if at > now:
        at -= timedelta(days=1)
    if slot.weekday is not None:
        at -= timedelta(days=(at.weekday() - slot.weekday) % 7)
    return at


@dataclass(frozen=True)
class Tick:
    """What one tick does: run the reviews for `slot` (writing `claim` first, at the record's etag), or not."""

    run: bool
    reason: str
    slot: datetime | None = None
    claim: dict[str, Any] | None = None


def plan_tick(slot: ReviewSlot | None, record: Mapping[str, Any] | None, now: datetime) -> Tick:
    """Whether this tick runs the reviews. A slot is run once: a tick after it finds the record done for it, or a
    run under way whose lease has not expired; a record that cannot be read is left alone (not run over)."""
    if slot is None:
        return Tick(False, "TRIAGE_REVIEW_SCHEDULE is off")
    due = latest_slot(slot, now)
    claim = {"slot": due.isoformat(), "state": "running", "until": (now + RUN_LEASE).isoformat()}
    if not record or not record.get("slot"):  # never run, or a failed run gave its slot back
        return Tick(True, f"the review of {due.isoformat()} ({slot})", due, claim)
    try:
        taken = datetime.fromisoformat(str(record["slot"]))
        until = datetime.fromisoformat(str(record["until"])) if record.get("until") else None
    except (KeyError, TypeError, ValueError):
        return Tick(False, "the review run record is unreadable; left for a person (delete it to run again)")
    if taken > due:
        return Tick(False, f"a run for a later slot ({taken.isoformat()}) is recorded: the schedule moved back?")
    if taken == due and record.get("state") == "done":
        return Tick(False, f"the review of {due.isoformat()} ran")
    if taken == due and until is not None and now < until:
        return Tick(False, f"the review of {due.isoformat()} is running elsewhere (until {until.isoformat()})")
    again = taken == due
    return Tick(True, f"{'a killed run of ' if again else ''}the review of {due.isoformat()} ({slot})", due, claim)


def finished(tick: Tick, now: datetime) -> dict[str, Any]:
    """The record once the reviews of `tick`'s slot ran (their tickets were sent or reported failed)."""
    assert tick.slot is not None
    return {"slot": tick.slot.isoformat(), "state": "done", "until": None, "at": now.isoformat()}
