"""The ports: what the engine calls on the outside world, and the plain data that crosses.

Adapters (`shared/adapters`, `shared/state`, `shared/tickets`) implement these Protocols over the Azure SDKs, SQLite,
Table Storage and the trackers; tests implement them with in-memory fakes (`tests/support/fakes.py`). The engine's
`Runtime` is typed with them, so a method the engine calls and a port does not declare is a type error.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Protocol

from shared.core.allowlist import normalize_object_id
from shared.core.incidents import Incident
from shared.core.model import Evidence, FailureSignal, ResourceEvidence, RoleAssignmentEvidence
from shared.core.records import AuditRecord, EventClaim, SettledView, Suppression
from shared.core.reviews.model import (
    AppActivity,
    CallerActivity,
    HeldAssignment,
    PolicyAssignmentFacts,
    PolicyExemptionFacts,
    RoleDefinitionFacts,
)
from shared.core.ticket_model import TicketContent, TicketRef

# What "now" is: the service reads the time through this, so tests and the stand-in share a frozen clock.
Clock = Callable[[], datetime]

# (normalized object id or None for key callers, resource id): the unit evidence is gathered for.
EvidenceKey = tuple[str | None, str]


def evidence_key(object_id: str | None, resource_id: str | None) -> EvidenceKey:
    return normalize_object_id(object_id), resource_id or ""


@dataclass(frozen=True)
class RejectedRow:
    source: str
    reason: str
    row: dict  # what was received, for the audit record


@dataclass(frozen=True)
class SourceBatch:
    """Failure groups read from one source over [start, end)."""

    source: str  # stable name used as the watermark key, e.g. "logs:<workspace id>"
    start: datetime
    end: datetime
    signals: tuple[FailureSignal, ...]
    partial_errors: tuple[str, ...] = ()  # the query returned partial data: used, and reported
    rejected: tuple[RejectedRow, ...] = ()  # malformed rows: recorded, never crash the run
    # Not "" when the workspace has no such table or column yet (no diagnostics received): the whole answer. Then
    # `signals` is empty and the batch says nothing about the window; it is no error.
    no_data: str = ""
    # Where the read really ended, by the source's own clock: a source that windows on ingestion time reads what
    # arrived in [start, read_through), and the watermark moves here (None: to `end`; a window on event time).
    read_through: datetime | None = None


@dataclass(frozen=True)
class Activity:
    """Traffic of one principal (None = key callers) to one resource since a time: for verification."""

    failures: int
    successes: int


@dataclass(frozen=True)
class GrantOutcome:
    status: str  # created | exists | retry_later | forbidden | failed
    assignment_id: str | None = None
    created_on: datetime | None = None
    message: str = ""


class FailureSource(Protocol):
    name: str

    def read(
        self,
        start: datetime,
        end: datetime,
        resource_ids: tuple[str, ...] | None = None,
        *,
        watermark: datetime | None = None,
    ) -> SourceBatch:
        """Summarized 401/403 (and 400 tenant) failure groups in [start, end); optionally only these resources.
        A source that windows on ingestion time (Log Analytics' AzureDiagnostics) reads the rows that arrived in
        [start, end), capped by its own clock, and says where it stopped in `SourceBatch.read_through`.

        `watermark` (where the previous scan ended; start = watermark - overlap) makes each signal's
        `overlap_count` the rows before it, i.e. rows an earlier scan may already have counted. None: 0.

        A table or column the workspace does not have yet is `SourceBatch.no_data`, not an error. Any other
        failure to read (403, 404, 5xx after the SDK's retries) raises, with the whole message.
        """
        ...

    def activity(self, principal_id: str | None, resource_id: str, since: datetime, until: datetime) -> Activity:
        """No data yet (a missing table) is no activity; a failure to read raises."""
        ...


class EvidenceProvider(Protocol):
    def new_run(self) -> None:
        """Forget every cached answer: the next look-ups read Azure again."""
        ...

    def gather_evidence(self, pairs: set[EvidenceKey]) -> dict[EvidenceKey, Evidence]:
        """Role assignments and account settings for each (principal, resource), read concurrently. A pair any of
        whose look-ups failed says so in `Evidence.failed` (what failed, whole messages); its other fields hold
        only what was read (`assignments=None`: not read). Never raises for a failed look-up."""
        ...

    def failures(self) -> tuple[str, ...]:
        """Every look-up that failed since `new_run()` (whole messages), pair-specific or not: the run reports
        them as `evidence_errors`."""
        ...

    def accept_accounts(self, settings: Mapping[str, ResourceEvidence]) -> None:
        """Account settings an earlier run read (a cut-off scan's checkpoint), by account id: until `new_run()`,
        `gather_evidence` takes them instead of reading those accounts again."""
        ...


class RoleWriter(Protocol):
    def create(
        self, *, scope: str, principal_id: str, principal_type: str, role_guid: str, incident_id: str
    ) -> GrantOutcome:
        ...

    def delete_own(self, assignment_id: str) -> bool:
        """Delete an assignment only if its description carries this service's marker. True if deleted."""
        ...

    def get(self, assignment_id: str) -> RoleAssignmentEvidence | None:
        """One assignment by its full id; None when it does not exist (or no longer does)."""
        ...

    def find_own(self, *, scope: str, principal_id: str, role_guid: str | None,
                 incident_id: str) -> RoleAssignmentEvidence | None:
        """The assignment `create` made for this incident, if it exists: the grant's deterministic name at `scope`
        (when the role is known), else an assignment of the principal at or below `scope` whose description
        carries the service's marker for `incident_id`. How a grant whose instance died between ARM's write and
        recording it is recognised as the service's own. None when there is none; a failure to read raises."""
        ...


class EventPublisher(Protocol):
    def publish(self, event_type: str, data: dict[str, Any]) -> object:
        """Best effort: the engine logs a failure and goes on."""
        ...


class Store(Protocol):
    # incidents
    def get_incident(self, incident_id: str) -> Incident | None: ...
    # many at once (the steady-state scan reads every known group's incident in one go); absent ids are left out
    def get_incidents(self, incident_ids: Iterable[str]) -> dict[str, Incident]: ...
    def put_incident(self, incident: Incident, expected_etag: str | None = None) -> Incident: ...
    # the same conditional write, and the incident's audit records with it: both or neither (one transaction on
    # SQLite, one entity-group transaction on Tables), so a crash leaves no state change without its record
    def put_incident_audited(self, incident: Incident, expected_etag: str | None,
                             audit: Sequence[AuditRecord]) -> Incident: ...
    def list_incidents(self, status: str | None = None) -> list[Incident]: ...
    def due_verifications(self, now: datetime) -> list[Incident]: ...
    # incidents whose ticket operation failed and waits for a retry (ticket_pending), by id
    def list_ticket_pending(self) -> list[Incident]: ...
    # the compact view of each incident a repeat scan reads (`records.settled_view`: no diagnosis, the latest
    # actions, no etag), kept in step with every incident write; absent ids are left out
    def get_settled(self, incident_ids: Iterable[str]) -> dict[str, SettledView]: ...
    # many new incidents, each with its audit records, created in batches (entity-group transactions of at most
    # 100 operations on Tables, one transaction on SQLite): in order, the incident as stored, or None where one
    # already existed (nothing of it written)
    def create_incidents(self, items: Sequence[tuple[Incident, Sequence[AuditRecord]]]) -> list[Incident | None]: ...
    # many incidents, each replaced at the etag it was read at with its audit records, batched as create_incidents:
    # in order, the incident as stored, or None where it changed since or vanished (nothing of it written)
    def replace_incidents(self, items: Sequence[tuple[Incident, str, Sequence[AuditRecord]]]
                          ) -> list[Incident | None]: ...
    # the incident as this store last wrote or read it, or None: maybe stale (another writer's change is not seen),
    # so only for a conditional write at its etag, whose conflict then reads it fresh (unit_of_work)
    def cached_incident(self, incident_id: str) -> Incident | None: ...
    # the incidents holding this role assignment id (compared case-insensitively), by id: a role-assignment
    # delete event finds its incident with it (an index on Tables, never a scan)
    def incidents_with_assignment(self, assignment_id: str) -> list[Incident]: ...
    # the open incidents of this principal (object ids compared normalized), by id: a role-assignment event
    def open_incidents_of_principal(self, principal_id: str) -> list[Incident]: ...

    # scan watermarks, per source
    def get_watermark(self, source: str) -> datetime | None: ...
    def set_watermark(self, source: str, value: datetime) -> None: ...

    # at-least-once event delivery: True the first time an id is seen, False after
    def mark_event_processed(self, event_id: str, at: datetime) -> bool: ...
    # undo a mark or a claim when processing failed transiently, so Event Grid's redelivery is processed
    def forget_event(self, event_id: str) -> None: ...
    # claim a delivery for `lease` (atomic): CLAIMED for one caller; DONE once completed; HELD while another
    # caller's lease runs. An expired lease (its handler was killed or timed out) is claimed again.
    def claim_event(self, event_id: str, at: datetime, lease: timedelta) -> EventClaim: ...
    # the claimed delivery's effects are durable: from now on it is DONE (and mark_event_processed says False)
    def complete_event(self, event_id: str, at: datetime) -> None: ...

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


class TicketSink(Protocol):
    """A tracker or chat channel. A sink may also say `takes_reviews = False` (chat: it cannot find a review's
    message again), and the reviews leave it out (engine/review_tickets.py)."""

    name: str

    def open_or_update(self, content: TicketContent, *, comment: str | None = None) -> TicketRef:
        """Find the open ticket carrying content.fingerprint (reopen a closed one if the tracker allows, unless a
        person closed it as declined: then leave it closed and say so in TicketRef.decision), update counts/last
        seen; create one if none exists. `comment` is added when given (the caller throttles recurrence comments).
        A sink that cannot look tickets up (chat) finds its own earlier message in content.refs."""
        ...

    def resolve(self, content: TicketContent, *, comment: str) -> TicketRef | None:
        """Close or resolve the ticket for content.fingerprint with `comment`. None if there is none."""
        ...


# What a span or a measurement may carry: OpenTelemetry's attribute values.
Attribute = str | bool | int | float


class Telemetry(Protocol):
    """Spans, counters and gauges of the engine's steps. The engine calls only this: the composition root gives it
    OpenTelemetry (`shared/adapters/telemetry.py`) when Application Insights is configured, else a no-op."""

    def span(self, name: str, **attributes: Attribute) -> AbstractContextManager[object]:
        """A span around the block, current inside it (and in threads given a copy of the context); an exception
        leaving the block is recorded on it."""
        ...

    def annotate(self, **attributes: Attribute) -> None:
        """Add attributes to the current span."""
        ...

    def count(self, name: str, amount: int = 1, **attributes: Attribute) -> None: ...

    def gauge(self, name: str, value: float, **attributes: Attribute) -> None: ...

    def trace_id(self) -> str | None:
        """The current trace's id (32 hex digits), None outside any trace: audit records carry it."""
        ...


class ReviewReader(Protocol):
    """What the access reviews read (`engine/reviews.py`, docs/reviews.md): reads only, never a write. Each call
    raises with the whole message when Azure could not be read; the engine records it as "could not check"."""

    def account_ids(self) -> list[str]:
        """The AI accounts to review: every Cognitive Services account of the configured subscription."""
        ...

    def account(self, account_id: str) -> ResourceEvidence | None:
        """The account's settings (kind, disableLocalAuth); None when ARM has no such account."""
        ...

    def caller_activity(self, account_ids: Sequence[str], since: datetime, until: datetime
                        ) -> dict[str, tuple[CallerActivity, ...]]:
        """RequestResponse rows of the accounts over [since, until), summarized per caller and operation, by
        `resource_ids.account_key`. A workspace without the table yet has no rows (no error)."""
        ...

    def assignments(self, account_id: str, callers: Sequence[str]) -> tuple[HeldAssignment, ...]:
        """Every role assignment at, above or below the account, and the ones each caller holds through its groups
        (`via_group_of` set)."""
        ...

    def role_definitions(self, account_id: str, role_guids: Iterable[str]) -> tuple[RoleDefinitionFacts, ...]:
        """The definitions of roles the built-in catalogue does not carry (custom roles), as ARM has them."""
        ...

    def policy_assignments(self, account_id: str) -> tuple[PolicyAssignmentFacts, ...]:
        """The Azure Policy assignments that apply to the account, each with its definition (a set's members too)."""
        ...

    def policy_exemptions(self, account_id: str) -> tuple[PolicyExemptionFacts, ...]:
        """The policy exemptions that apply to the account."""
        ...

    def app_activity(self, since: datetime, until: datetime) -> tuple[AppActivity, ...] | None:
        """Optional: the apps that called inference hosts over [since, until), from App Insights and API Management
        gateway logs; None (this default) when the reader has no such source. Raises when none could be read."""
        return None
