"""One scan in a process of its own, as a Function App instance runs it; prints its peak resident memory.

    python -m bench.scan_child <settings.json> <now ISO-8601>

The settings file holds the TRIAGE_* values (the local stand-in's addresses and a static token). Nothing of the
stand-in is imported here, so the peak is the service's own.
"""

from __future__ import annotations

import json
import resource
import sys
from datetime import datetime
from pathlib import Path


def peak_rss_mb() -> float:
    """VmHWM (the peak resident set) from /proc, else getrusage's ru_maxrss (KiB on Linux)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main(argv: list[str]) -> int:
    env = json.loads(Path(argv[0]).read_text(encoding="utf-8"))
    now = datetime.fromisoformat(argv[1])

    import logging

    logging.getLogger("triage").setLevel(logging.CRITICAL)  # the log sink writes a line per ticket

    from shared.bootstrap import build_runtime
    from shared.engine.scan import run_scan
    from shared.settings import load_settings

    rt = build_runtime(load_settings(env), clock=lambda: now)
    try:
        report = run_scan(rt)
    finally:
        rt.close()
    print(json.dumps({"peak_rss_mb": round(peak_rss_mb(), 1), "signals": report.signals,
                      "incidents": len(report.incidents), "actions": report.actions}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
