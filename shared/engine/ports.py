"""What the engine needs from the outside world. Adapters (shared/adapters) implement these over the Azure SDKs;
tests and the stand-in use the same adapters against `localazure`. Plain data crosses these boundaries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from shared.core.model import FailureSignal, ResourceEvidence, RoleAssignmentEvidence


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


@dataclass(frozen=True)
class Activity:
    """Traffic of one principal (None = key callers) to one resource since a time: for verification."""

    failures: int
    successes: int


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

        `watermark` (where the previous scan ended; start = watermark - overlap) makes each signal's
        `overlap_count` the rows before it, i.e. rows an earlier scan may already have counted. None: 0.
        """
        ...

    def activity(self, principal_id: str | None, resource_id: str, since: datetime, until: datetime) -> Activity:
        ...


class EvidenceProvider(Protocol):
    def assignments_for(self, principal_id: str, resource_id: str) -> tuple[RoleAssignmentEvidence, ...]:
        """Assignments that apply to the principal at the resource (one list call; inherited included)."""
        ...

    def resource(self, resource_id: str) -> ResourceEvidence | None:
        ...


@dataclass(frozen=True)
class GrantOutcome:
    status: str  # created | exists | retry_later | forbidden | failed
    assignment_id: str | None = None
    created_on: datetime | None = None
    message: str = ""


class RoleWriter(Protocol):
    def create(
        self, *, scope: str, principal_id: str, principal_type: str, role_guid: str, incident_id: str
    ) -> GrantOutcome:
        ...

    def delete_own(self, assignment_id: str) -> bool:
        """Delete an assignment only if its description carries this service's marker. True if deleted."""
        ...
