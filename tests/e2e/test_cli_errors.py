"""Whatever stops a command ends in one clear line on stderr and a non-zero exit, never a traceback (issue 15):
invalid settings (a workspace id that is not a GUID), no Azure credential, a state store that cannot be reached."""

from __future__ import annotations

import io
import os
import re
import subprocess
import sys

import pytest

from shared import cli
from shared.state.base import StoreError
from tests.support.azurite import free_ports
from tests.support.paths import REPO_ROOT


def run(*args: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("TRIAGE_", "AzureWebJobsStorage", "AZURE_", "IDENTITY_", "MSI_"))}
    return subprocess.run([sys.executable, "-m", "shared", *args], cwd=REPO_ROOT, env={**clean, **env},
                          capture_output=True, text=True, timeout=120, check=False)


def one_line(result: subprocess.CompletedProcess) -> str:
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


@pytest.mark.parametrize("command", ["scan", "sources", "incidents"])
def test_a_workspace_id_that_is_not_a_guid_is_one_line_and_exit_2(command):
    result = run(command, TRIAGE_WORKSPACE_IDS="law-prod", TRIAGE_MODE="sometimes")
    line = one_line(result)
    assert result.returncode == 2
    assert line.startswith("invalid settings: TRIAGE_MODE: expected one of")
    assert "TRIAGE_WORKSPACE_IDS: 'law-prod' is not a GUID" in line


def test_no_credential_for_identity_based_state_is_one_line_with_a_hint(tmp_path):
    (port,) = free_ports(1)
    result = run("incidents", TRIAGE_STATE_BACKEND="table",
                 AzureWebJobsStorage__tableServiceUri=f"https://127.0.0.1:{port}/devstoreaccount1",
                 AzureWebJobsStorage__credential="managedidentity")
    line = one_line(result)
    assert result.returncode == 1
    # Which table is opened first depends on what the command reads first (the grant budget, then incidents).
    assert re.match(r"incidents failed: StoreError: create table triage[A-Z][a-z]+: ", line)
    assert "ManagedIdentityCredential" in line and "(hint: the managed identity answered no token" in line


def test_sqlite_in_azure_is_refused_in_one_line():
    result = run("incidents", WEBSITE_INSTANCE_ID="0123abcd", TRIAGE_STATE_BACKEND="sqlite")
    assert result.returncode == 2 and "sqlite is refused in Azure" in one_line(result)


def failing_handler(args, stdin, stdout):
    raise StoreError("read incidents: the table is gone\nsecond line with details")


def test_any_other_failure_is_its_first_line(monkeypatch, capsys):
    monkeypatch.setitem(cli.COMMANDS, "incidents", cli.Command("x", f"{__name__}:failing_handler"))
    assert cli.main(["incidents"], stdin=io.BytesIO(), stdout=io.StringIO()) == 1
    assert capsys.readouterr().err == "incidents failed: StoreError: read incidents: the table is gone\n"


def test_an_unknown_triage_key_is_warned_about_with_the_closest_name(tmp_path):
    result = run("incidents", TRIAGE_MOD="enforce", TRIAGE_SQLITE_PATH=str(tmp_path / "state.sqlite3"))
    assert result.returncode == 0
    assert result.stderr == "unknown setting TRIAGE_MOD is ignored; did you mean TRIAGE_MODE?\n"
