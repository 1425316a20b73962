"""On-call commands for issue 13 as engineers run them (subprocesses) against the local stand-in: `approve --show`
says exactly what approving grants and `--fingerprint` refuses anything else; `revoke` records the revocation,
`revocations` and `incidents` show it, `unrevoke` lifts it with an audit record."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from localazure import Clock, LocalAzure
from tests.support.paths import REPO_ROOT

ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"
WORKSPACE = "11111111-2222-4333-8444-0000000000cc"


@pytest.fixture
def stand_in():
    """A stand-in on real time (the CLI reads the real clock) where ORDERS fails on account aoai."""
    with LocalAzure.start({"workspace_id": WORKSPACE}, clock=Clock()) as az:
        az.add_principal(ORDERS)
        az.add_account("aoai")
        az.add_traffic(resource="aoai", route="/openai/deployments/gpt-4o/chat/completions", caller=ORDERS,
                       per_tick=2)
        az.tick()
        yield az


def cli(az: LocalAzure, tmp_path, mode: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    env.update({
        "TRIAGE_MODE": mode, "TRIAGE_ALLOWLIST": json.dumps([{"object_id": ORDERS}]),
        "TRIAGE_WORKSPACE_IDS": WORKSPACE, "TRIAGE_ARM_ENDPOINT": az.arm_url, "TRIAGE_LOGS_ENDPOINT": az.logs_url,
        "TRIAGE_SUBSCRIPTION_ID": az.subscription_id, "TRIAGE_CA_BUNDLE": az.ca_path, "TRIAGE_LOCAL_TOKEN": "local",
        "TRIAGE_STATE_BACKEND": "sqlite", "TRIAGE_SQLITE_PATH": str(tmp_path / "state.sqlite3"),
        "TRIAGE_TICKET_SINKS": "log",
    })
    return subprocess.run([sys.executable, "-m", "shared", *args], cwd=REPO_ROOT, env=env, capture_output=True,
                          text=True, timeout=120, check=False)


def test_approve_shows_what_it_grants_and_refuses_another_fingerprint(stand_in, tmp_path):
    scan = cli(stand_in, tmp_path, "recommend", "scan", "--json")
    [incident_id] = json.loads(scan.stdout)["incidents"]

    shown = cli(stand_in, tmp_path, "recommend", "approve", incident_id, "--by", "alex", "--show", "--json")
    assert shown.returncode == 0, shown.stderr
    grant = json.loads(shown.stdout)["grant"]
    assert grant["principal_id"] == ORDERS and grant["role_name"] == "Cognitive Services OpenAI User"
    assert stand_in.calls.count(service="arm", method="PUT") == 0

    wrong = cli(stand_in, tmp_path, "recommend", "approve", incident_id, "--by", "alex", "--fingerprint", "0" * 12)
    assert wrong.returncode == 1 and "approve refused" in wrong.stdout and grant["fingerprint"] in wrong.stdout
    assert stand_in.calls.count(service="arm", method="PUT") == 0

    right = cli(stand_in, tmp_path, "recommend", "approve", incident_id, "--by", "alex", "--fingerprint",
                grant["fingerprint"])
    assert right.returncode == 0, right.stdout + right.stderr
    assert f"grants exactly Cognitive Services OpenAI User at {grant['scope']}" in right.stdout
    assert stand_in.calls.count(service="arm", method="PUT") == 1

    observing = cli(stand_in, tmp_path, "observe", "approve", incident_id, "--by", "alex")
    assert observing.returncode == 1  # nothing is recommended any more, and observe approves nothing anyway


def test_revoke_records_a_revocation_that_is_listed_and_lifted_with_an_audit_record(stand_in, tmp_path):
    scan = cli(stand_in, tmp_path, "enforce", "scan", "--json")
    assert json.loads(scan.stdout)["grants"] == 1, scan.stdout + scan.stderr
    [incident_id] = json.loads(scan.stdout)["incidents"]

    revoked = cli(stand_in, tmp_path, "enforce", "revoke", incident_id, "--by", "alex")
    assert revoked.returncode == 0 and "revocation rev-" in revoked.stdout, revoked.stdout + revoked.stderr
    listed = json.loads(cli(stand_in, tmp_path, "enforce", "revocations", "--json").stdout)["revocations"]
    [revocation] = listed
    assert revocation["principal_id"] == ORDERS and revocation["by"] == "alex"
    table = cli(stand_in, tmp_path, "enforce", "incidents")
    assert "1 revocation(s) in force" in table.stdout
    detail = json.loads(cli(stand_in, tmp_path, "enforce", "incidents", incident_id).stdout)
    assert [r["id"] for r in detail["revocations"]] == [revocation["id"]]

    no_reason = cli(stand_in, tmp_path, "enforce", "unrevoke", revocation["id"], "--by", "sam", "--reason", " ")
    assert no_reason.returncode == 1
    lifted = cli(stand_in, tmp_path, "enforce", "unrevoke", revocation["id"], "--by", "sam", "--reason", "reviewed")
    assert lifted.returncode == 0 and f"lifted {revocation['id']}" in lifted.stdout
    assert json.loads(cli(stand_in, tmp_path, "enforce", "revocations", "--json").stdout)["revocations"] == []
    detail = json.loads(cli(stand_in, tmp_path, "enforce", "incidents", incident_id).stdout)
    assert any(a["kind"] == "unrevoke" and a["actor"] == "sam" for a in detail["audit"])
