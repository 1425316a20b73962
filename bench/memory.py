"""scan_peak_rss_mb, scan_rss_kb_per_group, scan_steady_ratio_100k: a scan's memory as the groups grow, and the
repeat scan of 100,000 groups against its bare query.

100,000 groups (2,000 Entra and key callers, 10 accounts each, 5 deployments per account) from 1,000,000 rows; and
the same shape at a tenth (200 callers, 10,000 groups, 100,000 rows). The stand-in runs here; each measured scan
runs in a process of its own (bench/scan_child.py) that imports nothing of the stand-in, and reports its VmHWM.
Two scans per size: the first (every group new: incidents opened, evidence for every caller) and a repeat a minute
later (every group known). A size's peak is the larger of its two; the slope is the difference of the two sizes'
peaks per group between them.

Then, in the 100,000-group world, a service instance in this process (warmed by one unmeasured repeat scan, as a
Function App instance is after its first cycle) repeats the scan a minute apart, each timed against a bare
`LogsQueryClient.query_workspace` of the whole window's KQL (one response of 100,000 groups), interleaved.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.logrows import FloodShape, load_flood
from bench.results import Metric, median, rounded
from bench.scan_steady import bare_client, check_steady, timed_call, timed_service
from bench.sizes import Sizes
from bench.world import BenchWorld, BenchWorldError, bench_world
from shared.adapters import kql
from shared.engine.scan import run_scan

ROOT = Path(__file__).resolve().parents[1]
SPREAD = timedelta(minutes=4)
CHILD_TIMEOUT_S = 900
STEP_SECONDS = 60


def child_scan(settings_path: Path, now: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench.scan_child", str(settings_path), now], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    if done.returncode != 0:
        raise BenchWorldError(f"scan process failed ({done.returncode}): {done.stderr[-2000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "seconds": time.perf_counter() - started}


def _first_and_repeat(world: BenchWorld, shape: FloodShape, workdir: Path) -> tuple[dict, dict]:
    settings_path = workdir / "settings.json"
    settings_path.write_text(json.dumps({**world.env, "TRIAGE_LOCAL_TOKEN": "bench-token"}), encoding="utf-8")
    first = child_scan(settings_path, world.clock.now().isoformat())
    world.clock.advance(STEP_SECONDS)
    repeat = child_scan(settings_path, world.clock.now().isoformat())
    for scan in (first, repeat):
        if scan["signals"] != shape.groups:
            raise BenchWorldError(f"a scan saw {scan['signals']} groups, expected {shape.groups}")
    if repeat["actions"] or repeat["incidents"] != first["incidents"]:
        raise BenchWorldError(f"the repeat scan was not steady: {repeat}")
    return first, repeat


def _peaks(first: dict, repeat: dict) -> str:
    return (f"first scan {first['peak_rss_mb']:.0f} MB ({first['seconds']:.0f} s), repeat scan "
            f"{repeat['peak_rss_mb']:.0f} MB ({repeat['seconds']:.0f} s)")


def _steady_ratio(world: BenchWorld, shape: FloodShape, incidents: int, repeats: int) -> dict[str, Any]:
    """The repeat scan of a warm instance against the bare query, interleaved; and its work outside the queries."""
    service, timed = timed_service(world)
    client = bare_client(world)
    source = service.sources[0]
    overlap = timedelta(minutes=service.settings.lookback_overlap_minutes)
    scans, bares, own, queries = [], [], [], []
    try:
        world.clock.advance(STEP_SECONDS)
        check_steady(run_scan(service), shape.groups, incidents)  # the warm-up: this instance plans its pages
        for n in range(repeats):
            world.clock.advance(STEP_SECONDS)
            watermark = service.store.get_watermark(source.name)
            start, end = watermark - overlap, world.clock.now()
            text = kql.failures_query(start=start, watermark=watermark, end=end)

            def bare(text=text, start=start, end=end):
                return client.query_workspace(world.az.workspace_id, text, timespan=(start, end))

            queried, asked = timed.seconds, timed.queries
            if n % 2 == 0:
                bare_s, _ = timed_call(bare)
                scan_s, report = timed_call(lambda: run_scan(service))
            else:
                scan_s, report = timed_call(lambda: run_scan(service))
                bare_s, _ = timed_call(bare)
            check_steady(report, shape.groups, incidents)
            scans.append(scan_s)
            bares.append(bare_s)
            own.append(scan_s - (timed.seconds - queried))
            queries.append(timed.queries - asked)
    finally:
        service.close()
        client.close()
        timed.close()
    return {"scan": median(scans), "bare": median(bares), "own": median(own), "queries": max(queries),
            "repeats": len(scans)}


def run(sizes: Sizes, workdir: Path) -> list[Metric]:
    small, shape = sizes.memory_small, sizes.memory
    (workdir / "small").mkdir()
    (workdir / "large").mkdir()
    with bench_world(workdir / "small") as world:
        small_rows = load_flood(world.az, small, world.clock.now(), SPREAD)
        small_first, small_repeat = _first_and_repeat(world, small, workdir / "small")
    with bench_world(workdir / "large") as world:
        rows = load_flood(world.az, shape, world.clock.now(), SPREAD)
        first, repeat = _first_and_repeat(world, shape, workdir / "large")
        steady = _steady_ratio(world, shape, first["incidents"], sizes.steady_100k_repeats)
    peak = max(first["peak_rss_mb"], repeat["peak_rss_mb"])
    small_peak = max(small_first["peak_rss_mb"], small_repeat["peak_rss_mb"])
    slope_kb = (peak - small_peak) * 1024 / max(1, shape.groups - small.groups)
    where = f"{shape.groups:,} groups from {rows:,} rows, {first['incidents']:,} incidents"
    return [
        Metric("scan_peak_rss_mb", peak, "MB", "<= 150", note=f"{where}: {_peaks(first, repeat)} (VmHWM)"),
        Metric("scan_rss_kb_per_group", rounded(slope_kb), "KB", "<= 0.8", baseline=small_peak,
               note=f"peak {small_peak:.0f} MB at {small.groups:,} groups ({small_rows:,} rows, "
                    f"{small_first['incidents']:,} incidents: {_peaks(small_first, small_repeat)}) to {peak:.0f} MB "
                    f"at {shape.groups:,}"),
        Metric("scan_steady_ratio_100k", rounded(steady["scan"] / steady["bare"]), "ratio", "<= 2",
               baseline=rounded(steady["bare"]),
               note=f"{where}; {steady['repeats']} repeat scans of a warm instance: scan {steady['scan']:.2f} s vs "
                    f"bare query {steady['bare']:.2f} s (medians); {steady['queries']} queries a scan, "
                    f"{steady['own']:.2f} s outside them"),
    ]
