"""scan_peak_rss_mb: peak resident memory of a scan process handling 100,000 failure groups.

100,000 groups (2,000 Entra and key callers, 10 accounts each, 5 deployments per account) from 400,000 rows.
The stand-in runs here; each scan runs in a process of its own (bench/scan_child.py) that imports nothing of the
stand-in, and reports its VmHWM. Two scans: the first (every group new: 20,000 incidents opened, evidence for
every caller) and a repeat a minute later (every group known). The metric is the larger peak.
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

from bench.logrows import load_flood
from bench.results import Metric
from bench.sizes import Sizes
from bench.world import BenchWorldError, bench_world

ROOT = Path(__file__).resolve().parents[1]
SPREAD = timedelta(minutes=4)
CHILD_TIMEOUT_S = 900


def child_scan(settings_path: Path, now: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench.scan_child", str(settings_path), now], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT_S)
    if done.returncode != 0:
        raise BenchWorldError(f"scan process failed ({done.returncode}): {done.stderr[-2000:]}")
    return {**json.loads(done.stdout.strip().splitlines()[-1]), "seconds": time.perf_counter() - started}


def run(sizes: Sizes, workdir: Path) -> list[Metric]:
    shape = sizes.memory
    with bench_world(workdir) as world:
        rows = load_flood(world.az, shape, world.clock.now(), SPREAD)
        settings_path = workdir / "settings.json"
        settings_path.write_text(json.dumps({**world.env, "TRIAGE_LOCAL_TOKEN": "bench-token"}), encoding="utf-8")
        first = child_scan(settings_path, world.clock.now().isoformat())
        world.clock.advance(60)
        repeat = child_scan(settings_path, world.clock.now().isoformat())
    for scan in (first, repeat):
        if scan["signals"] != shape.groups:
            raise BenchWorldError(f"a scan saw {scan['signals']} groups, expected {shape.groups}")
    if repeat["actions"] or repeat["incidents"] != first["incidents"]:
        raise BenchWorldError(f"the repeat scan was not steady: {repeat}")
    peak = max(first["peak_rss_mb"], repeat["peak_rss_mb"])
    return [Metric("scan_peak_rss_mb", peak, "MB", "<= 300",
                   note=f"{shape.groups:,} groups from {rows:,} rows, {first['incidents']:,} incidents: first scan "
                        f"{first['peak_rss_mb']:.0f} MB ({first['seconds']:.0f} s), repeat scan "
                        f"{repeat['peak_rss_mb']:.0f} MB ({repeat['seconds']:.0f} s) (VmHWM)")]
