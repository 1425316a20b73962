"""A scan chunk creates its new incidents together (engine/scan.py `_handle_chunk`, `Store.create_incidents`) and acts
on them only after their creates won: it ends with exactly the incidents, counts, statuses, audit and tickets of the
per-signal way, whatever the mix of new, existing and grant-bound failures; a create another instance won goes the
per-signal way; a run cut off around the batch loses nothing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core.incidents import Incident
from shared.engine import scan, scan_progress
from shared.engine.checkpoints import CutOff, cut_at
from shared.engine.scan import run_scan
from shared.state.codec import incident_to_json
from tests.engine.common import ACCOUNT
from tests.support.fakes import (
    FakeEvidence,
    FakeRoleWriter,
    FakeSource,
    ManualClock,
    RecordingSink,
    WriteCountingStore,
    fake_runtime,
)

OTHER_ACCOUNT = ACCOUNT.replace("/accounts/", "/accounts/other-")
SECOND_OPERATION = "Embeddings_Create"


def caller(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012x}"


@contextmanager
def per_signal() -> Iterator[None]:
    """Every signal the per-signal way, as before batching."""
    scan.BATCH_NEW_INCIDENTS = False
    try:
        yield
    finally:
        scan.BATCH_NEW_INCIDENTS = True


class RacingStore(WriteCountingStore):
    """SQLite, where another instance creates the next new incident (a copy with 100 more failures) just before this
    instance's create of it, however it is created."""

    def __init__(self) -> None:
        super().__init__()
        self.races = 0
        self.lost: list[str] = []

    def _race(self, incident: Incident) -> None:
        if self.races > 0:
            self.races -= 1
            self.lost.append(incident.id)
            super().put_incident(replace(incident, count=incident.count + 100), None)

    def put_incident(self, incident: Incident, expected_etag: str | None = None) -> Incident:
        if expected_etag is None:
            self._race(incident)
        return super().put_incident(incident, expected_etag)

    def put_incident_audited(self, incident: Incident, expected_etag: str | None, audit: Any) -> Incident:
        if expected_etag is None:
            self._race(incident)
        return super().put_incident_audited(incident, expected_etag, audit)

    def create_incidents(self, items: Any) -> list[Incident | None]:
        if items:
            self._race(items[0][0])
        return super().create_incidents(items)


class World:
    """One service over fakes and SQLite: callers failing on two accounts, some on two operations (one incident)."""

    def __init__(self, *, mode: str = "recommend", allowed: tuple[int, ...] = (), tickets: int = 100,
                 unbudgeted_sink: bool = False, store: Any = None, **env: str):
        self.clock = ManualClock()
        self.source = FakeSource(self.clock)
        self.evidence = FakeEvidence(self.clock)
        self.evidence.add_account(ACCOUNT)
        self.evidence.add_account(OTHER_ACCOUNT)
        self.roles = FakeRoleWriter(self.evidence, self.clock)
        self.sinks = [RecordingSink()]
        if unbudgeted_sink:
            log_like = RecordingSink("log-like")
            log_like.budgeted = False  # type: ignore[attr-defined] - as the log sink says it
            self.sinks.append(log_like)
        allowlist = json.dumps([{"object_id": caller(n)} for n in allowed])
        self.env = {"TRIAGE_MODE": mode, "TRIAGE_ALLOWLIST": allowlist, "TRIAGE_PROPAGATION_WINDOW_SECONDS": "120",
                    "TRIAGE_INGESTION_LAG_SECONDS": "60", "TRIAGE_MAX_TICKETS_PER_RUN": str(tickets), **env}
        self.store = store if store is not None else WriteCountingStore()
        self.rt = self.runtime()

    def runtime(self) -> Any:
        return fake_runtime(self.env, clock=self.clock, store=self.store, sources=[self.source],
                            evidence=self.evidence, roles=self.roles, sinks=self.sinks)

    def traffic(self, callers: list[tuple[int, int, bool]], minutes: int = 3) -> None:
        """(caller, account 0 or 1, on a second operation too) fail for some minutes."""
        for _ in range(minutes):
            for n, account, second in callers:
                resource = (ACCOUNT, OTHER_ACCOUNT)[account]
                self.source.fail(caller(n), resource, count=2 + n % 3)
                if second:
                    self.source.fail(caller(n), resource, count=1, operation=SECOND_OPERATION)
            self.clock.advance(minutes=1)

    def outcome(self) -> dict[str, Any]:
        incidents = {i.id: json.loads(incident_to_json(replace(i, etag=None)))
                     for i in self.store.list_incidents()}
        audit = sorted((a.kind, a.incident_id or "", a.detail, a.actor) for a in self.store.list_audit())
        tickets = [sorted((t.incident_id, t.is_open, tuple(t.comments), t.content.title)
                          for t in sink.tickets.values()) for sink in self.sinks]
        calls = [sorted((c.op, c.incident_id, c.comment or "", c.result) for c in sink.calls) for sink in self.sinks]
        return {"incidents": incidents, "audit": audit, "tickets": tickets, "calls": calls,
                "grants": sorted(g.principal_id for g in self.roles.grants)}


