"""Azurite (the npm package `make` installs) in memory on free loopback ports, stopped by its PID.

The tests have their own pytest fixture for this (`azurite` in tests/conftest.py); benchmarks do not depend on pytest.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
AZURITE_BIN = ROOT / "node_modules" / ".bin" / "azurite"
ACCOUNT = "devstoreaccount1"
# The well-known development storage key: public, documented with Azurite, valid only against an emulator.
ACCOUNT_KEY = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
START_TIMEOUT_S = 30.0


class AzuriteUnavailable(RuntimeError):
    pass


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=10)


@contextmanager
def table_endpoint(workdir: Path) -> Iterator[str]:
    """A connection string for Azurite's Table service (only the table service is started)."""
    if not AZURITE_BIN.exists():
        raise AzuriteUnavailable(f"{AZURITE_BIN} is missing: run `make venv` (it runs `npm ci`)")
    for _ in range(3):  # a port chosen free can be taken before Azurite binds it
        port = _free_port()
        with open(workdir / "azurite.log", "ab") as log:
            process = subprocess.Popen(
                [str(AZURITE_BIN.parent / "azurite-table"), "--inMemoryPersistence", "--disableTelemetry",
                 "--skipApiVersionCheck", "--tableHost", "127.0.0.1", "--tablePort", str(port)],
                cwd=workdir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + START_TIMEOUT_S
        while process.poll() is None and not _listening(port) and time.monotonic() < deadline:
            time.sleep(0.05)
        if process.poll() is None and _listening(port):
            try:
                yield (f"DefaultEndpointsProtocol=http;AccountName={ACCOUNT};AccountKey={ACCOUNT_KEY};"
                       f"TableEndpoint=http://127.0.0.1:{port}/{ACCOUNT};")
            finally:
                _stop(process)
            return
        _stop(process)
    raise AzuriteUnavailable("Azurite did not start; see " + str(workdir / "azurite.log"))
