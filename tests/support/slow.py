"""Fail a test that starts slow work without the `slow` mark, so the quick tier (`pytest -m "not slow"`) stays quick.

Slow work: an HTTPS stand-in (localazure's Azure or tracker stand-ins, also inside the demo and the benchmarks), a
Python interpreter or Azurite in a subprocess, a child process. Other programs are not counted: libraries run a few
tiny ones (`platform` runs `uname -p` once, for instance).
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing.process import BaseProcess
from typing import Any

import pytest

from localazure.https import HttpsServer
from tests.support.azurite import AZURITE_BIN

SLOW_PROGRAMS = frozenset({sys.executable, str(AZURITE_BIN)})


def _program(args: tuple[Any, ...], kwargs: dict[str, Any]) -> str:
    command = args[0] if args else kwargs.get("args", "")
    return str(command if isinstance(command, str | bytes) else command[0])


class SlowWorkGuard:
    def __init__(self) -> None:
        self._item: pytest.Item | None = None

    @contextmanager
    def running(self, item: pytest.Item) -> Iterator[None]:
        """While `item` runs: its setup, call and teardown, including the module and session fixtures it starts."""
        self._item = item
        try:
            yield
        finally:
            self._item = None

    def _refuse_unless_slow(self, what: str) -> None:
        if self._item is not None and self._item.get_closest_marker("slow") is None:
            pytest.fail(f"{self._item.nodeid} starts {what} but is not marked slow: mark it `@pytest.mark.slow` "
                        "(or its module: `pytestmark = pytest.mark.slow`; see tests/conftest.py)", pytrace=False)

    def _guard(self, start: Callable[..., Any], what: str,
               counts: Callable[[tuple[Any, ...], dict[str, Any]], bool] = lambda args, kwargs: True,
               ) -> Callable[..., Any]:
        def guarded(instance: Any, *args: Any, **kwargs: Any) -> Any:
            if counts(args, kwargs):
                self._refuse_unless_slow(what)
            return start(instance, *args, **kwargs)

        return guarded

    @contextmanager
    def installed(self) -> Iterator[None]:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(HttpsServer, "start", self._guard(HttpsServer.start, "an HTTPS stand-in"))
            patch.setattr(subprocess.Popen, "__init__", self._guard(
                subprocess.Popen.__init__, "Python or Azurite in a subprocess",
                lambda args, kwargs: _program(args, kwargs) in SLOW_PROGRAMS))
            patch.setattr(BaseProcess, "start", self._guard(BaseProcess.start, "a child process"))
            yield
