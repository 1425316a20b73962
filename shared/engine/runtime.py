"""Everything one run needs, built once from settings: store, sources, evidence, role writer, sinks, clock."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.core.policy import PolicyConfig
from shared.settings import Settings
from shared.state.base import AuditRecord, Store

log = logging.getLogger("triage")


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass
class Runtime:
    settings: Settings
    store: Store
    sources: list[Any]  # FailureSource
    evidence: Any  # EvidenceProvider with gather_evidence / new_run
    roles: Any  # RoleWriter
    sinks: list[Any]  # TicketSink
    events: Any = None  # outcome publisher (publish(event_type, data)) or None
    clock: Callable[[], datetime] = utcnow
    policy: PolicyConfig = field(init=False)
    _evidence_at: datetime | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.policy = PolicyConfig.from_settings(self.settings)

    def refresh_evidence(self, max_age: timedelta | None = None) -> None:
        """Start a new evidence run (empty caches) unless the cached evidence is younger than `max_age`.

        Scans, approvals and on-call diagnoses always read fresh evidence; a burst of events may share it for a
        short while, so 1,000 events about the same callers don't each cost two ARM reads. Any role write the
        service makes or hears about calls `invalidate_evidence()`."""
        now = self.clock()
        if max_age is not None and self._evidence_at is not None and now - self._evidence_at <= max_age:
            return
        if hasattr(self.evidence, "new_run"):
            self.evidence.new_run()
        self._evidence_at = now

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
        self.store.append_audit(
            AuditRecord(
                at=self.clock(),
                incident_id=incident_id,
                kind=kind,
                actor=actor,
                correlation_id=correlation_id,
                detail=detail,
                inputs=inputs or {},
            )
        )

    def publish(self, event_type: str, data: dict[str, Any]) -> None:
        """Outcome events are best effort: a failure is logged, never fails the run."""
        if self.events is None:
            return
        try:
            self.events.publish(event_type, data)
        except Exception as exc:  # noqa: BLE001 - publishing must not break remediation
            log.warning("outcome event %s not published: %s", event_type, type(exc).__name__)

    def close(self) -> None:
        self.store.close()

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        *,
        credential: Any = None,
        clock: Callable[[], datetime] | None = None,
    ) -> Runtime:
        from shared.adapters.azure import AzureClients
        from shared.state.factory import open_store
        from shared.tickets.factory import build_sinks

        if credential is None and settings.local_token:
            from shared.engine.local_credential import StaticTokenCredential

            credential = StaticTokenCredential(settings.local_token)
        clients = AzureClients.from_settings(settings, credential=credential)
        return cls(
            settings=settings,
            store=open_store(settings),
            sources=list(clients.sources),
            evidence=clients.evidence,
            roles=clients.roles,
            sinks=build_sinks(settings),
            events=clients.events,
            clock=clock or utcnow,
        )


def new_correlation_id() -> str:
    return str(uuid.uuid4())


_shared_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The runtime of this Function App instance, built on first use and reused across invocations."""
    global _shared_runtime
    if _shared_runtime is None:
        from shared.settings import load_settings

        _shared_runtime = Runtime.from_settings(load_settings())
    return _shared_runtime


def set_runtime(runtime: Runtime | None) -> None:
    """Install a runtime (tests, the demo) or drop the cached one."""
    global _shared_runtime
    _shared_runtime = runtime
