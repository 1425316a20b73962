"""The scheduled reviews against the local stand-in (real SDK clients over HTTPS): a tick after the slot runs both
reviews and tickets them, later ticks of that slot do nothing, the next slot updates the tickets; two instances
ticking at once run it once; a run that fails gives the slot back; no Azure write."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from localazure.calls import WRITE
from shared.core.review_schedule import ReviewSlot, latest_slot
from shared.engine import review_schedule
from shared.engine.review_schedule import REVIEW_RUN_KEY, run_scheduled_reviews
from shared.state.sqlite import SqliteStore
from tests.engine.test_reviews import reader_for, world
from tests.support.fakes import RecordingSink


@pytest.fixture
def az(local_azure_factory):
    az = local_azure_factory(world())
    az.simulate(3)
    return az


def _daily_slot_before(now):
    at = now - timedelta(minutes=5)
    return ReviewSlot(None, at.hour, at.minute)


def test_a_slot_is_reviewed_once_then_again_at_the_next_slot(az, tmp_path):
    store, sink = SqliteStore(str(tmp_path / "state.db")), RecordingSink("log")
    now = az.clock.now() + timedelta(seconds=1)
    slot = _daily_slot_before(now)
    logs_before, accounts_before = az.calls.count(service="logs"), az.calls.count(route="accounts.get")
    first = run_scheduled_reviews(store, reader_for(az), [sink], slot=slot, now=now, mode="recommend")
    # both reviews come from one read of the facts: one log query, one GET per account
    assert az.calls.count(service="logs") - logs_before == 1
    assert az.calls.count(route="accounts.get") - accounts_before == 3
    assert first["ran"] and first["slot"] == latest_slot(slot, now).isoformat()
    names = {a.rsplit("/", 1)[-1]: v for a, v in first["readiness"].items()}
    assert names == {"aoai-prod": "not_ready", "foundry-hub": "already_disabled", "aoai-quiet": "not_ready"}
    assert first["access"] and first["could_not_check"] >= 1  # aoai-quiet has no traffic
    opened = [t for t in first["tickets"] if t["result"] == "opened"]
    assert opened and len(sink.tickets) == len(opened)
    assert not az.calls.count(kind=WRITE, service="arm")

    later = run_scheduled_reviews(store, reader_for(az), [sink], slot=slot, now=now + timedelta(hours=1),
                                  mode="recommend")
    assert not later["ran"] and "ran" in later["reason"]
    next_day = run_scheduled_reviews(store, reader_for(az), [sink], slot=slot, now=now + timedelta(days=1),
                                     mode="recommend")
    results = {t["result"] for t in next_day["tickets"]}
    assert next_day["ran"] and "updated" in results and "opened" not in results
    assert len(sink.tickets) == len(opened)  # the same tickets, found again by their fingerprints
    record, _ = store.get_value(REVIEW_RUN_KEY)
    assert record["state"] == "done" and record["slot"] == next_day["slot"]
    store.close()


def test_two_instances_ticking_at_once_review_the_slot_once(az, tmp_path):
    path = str(tmp_path / "state.db")
    stores = [SqliteStore(path), SqliteStore(path)]
    sinks = [RecordingSink("log"), RecordingSink("log")]
    now = az.clock.now() + timedelta(seconds=1)
    slot = _daily_slot_before(now)
    start = threading.Barrier(2)
    outcomes: list[dict] = [{}, {}]

    def tick(n: int) -> None:
        start.wait()
        outcomes[n] = run_scheduled_reviews(stores[n], reader_for(az), [sinks[n]], slot=slot, now=now,
                                            mode="recommend")

    threads = [threading.Thread(target=tick, args=(n,)) for n in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(o["ran"] for o in outcomes) == [False, True]
    ran = next(o for o in outcomes if o["ran"])
    assert sum(len(s.tickets) for s in sinks) == sum(t["result"] == "opened" for t in ran["tickets"]) > 0
    for store in stores:
        store.close()


def test_a_run_that_fails_gives_its_slot_back_and_the_next_tick_runs_it(az, tmp_path, monkeypatch):
    store, sink = SqliteStore(str(tmp_path / "state.db")), RecordingSink("log")
    now = az.clock.now() + timedelta(seconds=1)
    slot = _daily_slot_before(now)

    def broken(*args, **kwargs):
        raise RuntimeError("the review broke")

    monkeypatch.setattr(review_schedule, "review_both", broken)
    with pytest.raises(RuntimeError):
        run_scheduled_reviews(store, reader_for(az), [sink], slot=slot, now=now, mode="recommend")
    monkeypatch.undo()
    again = run_scheduled_reviews(store, reader_for(az), [sink], slot=slot, now=now + timedelta(minutes=1),
                                  mode="recommend")
    assert again["ran"] and again["slot"] == latest_slot(slot, now).isoformat()
    store.close()


def test_off_reads_nothing(az, tmp_path):
    store = SqliteStore(str(tmp_path / "state.db"))
    before = len(az.calls.records)
    outcome = run_scheduled_reviews(store, reader_for(az), [], slot=None, now=az.clock.now(), mode="recommend")
    assert outcome == {"ran": False, "reason": "TRIAGE_REVIEW_SCHEDULE is off"}
    assert len(az.calls.records) == before and store.get_value(REVIEW_RUN_KEY) == (None, None)
    store.close()
