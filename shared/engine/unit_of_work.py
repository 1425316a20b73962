"""The unit of work: what one run reads once (caps, suppressions, breaker) and records, and the store writes every
engine step uses, each with the same bounded retry on lost races.

The pattern for every side effect (grant, ticket): first persist the decision with a conditional write (create, or
replace at the etag we read). Only the instance that wins that write performs the side effect; the loser re-reads
and sees the decision already taken. A crash between the two leaves a visible "claimed"/"ticket pending" state that
a later run completes, so nothing is lost and nothing is done twice.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar

from shared.core.breaker import BreakerState
from shared.core.incidents import Incident
from shared.core.records import AuditRecord, ConflictError, StoreError
from shared.core.suppression import suppressed_targets
from shared.engine.runtime import Runtime

# How often a read-modify-write is retried when another writer wins the race, before the run fails loudly.
MAX_ATTEMPTS = 5
BREAKER_KEY = "circuit-breaker"

T = TypeVar("T")


@dataclass
class RunState:
    """Per-run facts read once (caps, suppressions, breaker) and what this run did."""

    correlation_id: str
    now: datetime
    grants_last_24h: int
    suppressed: frozenset[str]
    breaker_open: bool
    grants_this_run: int = 0
    ticket_auth_errors: set[str] = field(default_factory=set)
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def begin(cls, rt: Runtime, correlation_id: str) -> RunState:
        now = rt.clock()
        return cls(
            correlation_id=correlation_id,
            now=now,
            grants_last_24h=rt.store.count_grants_since(now - timedelta(hours=24)),
            suppressed=suppressed_targets(rt.store.active_suppressions(now), now),
            breaker_open=load_breaker(rt).open,
        )

    def count_grant(self) -> None:
        self.grants_this_run += 1
        self.grants_last_24h += 1


def put_incident(rt: Runtime, incident: Incident, etag: str | None) -> Incident:
    """A conditional write: create (etag None) or replace what was read at `etag`; ConflictError if another writer
    got there first."""
    return rt.store.put_incident(replace(incident, updated_at=rt.clock()), expected_etag=etag)


def put_incident_audited(rt: Runtime, incident: Incident, etag: str | None,
                         audit: Sequence[AuditRecord]) -> Incident:
    """The same conditional write, with the incident's audit records in it: a crash leaves both or neither."""
    return rt.store.put_incident_audited(replace(incident, updated_at=rt.clock()), etag, audit)


def update_incident_audited(rt: Runtime, incident_id: str, change: Callable[[Incident], Incident],
                            audit: Sequence[AuditRecord]) -> Incident | None:
    """update_incident, writing `audit` together with the change that wins."""

    def attempt(current: Incident | None) -> Incident | None:
        return None if current is None else put_incident_audited(rt, change(current), current.etag, audit)

    return retry_on_conflict(rt, incident_id, attempt)


def retry_on_conflict(rt: Runtime, incident_id: str, attempt: Callable[[Incident | None], T]) -> T:
    """Run `attempt` on a fresh read of the incident until its conditional write stops losing races."""
    for _ in range(MAX_ATTEMPTS):
        try:
            return attempt(rt.store.get_incident(incident_id))
        except ConflictError:
            continue
    raise StoreError(f"incident {incident_id} kept changing under concurrent writers")


def update_incident(rt: Runtime, incident_id: str, change: Callable[[Incident], Incident]) -> Incident | None:
    """Read-modify-write, for recording results after a side effect. None if the incident does not exist."""

    def attempt(current: Incident | None) -> Incident | None:
        return None if current is None else put_incident(rt, change(current), current.etag)

    return retry_on_conflict(rt, incident_id, attempt)


def load_breaker(rt: Runtime) -> BreakerState:
    value, _ = rt.store.get_value(BREAKER_KEY)
    return BreakerState.from_dict(value) if value else BreakerState()


def change_breaker(
    rt: Runtime, change: Callable[[BreakerState], BreakerState]
) -> tuple[BreakerState, BreakerState] | None:
    """Read-modify-write of the circuit breaker: (before, after), or None if other writers kept winning."""
    for _ in range(MAX_ATTEMPTS):
        value, etag = rt.store.get_value(BREAKER_KEY)
        before = BreakerState.from_dict(value) if value else BreakerState()
        after = change(before)
        try:
            rt.store.put_value(BREAKER_KEY, after.to_dict(), expected_etag=etag)
        except ConflictError:
            continue
        return before, after
    return None
