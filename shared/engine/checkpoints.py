"""Named steps where a crash matters, for the kill-at-every-step tests (tests/engine/test_kill_steps.py).

`checkpoint(step)` does nothing unless TRIAGE_TEST_KILL_AT names that step; then the process kills itself with
SIGKILL, as a host that times out or loses its instance would: no cleanup, no exception handlers, nothing flushed.
"""

from __future__ import annotations

import os
import signal

KILL_AT = "TRIAGE_TEST_KILL_AT"


def checkpoint(step: str) -> None:
    if os.environ.get(KILL_AT) == step:
        os.kill(os.getpid(), signal.SIGKILL)
