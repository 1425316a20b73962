"""Everything one run needs, typed with the ports: settings, store, sources, evidence, role writer, sinks, clock,
telemetry.

Built by the composition root (`shared.bootstrap.build_runtime`); the engine never builds its own collaborators.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core.policy import PolicyConfig
from shared.core.ports import (
    Clock,
    EventPublisher,
    EvidenceProvider,
    FailureSource,
    RoleWriter,
    Store,
    Telemetry,
    TicketSink,
)
from shared.core.records import AuditRecord, is_transient
from shared.engine.telemetry import NoTelemetry
from shared.settings import Settings

log = logging.getLogger("triage")


def utcnow() -> datetime:
    return datetime.now(UTC)


def new_correlation_id() -> str:
    return str(uuid.uuid4())


@dataclass
class Runtime:
    settings: Settings
    store: Store
    sources: list[FailureSource]
    evidence: EvidenceProvider
    roles: RoleWriter
    sinks: list[TicketSink]
    events: EventPublisher | None = None
    clock: Clock = utcnow
    # Whether a failure is worth a retry (Event Grid redelivers what raises); bootstrap gives the SDK-aware rule.
    transient: Callable[[BaseException], bool] = is_transient
    # Spans and metrics of each step; off (NoTelemetry) unless Application Insights is configured.
    telemetry: Telemetry = field(default_factory=NoTelemetry)
    policy: PolicyConfig = field(init=False)
    _evidence_at: datetime | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.policy = PolicyConfig.from_settings(self.settings)

    def refresh_evidence(self, max_age: timedelta | None = None) -> bool:
        """Start a new evidence run (empty caches) unless the cached evidence is younger than `max_age`; True
        when a new run started (every look-up from now on reads Azure again).

        Scans, approvals and on-call diagnoses always read fresh evidence; a burst of events may share it for a
        short while, so 1,000 events about the same callers don't each cost two ARM reads. Any role write the
        service makes or hears about calls `invalidate_evidence()`."""
        now = self.clock()
        if max_age is not None and self._evidence_at is not None and now - self._evidence_at <= max_age:
            return False
        self.evidence.new_run()
        self._evidence_at = now
        return True

    def invalidate_evidence(self) -> None:
        self._evidence_at = None

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.settings.propagation_window_seconds)

    @property
    def lag(self) -> timedelta:
        return timedelta(seconds=self.settings.ingestion_lag_seconds)

    @property
    def max_verify(self) -> timedelta:
        return timedelta(hours=self.settings.verify_max_hours)

    def audit(
        self,
        kind: str,
        detail: str,
        *,
        incident_id: str | None = None,
        correlation_id: str,
        actor: str = "service",
        inputs: dict[str, Any] | None = None,
    ) -> None:
        self.store.append_audit(self.audit_record(kind, detail, incident_id=incident_id,
                                                  correlation_id=correlation_id, actor=actor, inputs=inputs))

    def audit_record(
        self,
        kind: str,
        detail: str,
        *,
        incident_id: str | None = None,
        correlation_id: str,
        actor: str = "service",
        inputs: dict[str, Any] | None = None,
    ) -> AuditRecord:
        """A record to write together with its incident (unit_of_work.put_incident_audited)."""
        return AuditRecord(at=self.clock(), incident_id=incident_id, kind=kind, actor=actor,
                           correlation_id=correlation_id, detail=detail, inputs=inputs or {},
                           trace_id=self.telemetry.trace_id())

    def publish(self, event_type: str, data: dict[str, Any]) -> None:
        """Outcome events are best effort: a failure is logged, never fails the run."""
        if self.events is None:
            return
        try:
            self.events.publish(event_type, data)
        except Exception as exc:  # noqa: BLE001 - publishing must not break remediation
            log.warning("outcome event %s not published: %s", event_type, type(exc).__name__,
                        extra={"event_type": event_type, "error": type(exc).__name__})

    def close(self) -> None:
        self.store.close()
