"""One engine step in a child process, for the kill-at-every-step tests (tests/engine/test_kill_steps.py):

    python -m tests.support.kill_driver <settings.json> <now> scan|verify|event [<event.json>]

The service is built from the `TRIAGE_*` settings in the JSON file (a SQLite store file and the stand-in's
addresses) with the stand-in's credential, and a clock frozen at `now` (the parent's stand-in clock). With
TRIAGE_TEST_KILL_AT naming a step (shared/engine/checkpoints.py) the process kills itself there with SIGKILL.
Prints the step's result as one JSON line; a failure that raises exits 1, as a Functions host would retry it.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from localazure import FakeCredential
from shared.bootstrap import build_runtime
from shared.engine.events import handle_event_safely
from shared.engine.runtime import new_correlation_id
from shared.engine.scan import run_scan
from shared.engine.unit_of_work import RunState
from shared.engine.verify import run_verifications
from shared.settings import load_settings


def run(settings_path: str, now_text: str, action: str, event_path: str | None = None) -> dict[str, Any]:
    with open(settings_path, encoding="utf-8") as handle:
        env = json.load(handle)
    now = datetime.fromisoformat(now_text)
    rt = build_runtime(load_settings(env), credential=FakeCredential(), clock=lambda: now)
    try:
        if action == "scan":
            return run_scan(rt).to_json()
        if action == "verify":
            return run_verifications(rt, RunState.begin(rt, new_correlation_id()))
        if action == "event" and event_path:
            with open(event_path, encoding="utf-8") as handle:
                return handle_event_safely(rt, json.load(handle)).to_json()
        raise SystemExit(f"unknown action {action!r}")
    finally:
        rt.close()


def main(argv: list[str]) -> int:
    print(json.dumps(run(*argv), default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
