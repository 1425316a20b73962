"""Each failure source stands alone: one read per source, what it said (ok, no data yet, failed), and its health.

A source whose read raises is recorded with the whole message and the scan goes on with the others; a source that
has no table yet is "no data yet", which is no error. Health is kept per source in the store (the named value
`source-health:<name>`), audited when it changes, and read back by `python -m shared sources`, `scan --json` and
`GET /api/health`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from shared.core.ports import FailureSource, SourceBatch
from shared.core.records import ConflictError
from shared.core.sources import (
    SourceCheck,
    SourceHealth,
    SourceState,
    anchor_key,
    checked,
    error_text,
    first_read_start,
    health_key,
    never_read,
)
from shared.engine.runtime import Runtime
from shared.engine.unit_of_work import MAX_ATTEMPTS

log = logging.getLogger("triage")


@dataclass(frozen=True)
class SourceRead:
    """One source's read in one run: the window asked for, what it said, and the batch when it answered."""

    source: FailureSource
    start: datetime
    end: datetime
    watermark: datetime | None
    check: SourceCheck
    batch: SourceBatch | None = None  # None: the read failed
    error: BaseException | None = None  # the failure, for a delivery that must be retried

    @property
    def name(self) -> str:
        return self.source.name

    def to_json(self) -> dict[str, Any]:
        return {"state": str(self.check.state), "detail": self.check.detail, "transient": self.check.transient,
                "partial": self.check.partial}


def read_source(rt: Runtime, source: FailureSource, start: datetime, end: datetime,
                resource_ids: tuple[str, ...] | None, watermark: datetime | None) -> SourceRead:
    try:
        with rt.telemetry.span("source.read", source=source.name):
            batch = source.read(start, end, resource_ids, watermark=watermark)
    except Exception as exc:  # noqa: BLE001 - one bad source never stops the others; it is recorded and reported
        text = error_text(exc)
        log.error("source %s could not be read: %s", source.name, text,
                  extra={"source": source.name})
        check = SourceCheck(SourceState.FAILED, text, transient=rt.transient(exc))
        return SourceRead(source, start, end, watermark, check, error=exc)
    if batch.no_data:
        log.info("source %s has no data yet: %s", source.name, batch.no_data, extra={"source": source.name})
        return SourceRead(source, start, end, watermark, SourceCheck(SourceState.NO_DATA, batch.no_data), batch)
    partial = "; ".join(batch.partial_errors)
    return SourceRead(source, start, end, watermark, SourceCheck(SourceState.OK, partial, partial=bool(partial)),
                      batch)


def first_read_anchor(rt: Runtime, source: FailureSource, now: datetime, lookback: timedelta) -> datetime:
    """Where a source without a watermark starts reading: the anchor its first attempt stored (create-only, so
    every later attempt, on any instance, starts there too), until a complete read sets the watermark."""
    key = anchor_key(source.name)
    value, _ = rt.store.get_value(key)
    if value is None:
        try:
            rt.store.put_value(key, {"start": first_read_start(None, now, lookback).isoformat()})
        except ConflictError:
            pass  # another instance anchored it first: use that one
        value, _ = rt.store.get_value(key)
    try:
        anchor = datetime.fromisoformat(str((value or {})["start"]))
    except (KeyError, ValueError):
        anchor = None  # an unreadable anchor: read the look-back
    return first_read_start(anchor, now, lookback)


def record_health(rt: Runtime, reads: list[SourceRead], correlation_id: str) -> dict[str, SourceHealth]:
    """Persist each read source's health; audit a change of state or of what the source says. Returns the health
    recorded, by source name."""
    now = rt.clock()
    recorded: dict[str, SourceHealth] = {}
    for read in reads:
        before, after = _change_health(rt, read, now)
        if after is None:
            log.warning("health of source %s not recorded: other writers kept winning", read.name,
                        extra={"source": read.name})
            continue
        recorded[read.name] = after
        if before is None or (before.state, before.detail) != (after.state, after.detail):
            rt.audit("source-health", f"{read.name}: {after.state}" + (f": {after.detail}" if after.detail else ""),
                     correlation_id=correlation_id,
                     inputs={"source": read.name, "state": str(after.state), "transient": after.transient,
                             "previous": str(before.state) if before else None})
    return recorded


def _change_health(rt: Runtime, read: SourceRead, now: datetime) -> tuple[SourceHealth | None, SourceHealth | None]:
    for _ in range(MAX_ATTEMPTS):
        value, etag = rt.store.get_value(health_key(read.name))
        before = _parsed(value)
        after = checked(before, read.name, read.check, now)
        try:
            rt.store.put_value(health_key(read.name), after.to_dict(), expected_etag=etag)
        except ConflictError:
            continue
        return before, after
    return None, None


def source_health(rt: Runtime, *, public: bool = False) -> list[dict[str, Any]]:
    """The stored health of every configured source, in configuration order (`public`: for anonymous readers)."""
    out = []
    for source in rt.sources:
        value, _ = rt.store.get_value(health_key(source.name))
        health = _parsed(value)
        if health is None:
            out.append(never_read(source.name))
        else:
            out.append(health.public() if public else health.to_dict())
    return out


def _parsed(value: dict[str, Any] | None) -> SourceHealth | None:
    if not value:
        return None
    try:
        return SourceHealth.from_dict(value)
    except (KeyError, TypeError, ValueError):
        return None  # an unreadable record is replaced by the next read's
