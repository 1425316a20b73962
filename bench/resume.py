"""scan_first_resumes: a first scan cut off at half its work is finished by the next run, and no ARM read the cut
run made is made again, whether that run is on the same instance or on a fresh one.

The first-scan world (bench/first_scan.py: groups over callers and accounts, 50 ms on every ARM call). An uncut
first scan gives the reference: its incidents and counts, its ARM reads, and how many chunks of work it took
(engine/scan_progress.py). Then, on a fresh world each time, a first scan is cut off (checkpoints.cut_at) after
half of those chunks, the clock moves one minute, and the next run is timed: once on the same instance, as the
scan's own time budget leaves it (a clean stop; the instance's look-ups of the last 15 minutes are still cached),
and once on a fresh instance (the host killed the process at its timeout: nothing cached, only the checkpoint,
which carries the evidence and the account settings the cut run read). The flag is 1 when both next runs continue
the cut round, end with exactly the uncut run's incidents and counts, and, with the cut run, make no ARM read more
than the uncut scan made.
"""

from __future__ import annotations

import time
from collections import Counter
from datetime import timedelta
from pathlib import Path

from bench.first_scan import SPREAD_MINUTES
from bench.logrows import FloodShape, load_flood
from bench.results import Metric, rounded
from bench.sizes import Sizes
from bench.world import BenchWorld, BenchWorldError, bench_world
from shared.engine import scan_progress
from shared.engine.checkpoints import CutOff, cut_at
from shared.engine.scan import run_scan


def _arm_reads(world: BenchWorld) -> Counter[tuple[str, str]]:
    """ARM reads by route and path (a role-assignment list names its caller only in the query: one path)."""
    return Counter((c.route, c.path) for c in world.az.calls.records if c.service == "arm" and c.kind == "read")


def _counts(world: BenchWorld) -> dict[str, int]:
    return {i.id: i.count for i in world.rt.store.list_incidents()}


def _load(world: BenchWorld, shape: FloodShape, latency: float) -> None:
    load_flood(world.az, shape, world.clock.now(), timedelta(minutes=SPREAD_MINUTES))
    world.az.faults.add("arm", route=".*", delay=latency, times=None)
    world.az.calls.reset()


def _uncut(shape: FloodShape, latency: float, workdir: Path) -> tuple[dict[str, int], Counter, int, float]:
    with bench_world(workdir) as world:
        _load(world, shape, latency)
        started = time.perf_counter()
        report = run_scan(world.rt)
        elapsed = time.perf_counter() - started
        if report.signals != shape.groups or report.resumable["stopped"]:
            raise BenchWorldError(f"the uncut first scan saw {report.signals} groups (expected {shape.groups})")
        return _counts(world), _arm_reads(world), report.resumable["chunks"], elapsed


def _cut_and_resume(shape: FloodShape, latency: float, workdir: Path, cut_after: int, *, fresh_instance: bool
                    ) -> tuple[dict[str, int], Counter, bool, float]:
    """(incidents and counts at the end, ARM reads of both runs, whether the next run continued the cut round,
    the next run's seconds)."""
    with bench_world(workdir) as world:
        _load(world, shape, latency)
        try:
            with cut_at("scan-chunk-handled", cut_after):
                run_scan(world.rt)
            raise BenchWorldError("the first scan was not cut off")
        except CutOff:
            pass
        world.clock.advance(60)
        rt = world.runtime() if fresh_instance else world.rt
        try:
            started = time.perf_counter()
            report = run_scan(rt)
            elapsed = time.perf_counter() - started
            return _counts(world), _arm_reads(world), bool(report.resumable["resumed"]), elapsed
        finally:
            if rt is not world.rt:
                rt.close()


def run(sizes: Sizes, workdir: Path) -> list[Metric]:
    shape, latency = sizes.first, sizes.arm_latency_s
    chunk_pairs = scan_progress.CHUNK_PAIRS
    scan_progress.CHUNK_PAIRS = sizes.resume_chunk_pairs
    try:
        expected, uncut_reads, chunks, uncut_s = _uncut(shape, latency, workdir / "uncut")
        if chunks < 2:
            raise BenchWorldError(f"the first scan took {chunks} chunk(s): nothing to cut in half")
        half = chunks // 2
        warm = _cut_and_resume(shape, latency, workdir / "same-instance", half, fresh_instance=False)
        cold = _cut_and_resume(shape, latency, workdir / "fresh-instance", half, fresh_instance=True)
    finally:
        scan_progress.CHUNK_PAIRS = chunk_pairs
    counts, reads, resumed, resume_s = warm
    again = reads - uncut_reads
    finished = resumed and counts == expected
    cold_counts, cold_reads, cold_resumed, cold_s = cold
    cold_again = cold_reads - uncut_reads
    cold_finished = cold_resumed and cold_counts == expected
    cold_listings = sum(n for (route, _), n in cold_again.items() if "roleAssignments" in route)
    flag = int(finished and not again and cold_finished and not cold_again)
    return [
        Metric("scan_first_resumes", flag, "flag", "== 1",
               note=f"{shape.groups:,} groups, {shape.principals} callers, {shape.resources} accounts, "
                    f"{latency * 1000:.0f} ms per ARM call; cut after {half} of {chunks} chunks; uncut scan "
                    f"{rounded(uncut_s)} s and {sum(uncut_reads.values())} ARM reads; the next run on the same "
                    f"instance {rounded(resume_s)} s, {'same' if counts == expected else 'DIFFERENT'} incidents "
                    f"and counts, {sum(again.values())} ARM reads repeated; on a fresh instance "
                    f"{rounded(cold_s)} s, {'same' if cold_finished else 'DIFFERENT'} incidents and counts, "
                    f"{sum(cold_again.values())} ARM reads repeated ({cold_listings} role-assignment lists, "
                    f"{sum(cold_again.values()) - cold_listings} other: account settings come from the "
                    f"checkpoint)"),
    ]
