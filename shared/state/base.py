"""The Store contract. Both backends pass the same contract test suite (tests/state/test_store_contract.py).

Rules every backend keeps:
- Writes are conditional: `put_incident(inc, expected_etag=None)` creates and fails with `ConflictError` if the
  incident exists; with an etag it replaces only if unchanged since read, else `ConflictError`. This is what lets
  several instances run at once without acting twice.
- Any other failure raises `StoreError` (or the SDK's own error): callers fail the run loudly and do not advance
  watermarks.
- Datetimes are timezone-aware UTC in and out.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from shared.core.incidents import Incident


class StoreError(RuntimeError):
    """The store could not be read or written. Transient: the run fails and is retried."""


class ConflictError(StoreError):
    """A conditional write lost a race (exists on create, or changed since read)."""


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    incident_id: str | None
    kind: str  # decision | refusal | action | event-rejected | approval | revoke | suppress | breaker | ...
    actor: str  # "service" or the approving engineer's identity
    correlation_id: str
    detail: str
    inputs: dict[str, Any]


@dataclass(frozen=True)
class Suppression:
    target: str  # normalized object id or resource id
    until: datetime
    reason: str
    actor: str
    created_at: datetime


class Store(Protocol):
    # incidents
    def get_incident(self, incident_id: str) -> Incident | None: ...
    # many at once (the steady-state scan reads every known group's incident in one go); absent ids are left out
    def get_incidents(self, incident_ids: Iterable[str]) -> dict[str, Incident]: ...
    def put_incident(self, incident: Incident, expected_etag: str | None = None) -> Incident: ...
    def list_incidents(self, status: str | None = None) -> list[Incident]: ...
    def due_verifications(self, now: datetime) -> list[Incident]: ...
    # incidents whose ticket operation failed and waits for a retry (ticket_pending), by id
    def list_ticket_pending(self) -> list[Incident]: ...

    # scan watermarks, per source
    def get_watermark(self, source: str) -> datetime | None: ...
    def set_watermark(self, source: str, value: datetime) -> None: ...

    # at-least-once event delivery: True the first time an id is seen, False after
    def mark_event_processed(self, event_id: str, at: datetime) -> bool: ...
    # undo a mark when processing failed transiently, so Event Grid's redelivery is processed
    def forget_event(self, event_id: str) -> None: ...

    # blast-radius accounting
    def record_grant(self, incident_id: str, at: datetime) -> None: ...
    def count_grants_since(self, since: datetime) -> int: ...

    # small named values with optimistic concurrency (circuit breaker, ...): (value, etag)
    def get_value(self, key: str) -> tuple[dict[str, Any] | None, str | None]: ...
    def put_value(self, key: str, value: dict[str, Any], expected_etag: str | None = None) -> str: ...

    # suppressions with expiry
    def add_suppression(self, suppression: Suppression) -> None: ...
    def active_suppressions(self, now: datetime) -> list[Suppression]: ...

    # append-only audit log
    def append_audit(self, record: AuditRecord) -> None: ...
    def list_audit(self, incident_id: str | None = None) -> list[AuditRecord]: ...

    def ping(self) -> None: ...
    def close(self) -> None: ...
