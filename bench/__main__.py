"""`python -m bench` (`make bench`): run every benchmark against the local stand-in, print the table, write
bench-results.json at the repository root.

    python -m bench                      # the stated sizes
    python -m bench --quick              # tiny sizes: checks the wiring, not the speed
    python -m bench --only scan_steady   # one group (repeatable)
"""

from __future__ import annotations

import argparse
import importlib
import platform
import sys
import tempfile
import time
from pathlib import Path

from bench.results import Metric, table, write_json
from bench.sizes import FULL, TINY

ROOT = Path(__file__).resolve().parents[1]

# Group name -> module with `run(sizes, workdir) -> list[Metric]`. Cheap and isolated ones first.
GROUPS = {
    "diagnose": "bench.diagnose_speed",
    "cold_start": "bench.cold_start",
    "store_ops": "bench.store_ops",
    "grant_budget": "bench.grant_budget",
    "first_scan": "bench.first_scan",
    "eventgrid_burst": "bench.eventgrid_burst",
    "scan_steady": "bench.scan_steady",
    "memory": "bench.memory",
    "ticket_budget": "bench.ticket_budget",
    "resume": "bench.resume",
    "table_scale": "bench.table_scale",
    "first_scan_scale": "bench.first_scan_scale",
}


def run_groups(names: list[str], *, quick: bool, log=print) -> list[Metric]:
    sizes = TINY if quick else FULL
    metrics: list[Metric] = []
    with tempfile.TemporaryDirectory(prefix="triage-bench-") as tmp:
        for name in names:
            module = importlib.import_module(GROUPS[name])
            workdir = Path(tmp) / name
            workdir.mkdir()
            started = time.perf_counter()
            found = module.run(sizes, workdir)
            log(f"  {name}: {time.perf_counter() - started:.1f} s", file=sys.stderr)
            metrics.extend(found)
    return metrics


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny sizes (wiring check; numbers mean nothing)")
    parser.add_argument("--only", action="append", choices=sorted(GROUPS), help="run only this group")
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results.json", help="where to write the JSON")
    args = parser.parse_args(argv)
    names = args.only or list(GROUPS)
    print(f"benchmarks on {platform.node() or 'this machine'}: Python {platform.python_version()}, "
          f"{_cores()} cores{' (quick sizes)' if args.quick else ''}", file=sys.stderr)
    started = time.perf_counter()
    metrics = run_groups(names, quick=args.quick)
    print(table(metrics))
    for metric in metrics:
        if metric.note:
            print(f"  {metric.name}: {metric.note}")
    write_json(metrics, args.out)
    missed = [m.name for m in metrics if not m.ok]
    print(f"\n{len(metrics)} metrics in {time.perf_counter() - started:.0f} s; written to {args.out}"
          + (f"; targets missed: {', '.join(missed)}" if missed else "; every target met"))
    return 0


def _cores() -> int:
    import os

    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


if __name__ == "__main__":
    sys.exit(main())
