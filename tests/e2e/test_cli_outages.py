"""Issue 13: during an outage every operational command prints one line naming what failed and exits non-zero,
never a traceback (shared/commands.py `guarded`)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from shared.commands import EXIT_FAILED, guarded
from shared.core.records import StoreError
from tests.support.paths import REPO_ROOT

COMMANDS = [
    ("scan",), ("sources",), ("incidents",), ("verify",),
    ("approve", "inc-0000000000000000", "--by", "sam@contoso.com"),
    ("revoke", "inc-0000000000000000", "--by", "sam@contoso.com"),
    ("suppress", "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13", "--for", "1h", "--reason", "test", "--by", "sam"),
    ("breaker-reset", "--by", "sam@contoso.com"),
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c[0])
def test_an_unreachable_store_ends_every_command_with_one_line_and_exit_one(tmp_path, command):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where the state directory should be")
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    env.update({"TRIAGE_STATE_BACKEND": "sqlite", "TRIAGE_SQLITE_PATH": str(blocker / "state.sqlite3"),
                "TRIAGE_TICKET_SINKS": "log", "TRIAGE_MODE": "observe"})
    result = subprocess.run([sys.executable, "-m", "shared", *command], cwd=REPO_ROOT, env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == EXIT_FAILED, result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert result.stderr.startswith(f"{command[0]} failed: ")


def test_the_guard_turns_any_failure_into_one_line(capsys):
    def outage(args, stdin, out):
        raise StoreError("the storage account answered 503\nServer Busy\n(and more)")

    assert guarded(outage)(type("Args", (), {"command": "verify"})(), None, None) == EXIT_FAILED
    assert capsys.readouterr().err == "verify failed: StoreError: the storage account answered 503\n"
