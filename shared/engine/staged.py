"""A chunk's new incidents held in memory while the chunk's later failures of them are handled, then written
together (`Store.replace_incidents`, per partition, each at the etag its create returned).

The later failures go the per-signal way (`signals.handle_signal`) against a store that answers for the held
incidents from memory (`StagedStore`): the same code decides what each writes and which ticket calls it makes, so
the incidents end exactly as the per-signal way leaves them, with one write each instead of one per failure (and
one more per "still failing" comment). Only recurrences are handled so: a failure that needs a new decision (which
may grant: its claim must be written before ARM's write) raises `signals.DecisionDue` before anything is staged;
its incident is then written first and it goes the usual way. Ticket calls of a held incident (the first ticket,
a comment) happen before its write, as a deferred ticket outcome's already did (ticketing.write_deferred): a cut
there leaves the create's claim, which a later run redoes (the sinks find the ticket by its marker), and the
chunk's later failures are then counted as overlap (engine/scan_progress.py). A write that loses its race (another
writer changed the incident since its create) records the ticket outcome by read-modify-write and handles the
held failures again the per-signal way on the incident as it is now.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, cast

from shared.core.incidents import Incident
from shared.core.ports import Store
from shared.core.records import AuditRecord, ConflictError
from shared.engine.checkpoints import checkpoint
from shared.engine.runtime import Runtime
from shared.engine.ticketing import DeferredRecord
from shared.engine.unit_of_work import update_incident, update_incident_audited


@dataclass
class _Held:
    incident: Incident  # as the per-signal way would read it now (its etag this module's once changed here)
    etag: str  # the store's etag: what its write is conditional on
    deferred: DeferredRecord | None  # its first ticket's outcome, not written yet
    audit: list[AuditRecord] = field(default_factory=list)
    handled: list[int] = field(default_factory=list)  # the failures (by index) handled on it here
    changed: bool = False


class StagedStore:
    """The store, except for the held incidents: those are read from memory and written there, each write
    conditional on the etag last handed out for it, as the store would do."""

    def __init__(self, store: Store):
        self._store = store
        self._held: dict[str, _Held] = {}
        self._serial = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)

    def holds(self, incident_id: str) -> bool:
        return incident_id in self._held

    def get_incident(self, incident_id: str) -> Incident | None:
        held = self._held.get(incident_id)
        return held.incident if held is not None else self._store.get_incident(incident_id)

    def cached_incident(self, incident_id: str) -> Incident | None:
        held = self._held.get(incident_id)
        return held.incident if held is not None else self._store.cached_incident(incident_id)

    def get_incidents(self, incident_ids: Iterable[str]) -> dict[str, Incident]:
        wanted = list(incident_ids)
        found = {i: self._held[i].incident for i in wanted if i in self._held}
        found.update(self._store.get_incidents(i for i in wanted if i not in self._held))
        return found

    def put_incident(self, incident: Incident, expected_etag: str | None = None) -> Incident:
        return self.put_incident_audited(incident, expected_etag, ())

    def put_incident_audited(self, incident: Incident, expected_etag: str | None,
                             audit: Sequence[AuditRecord]) -> Incident:
        held = self._held.get(incident.id)
        if held is None:
            return self._store.put_incident_audited(incident, expected_etag, audit)
        if expected_etag is None or expected_etag != held.incident.etag:
            raise ConflictError(f"write incident {incident.id}: held at another etag")
        self._serial += 1
        held.incident = replace(incident, etag=f"held-{self._serial}")
        held.audit.extend(audit)
        held.changed = True
        return held.incident


class StagedWrites:
    """One batch's new incidents held (`hold`), their later failures handled (`handle`), then written (`write`)."""

    def __init__(self, rt: Runtime, again: Callable[[int], Incident]):
        """`again(index)`: the failure handled the per-signal way on the real store."""
        self._rt = rt
        self._again = again
        self._staged = StagedStore(rt.store)
        self.runtime = copy.copy(rt)  # the same service, on the staged store
        self.runtime.store = cast(Store, self._staged)

    def hold(self, result: Incident, created: Incident, deferred: Sequence[DeferredRecord]) -> None:
        """A created incident (`created`, with its etag), as acting on it left it (`result`; its ticket's outcome
        in `deferred` when there is one to write)."""
        record = deferred[-1] if deferred else None
        assert created.etag is not None
        incident = created if record is None else replace(result, updated_at=self._rt.clock(), etag="held-0")
        self._staged._held[created.id] = _Held(incident, created.etag, record, changed=record is not None)

    def holds(self, incident_id: str) -> bool:
        return self._staged.holds(incident_id)

    def handled(self, incident_id: str, index: int) -> None:
        """Failure `index` was handled on the staged store (what it wrote is held)."""
        self._staged._held[incident_id].handled.append(index)

    def release(self, incident_id: str) -> None:
        """Write one held incident now (a failure of it goes the usual way next) and hold it no longer."""
        self._write([incident_id])

    def write(self) -> None:
        self._write(list(self._staged._held))

    def _write(self, ids: list[str]) -> None:
        held = [self._staged._held.pop(i) for i in ids]
        changed = [h for h in held if h.changed]
        if changed:
            audit = [[*(h.deferred.audit if h.deferred else ()), *h.audit] for h in changed]
            written = self._rt.store.replace_incidents([(replace(h.incident, etag=h.etag), h.etag, records)
                                                        for h, records in zip(changed, audit, strict=True)])
            checkpoint("scan-batch-updated")
            for h, saved in zip(changed, written, strict=True):
                if saved is None:
                    self._lost(h)
        for h in held:
            if h.deferred is not None and h.deferred.opened is not None:
                self._rt.publish("aoai.triage.ticket.opened", h.deferred.opened)

    def _lost(self, held: _Held) -> None:
        """Another writer changed the incident since its create: its ticket outcome read-modify-written (as
        ticketing.write_deferred does), then its held failures handled again on the incident as it is now."""
        record = held.deferred
        if record is not None:
            if record.audit:
                update_incident_audited(self._rt, record.incident.id, record.change, record.audit)
            else:
                update_incident(self._rt, record.incident.id, record.change)
        for index in held.handled:
            self._again(index)
