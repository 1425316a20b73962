"""cold_start_ratio and first_invocation_ratio: what starting the Function App costs over importing the Functions
library it needs.

cold_start_ratio: `python -c "import function_app"` against `python -c "import azure.functions"` (the physical
floor: no Function App can start without it), 10 runs each, interleaved so drift on a shared machine hits both
alike.

first_invocation_ratio: a fresh process that imports function_app and runs one timer invocation (a scan) and one
Event Grid invocation (a failure event: diagnosis, evidence from ARM, an incident, a ticket through the log sink)
against the local stand-in (bench/first_invocation_child.py), against the same floor. What it adds over the import
is the SDK imports the invocations need, building the runtime, the TLS connections and the calls.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.results import Metric, median, rounded
from bench.sizes import Sizes
from bench.world import BenchWorldError, bench_world

ROOT = Path(__file__).resolve().parents[1]
APP = "import function_app"
FLOOR = "import azure.functions"


def _env(workdir: Path) -> dict[str, str]:
    # Only the interpreter's own variables: no TRIAGE_* setting, as on a fresh Function App instance. Bytecode is
    # cached even where the shell sets PYTHONDONTWRITEBYTECODE (in the work dir, never beside the sources): the
    # floor's azure.functions comes compiled from site-packages, so the service's modules must be compiled too
    # (by the unmeasured first run), or the ratio counts compiling our sources on every run.
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_") and k != "PYTHONDONTWRITEBYTECODE"}
    env.pop("PYTHONPATH", None)
    env["PYTHONPYCACHEPREFIX"] = str(workdir / "pycache")
    return env


def import_seconds(statement: str, workdir: Path) -> float:
    started = time.perf_counter()
    subprocess.run([sys.executable, "-c", statement], cwd=ROOT, env=_env(workdir), check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - started


def _first_invocation_seconds(env: dict[str, str], event_path: Path) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "bench.first_invocation_child", str(event_path)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise BenchWorldError(f"the first invocations failed ({done.returncode}): {done.stderr[-2000:]}")
    if json.loads(done.stdout.strip().splitlines()[-1])["incidents"] < 1:
        raise BenchWorldError("the event invocation opened no incident")
    return elapsed


def _first_invocation(sizes: Sizes, workdir: Path, floor: list[float]) -> Metric:
    from bench.logrows import RESOURCE_GROUP, account_name, object_id

    with bench_world(workdir) as world:
        world.az.add_account(account_name(0), resource_group=RESOURCE_GROUP)
        world.az.add_principal(object_id(0), display_name="app-0")
        account = world.az.account_id(account_name(0))
        now = world.clock.now()
        message = (f"The principal `{object_id(0)}` lacks the required data action `Microsoft.CognitiveServices/"
                   "accounts/OpenAI/deployments/chat/completions/action` to perform `POST /openai/deployments/"
                   "{deployment-id}/chat/completions` operation.")
        runs, seconds = [], []
        for n in range(sizes.cold_start_runs + 1):
            run_dir = workdir / f"instance-{n}"
            run_dir.mkdir()
            event_path = run_dir / "event.json"
            event_path.write_text(json.dumps({
                "id": f"evt-first-{n}", "topic": "/subscriptions/x/resourceGroups/rg/providers/Microsoft.EventGrid/"
                "topics/apps", "subject": "/apps/gateway", "event_type": "AOAI.Triage.Failure",
                "event_time": now.isoformat(),
                "data": {"status": 401, "code": "PermissionDenied", "message": message, "auth": "entra",
                         "object_id": object_id(0), "resource_id": account, "time": now.isoformat(),
                         "endpoint": f"https://{account_name(0)}.openai.azure.com/openai/deployments/gpt-4o/chat/"
                                     "completions"}}), encoding="utf-8")
            # A store of its own per instance: each process starts as a new instance does, on an empty store.
            env = {**_env(workdir), **world.env, "TRIAGE_LOCAL_TOKEN": "bench-token",
                   "TRIAGE_SQLITE_PATH": str(run_dir / "state.sqlite3"), "TRIAGE_SCAN_SCHEDULE": "0 */5 * * * *"}
            took = _first_invocation_seconds(env, event_path)
            if n:  # the first, unmeasured: compiles .pyc files, warms the page cache
                runs.append(took)
                seconds.append(import_seconds(FLOOR, workdir))
    floor_s = median(floor + seconds)
    return Metric("first_invocation_ratio", rounded(median(runs) / floor_s), "ratio", "<= 2.5",
                  baseline=rounded(floor_s),
                  note=f"import function_app + one timer and one event invocation against the stand-in "
                       f"{median(runs) * 1000:.0f} ms vs import azure.functions {floor_s * 1000:.0f} ms "
                       f"(medians of {len(runs)} fresh processes)")


def run(sizes: Sizes, workdir: Path) -> list[Metric]:
    import_seconds(APP, workdir)  # once, unmeasured: compiles .pyc files, warms the page cache
    app, floor = [], []
    for n in range(sizes.cold_start_runs):
        # Alternate which goes first, so neither always inherits the other's warm caches.
        order = ((APP, app), (FLOOR, floor)) if n % 2 == 0 else ((FLOOR, floor), (APP, app))
        for statement, samples in order:
            samples.append(import_seconds(statement, workdir))
    return [Metric("cold_start_ratio", rounded(median(app) / median(floor)), "ratio", "<= 1.25",
                   baseline=rounded(median(floor)),
                   note=f"import function_app {median(app) * 1000:.0f} ms vs import azure.functions "
                        f"{median(floor) * 1000:.0f} ms (medians of {len(app)} interleaved runs each)"),
            _first_invocation(sizes, workdir, floor)]