def scans(world: World, first: list[tuple[int, int, bool]], later: list[tuple[int, int, bool]]) -> list[dict]:
    """A first scan of `first`'s failures, then one of `first` and `later` failing again (existing and new)."""
    world.traffic(first)
    reports = [run_scan(world.rt).to_json()]
    world.clock.advance(minutes=1)
    world.traffic(first + later)
    reports.append(run_scan(world.rt).to_json())
    return [{"actions": r["actions"], "signals": r["signals"], "grants": r["grants"],
             "incidents": sorted(r["incidents"])} for r in reports]


groups = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 1), st.booleans()), max_size=8)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(first=groups, later=groups, mode=st.sampled_from(("recommend", "enforce")),
       allowed=st.lists(st.integers(0, 7), max_size=4, unique=True).map(tuple), tickets=st.integers(1, 3),
       unbudgeted_sink=st.booleans(), chunk=st.sampled_from((1, 2, 50)), round_views=st.booleans(),
       comment_every=st.sampled_from(("0", "60")))
def test_batched_creates_end_exactly_as_the_per_signal_way(first, later, mode, allowed, tickets, unbudgeted_sink,
                                                           chunk, round_views, comment_every):
    """`round_views`: the round reads its incidents' views at its start (as a large one does), else point reads.
    A caller failing on a second operation adds a later failure of the same incident to its chunk (held with the
    new incident, engine/staged.py); `comment_every` 0 makes each of them comment on the ticket."""
    before, views_from = scan_progress.CHUNK_PAIRS, scan.ROUND_VIEWS_FROM
    scan_progress.CHUNK_PAIRS = chunk
    scan.ROUND_VIEWS_FROM = 0 if round_views else views_from
    env = {"TRIAGE_TICKET_COMMENT_INTERVAL_MINUTES": comment_every}
    try:
        batched = World(mode=mode, allowed=allowed, tickets=tickets, unbudgeted_sink=unbudgeted_sink, **env)
        batched_reports = scans(batched, first, later)
        with per_signal():
            single = World(mode=mode, allowed=allowed, tickets=tickets, unbudgeted_sink=unbudgeted_sink, **env)
            single_reports = scans(single, first, later)
    finally:
        scan_progress.CHUNK_PAIRS, scan.ROUND_VIEWS_FROM = before, views_from
    assert batched_reports == single_reports
    assert batched.outcome() == single.outcome()


def test_a_first_scan_creates_its_new_incidents_in_one_batch_and_queues_tickets_past_the_budget():
    world = World(tickets=1)
    world.traffic([(n, 0, False) for n in range(6)])
    report = run_scan(world.rt)
    incidents = world.store.list_incidents()
    assert len(incidents) == 6 and report.actions == {"ticket": 6}
    assert world.store.writes["create_incidents"] == 1  # one chunk, one batch
    # one ticket opened now (the budget), the rest queued: in the creates, not written again
    assert world.sinks[0].created() == 1
    assert sum(1 for i in incidents if i.ticket_queued == ("tracker",)) == 5
    assert world.store.writes["put_incident"] + world.store.writes["put_incident_audited"] <= 2
    # the decisions' audit rode in the creates (the one appended is the run's own)
    assert world.store.writes["append_audit"] <= 1
    decided = {a.incident_id for a in world.store.list_audit() if a.kind in ("decision", "refusal")}
    assert decided == {i.id for i in incidents}


def test_a_grant_bound_failure_goes_the_per_signal_way_and_grants_once():
    world = World(mode="enforce", allowed=(1,))
    world.traffic([(0, 0, False), (1, 0, False), (2, 0, False)])
    run_scan(world.rt)
    assert [g.principal_id for g in world.roles.grants] == [caller(1)]
    assert world.store.writes["create_incidents"] == 2  # the new incidents before the grant, and after it


