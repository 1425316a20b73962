"""A first scan cut off at half its work, against the stand-in (real adapters, real SQLite store): the next run
finishes it without reading again what the cut run read from ARM, and every failure is counted once."""

from __future__ import annotations

from collections import Counter

import pytest

from shared.engine import scan_progress
from shared.engine.checkpoints import CutOff, cut_at
from shared.engine.scan import run_scan
from tests.support.engine import service_world

pytestmark = pytest.mark.slow

CALLERS = [f"00000c0d-0000-4000-8000-{n:012x}" for n in range(6)]


def arm_reads(world) -> Counter[tuple[str, str]]:
    """ARM reads by route and path (a role-assignment list names its caller only in the query: one path)."""
    return Counter((c.route, c.path) for c in world.az.calls.records if c.service == "arm" and c.kind == "read")


def load(world, shared_accounts: bool) -> None:
    """Six callers, each failing on two accounts: their own pair, or two of three accounts they all share."""
    for n, oid in enumerate(CALLERS):
        for k in range(2):
            account = f"shared-{(n + k) % 3}" if shared_accounts else f"own-{n}-{k}"
            world.failing_caller(oid, account=account)
    world.run_traffic(3)


def counts(world) -> dict[str, int]:
    return {i.id: i.count for i in world.rt.store.list_incidents()}


@pytest.fixture
def chunk_per_caller(monkeypatch):
    monkeypatch.setattr(scan_progress, "CHUNK_PAIRS", 2)  # one caller (two accounts) a chunk


@pytest.mark.parametrize("shared_accounts", [False, True], ids=["own-accounts", "shared-accounts"])
@pytest.mark.parametrize("instance", ["same", "fresh"])
def test_a_cut_first_scan_is_finished_by_the_next_run_without_reading_arm_again(tmp_path, chunk_per_caller,
                                                                                 shared_accounts, instance):
    with service_world(tmp_path / "uncut", mode="recommend") as uncut:
        load(uncut, shared_accounts)
        uncut.az.calls.reset()
        run_scan(uncut.rt)
        expected, reads_uncut = counts(uncut), arm_reads(uncut)

    with service_world(tmp_path / "cut", mode="recommend") as world:
        load(world, shared_accounts)
        world.az.calls.reset()
        with pytest.raises(CutOff), cut_at("scan-chunk-handled", len(CALLERS) // 2):
            run_scan(world.rt)
        cut = arm_reads(world)
        world.az.calls.reset()
        world.advance(60)
        rt = world.rt if instance == "same" else world.another_runtime()
        report = run_scan(rt)
        resumed = arm_reads(world)

        assert report.resumable["resumed"] and not report.failed
        assert counts(world) == expected
        # What the cut run and the next made together, beyond what one uncut scan makes: reads made twice.
        again = (cut + resumed) - reads_uncut
        # A fresh instance has none of the cut run's look-ups cached: the checkpoint hands it the account settings
        # the cut run read (an account both halves of the work touch is not read again), and every caller's role
        # assignments were listed in one chunk.
        assert not again, f"ARM reads repeated: {sorted(again)}"


def test_a_scan_killed_after_saving_its_evidence_is_finished_by_a_new_process_that_reads_none_again(tmp_path):
    from tests.engine.test_kill_steps import child, completed, killed

    with service_world(tmp_path / "uncut", mode="recommend") as uncut:
        load(uncut, shared_accounts=True)
        run_scan(uncut.rt)
        expected = counts(uncut)

    with service_world(tmp_path / "cut", mode="recommend") as world:
        load(world, shared_accounts=True)
        world.az.calls.reset()
        killed(child(world, tmp_path, "scan", kill_at="scan-chunk-saved#1"))  # SIGKILL: nothing flushed, no handler
        evidence_reads = world.az.calls.reads("arm")
        assert evidence_reads > 0 and not world.rt.store.list_incidents()
        world.az.calls.reset()
        world.advance(60)
        report = completed(child(world, tmp_path, "scan"))
        assert report["resumable"]["resumed"] and report["resumable"]["evidence_reused"] == len(CALLERS) * 2
        assert world.az.calls.reads("arm") == 0  # every pair's evidence came from the checkpoint
        assert counts(world) == expected


def test_the_progress_records_work_on_table_storage(azurite, monkeypatch):
    from shared.state.tables import TableStore
    from tests.engine.test_rules_resume import World
    from tests.support.azurite import unique_table_prefix

    monkeypatch.setattr(scan_progress, "CHUNK_PAIRS", 1)  # one caller a chunk
    uncut = World(4)
    uncut.traffic(3)
    run_scan(uncut.rt)
    world = World(4, store=TableStore(azurite, unique_table_prefix()))
    try:
        world.traffic(3)
        with pytest.raises(CutOff), cut_at("scan-chunk-saved", 3):  # two chunks handled, the third saved
            run_scan(world.rt)
        first = world.gathered()
        world.clock.advance(minutes=1)
        world.rt = world.runtime()
        calls = len(world.evidence.gather_calls)
        report = run_scan(world.rt)
        assert report.resumable["resumed"] and report.resumable["evidence_reused"] == 1
        assert not set(first) & set(world.gathered(calls))
        assert world.counts() == uncut.counts()
    finally:
        world.rt.close()
