"""`python -m shared scan` and `python -m shared sources` as on-call runs them (subprocesses) against the local
stand-in: a workspace without its table is no data yet (exit 0), a source that fails makes the scan exit 1 with the
others handled, and `sources` shows each source's state, last success and last error."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from localazure import Clock, LocalAzure
from tests.support.paths import REPO_ROOT

ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"
MAIN = "11111111-2222-4333-8444-0000000000aa"
EMPTY = "11111111-2222-4333-8444-0000000000bb"


@pytest.fixture
def stand_in():
    """A stand-in on real time (the CLI reads the real clock), with a second workspace that has no data yet."""
    scenario = {"workspace_id": MAIN, "workspaces": [{"id": EMPTY, "missing_tables": ["AzureDiagnostics"]}]}
    with LocalAzure.start(scenario, clock=Clock()) as az:
        az.add_principal(ORDERS)
        az.add_account("aoai")
        az.add_traffic(resource="aoai", route="/openai/deployments/gpt-4o/chat/completions", caller=ORDERS,
                       per_tick=2)
        az.tick()
        yield az


def shared_cli(az: LocalAzure, tmp_path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    env.update({
        "TRIAGE_MODE": "observe", "TRIAGE_WORKSPACE_IDS": f"{MAIN},{EMPTY}", "TRIAGE_ARM_ENDPOINT": az.arm_url,
        "TRIAGE_LOGS_ENDPOINT": az.logs_url, "TRIAGE_SUBSCRIPTION_ID": az.subscription_id,
        "TRIAGE_CA_BUNDLE": az.ca_path, "TRIAGE_LOCAL_TOKEN": "local", "TRIAGE_STATE_BACKEND": "sqlite",
        "TRIAGE_SQLITE_PATH": str(tmp_path / "state.sqlite3"), "TRIAGE_TICKET_SINKS": "log",
    })
    return subprocess.run([sys.executable, "-m", "shared", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_no_data_yet_beside_a_healthy_workspace_exits_zero_and_sources_shows_both(stand_in, tmp_path):
    scan = shared_cli(stand_in, tmp_path, "scan", "--json")
    assert scan.returncode == 0, scan.stderr
    report = json.loads(scan.stdout)
    healthy, empty = f"logs:{MAIN}", f"logs:{EMPTY}"
    assert report["sources"][healthy]["state"] == "ok" and report["sources"][empty]["state"] == "no_data"
    assert "named 'AzureDiagnostics'" in report["sources"][empty]["detail"]
    assert report["failed_sources"] == [] and report["evidence_errors"] == []
    assert report["signals"] == 1 and len(report["incidents"]) == 1  # the healthy workspace was handled
    for key in ("correlation_id", "started_at", "windows", "signals", "rejected", "partial", "actions", "incidents",
                "verifications", "grants"):
        assert key in report

    listed = shared_cli(stand_in, tmp_path, "sources", "--json")
    assert listed.returncode == 0, listed.stderr
    states = {s["name"]: s for s in json.loads(listed.stdout)["sources"]}
    assert states[healthy]["state"] == "ok" and states[healthy]["last_success"]
    assert states[empty]["state"] == "no_data" and states[empty]["last_success"] is None

    table = shared_cli(stand_in, tmp_path, "sources")
    lines = table.stdout.splitlines()
    assert lines[0].split()[:3] == ["source", "state", "since"]
    assert any(line.startswith(empty) and " no_data " in line for line in lines)


def test_a_failing_source_makes_the_scan_exit_one_with_its_whole_message(stand_in, tmp_path):
    stand_in.faults.add("logs", route=f"/v1/workspaces/{MAIN}/query", status=403, times=None)
    scan = shared_cli(stand_in, tmp_path, "scan")
    assert scan.returncode == 1
    assert (f"logs:{MAIN}:" in scan.stdout and "FAILED: Log Analytics query on workspace" in scan.stdout
            and "insufficient access to perform the requested operation" in scan.stdout)
    assert "NO DATA YET:" in scan.stdout

    listed = shared_cli(stand_in, tmp_path, "sources", "--json")
    assert listed.returncode == 1  # a source's last read failed
    [failed] = [s for s in json.loads(listed.stdout)["sources"] if s["state"] == "failed"]
    assert failed["name"] == f"logs:{MAIN}" and "HTTP 403 InsufficientAccessError" in failed["last_error"]
    assert failed["last_error_at"]


def test_a_403_on_one_workspace_exits_one_and_the_healthy_one_is_processed(stand_in, tmp_path):
    stand_in.faults.add("logs", route=f"/v1/workspaces/{EMPTY}/query", status=403, times=None)
    scan = shared_cli(stand_in, tmp_path, "scan", "--json")
    assert scan.returncode == 1, scan.stderr
    report = json.loads(scan.stdout)
    denied, healthy = f"logs:{EMPTY}", f"logs:{MAIN}"
    assert report["failed_sources"] == [denied]
    assert report["sources"][denied]["state"] == "failed"
    assert "HTTP 403 InsufficientAccessError" in report["sources"][denied]["detail"]
    assert report["sources"][healthy]["state"] == "ok"
    assert report["signals"] == 1 and len(report["incidents"]) == 1  # the healthy workspace was handled
