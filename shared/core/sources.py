"""Each failure source stands alone: what one read of it said, and the health the store keeps per source.

A (workspace, table) source is read on its own; its outcome is one of three states:

- `ok`: the source answered (a partial answer is ok too, and says so in `detail`);
- `no_data`: the workspace has no such table or column yet (Log Analytics answers 400 "Failed to resolve table or
  column expression" until the first diagnostics arrive, which can take up to two hours). Recorded, not an error;
- `failed`: the read raised (403, 404, 5xx after the SDK's retries, a connection error). Recorded with its whole
  message; the other sources are still read, and the run reports the failure.

Pure: the engine reads the sources, calls these, and persists `SourceHealth` as the named value `health_key(name)`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

HEALTH_KEY_PREFIX = "source-health:"


class SourceState(StrEnum):
    OK = "ok"
    NO_DATA = "no_data"
    FAILED = "failed"


def health_key(source_name: str) -> str:
    """The store's named value that holds one source's health."""
    return HEALTH_KEY_PREFIX + source_name


@dataclass(frozen=True)
class SourceCheck:
    """What one read of a source said."""

    state: SourceState
    detail: str = ""  # the whole message: the failure, the missing table or column, or the partial-result error
    transient: bool = False  # failed only: a retry (the next run, an Event Grid redelivery) may cure it
    partial: bool = False  # ok only: the answer was partial


def advances_watermark(check: SourceCheck) -> bool:
    """Only a complete read moves a source's watermark. A failed or partial read did not read its whole window;
    a no-data read read nothing, so the window is read again once the table exists: the first rows can carry
    times from before the table appeared (first diagnostics take up to two hours to arrive)."""
    return check.state == SourceState.OK and not check.partial


ANCHOR_KEY_PREFIX = "scan-anchor:"


def anchor_key(source_name: str) -> str:
    """The store's named value that holds where a source's first read starts, until a read completes."""
    return ANCHOR_KEY_PREFIX + source_name


def first_read_start(anchor: datetime | None, now: datetime, lookback: timedelta) -> datetime:
    """A source never read completely starts where its first read started (the anchor), so first runs that fail
    for longer than the look-back still read the oldest failures; without an anchor, `lookback` before now."""
    return anchor if anchor is not None else now - lookback


def next_watermark(end: datetime, read_through: datetime | None) -> datetime:
    """Where a complete read moves the watermark: where the source says it read through (its own clock), never
    past the end asked for; a source that does not say windows on event time and read to `end`."""
    return min(end, read_through) if read_through is not None else end


def error_text(exc: BaseException) -> str:
    """An exception's whole message (every line), or its type when it has none."""
    text = str(exc).strip()
    return text if text else type(exc).__name__


@dataclass(frozen=True)
class SourceHealth:
    name: str
    state: SourceState
    since: datetime  # when the source entered this state
    checked_at: datetime  # the last read
    last_success: datetime | None = None  # the last read that answered (ok), partial or not
    last_error: str | None = None  # the last failure's whole message (kept after the source recovers)
    last_error_at: datetime | None = None
    detail: str = ""  # what the last read said (failure, missing table or column, partial result); "" when clean
    transient: bool = False  # the last failure may be cured by a retry

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": str(self.state),
            "since": self.since.isoformat(),
            "checked_at": self.checked_at.isoformat(),
            "last_success": _iso(self.last_success),
            "last_error": self.last_error,
            "last_error_at": _iso(self.last_error_at),
            "detail": self.detail,
            "transient": self.transient,
        }

    @classmethod
    def from_dict(cls, value: dict[str, Any]) -> SourceHealth:
        return cls(
            name=str(value["name"]),
            state=SourceState(value["state"]),
            since=datetime.fromisoformat(value["since"]),
            checked_at=datetime.fromisoformat(value["checked_at"]),
            last_success=_time(value.get("last_success")),
            last_error=value.get("last_error"),
            last_error_at=_time(value.get("last_error_at")),
            detail=str(value.get("detail") or ""),
            transient=bool(value.get("transient")),
        )

    def public(self) -> dict[str, Any]:
        """For anonymous readers (GET /api/health): the same fields, secrets-looking text redacted."""
        body = self.to_dict()
        body["last_error"] = redact(self.last_error) if self.last_error is not None else None
        body["detail"] = redact(self.detail)
        return body


def checked(previous: SourceHealth | None, name: str, check: SourceCheck, now: datetime) -> SourceHealth:
    """The source's health after one read: the state and `since` move only when the state changes; a success is
    remembered as `last_success`, a failure as `last_error` (with its time)."""
    since = previous.since if previous is not None and previous.state == check.state else now
    base = previous if previous is not None else SourceHealth(name, check.state, since, now)
    health = replace(base, name=name, state=check.state, since=since, checked_at=now, detail=check.detail,
                     transient=check.transient if check.state == SourceState.FAILED else False)
    if check.state == SourceState.OK:
        return replace(health, last_success=now)
    if check.state == SourceState.FAILED:
        return replace(health, last_error=check.detail, last_error_at=now)
    return health


def never_read(name: str) -> dict[str, Any]:
    """What is shown for a configured source no run has read yet."""
    return {"name": name, "state": "unknown", "since": None, "checked_at": None, "last_success": None,
            "last_error": None, "last_error_at": None, "detail": "not read yet", "transient": False}


# Things that must never reach an anonymous reader, should an SDK message ever carry one: (pattern, replacement).
_SECRETS = (
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 [redacted]"),
    (re.compile(r"\beyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]*"), "[redacted]"),  # a JWT
    (re.compile(r"(?i)\b(sig|signature|key|password|secret|token|client_secret|access_token)=[^&\s\"']+"),
     r"\1=[redacted]"),
)


def redact(text: str) -> str:
    for pattern, replacement in _SECRETS:
        text = pattern.sub(replacement, text)
    return text


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _time(value: Any) -> datetime | None:
    return datetime.fromisoformat(value) if value else None
