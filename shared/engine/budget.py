"""Reserving a slot of the grant budget before any role-assignment write, and giving it back when the write did not
happen: a conditional write of one stored record (core/budget.py), so the rolling caps hold across runs, events,
approvals and instances.

Both backends make the write a compare-and-set: SQLite checks the etag inside a `BEGIN IMMEDIATE` transaction,
Table Storage replaces the entity `If-Match` its ETag (creating it fails if another writer created it first). A
writer that loses the race reads again and retries after a short random pause, so a burst of contenders spreads out
instead of colliding again in step.
"""

from __future__ import annotations

import logging
import random
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

from shared.core.budget import BUDGET_KEY, BudgetCounts, GrantBudget, Slot, spent
from shared.core.records import ConflictError, StoreError
from shared.engine.runtime import Runtime

log = logging.getLogger("triage")

# Contenders for one record: each lost race is another instance's won one, so this bounds how many writers may
# reserve at the same instant before a run gives up (and fails, to be retried) rather than waits forever.
RESERVE_ATTEMPTS = 40
_PAUSE_SECONDS = 0.002  # the first random pause; it doubles with each lost race, up to _MAX_PAUSE_SECONDS
_MAX_PAUSE_SECONDS = 0.05


@dataclass(frozen=True)
class Reservation:
    """A slot this run holds: the grant it was taken for may call ARM once."""

    token: str
    incident_id: str
    at: datetime


@dataclass(frozen=True)
class BudgetAnswer:
    reservation: Reservation | None  # None: a cap is reached
    counts: BudgetCounts  # what the budget held when it answered (before this slot)


def read_budget(rt: Runtime) -> tuple[GrantBudget, str | None]:
    value, etag = rt.store.get_value(BUDGET_KEY)
    return GrantBudget.from_dict(value), etag


def budget_counts(rt: Runtime, now: datetime) -> BudgetCounts:
    """The slots taken in the rolling day and hour (a snapshot: only a reservation decides)."""
    budget, _ = read_budget(rt)
    if budget.unreadable:
        return spent(rt.policy.max_grants_per_day, rt.policy.max_grants_per_hour)
    return budget.counts(now)


def reserve(rt: Runtime, incident_id: str) -> BudgetAnswer:
    """Take one slot for a grant of `incident_id`, or say that a cap is reached. Raises StoreError when the store
    cannot be written or other writers kept winning."""
    pause = _PAUSE_SECONDS
    for _ in range(RESERVE_ATTEMPTS):
        now = rt.clock()
        budget, etag = read_budget(rt)
        slot = Slot(uuid.uuid4().hex, now, incident_id)
        taken = budget.reserve(slot, max_per_day=rt.policy.max_grants_per_day,
                               max_per_hour=rt.policy.max_grants_per_hour)
        if taken is None:
            counts = (spent(rt.policy.max_grants_per_day, rt.policy.max_grants_per_hour) if budget.unreadable
                      else budget.counts(now))
            return BudgetAnswer(None, counts)
        try:
            rt.store.put_value(BUDGET_KEY, taken.to_dict(), expected_etag=etag)
        except ConflictError:
            time.sleep(random.uniform(0, pause))  # jitter, not security
            pause = min(pause * 2, _MAX_PAUSE_SECONDS)
            continue
        return BudgetAnswer(Reservation(slot.token, incident_id, now), budget.counts(now))
    raise StoreError(f"the grant budget kept changing under concurrent writers ({RESERVE_ATTEMPTS} attempts)")


def release(rt: Runtime, reservation: Reservation) -> bool:
    """Give a slot back (the write it was taken for did not happen). Best effort: a slot that cannot be given back
    only makes the budget stricter until it leaves the day. True when it was given back."""
    for _ in range(RESERVE_ATTEMPTS):
        try:
            budget, etag = read_budget(rt)
            if budget.unreadable or not budget.holds(reservation.token):
                return False
            rt.store.put_value(BUDGET_KEY, budget.release(reservation.token).to_dict(), expected_etag=etag)
        except ConflictError:
            time.sleep(random.uniform(0, _MAX_PAUSE_SECONDS))  # jitter, not security
            continue
        except StoreError as exc:
            log.warning("grant budget slot %s not given back: %s", reservation.token, exc)
            return False
        return True
    log.warning("grant budget slot %s not given back: other writers kept winning", reservation.token)
    return False
