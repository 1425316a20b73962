"""What the store keeps beside incidents (audit records, suppressions) and the errors every store raises.

Core types: the engine catches these errors and builds these records without knowing which backend is in use.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, NamedTuple

from shared.core.incidents import OPEN_STATUSES, Incident


class StoreError(RuntimeError):
    """The store could not be read or written. Transient: the run fails and is retried."""


class ConflictError(StoreError):
    """A conditional write lost a race (exists on create, or changed since read)."""


class EventClaim(StrEnum):
    """What `Store.claim_event` found: the delivery is now this caller's to handle (under a lease), it was handled
    already (a duplicate), or another handler holds an unexpired lease on it (retry later)."""

    CLAIMED = "claimed"
    DONE = "done"
    HELD = "held"


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    incident_id: str | None
    kind: str  # decision | refusal | action | event-rejected | approval | revoke | suppress | breaker | ...
    actor: str  # "service" or the approving engineer's identity
    correlation_id: str
    detail: str
    inputs: dict[str, Any]
    trace_id: str | None = None  # the OpenTelemetry trace the record was written in (None: telemetry off)


@dataclass(frozen=True)
class Suppression:
    target: str  # normalized object id or resource id
    until: datetime
    reason: str
    actor: str
    created_at: datetime


# Failures a retry can cure by themselves: the store, or the network to it.
TRANSIENT_ERRORS: tuple[type[BaseException], ...] = (StoreError, ConnectionError, TimeoutError, OSError)


def in_cause_chain(exc: BaseException, test: Callable[[BaseException], bool]) -> bool:
    """`test` holds for the exception or one of its explicit causes (adapters wrap errors: `raise X from exc`)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if test(current):
            return True
        current = current.__cause__
    return False


def is_transient(exc: BaseException) -> bool:
    """The core's view: a store or network failure somewhere in the cause chain. The composition root gives the
    runtime the adapters' view, which also knows the Azure SDK's errors."""
    return in_cause_chain(exc, lambda e: isinstance(e, TRANSIENT_ERRORS))


# ---- the compact view of an incident a repeat scan reads (Store.get_settled) ----

# `triage.settled` reads the latest action only; one more is kept so a rule reading the decision before a
# follow-up action still sees it (tests/state/test_layout.py holds the view to `settled`'s answer).
SETTLED_VIEW_ACTIONS = 2


class SettledAction(NamedTuple):
    """An action as the view keeps it: what it was and the rules that refused it (not when, nor its text)."""

    kind: str
    rules: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SettledView:
    """What a repeat scan needs of an incident to tell whether a failure would change it (`triage.settled`): its
    status, last failure, ticket and grant state, the times that end a wait, and only its latest actions. Not an
    Incident: it has no diagnosis, no etag, nothing a write could take, so it can never be written back over the
    incident it summarises. A few fields only: a repeat scan decodes one per known group."""

    id: str
    status: str
    last_seen: datetime
    count: int
    ticket_pending: bool
    ticket_queued: tuple[str, ...]
    assignment_id: str | None
    approval_expires_at: datetime | None
    closed_at: datetime | None
    actions: tuple[SettledAction, ...]

    @property
    def etag(self) -> None:
        """None, as for an incident never stored: the view is never written back."""
        return None

    @property
    def diagnosis(self) -> None:
        """None: a repeat scan finds the incident by the text's diagnosis, and needs none of its own."""
        return None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


def settled_view(incident: Incident) -> SettledView:
    """The view of an incident that `Store.get_settled` reads back after every write of it."""
    return SettledView(incident.id, incident.status, incident.last_seen, incident.count, incident.ticket_pending,
                       tuple(incident.ticket_queued), incident.assignment_id, incident.approval_expires_at,
                       incident.closed_at, tuple(SettledAction(a.kind, tuple(a.rules))
                                                 for a in incident.actions[-SETTLED_VIEW_ACTIONS:]))
