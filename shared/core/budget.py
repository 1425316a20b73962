"""The grant budget: one stored record of the slots grants hold, so no interleaving of runs, events, approvals or
instances can exceed the rolling caps. Pure; the engine (`shared/engine/budget.py`) reads it, asks here whether a
slot is free, and writes it back with a conditional write (the record's etag), retrying a lost race.

A slot is taken before the role-assignment write and given back when that write did not happen (refused, failed,
deferred). A slot whose write may have happened stays until it leaves the 24-hour window: the budget can only
over-count, never under-count. A slot dated in the future (another instance's clock runs ahead) counts in every
window until its time has passed, for the same reason.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any

BUDGET_KEY = "grant-budget"
DAY = timedelta(hours=24)
HOUR = timedelta(hours=1)


@dataclass(frozen=True)
class Slot:
    token: str  # unique per reservation: what a release names
    at: datetime
    incident_id: str


@dataclass(frozen=True)
class BudgetCounts:
    last_24h: int
    last_hour: int


@dataclass(frozen=True)
class GrantBudget:
    slots: tuple[Slot, ...] = ()
    # Not "": the stored record could not be read; the budget then counts as spent (fail closed).
    unreadable: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"slots": [{"token": s.token, "at": s.at.isoformat(), "incident_id": s.incident_id}
                          for s in self.slots]}

    @classmethod
    def from_dict(cls, value: dict[str, Any] | None) -> GrantBudget:
        if not value:
            return cls()
        try:
            raw = value["slots"]
            if not isinstance(raw, list):
                raise TypeError("slots is not a list")
            slots = tuple(Slot(str(s["token"]), _aware(datetime.fromisoformat(s["at"])), str(s["incident_id"]))
                          for s in raw)
        except (KeyError, TypeError, ValueError) as exc:
            return cls(unreadable=f"stored grant budget unreadable ({type(exc).__name__})")
        return cls(slots)

    def counts(self, now: datetime) -> BudgetCounts:
        """Slots taken in the rolling day and hour before `now` (and any dated after it)."""
        return BudgetCounts(
            last_24h=sum(1 for s in self.slots if s.at > now - DAY),
            last_hour=sum(1 for s in self.slots if s.at > now - HOUR),
        )

    def reserve(self, slot: Slot, *, max_per_day: int, max_per_hour: int) -> GrantBudget | None:
        """The budget with `slot` taken, or None when either cap is reached (or the record is unreadable).
        Slots that left the day are dropped on the way, so the record stays as small as the daily cap."""
        if self.unreadable:
            return None
        kept = tuple(s for s in self.slots if s.at > slot.at - DAY)
        counts = GrantBudget(kept).counts(slot.at)
        if not (counts.last_24h < max_per_day and counts.last_hour < max_per_hour):
            return None
        return replace(self, slots=(*kept, slot))

    def release(self, token: str) -> GrantBudget:
        return replace(self, slots=tuple(s for s in self.slots if s.token != token))

    def holds(self, token: str) -> bool:
        return any(s.token == token for s in self.slots)


def spent(max_per_day: int, max_per_hour: int) -> BudgetCounts:
    """Counts that no cap allows: what an unreadable budget counts as."""
    return BudgetCounts(last_24h=max(max_per_day, 0), last_hour=max(max_per_hour, 0))


def _aware(value: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("slot time without a time zone")
    return value
