"""The unit of work: what one run reads once (caps, suppressions, breaker) and records, and the store writes every
engine step uses, each with the same bounded retry on lost races.

The pattern for every side effect (grant, ticket): first persist the decision with a conditional write (create, or
replace at the etag we read). Only the instance that wins that write performs the side effect; the loser re-reads
and sees the decision already taken. A crash between the two leaves a visible "claimed"/"ticket pending" state that
a later run completes, so nothing is lost and nothing is done twice.
"""

from __future__ import annotations

import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

from shared.core.breaker import BreakerState
from shared.core.budget import BudgetCounts
from shared.core.incidents import Incident
from shared.core.records import AuditRecord, ConflictError, StoreError
from shared.core.revocations import REVOCATIONS_KEY, Revocations
from shared.core.suppression import suppressed_targets
from shared.engine.budget import budget_counts
from shared.engine.runtime import Runtime

# How often a read-modify-write is retried when another writer wins the race, before the run fails loudly.
MAX_ATTEMPTS = 5
BREAKER_KEY = "circuit-breaker"

T = TypeVar("T")

# Deliveries in a burst share the run-level facts (budget snapshot, suppressions, breaker, revocations) read this
# recently by the service's clock, on the same store: a timer scan keeps its snapshot for the whole scan, so a
# delivery's is never older than a scan's. A grant still reserves its budget slot and reads the revocations again;
# this instance's own changes to the breaker, revocations or suppressions drop the shared snapshot at once.
DELIVERY_FACTS_MAX_AGE = timedelta(seconds=5)


@dataclass(frozen=True)
class _Facts:
    at: datetime
    counts: BudgetCounts
    suppressed: frozenset[str]
    breaker_open: bool
    revocations: Revocations


_shared_facts: WeakKeyDictionary[Any, _Facts] = WeakKeyDictionary()
_facts_read = threading.Lock()  # deliveries arriving together wait for one read of the facts, not one each

# Writers of one incident in this process take turns (striped, reentrant locks), so concurrent deliveries about one
# incident do not spend round trips losing races to each other; other instances are still kept apart by etags only.
# A turn is waited for at most INCIDENT_TURN_WAIT, then the write goes ahead on its etag alone (never a deadlock).
_INCIDENT_TURNS = tuple(threading.RLock() for _ in range(256))
INCIDENT_TURN_WAIT_S = 30.0


@contextmanager
def _turn(incident_id: str) -> Iterator[None]:
    lock = _INCIDENT_TURNS[zlib.crc32(incident_id.encode("utf-8", "surrogatepass")) % len(_INCIDENT_TURNS)]
    held = lock.acquire(timeout=INCIDENT_TURN_WAIT_S)
    try:
        yield
    finally:
        if held:
            lock.release()


def share_budget_seen(rt: Runtime, counts: BudgetCounts) -> None:
    """A reservation read the grant budget: the facts deliveries share count at least that from now on, so the next
    delivery's policy names a reached cap itself instead of reading the budget (and the revocations) to learn it."""
    with _facts_read:
        facts = _shared_facts.get(rt.store)
        if facts is not None:
            seen = BudgetCounts(last_24h=max(facts.counts.last_24h, counts.last_24h),
                                last_hour=max(facts.counts.last_hour, counts.last_hour))
            _shared_facts[rt.store] = replace(facts, counts=seen)


def forget_run_facts(rt: Runtime) -> None:
    """The facts deliveries share are out of date (this instance changed one): the next delivery reads them."""
    _shared_facts.pop(rt.store, None)


