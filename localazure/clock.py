"""The stand-in's clock: real time by default, frozen or shifted under test control.

Everything time-dependent in the stand-in (RBAC propagation, row timestamps, `ago()` and `timespan`) reads
this clock, never `datetime.now()`, so a test can walk through a propagation window without sleeping.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta


def as_utc(value: datetime | str) -> datetime:
    """An aware UTC datetime from a datetime (naive = UTC) or an ISO-8601 string (a trailing Z is fine)."""
    if isinstance(value, str):
        value = datetime.fromisoformat(value.strip())
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


class Clock:
    """`now()` is real time plus an offset, or a frozen instant once `set_now` (or `frozen`) is used."""

    def __init__(self, start: datetime | str | None = None):
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        self._frozen: datetime | None = as_utc(start) if start is not None else None

    @classmethod
    def frozen(cls, at: datetime | str = "2025-06-01T12:00:00Z") -> Clock:
        return cls(start=at)

    @property
    def is_frozen(self) -> bool:
        return self._frozen is not None

    def now(self) -> datetime:
        with self._lock:
            if self._frozen is not None:
                return self._frozen
            return datetime.now(UTC) + self._offset

    def set_now(self, at: datetime | str) -> None:
        """Freeze the clock at `at`; it stays there until moved again."""
        with self._lock:
            self._frozen = as_utc(at)

    def advance(self, seconds: float) -> datetime:
        """Move time forward (a frozen clock stays frozen; a real one keeps ticking from further ahead)."""
        step = timedelta(seconds=seconds)
        with self._lock:
            if self._frozen is not None:
                self._frozen += step
                return self._frozen
            self._offset += step
            return datetime.now(UTC) + self._offset