def test_a_create_another_instance_won_goes_the_per_signal_way():
    """The other instance's copy (100 more failures) is updated, not overwritten, nor ticketed twice: as the
    per-signal way does with a create that lost."""
    worlds = []
    for batched in (True, False):
        store = RacingStore()
        store.races = 1
        world = World(tickets=2, store=store)
        world.traffic([(n, 0, n == 1) for n in range(4)])
        if batched:
            run_scan(world.rt)
        else:
            with per_signal():
                run_scan(world.rt)
        [lost] = store.lost
        incident = world.store.get_incident(lost)
        assert incident is not None and incident.count > 100  # the other's record, with this run's failures added
        worlds.append(world)
    batched, single = worlds[0].outcome(), worlds[1].outcome()
    # The per-signal way audits its decision before the create that then lost; the batch writes a decision's record
    # only with the create that won (the other instance's record stands for it).
    [(lost_id, kind)] = [(a[1], a[0]) for a in single["audit"] if a not in batched["audit"]]
    assert lost_id == worlds[1].store.lost[0] and kind == "refusal"
    assert batched == {**single, "audit": [a for a in single["audit"] if a[1] != lost_id or a[0] != "refusal"]}


STEPS = ("scan-chunk-saved", "scan-batch-created", "ticket-claimed", "ticket-sent", "scan-batch-updated",
         "scan-chunk-handled")


@settings(max_examples=25, deadline=None)
@given(callers=st.integers(1, 5), step=st.sampled_from(STEPS), at=st.integers(1, 4), tickets=st.integers(1, 3),
       chunk=st.sampled_from((1, 2, 50)))
def test_a_run_cut_around_the_batch_loses_nothing(callers, step, at, tickets, chunk):
    """Cut anywhere around a chunk's batch, the next run (after a stale claim is retried) ends as an uncut one."""
    before = scan_progress.CHUNK_PAIRS
    scan_progress.CHUNK_PAIRS = chunk
    try:
        uncut, cut = World(tickets=tickets), World(tickets=tickets)
        failing = [(n, n % 2, False) for n in range(callers)]
        for world in (uncut, cut):
            world.traffic(failing)
        run_scan(uncut.rt)
        try:
            with cut_at(step, at):
                run_scan(cut.rt)
        except CutOff:
            pass
        for world in (uncut, cut):
            world.clock.advance(minutes=3)  # past STALE_CLAIM: a claim the cut left is taken up again
        cut.rt = cut.runtime()  # a fresh instance
        run_scan(uncut.rt)
        run_scan(cut.rt)
    finally:
        scan_progress.CHUNK_PAIRS = before
    # the same incidents, counts and statuses; every ticket opened or waiting in the queue (a cut run's drain is
    # a run behind under the budget), none lost, none opened twice; no audit gap
    assert {i.id: (i.count, i.status) for i in cut.store.list_incidents()} == {
        i.id: (i.count, i.status) for i in uncut.store.list_incidents()}
    assert all(bool(i.ticket_refs) != bool(i.ticket_queued) for i in cut.store.list_incidents())
    assert all(i.ticket_pending == bool(i.ticket_queued) for i in cut.store.list_incidents())
    assert cut.sinks[0].created() == len(cut.sinks[0].tickets) <= len(uncut.sinks[0].tickets)
    decided = {a.incident_id for a in cut.store.list_audit() if a.kind in ("decision", "refusal")}
    assert decided == {i.id for i in cut.store.list_incidents()}


def replaced_where_unchanged(store: Any) -> None:
    """`Store.replace_incidents` writes each incident at its etag with its audit, and leaves one that changed since."""
    world = World(store=store)
    world.traffic([(n, 0, False) for n in range(3)])
    run_scan(world.rt)
    first, second, third = sorted(store.list_incidents(), key=lambda i: i.id)
    changed = store.put_incident(replace(second, count=second.count + 1), second.etag)  # another writer
    audit = [world.rt.audit_record("action", f"noted {i.id}", incident_id=i.id, correlation_id="c")
             for i in (first, second, third)]
    written = store.replace_incidents([(replace(i, count=50), i.etag, [record])
                                       for i, record in zip((first, second, third), audit, strict=True)])
    assert [w is not None for w in written] == [True, False, True]
    assert written[0] is not None and written[0].etag != first.etag
    after = {i.id: i for i in store.list_incidents()}
    assert after[first.id].count == after[third.id].count == 50 and after[second.id].count == changed.count
    noted = {a.detail for a in store.list_audit() if a.detail.startswith("noted")}
    assert noted == {f"noted {first.id}", f"noted {third.id}"}
    assert {v.id: v.count for v in store.get_settled(after).values()} == {i: after[i].count for i in after}


