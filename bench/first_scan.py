"""arm_reads_per_scan_first and evidence_parallel_s: a first scan that finds every failure group new.

1,000 groups (one per caller and account) across 200 Entra callers and 50 accounts, some callers already holding
roles. The service is in its default mode (recommend) with the log ticket sink. Every ARM call gets 50 ms of
injected latency; the sequential baseline is the number of ARM reads times that latency. Each repetition is a
fresh stand-in and a fresh store, so every scan is a first scan.
"""

from __future__ import annotations

import time
from pathlib import Path

from bench.logrows import FloodShape, load_flood
from bench.results import Metric, median, rounded
from bench.sizes import Sizes
from bench.world import BenchWorldError, bench_world
from shared.engine.scan import run_scan

SPREAD_MINUTES = 9


def one_first_scan(shape: FloodShape, latency: float, workdir: Path) -> tuple[float, int, int]:
    """(wall seconds, ARM reads, incidents) of one first scan."""
    from datetime import timedelta

    with bench_world(workdir) as world:
        load_flood(world.az, shape, world.clock.now(), timedelta(minutes=SPREAD_MINUTES))
        world.az.faults.add("arm", route=".*", delay=latency, times=None)
        world.az.calls.reset()
        started = time.perf_counter()
        report = run_scan(world.rt)
        elapsed = time.perf_counter() - started
        reads = world.az.calls.reads("arm")
        if report.signals != shape.groups or report.partial:
            raise BenchWorldError(f"first scan saw {report.signals} groups (expected {shape.groups}); "
                                  f"partial: {report.partial}")
        return elapsed, reads, len(report.incidents)


def run(sizes: Sizes, workdir: Path) -> list[Metric]:
    shape, latency = sizes.first, sizes.arm_latency_s
    walls, reads, incidents = [], [], 0
    for n in range(sizes.repeats):
        run_dir = workdir / f"run-{n}"
        run_dir.mkdir()
        wall, arm_reads, incidents = one_first_scan(shape, latency, run_dir)
        walls.append(wall)
        reads.append(arm_reads)
    worst_reads = max(reads)
    allowed = shape.principals + shape.resources + 1
    return [
        Metric("arm_reads_per_scan_first", worst_reads, "calls", f"<= {allowed}",
               note=f"{incidents:,} new incidents, {shape.principals} principals, {shape.resources} accounts; "
                    f"target = principals + accounts + 1 (role definitions)"),
        Metric("evidence_parallel_s", rounded(median(walls)), "s", "<= 5",
               baseline=rounded(worst_reads * latency),
               note=f"whole first scan with {latency * 1000:.0f} ms on every ARM call, median of {len(walls)}; "
                    f"baseline = the ARM reads one after another ({worst_reads} x {latency * 1000:.0f} ms)"),
    ]
