"""cold_start_ratio: how much importing the Function App costs over importing the Functions library it needs.

`python -c "import function_app"` against `python -c "import azure.functions"` (the physical floor: no Function
App can start without it), 10 runs each, interleaved so drift on a shared machine hits both alike.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from bench.results import Metric, median, rounded
from bench.sizes import Sizes

ROOT = Path(__file__).resolve().parents[1]
APP = "import function_app"
FLOOR = "import azure.functions"


def _env() -> dict[str, str]:
    # Only the interpreter's own variables: no TRIAGE_* setting, as on a fresh Function App instance.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    env.pop("PYTHONPATH", None)
    return env


def import_seconds(statement: str) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], cwd=ROOT, env=_env(), check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def run(sizes: Sizes, workdir: Path) -> list[Metric]:
    import_seconds(APP)  # once, unmeasured: compiles .pyc files, warms the page cache
    app, floor = [], []
    for n in range(sizes.cold_start_runs):
        # Alternate which goes first, so neither always inherits the other's warm caches.
        order = ((APP, app), (FLOOR, floor)) if n % 2 == 0 else ((FLOOR, floor), (APP, app))
        for statement, samples in order:
            samples.append(import_seconds(statement))
    return [Metric("cold_start_ratio", rounded(median(app) / median(floor)), "ratio", "<= 1.25",
                   baseline=rounded(median(floor)),
                   note=f"import function_app {median(app) * 1000:.0f} ms vs import azure.functions "
                        f"{median(floor) * 1000:.0f} ms (medians of {len(app)} interleaved runs each)")]
