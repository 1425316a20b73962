"""The batched creates of a scan chunk on Azure Table Storage (a real Azurite): the same outcome as the per-signal
way, and a create that another instance won (the entity-group transaction that meets it writes nothing) goes the
per-signal way."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from shared.core.incidents import Incident
from shared.engine.scan import run_scan
from tests.engine.test_rules_batch_create import World, per_signal, scans

pytestmark = pytest.mark.slow  # a real Azurite

FIRST = [(0, 0, True), (1, 0, False), (2, 1, False), (3, 1, True)]
LATER = [(4, 0, False), (5, 1, True), (6, 0, False)]


def table_store(azurite: str) -> Any:
    from shared.state.tables import TableStore
    from tests.support.azurite import unique_table_prefix

    return TableStore(azurite, unique_table_prefix())


@pytest.mark.parametrize("round_views", [True, False], ids=["views-at-round-start", "point-reads"])
def test_batched_creates_on_tables_end_as_the_per_signal_way(azurite, monkeypatch, round_views):
    from shared.engine import scan

    if round_views:
        monkeypatch.setattr(scan, "ROUND_VIEWS_FROM", 0)
    batched = World(mode="enforce", allowed=(1, 5), tickets=2, store=table_store(azurite))
    batched_reports = scans(batched, FIRST, LATER)
    with per_signal():
        single = World(mode="enforce", allowed=(1, 5), tickets=2, store=table_store(azurite))
        single_reports = scans(single, FIRST, LATER)
    assert batched_reports == single_reports
    assert batched.outcome() == single.outcome()
    assert len(batched.roles.grants) == 2


def test_a_create_another_instance_won_on_tables_goes_the_per_signal_way(azurite):
    from shared.state.tables import TableStore
    from tests.support.azurite import unique_table_prefix

    class Racing(TableStore):
        lost: list[str] = []

        def create_incidents(self, items: Any) -> list[Incident | None]:
            if items and not self.lost:
                self.lost.append(items[0][0].id)  # another instance creates it first, with 100 more failures
                self.put_incident(replace(items[0][0], count=items[0][0].count + 100))
            return super().create_incidents(items)

    world = World(tickets=5, store=Racing(azurite, unique_table_prefix()))
    world.traffic([(n, 0, False) for n in range(4)])
    report = run_scan(world.rt)
    [lost] = world.store.lost
    incidents = {i.id: i for i in world.store.list_incidents()}
    assert len(incidents) == 4 and sorted(set(report.incidents)) == sorted(incidents)
    assert incidents[lost].count > 100  # the other's record, updated with this run's failures, not overwritten
    # the others were created (their transaction met the existing one and wrote nothing, then one by one) and
    # ticketed once each; the lost one's ticket is the other instance's claim, not opened here
    assert {t.incident_id for t in world.sinks[0].tickets.values()} == set(incidents) - {lost}
    assert world.sinks[0].created() == 3


def test_replace_incidents_on_tables(azurite):
    from tests.engine.test_rules_batch_create import replaced_where_unchanged

    replaced_where_unchanged(table_store(azurite))


def test_a_scan_killed_right_after_its_batch_landed_loses_nothing(tmp_path):
    """SIGKILL (TRIAGE_TEST_KILL_AT) once a chunk's new incidents are created and before any ticket is sent: the
    next process, a stale claim later, ends with the incidents and counts of an uncut scan, no claim left over."""
    from tests.engine.test_kill_steps import child, completed, killed
    from tests.engine.test_resume import counts, load
    from tests.support.engine import service_world

    with service_world(tmp_path / "uncut", mode="recommend") as uncut:
        load(uncut, shared_accounts=False)
        run_scan(uncut.rt)
        expected = counts(uncut)

    with service_world(tmp_path / "cut", mode="recommend") as world:
        load(world, shared_accounts=False)
        killed(child(world, tmp_path, "scan", kill_at="scan-batch-created#1"))
        landed = world.rt.store.list_incidents()
        assert landed and all(i.ticket_pending for i in landed)  # created, claimed, nothing sent yet
        world.advance(180)  # past the stale-claim age: the next run takes the claims up again
        completed(child(world, tmp_path, "scan"))
        assert counts(world) == expected
        assert all(not i.ticket_pending for i in world.rt.store.list_incidents())


@pytest.mark.parametrize("applied", [True, False], ids=["answer-lost", "not-sent"])
def test_a_batch_whose_connection_failed_is_read_back_not_written_twice(azurite, applied):
    """A connection that fails on an entity-group transaction leaves its outcome unknown (the SDK retries no POST):
    what it wrote is read back as written, what it did not is written alone; the scan counts every failure once."""
    from azure.core.exceptions import ServiceResponseError
    from azure.core.pipeline.transport import RequestsTransport

    from shared.state.tables import TableStore
    from tests.support.azurite import unique_table_prefix

    class Flaky(RequestsTransport):
        failures = 1

        def send(self, request: Any, **kwargs: Any) -> Any:
            batch = request.url.split("?", 1)[0].endswith("$batch")
            if batch and self.failures and not applied:
                self.failures -= 1
                raise ServiceResponseError("('Connection aborted.', ConnectionResetError(104, 'reset by peer'))")
            response = super().send(request, **kwargs)
            if batch and self.failures and applied:
                self.failures -= 1
                raise ServiceResponseError("('Connection aborted.', ConnectionResetError(104, 'reset by peer'))")
            return response

    transport = Flaky()
    world = World(tickets=5, store=TableStore(azurite, unique_table_prefix(), transport=transport))
    single = World(tickets=5)
    for each in (world, single):
        each.traffic([(n, 0, n == 0) for n in range(4)])
    run_scan(world.rt)
    with per_signal():
        run_scan(single.rt)
    assert transport.failures == 0
    assert {i.id: (i.count, i.status) for i in world.store.list_incidents()} == {
        i.id: (i.count, i.status) for i in single.store.list_incidents()}
    assert world.sinks[0].created() == single.sinks[0].created() == 4
