"""The circuit breaker: after N grants in a row fail verification, stop granting until an operator resets it.

Only verifications of grants this service made should be fed in: a wait on someone else's assignment that
escalates says nothing about the service's own grants.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared.core.verification import ESCALATED, RESOLVED


@dataclass(frozen=True)
class BreakerState:
    consecutive_failures: int = 0
    open: bool = False
    opened_at: datetime | None = None
    reason: str = ""
    reset_by: str | None = None
    reset_at: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "consecutive_failures": self.consecutive_failures,
            "open": self.open,
            "opened_at": self.opened_at.isoformat() if self.opened_at else None,
            "reason": self.reason,
            "reset_by": self.reset_by,
            "reset_at": self.reset_at.isoformat() if self.reset_at else None,
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any] | None) -> BreakerState:
        """Rebuild a stored state. Nothing stored means closed; a record that cannot be read means OPEN:
        when in doubt, grants stop and everything becomes a ticket."""
        if not value:
            return cls()
        try:
            failures = value.get("consecutive_failures", 0)
            is_open = value.get("open", False)
            if not isinstance(failures, int) or isinstance(failures, bool) or failures < 0:
                raise ValueError("consecutive_failures")
            if not isinstance(is_open, bool):
                raise ValueError("open")
            return cls(
                consecutive_failures=failures,
                open=is_open,
                opened_at=_time(value.get("opened_at")),
                reason=str(value.get("reason") or ""),
                reset_by=value.get("reset_by") if isinstance(value.get("reset_by"), str) else None,
                reset_at=_time(value.get("reset_at")),
            )
        except (ValueError, TypeError, AttributeError) as exc:
            return cls(open=True, reason=f"stored breaker state unreadable ({exc}); reset it to resume grants")


def _time(value: Any) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise TypeError("time must be an ISO-8601 string")
    return datetime.fromisoformat(value)


def after_verification(state: BreakerState, outcome: str, threshold: int, now: datetime) -> BreakerState:
    """Count a grant's verification outcome: escalated is a failed grant, resolved resets the run of failures.
    Other outcomes (keep checking, closed unverified) say nothing and change nothing. Once open, only `reset`
    closes the breaker."""
    if outcome == RESOLVED:
        return replace(state, consecutive_failures=0)
    if outcome != ESCALATED:
        return state
    failures = state.consecutive_failures + 1
    if state.open or failures < max(1, threshold):
        return replace(state, consecutive_failures=failures)
    return replace(
        state,
        consecutive_failures=failures,
        open=True,
        opened_at=now,
        reason=f"{failures} grants in a row failed verification (threshold {max(1, threshold)})",
    )


def reset(state: BreakerState, actor: str, now: datetime) -> BreakerState:
    """An operator closes the breaker; the run of failures starts again from zero."""
    return BreakerState(consecutive_failures=0, open=False, opened_at=None, reason="", reset_by=actor, reset_at=now)
