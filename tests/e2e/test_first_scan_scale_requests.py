"""bench/first_scan_scale.py counts the Table requests a first scan sends (a count, not a timing): with key callers
(groups that share an incident), the batched way sends well under half the per-signal way's, for the same
incidents: new incidents are created in batches, and their later failures ride in them (engine/staged.py)."""

from __future__ import annotations

import pytest

from bench import first_scan_scale
from bench.logrows import FloodShape
from shared.engine import scan

pytestmark = pytest.mark.slow  # a real Azurite and the local Azure stand-in

SHAPE = FloodShape(groups=80, principals=16, resources=16, rows=800)  # a quarter of the callers use keys


def test_the_batched_first_scan_sends_far_fewer_table_requests(azurite, tmp_path, monkeypatch):
    runs = {}
    for batched in (True, False):
        monkeypatch.setattr(scan, "BATCH_NEW_INCIDENTS", batched)
        workdir = tmp_path / str(batched)
        workdir.mkdir()
        store = first_scan_scale._tables(azurite, f"requests{int(batched)}")
        runs[batched] = first_scan_scale.one_scan(SHAPE, workdir, graph=True, store=store)
    assert runs[True].incidents == runs[False].incidents < SHAPE.groups  # key callers share incidents
    assert 0 < runs[True].table_requests < runs[False].table_requests / 2
    assert 0 < runs[True].transactions < runs[False].transactions / 2  # per signal, every write is one


def test_only_requests_to_the_table_service_are_counted():
    with first_scan_scale.counting_requests("http://127.0.0.1:1/none") as sent:
        pass
    assert sent == [0, 0]
    assert first_scan_scale._table_service({}) == "(no table service)"