@dataclass
class RunState:
    """Per-run facts read once (suppressions, breaker, revocations, a snapshot of the grant budget) and what this
    run did. The budget snapshot only lets tickets name a cap early: a grant reserves its slot (engine/budget.py),
    and the revocations are read again before it."""

    correlation_id: str
    now: datetime
    grants_last_24h: int
    suppressed: frozenset[str]
    breaker_open: bool
    grants_this_run: int = 0
    ticket_auth_errors: set[str] = field(default_factory=set)
    outcomes: list[dict[str, Any]] = field(default_factory=list)
    grants_last_hour: int = 0
    revocations: Revocations = field(default_factory=Revocations)
    # the ticket budget (engine/ticketing.py): new tickets opened this run per sink, and each sink's state as read
    # from the store once a run (rate-limited until, queue backlog)
    tickets_opened: dict[str, int] = field(default_factory=dict)
    ticket_sinks: dict[str, Any] = field(default_factory=dict)
    # a delivery's run: how old the stored facts it shares with other deliveries may be (None: a run of its own)
    facts_shared_for: timedelta | None = None

    @classmethod
    def begin(cls, rt: Runtime, correlation_id: str, *, shared_for: timedelta | None = None) -> RunState:
        """`shared_for` (deliveries): reuse the facts another run on this store read at most this long ago."""
        now = rt.clock()
        if shared_for is None:
            facts = _read_facts(rt, now)
        else:
            with _facts_read:
                facts = _shared_facts.get(rt.store)  # type: ignore[assignment]
                if facts is None or not timedelta(0) <= now - facts.at <= shared_for:
                    facts = _shared_facts[rt.store] = _read_facts(rt, now)
        return cls(
            correlation_id=correlation_id,
            now=now,
            grants_last_24h=facts.counts.last_24h,
            grants_last_hour=facts.counts.last_hour,
            suppressed=facts.suppressed,
            breaker_open=facts.breaker_open,
            revocations=facts.revocations,
            facts_shared_for=shared_for,
        )

    def count_grant(self) -> None:
        self.grants_this_run += 1
        self.grants_last_24h += 1
        self.grants_last_hour += 1

    def saw_budget(self, counts: BudgetCounts) -> None:
        """A reservation read the budget: the snapshot is at least that."""
        self.grants_last_24h = max(self.grants_last_24h, counts.last_24h)
        self.grants_last_hour = max(self.grants_last_hour, counts.last_hour)


def _read_facts(rt: Runtime, now: datetime) -> _Facts:
    return _Facts(now, budget_counts(rt, now), suppressed_targets(rt.store.active_suppressions(now), now),
                  load_breaker(rt).open, load_revocations(rt))


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
    """Run `attempt` on a fresh read of the incident until its conditional write stops losing races.

    The first attempt may start from the copy this instance last wrote or read (`Store.cached_incident`), which
    saves the read in a burst of deliveries about one incident. A stale copy cannot do harm: every write is
    conditional on its etag and every side effect follows a write that won, so a stale copy's write conflicts and
    the loop reads fresh; an attempt that wrote nothing (the failure changed nothing, by the copy) stands only
    once a read shows the copy was current."""
    with _turn(incident_id):
        return _retry_on_conflict(rt, incident_id, attempt)


def _retry_on_conflict(rt: Runtime, incident_id: str, attempt: Callable[[Incident | None], T]) -> T:
    cached = rt.store.cached_incident(incident_id)
    if cached is not None:
        try:
            result = attempt(cached)
        except ConflictError:
            pass
        else:
            if isinstance(result, Incident) and result.etag != cached.etag:
                return result  # written at the copy's etag: it was current
            current = rt.store.get_incident(incident_id)
            if current is not None and current.etag == cached.etag:
                return result
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


def load_revocations(rt: Runtime) -> Revocations:
    value, _ = rt.store.get_value(REVOCATIONS_KEY)
    return Revocations.from_dict(value)


def change_revocations(rt: Runtime, change: Callable[[Revocations], Revocations]) -> Revocations:
    """Read-modify-write of the revocations; StoreError if other writers kept winning or the record is unreadable
    (an engineer's revocation must never be written over a record nobody could read)."""
    for _ in range(MAX_ATTEMPTS):
        value, etag = rt.store.get_value(REVOCATIONS_KEY)
        current = Revocations.from_dict(value)
        if current.unreadable:
            raise StoreError(current.unreadable)
        after = change(current)
        try:
            rt.store.put_value(REVOCATIONS_KEY, after.to_dict(), expected_etag=etag)
        except ConflictError:
            continue
        forget_run_facts(rt)
        return after
    raise StoreError("the revocations kept changing under concurrent writers")


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
        forget_run_facts(rt)
        return before, after
    return None
