"""One scan in a process of its own, as a Function App instance runs it; prints its peak resident memory.

    python -m bench.scan_child <settings.json> <now ISO-8601> [--tracemalloc|--rss-stack <report.txt>]

The settings file holds the TRIAGE_* values (the local stand-in's addresses and a static token). Nothing of the
stand-in is imported here, so the peak is the service's own. With `--tracemalloc`, the scan runs traced (slower,
and its peak is then not comparable): the report names what Python held at the traced peak, by line and by
traceback, and where the scan was then.
"""

from __future__ import annotations

import json
import resource
import sys
import threading
import traceback
import tracemalloc
from datetime import datetime
from pathlib import Path
from typing import Any


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
    tracers = {"--tracemalloc": _PeakTracer, "--rss-stack": _RssPeak}
    tracer = tracers[argv[2]](Path(argv[3])) if len(argv) > 3 else None
    try:
        report = run_scan(rt)
    finally:
        rt.close()
        if tracer is not None:
            tracer.stop()
    print(json.dumps({"peak_rss_mb": round(peak_rss_mb(), 1), "signals": report.signals,
                      "incidents": len(report.incidents), "actions": report.actions}))
    return 0


def _rss_kb() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


class _RssPeak:
    """Samples the resident set every 50 ms; at each new high, the main thread's stack, and at highs 4 MB apart the
    live objects by type (gc). `stop()` writes the highest."""

    def __init__(self, out: Path):
        self._out = out
        self._done = threading.Event()
        self._best = 0
        self._counted = 0
        self._stack = ""
        self._types: list[tuple[str, int]] = []
        self._main = threading.main_thread().ident
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        import gc
        from collections import Counter

        while not self._done.wait(0.05):
            rss = _rss_kb()
            if rss <= self._best:
                continue
            self._best = rss
            frame = sys._current_frames().get(self._main)  # noqa: SLF001 - where the scan is at this high
            self._stack = "".join(traceback.format_stack(frame)[-16:]) if frame is not None else ""
            if rss > self._counted + 4096:
                self._counted = rss
                self._types = Counter(type(o).__name__ for o in gc.get_objects()).most_common(25)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        lines = [f"peak resident set {self._best / 1024:.1f} MB; last object count at {self._counted / 1024:.1f} MB",
                 "", "where the scan was:", self._stack, "objects by type (gc-tracked):"]
        lines += [f"{n:10,} {name}" for name, n in self._types]
        self._out.write_text("\n".join(lines) + "\n", encoding="utf-8")


class _PeakTracer:
    """Samples the traced memory a few times a second; at each new high (2% above the last), a snapshot and the
    main thread's stack. `stop()` writes the highest one's largest holders."""

    def __init__(self, out: Path):
        self._out = out
        self._done = threading.Event()
        self._best = 0
        self._snapshot: Any = None
        self._stack = ""
        self._main = threading.main_thread().ident
        tracemalloc.start(6)
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._done.wait(0.2):
            current, _ = tracemalloc.get_traced_memory()
            if current > self._best * 1.02:
                frame = sys._current_frames().get(self._main)  # noqa: SLF001 - where the scan is at this high
                self._stack = "".join(traceback.format_stack(frame)[-14:]) if frame is not None else ""
                self._snapshot = tracemalloc.take_snapshot()
                self._best = tracemalloc.get_traced_memory()[0]

    def stop(self) -> None:
        self._done.set()
        self._thread.join()
        _, peak = tracemalloc.get_traced_memory()
        lines = [f"traced peak {peak / 2**20:.1f} MB; the snapshot below at {self._best / 2**20:.1f} MB", "",
                 "where the scan was:", self._stack, "by line:"]
        if self._snapshot is not None:
            snapshot = self._snapshot.filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)])
            lines += [f"{s.size / 2**20:8.2f} MB {s.count:9,} {s.traceback[0]}"
                      for s in snapshot.statistics("lineno")[:40]]
            lines += ["", "by traceback:"]
            for stat in snapshot.statistics("traceback")[:15]:
                lines.append(f"{stat.size / 2**20:8.2f} MB {stat.count:9,}")
                lines += [f"    {frame}" for frame in stat.traceback.format()[-12:]]
        self._out.write_text("\n".join(lines) + "\n", encoding="utf-8")
        tracemalloc.stop()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
