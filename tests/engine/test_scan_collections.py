"""A scan spaces CPython's young collections while it runs (engine/scan.py) and puts the thresholds back after,
however it ends, and however scans overlap."""

from __future__ import annotations

import gc
import threading

import pytest

from shared.engine import scan
from shared.engine.scan import SCAN_YOUNG_COLLECTION_EVERY, run_scan
from tests.support.fakes import FakeSource, ManualClock, fake_runtime


@pytest.fixture
def thresholds():
    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    yield
    gc.set_threshold(*before)


def test_a_scan_spaces_young_collections_and_restores_them(thresholds, monkeypatch):
    seen = []
    real = scan._scan

    def watched(*args, **kwargs):
        seen.append(gc.get_threshold())
        return real(*args, **kwargs)

    monkeypatch.setattr(scan, "_scan", watched)
    clock = ManualClock()
    run_scan(fake_runtime(clock=clock, sources=[FakeSource(clock)]))
    assert seen == [(SCAN_YOUNG_COLLECTION_EVERY, 10, 10)]
    assert gc.get_threshold() == (700, 10, 10)


def test_a_failing_scan_restores_them(thresholds, monkeypatch):
    def failing(*args, **kwargs):
        raise RuntimeError("store down")

    monkeypatch.setattr(scan, "_scan", failing)
    with pytest.raises(RuntimeError):
        run_scan(fake_runtime())
    assert gc.get_threshold() == (700, 10, 10)


def test_overlapping_scans_restore_them_once_the_last_ends(thresholds):
    first_in, release = threading.Event(), threading.Event()

    def first() -> None:
        with scan._spaced_collections():
            first_in.set()
            release.wait(5)

    worker = threading.Thread(target=first)
    worker.start()
    assert first_in.wait(5)
    with scan._spaced_collections():
        assert gc.get_threshold()[0] == SCAN_YOUNG_COLLECTION_EVERY
    assert gc.get_threshold()[0] == SCAN_YOUNG_COLLECTION_EVERY  # the first is still running
    release.set()
    worker.join(5)
    assert gc.get_threshold() == (700, 10, 10)