def test_replace_incidents_on_sqlite():
    replaced_where_unchanged(WriteCountingStore())


def test_later_failures_of_a_new_incident_ride_in_its_batch():
    """A caller failing on two operations (one incident): the second failure, and the "still failing" comment it
    brings, are written with the ticket's outcome (one replace per chunk), not one write each."""
    world = World()
    world.traffic([(n, n % 2, True) for n in range(6)], minutes=1)
    store = world.store
    counted = store.writes.copy()
    run_scan(world.rt)
    writes = store.writes - counted
    incidents = store.list_incidents()
    assert len(incidents) == 6
    assert writes["create_incidents"] == 1 and writes["put_incident"] + writes["put_incident_audited"] == 0
    # each ticket opened, then commented once on the second failure; both failures counted
    assert all(i.ticket_refs and i.last_comment_at is not None for i in incidents)
    assert sum(1 for c in world.sinks[0].calls if c.comment) == 6
    assert sorted(i.count for i in incidents) == sorted(3 + n % 3 for n in range(6))


class RacingReplaceStore(WriteCountingStore):
    """SQLite, where another instance changes the first incident of the next batched replace (100 more failures)
    just before it is written."""

    def __init__(self) -> None:
        super().__init__()
        self.races = 1
        self.lost: list[str] = []

    def replace_incidents(self, items: Any) -> list[Incident | None]:
        if items and self.races > 0:
            self.races -= 1
            stored = self.get_incident(items[0][0].id)
            assert stored is not None
            self.lost.append(stored.id)
            super().put_incident(replace(stored, count=stored.count + 100), stored.etag)
        return super().replace_incidents(items)


def test_a_held_incident_another_instance_changed_is_recorded_the_per_signal_way():
    """The other instance's record stands, with this run's ticket and later failures added to it; no ticket twice."""
    worlds = []
    for store in (RacingReplaceStore(), WriteCountingStore()):
        world = World(store=store)
        world.traffic([(n, 0, True) for n in range(3)], minutes=1)
        run_scan(world.rt)
        worlds.append(world)
    raced, calm = worlds
    [lost] = raced.store.lost
    after = {i.id: i for i in raced.store.list_incidents()}
    expected = {i.id: i for i in calm.store.list_incidents()}
    assert {i: a.count for i, a in after.items()} == {i: e.count + (100 if i == lost else 0)
                                                      for i, e in expected.items()}
    assert {i: (a.ticket_refs, a.ticket_pending) for i, a in after.items()} == {
        i: (e.ticket_refs, e.ticket_pending) for i, e in expected.items()}
    assert raced.sinks[0].created() == calm.sinks[0].created() == 3


@settings(max_examples=25, deadline=None)
@given(callers=st.integers(1, 4), step=st.sampled_from(STEPS), at=st.integers(1, 4), chunk=st.sampled_from((1, 50)))
def test_a_run_cut_while_later_failures_are_held_never_counts_twice(callers, step, at, chunk):
    """Cut while a new incident's later failures are held (not written yet), the next run loses no incident and
    opens no ticket twice; a held failure not written is counted as overlap then (scan_progress: it may be
    under-counted, never counted twice). Cut after the held write, nothing is lost."""
    before = scan_progress.CHUNK_PAIRS
    scan_progress.CHUNK_PAIRS = chunk
    cut_off = False
    try:
        uncut, cut = World(), World()
        failing = [(n, n % 2, True) for n in range(callers)]
        for world in (uncut, cut):
            world.traffic(failing)
        run_scan(uncut.rt)
        try:
            with cut_at(step, at):
                run_scan(cut.rt)
        except CutOff:
            cut_off = True
        for world in (uncut, cut):
            world.clock.advance(minutes=3)
        cut.rt = cut.runtime()
        run_scan(uncut.rt)
        run_scan(cut.rt)
    finally:
        scan_progress.CHUNK_PAIRS = before
    counts = {i.id: i.count for i in cut.store.list_incidents()}
    expected = {i.id: i.count for i in uncut.store.list_incidents()}
    assert counts.keys() == expected.keys()
    assert all(counts[i] <= expected[i] for i in counts)
    if not cut_off or step in ("scan-batch-updated", "scan-chunk-handled"):
        assert counts == expected
    assert all(bool(i.ticket_refs) != bool(i.ticket_queued) for i in cut.store.list_incidents())
    assert cut.sinks[0].created() == len(cut.sinks[0].tickets) == len(uncut.sinks[0].tickets)
    decided = {a.incident_id for a in cut.store.list_audit() if a.kind in ("decision", "refusal")}
    assert decided == set(counts)
