"""Atomic grant budgets (issue 13, item 1): before any ARM write a slot is reserved in one budget record with a
conditional write, and given back when the write did not happen. No interleaving of runs, events, approvals or
instances exceeds the daily or hourly cap: threads on one SQLite store (one connection, or one file opened by each
"instance") never get more slots than the cap. The multi-process test on Azurite is in tests/state."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta
from typing import Any

import pytest

from shared.core import incidents as inc
from shared.core.budget import BUDGET_KEY
from shared.core.events import parse_failure_event
from shared.core.records import ConflictError
from shared.engine import budget
from shared.engine.approvals import ActionRefused, approve
from shared.engine.events import handle_event_safely, trusted_topic
from shared.engine.inputs import envelope_of
from shared.engine.runtime import new_correlation_id
from shared.engine.scan import run_scan
from shared.engine.signals import handle_signal
from shared.engine.unit_of_work import RunState
from shared.state.sqlite import SqliteStore
from tests.engine.common import (
    ACCOUNT,
    ALICE,
    ORDERS,
    TRUSTED_TOPIC,
    incident_of,
    refusals,
    run_together,
    topic_failure_event,
)
from tests.engine.conftest import BASE_ENV
from tests.support.fakes import FakeEvidence, FakeRoleWriter, FakeSource, ManualClock, RecordingSink, fake_runtime

CALLERS = [str(uuid.UUID(int=0x6C9A1F52_3D1E_4B7A_9A51_0B2F8E4D7C00 + n)) for n in range(8)]


def slots(store: Any) -> list[dict[str, Any]]:
    value, _ = store.get_value(BUDGET_KEY)
    return (value or {}).get("slots", [])


class Instances:
    """Several service instances on one SQLite state file (or one shared store), one ARM and one tracker."""

    def __init__(self, tmp_path, clock: ManualClock, *, shared_store: bool, **env: str):
        self.clock = clock
        self.evidence = FakeEvidence(clock)
        self.evidence.add_account(ACCOUNT)
        self.roles = FakeRoleWriter(self.evidence, clock)
        self.source = FakeSource(clock)
        self.sink = RecordingSink()
        self.path = str(tmp_path / "state.sqlite3")
        self.shared = SqliteStore(self.path) if shared_store else None
        self.env = {**BASE_ENV, "TRIAGE_ALLOWLIST": json.dumps([{"object_id": oid} for oid in CALLERS]),
                    "TRIAGE_TRUSTED_EVENT_TOPICS": TRUSTED_TOPIC, **env}
        self.stores: list[SqliteStore] = []

    def runtime(self) -> Any:
        store = self.shared or SqliteStore(self.path)
        self.stores.append(store)
        return fake_runtime(self.env, clock=self.clock, store=store, sources=[self.source], evidence=self.evidence,
                            roles=self.roles, sinks=[self.sink])

    def close(self) -> None:
        for store in {id(s): s for s in self.stores}.values():
            store.close()


@pytest.fixture(params=["one-store", "a-store-per-instance"])
def instances(request, tmp_path, clock):
    made: list[Instances] = []

    def build(**env: str) -> Instances:
        made.append(Instances(tmp_path, clock, shared_store=request.param == "one-store", **env))
        return made[-1]

    yield build
    for each in made:
        each.close()


def test_threads_reserving_at_once_never_get_more_slots_than_the_cap(instances):
    world = instances(TRIAGE_MAX_GRANTS_PER_DAY="5", TRIAGE_MAX_GRANTS_PER_HOUR="100")
    runtimes = [world.runtime() for _ in range(12)]
    answers = run_together(*(lambda rt=rt, n=n: budget.reserve(rt, f"inc-{n}") for n, rt in enumerate(runtimes)))
    assert not [a for a in answers if isinstance(a, Exception)], answers
    taken = [a.reservation for a in answers if a.reservation is not None]
    assert len(taken) == 5
    assert sorted(s["token"] for s in slots(runtimes[0].store)) == sorted(r.token for r in taken)


def test_eight_concurrent_failure_events_grant_no_more_than_the_daily_cap(instances):
    world = instances(TRIAGE_MODE="enforce", TRIAGE_MAX_GRANTS_PER_DAY="2")
    runtimes = [world.runtime() for _ in CALLERS]
    events = [topic_failure_event(f"burst-{n}", oid) for n, oid in enumerate(CALLERS)]
    outcomes = run_together(*(lambda rt=rt, e=e: handle_event_safely(rt, e) for rt, e in zip(runtimes, events,
                                                                                               strict=True)))
    assert not [o for o in outcomes if isinstance(o, Exception)], outcomes
    assert len(world.roles.grants) == 2
    store = runtimes[0].store
    refused = [i for i in store.list_incidents() if i.status == inc.TICKETED]
    assert len(refused) == 6 and all(refusals(store, i.id)[-1] == ["daily_cap"] for i in refused)
    assert len(slots(store)) == 2


def test_concurrent_approvals_grant_no_more_than_the_daily_cap(instances):
    world = instances(TRIAGE_MODE="recommend", TRIAGE_MAX_GRANTS_PER_DAY="2")
    scanner = world.runtime()
    for oid in CALLERS[:6]:
        world.source.fail(oid, ACCOUNT, count=2)
    world.clock.advance(minutes=1)
    run_scan(scanner)
    recommended = scanner.store.list_incidents(inc.RECOMMENDED)
    assert len(recommended) == 6

    runtimes = [world.runtime() for _ in recommended]
    results = run_together(*(lambda rt=rt, i=i: approve(rt, i.id, ALICE) for rt, i in zip(runtimes, recommended,
                                                                                            strict=True)))
    granted = [r for r in results if not isinstance(r, Exception)]
    refused = [r for r in results if isinstance(r, ActionRefused)]
    assert len(granted) == 2 and len(refused) == 4, results
    assert all("[daily_cap]" in str(r) for r in refused)
    assert len(world.roles.grants) == 2


def test_the_hourly_cap_bounds_a_burst_of_events_and_lifts_after_the_hour(instances):
    world = instances(TRIAGE_MODE="enforce", TRIAGE_MAX_GRANTS_PER_HOUR="3")
    rt = world.runtime()
    for n, oid in enumerate(CALLERS[:5]):
        handle_event_safely(rt, topic_failure_event(f"hour-{n}", oid))
    assert len(world.roles.grants) == 3
    capped = [i for i in rt.store.list_incidents() if i.status == inc.TICKETED]
    assert [refusals(rt.store, i.id)[-1] for i in capped] == [["hourly_cap"], ["hourly_cap"]]

    world.clock.advance(minutes=61)  # the hour has passed: the next failures of the capped callers are granted
    for n, incident in enumerate(capped):
        handle_event_safely(rt, topic_failure_event(f"hour-later-{n}", incident.principal_id,
                                                    time=world.clock.now().isoformat()))
    assert len(world.roles.grants) == 5


def test_a_run_begun_before_other_grants_still_cannot_exceed_the_cap(make_runtime, store, roles, clock):
    rt = make_runtime(mode="enforce", allowlist=CALLERS, TRIAGE_MAX_GRANTS_PER_DAY="2",
                      TRIAGE_TRUSTED_EVENT_TOPICS=TRUSTED_TOPIC)
    stale = RunState.begin(rt, new_correlation_id())  # its snapshot says: no grant today
    handle_event_safely(rt, topic_failure_event("first", CALLERS[0]))
    handle_event_safely(rt, topic_failure_event("second", CALLERS[1]))
    assert len(roles.grants) == 2 and stale.grants_last_24h == 0

    event = topic_failure_event("third", CALLERS[2])
    signal = parse_failure_event(event["data"], default_time=clock.now()).signal
    pair = (signal.object_id, signal.resource_id)
    evidence = rt.evidence.gather_evidence({pair})[pair]
    handle_signal(rt, stale, signal, evidence, witness=trusted_topic(rt, envelope_of(event)))
    assert len(roles.grants) == 2
    assert refusals(store, incident_of(store, CALLERS[2]).id)[-1] == ["daily_cap"]
    assert stale.grants_last_24h == 2  # the reservation's count, not the snapshot's


@pytest.mark.parametrize("answer", ["forbidden", "failed", "retry_later"])
def test_a_write_that_did_not_happen_gives_its_slot_back(make_runtime, traffic, store, roles, answer):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS], TRIAGE_MAX_GRANTS_PER_DAY="1")
    roles.answer_next(answer)
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    assert len(roles.grants) == 1 and slots(store) == []
    [record] = [a for a in store.list_audit() if a.inputs.get("outcome") == answer]
    assert record.inputs["budget_slot"]


def test_a_write_that_may_have_happened_keeps_its_slot(make_runtime, traffic, store, roles):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])

    def unanswered(**kwargs: Any) -> Any:
        raise TimeoutError("ARM did not answer")

    roles.create = unanswered  # type: ignore[method-assign]
    traffic(2, failing=[ORDERS])
    with pytest.raises(TimeoutError):
        run_scan(rt)
    assert len(slots(store)) == 1


def test_a_lost_claim_gives_its_slot_back(make_runtime, traffic, store, roles):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    traffic(2, failing=[ORDERS])
    original = store.put_incident
    lost: list[str] = []

    def racing(incident, expected_etag=None):
        if incident.status == inc.ASSIGNED and not lost:  # another instance claimed it first
            lost.append(incident.id)
            raise ConflictError(f"incident {incident.id} already exists")
        return original(incident, expected_etag=expected_etag)

    store.put_incident = racing  # type: ignore[method-assign]
    run_scan(rt)  # the run re-reads, decides again and wins the second time
    assert lost and len(roles.grants) == 1
    assert len(slots(store)) == 1


def test_an_unreadable_budget_refuses_every_grant(make_runtime, traffic, store, roles):
    store.put_value(BUDGET_KEY, {"slots": "not a list"})
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    assert roles.grants == []
    assert refusals(store, incident_of(store, ORDERS).id)[-1] == ["daily_cap", "hourly_cap"]


def test_the_budget_record_keeps_only_the_last_day(make_runtime, store, clock):
    rt = make_runtime(mode="enforce", TRIAGE_MAX_GRANTS_PER_DAY="3", TRIAGE_MAX_GRANTS_PER_HOUR="3")
    for day in range(4):
        for n in range(3):
            assert budget.reserve(rt, f"inc-{day}-{n}").reservation is not None
        assert budget.reserve(rt, "one-too-many").reservation is None
        clock.advance(hours=24, minutes=1)
    assert len(slots(store)) == 3
    assert budget.budget_counts(rt, clock.now() + timedelta(hours=1)).last_hour == 0


def test_once_a_delivery_finds_the_cap_reached_the_next_refuses_without_reading_the_budget(instances):
    """Deliveries share the run-level facts: a reservation that saw the cap reached updates them, so the next
    delivery's policy names the cap itself, without reading the budget or the revocations again (a burst on Table
    Storage spent two requests per refused grant)."""
    world = instances(TRIAGE_MODE="enforce", TRIAGE_MAX_GRANTS_PER_HOUR="2")
    rt = world.runtime()
    reads: list[str] = []
    read = rt.store.get_value

    def counted(key: str):
        reads.append(key)
        return read(key)

    rt.store.get_value = counted
    for n, oid in enumerate(CALLERS[:3]):
        handle_event_safely(rt, topic_failure_event(f"cap-{n}", oid))
    assert len(world.roles.grants) == 2
    reads.clear()
    for n, oid in enumerate(CALLERS[3:6]):
        handle_event_safely(rt, topic_failure_event(f"cap-later-{n}", oid))
    assert len(world.roles.grants) == 2
    capped = [i for i in rt.store.list_incidents() if i.status == inc.TICKETED]
    assert len(capped) == 4 and all(refusals(rt.store, i.id)[-1] == ["hourly_cap"] for i in capped)
    assert BUDGET_KEY not in reads and not [k for k in reads if "revocation" in k], reads
