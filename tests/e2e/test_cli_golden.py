"""Golden output of every command in every form (table or its own text, json, tsv, a --query), against the basic
scenario of the stand-in, pointed at it by `python -m localazure --print-env`'s settings.

A change to what a command prints shows up in review as a diff of tests/golden/cli/*.txt. After a reviewed change,
regenerate them:

    UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/e2e/test_cli_golden.py -q

What varies from run to run is replaced before comparing: times (the command line reads the real clock), the
scan's correlation id, the stand-in's ports and its CA path.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from localazure import Clock, LocalAzure
from localazure.settings_env import settings_env
from shared import cli
from tests.support.paths import REPO_ROOT

GOLDEN_CLI = REPO_ROOT / "tests" / "golden" / "cli"
CONTROL_PLANE = "inc-d7668a49d3c90e79"  # chat-api holds only Contributor on aoai-prod: its incident id is stable
DENIED = {"status": 401, "code": "PermissionDenied", "message": "Principal does not have access to API/Operation.",
          "endpoint": "https://x.openai.azure.com/openai/deployments/d/chat/completions", "auth": "entra",
          "object_id": "0a1b2c3d-4e5f-4061-8273-9485a6b7c8d9"}
CLASSIFY_IN = (json.dumps(DENIED) + "\nnot json\n"
               + json.dumps({"status": 403, "message": "Access denied due to Virtual Network/Firewall rules."}) + "\n")

CASES: dict[str, tuple[str, str]] = {  # name -> (arguments, stdin)
    "samples": ("samples", ""),
    "samples-json": ("samples -o json --query [:2]", ""),
    "samples-tsv": ("samples -o tsv --query \"[].[cause, role, confidence]\"", ""),
    "samples-query": ("samples --query \"[?role_fixable].cause | length(@)\"", ""),
    "abac-condition": ("abac-condition", ""),
    "abac-condition-json": ("abac-condition -o json", ""),
    "abac-condition-tsv": ("abac-condition -o tsv --query roleDefinitionIds", ""),
    "classify": ("classify", CLASSIFY_IN),
    "classify-table": ("classify -o table", CLASSIFY_IN),
    "classify-tsv-query": ("classify -o tsv --query \"[cause, role]\"", CLASSIFY_IN),
    "diagnose": ("diagnose", json.dumps(DENIED)),
    "diagnose-json": ("diagnose -o json", json.dumps(DENIED)),
    "diagnose-tsv-query": ("diagnose -o tsv --query \"[cause, role_id]\"", json.dumps(DENIED)),
    "incidents": ("incidents", ""),
    "incidents-json": ("incidents -o json", ""),
    "incidents-tsv": ("incidents -o tsv --query \"incidents[].[id, status, cause, count]\"", ""),
    "incidents-query": ("incidents --query \"incidents[?cause=='local_auth_disabled'].resource_id\"", ""),
    "incidents-bad-status": ("incidents --status maybe", ""),
    "incident-show": (f"incidents show {CONTROL_PLANE}", ""),
    "incident-show-json": (f"incidents show {CONTROL_PLANE} -o json --query \"{{id: id, status: status, "
                           f"audit: audit[].kind}}\"", ""),
    "incident-show-tsv": (f"incidents show {CONTROL_PLANE} -o tsv --query \"audit[].[kind, actor]\"", ""),
    "incident-show-table": (f"incidents show {CONTROL_PLANE} -o table", ""),
    "incident-legacy": (f"incidents {CONTROL_PLANE} --query \"[id, cause]\"", ""),
    "incident-missing": ("incidents show inc-missing", ""),
    "sources": ("sources", ""),
    "sources-json": ("sources -o json", ""),
    "sources-tsv": ("sources -o tsv --query \"sources[].[name, state]\"", ""),
    "revocations": ("revocations", ""),
    "revocations-json": ("revocations --json", ""),
    "revocations-tsv": ("revocations -o tsv --query \"revocations[].id\"", ""),
    "verify": ("verify", ""),
    "verify-json": ("verify -o json", ""),
    "approve-refused": (f"approve {CONTROL_PLANE} --by alex", ""),
    "approve-missing": ("approve inc-missing --by alex -o json", ""),
    "approve-no-actor": (f"approve {CONTROL_PLANE}", ""),
    "suppress-bad-duration": ("suppress 3f2b6a10-0000-4000-8000-000000000001 --for soon --reason x --by alex", ""),
    "doctor-tsv": ("doctor -o tsv --query \"checks[].[area, status]\"", ""),
    "bad-query": ("incidents --query \"incidents[?\"", ""),
    "none": ("incidents -o none", ""),
}


@pytest.fixture(scope="module")
def basic(tmp_path_factory):
    """The basic scenario with two rounds of traffic, scanned once (in a subprocess, as on-call runs it)."""
    state = tmp_path_factory.mktemp("cli-golden")
    with LocalAzure.start("basic", clock=Clock()) as az:
        az.tick()
        az.tick()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIAGE_", "AZURE_"))}
        env.update(settings_env(az, "basic"))
        env.update({"TRIAGE_MODE": "recommend", "TRIAGE_STATE_BACKEND": "sqlite", "TRIAGE_TICKET_SINKS": "log",
                    "TRIAGE_SQLITE_PATH": str(state / "state.sqlite3"),
                    "AZURE_CONFIG_DIR": str(state / "no-az-login")})  # no signed-in user to default --by to
        scan = subprocess.run([sys.executable, "-m", "shared", "scan", "-o", "json"], cwd=REPO_ROOT, env=env,
                              capture_output=True, text=True, timeout=120, check=False)
        assert scan.returncode == 0, scan.stderr
        yield az, env, scan


def normalized(text: str, az: LocalAzure, correlation_id: str) -> str:
    text = text.replace(correlation_id, "<correlation-id>").replace(az.ca_path, "<ca>")
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:<port>", text)
    return re.sub(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(\+00:00|Z)?", "<time>", text)


def run_in_process(arguments: str, stdin: str, env: dict[str, str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with pytest.MonkeyPatch.context() as patch, contextlib.redirect_stderr(err):
        for key in [k for k in os.environ if k.startswith(("TRIAGE_", "AZURE_"))]:
            patch.delenv(key)
        for key, value in env.items():
            patch.setenv(key, value)
        try:
            status = cli.main(shlex.split(arguments), stdin=io.BytesIO(stdin.encode()), stdout=out)
        except SystemExit as exc:  # argparse's usage errors
            status = int(exc.code or 0)
    return status, out.getvalue(), err.getvalue()


def assert_golden(name: str, text: str) -> None:
    path: Path = GOLDEN_CLI / f"{name}.txt"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text, encoding="utf-8")
    assert path.exists(), f"{path} missing: UPDATE_GOLDEN=1 to write it"
    assert text == path.read_text(encoding="utf-8"), f"{name}: output changed; review, then UPDATE_GOLDEN=1"


def test_scan_json(basic):
    az, _, scan = basic
    body = json.loads(scan.stdout)
    assert_golden("scan-json", normalized(scan.stdout, az, body["correlation_id"]))


@pytest.mark.parametrize("name", list(CASES))
def test_golden_output(basic, name):
    az, env, scan = basic
    arguments, stdin = CASES[name]
    status, out, err = run_in_process(arguments, stdin, env)
    record = f"$ python -m shared {arguments}\nexit {status}\n--- stdout\n{out}--- stderr\n{err}"
    assert_golden(name, normalized(record, az, json.loads(scan.stdout)["correlation_id"]))


def test_exit_codes_follow_az(basic):
    """0 success, 1 failure, 2 usage, 3 not found; errors go to stderr, never to a JSON stdout."""
    _, env, _ = basic
    assert run_in_process("incidents -o json", "", env)[0] == 0
    status, out, err = run_in_process("incidents show inc-missing -o json", "", env)
    assert (status, out) == (3, "") and err == "error: no incident inc-missing\n"
    status, out, err = run_in_process(f"approve {CONTROL_PLANE} --by alex -o json", "", env)
    assert (status, out) == (1, "") and err.startswith("approve refused: ")
    status, out, err = run_in_process("incidents --query \"incidents[?\"", "", env)
    assert (status, out) == (2, "") and "is not valid JMESPath" in err


def test_by_defaults_to_triage_actor_then_the_signed_in_user(basic, tmp_path):
    _, env, _ = basic
    status, _, err = run_in_process("breaker-reset -o json", "", env)
    assert status == 2 and "--by is required" in err
    status, out, _ = run_in_process("breaker-reset -o json", "", {**env, "TRIAGE_ACTOR": "oncall@contoso.example"})
    assert status == 0 and json.loads(out)["reset_by"] == "oncall@contoso.example"
    profile = tmp_path / "azureProfile.json"
    profile.write_text("\ufeff" + json.dumps({"subscriptions": [
        {"isDefault": False, "user": {"name": "other@contoso.example"}},
        {"isDefault": True, "user": {"name": "sam@contoso.example", "type": "user"}}]}), encoding="utf-8")
    status, out, _ = run_in_process("breaker-reset -o json", "", {**env, "AZURE_CONFIG_DIR": str(tmp_path)})
    assert status == 0 and json.loads(out)["reset_by"] == "sam@contoso.example"


def test_scan_progress_goes_to_stderr_and_leaves_the_json_alone(basic):
    """Per source, per batch of evidence reads, and the incidents handled; stdout stays one JSON document."""
    az, env, _ = basic
    az.tick()
    status, out, err = run_in_process("scan -o json --verbose", "", env)
    assert status == 0 and json.loads(out)["incidents"], err
    lines = err.splitlines()
    assert lines[0] == "scan: 1 source(s)"
    assert any(re.fullmatch(r"source logs:9c8b7a6d-5e4f-4a3b-8c2d-000000000003: \d+ failure group\(s\) from "
                            r"\d\d:\d\d:\d\d to \d\d:\d\d:\d\d", line) for line in lines), err
    assert any(re.fullmatch(r"evidence: \d+ pair\(s\) read", line) for line in lines), err
    assert any(re.fullmatch(r"scan: \d+ incident\(s\) handled, 0 grant\(s\), 0 evidence look-up\(s\) failed", line)
               for line in lines), err
    quiet = run_in_process("scan -o json", "", env)
    assert quiet[0] == 0 and "source logs:" not in quiet[2]  # not a terminal, no --verbose: no progress


def test_print_env_prints_the_settings_that_reach_the_stand_in(tmp_path):
    process = subprocess.Popen([sys.executable, "-m", "localazure", "--scenario", "basic", "--print-env"],
                               cwd=REPO_ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert process.stdout is not None
        lines = [process.stdout.readline() for _ in range(8)]
    finally:
        process.terminate()
        process.wait(timeout=30)
    env = dict(line.rstrip("\n").split("=", 1) for line in lines)
    assert list(env) == ["TRIAGE_ARM_ENDPOINT", "TRIAGE_LOGS_ENDPOINT", "TRIAGE_CA_BUNDLE", "TRIAGE_SUBSCRIPTION_ID",
                         "TRIAGE_WORKSPACE_IDS", "TRIAGE_LOCAL_TOKEN", "TRIAGE_EVENTGRID_TOPIC_ENDPOINT",
                         "TRIAGE_EVENTGRID_TOPIC_KEY"]
    assert env["TRIAGE_SUBSCRIPTION_ID"] == "5b0c6a4e-1d2f-4c3b-9a8e-000000000001"
    assert env["TRIAGE_WORKSPACE_IDS"] == "9c8b7a6d-5e4f-4a3b-8c2d-000000000003"
    assert env["TRIAGE_ARM_ENDPOINT"].startswith("https://127.0.0.1:") and env["TRIAGE_LOCAL_TOKEN"].count(".") == 2
