"""Named steps where a crash matters, for the kill-at-every-step tests (tests/engine/test_kill_steps.py) and the
resumable-scan tests and benchmark (tests/engine/test_rules_resume.py, bench/resume.py).

`checkpoint(step)` does nothing unless TRIAGE_TEST_KILL_AT names that step; then the process kills itself with
SIGKILL, as a host that times out or loses its instance would: no cleanup, no exception handlers, nothing flushed.
`step#n` kills at the n-th time the step is reached in the process (the scan passes its chunk steps once per chunk).

In-process, `cut_at(step, n)` makes the n-th pass raise `CutOff` instead: a BaseException, so no handler of the
engine catches it, as none would see a host's timeout.
"""

from __future__ import annotations

import os
import signal
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

KILL_AT = "TRIAGE_TEST_KILL_AT"

_passes: Counter[str] = Counter()
_cuts: dict[str, int] = {}


class CutOff(BaseException):  # noqa: N818 - it is not an error: the run was stopped from outside
    """The run was cut off at a checkpoint (tests and benchmarks), as a function timeout would."""


def checkpoint(step: str) -> None:
    wanted = os.environ.get(KILL_AT)
    if wanted is None and not _cuts:
        return
    _passes[step] += 1
    if wanted is not None:
        name, _, times = wanted.partition("#")
        if name == step and _passes[step] >= (int(times) if times.isdigit() else 1):
            os.kill(os.getpid(), signal.SIGKILL)
    if step in _cuts and _passes[step] >= _cuts[step]:
        raise CutOff(f"cut off at {step} (pass {_passes[step]})")


@contextmanager
def cut_at(step: str, times: int = 1) -> Iterator[None]:
    """Inside the block, the `times`-th pass of `step` raises CutOff (counting from the block's start)."""
    _passes[step] = 0
    _cuts[step] = times
    try:
        yield
    finally:
        _cuts.pop(step, None)
        _passes.pop(step, None)
