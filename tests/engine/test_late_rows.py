"""Issue 13 over the local stand-in and the real SDK clients: the scan windows on ingestion time, so rows that
arrive late are read once and counted once, an instance whose clock runs ahead skips nothing, and failed first
runs lose nothing (localazure/logstore.py keeps an ingestion time per row)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from localazure import FakeCredential
from shared import bootstrap
from shared.settings import load_settings
from tests.support.engine import service_world

pytestmark = pytest.mark.slow  # every test runs a service world on the local Azure stand-in

ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"


def scans(world, minutes: int, every: int = 5, rt=None) -> None:
    for _ in range(minutes // every):
        world.advance(every * 60)
        world.scan(rt)


def test_rows_ingested_30_minutes_late_are_read_and_counted_exactly_once(tmp_path):
    with service_world(tmp_path, mode="observe") as world:
        world.failing_caller(ORDERS, ingestion_delay_seconds=1800)
        failed = world.run_traffic(3)  # 6 failures, each arriving in the workspace 30 minutes later
        world.scan()
        assert [i.principal_id for i in world.rt.store.list_incidents()] == []  # nothing has arrived yet
        world.az.clear_traffic()

        scans(world, 45)  # nine timer scans: the rows arrive during them, and later scans re-read the overlap
        assert world.incident_of(ORDERS).count == failed == 6
        # The re-read overlap never counts them again.
        scans(world, 30)
        assert world.incident_of(ORDERS).count == 6


def test_late_rows_and_on_time_rows_of_one_caller_are_each_counted_once(tmp_path):
    with service_world(tmp_path, mode="observe") as world:
        world.failing_caller(ORDERS, per_tick=2)  # on time
        world.failing_caller(ORDERS, per_tick=1, ingestion_delay_seconds=900, route=world_route())
        failed = world.run_traffic(4)
        world.az.clear_traffic()
        scans(world, 60)
        counted = sum(i.count for i in world.rt.store.list_incidents() if i.principal_id == ORDERS)
        assert counted == failed == 12


def world_route() -> str:
    return "/openai/deployments/gpt-4o/embeddings"


def test_an_instance_whose_clock_runs_ahead_skips_no_rows(tmp_path):
    with service_world(tmp_path, mode="observe") as world:
        # A second instance whose clock runs 20 minutes ahead of the workspace's (and of the first one's).
        ahead = bootstrap.build_runtime(load_settings(world.env), credential=FakeCredential(),
                                        clock=lambda: world.clock.now() + timedelta(minutes=20))
        world.extra_runtimes.append(ahead)
        world.failing_caller(ORDERS)
        failed = 0
        for _ in range(6):  # the instance ahead runs every scan; failures keep coming in between
            failed += world.run_traffic(5)
            world.scan(ahead)
        world.az.clear_traffic()
        world.advance(60)
        world.scan(ahead)
        assert world.incident_of(ORDERS).count == failed == 60
        # Its watermark is the workspace's clock, never its own.
        [source] = ahead.sources
        assert ahead.store.get_watermark(source.name) <= world.clock.now() + timedelta(microseconds=1)


def test_failed_first_runs_do_not_lose_the_oldest_failures(tmp_path):
    with service_world(tmp_path, mode="observe", TRIAGE_INITIAL_LOOKBACK_MINUTES="30") as world:
        world.failing_caller(ORDERS)
        failed = world.run_traffic(10)
        world.az.clear_traffic()
        world.az.faults.add("logs", route=".*", status=403, times=10_000)  # not retried by the SDK
        for _ in range(8):  # 40 minutes of first runs that all fail: longer than the look-back
            world.advance(300)
            assert world.scan().failed
        world.az.faults.clear()
        world.advance(60)
        assert not world.scan().failed
        assert world.incident_of(ORDERS).count == failed == 20
