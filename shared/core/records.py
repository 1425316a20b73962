"""What the store keeps beside incidents (audit records, suppressions) and the errors every store raises.

Core types: the engine catches these errors and builds these records without knowing which backend is in use.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


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
