"""The command line as its users run it: `python -m shared <command>` in a subprocess."""

import json
import subprocess
import sys

import pytest

from shared.core.causes import CAUSE_IDS
from tests.support.paths import REPO_ROOT

CLASSIFY_KEYS = {"cause", "role_fixable", "role", "role_id", "confidence", "summary"}
CHAT = "https://x.openai.azure.com/openai/deployments/d/chat/completions"
DENIED = {"status": 401, "code": "PermissionDenied", "message": "Principal does not have access to API/Operation.",
          "endpoint": CHAT, "auth": "entra", "object_id": None}


def run(*args: str, stdin: bytes = b"") -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared", *args], input=stdin, capture_output=True, cwd=REPO_ROOT,
                          timeout=60, check=False)


def lines(*items) -> bytes:
    return b"".join((i if isinstance(i, bytes) else json.dumps(i).encode()) + b"\n" for i in items)


def test_one_output_line_per_input_line_in_order_and_errors_do_not_stop_the_run():
    stdin = lines(
        DENIED,
        b"this is not json",
        {"status": 403, "message": "Access denied due to Virtual Network/Firewall rules."},
        {"code": "PermissionDenied"},  # no status
        b"",  # a blank line still gets its answer line
        [1, 2],
        {"status": 404, "code": "DeploymentNotFound", "message": None, "endpoint": None, "auth": None,
         "object_id": None},
        b"\xff\xfe not utf-8",
        {"status": "401", "message": "Access denied due to missing subscription key.", "auth": "key"},
    )
    result = run("classify", stdin=stdin)
    out = [json.loads(line) for line in result.stdout.decode().splitlines()]
    assert result.returncode == 1
    assert len(out) == 9
    assert out[0]["cause"] == "missing_data_role" and out[0]["role"] == "Cognitive Services OpenAI User"
    assert out[0]["role_id"] == "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd" and out[0]["role_fixable"] is True
    assert out[1] == {"error": out[1]["error"]} and "not valid JSON" in out[1]["error"]
    assert out[2]["cause"] == "network_denied" and out[2]["role"] is None and out[2]["role_fixable"] is False
    assert "status" in out[3]["error"]
    assert out[4] == {"error": "empty line"}
    assert out[5] == {"error": "expected a JSON object"}
    assert out[6]["cause"] == "endpoint_or_deployment_not_found"
    assert out[7] == {"error": "not valid UTF-8"}
    assert out[8]["cause"] == "missing_api_key"
    for answer in out:
        assert set(answer) in (CLASSIFY_KEYS, {"error"})


def test_exit_status_is_zero_when_every_line_was_classified():
    result = run("classify", stdin=lines(DENIED, {**DENIED, "status": 403}))
    assert result.returncode == 0
    assert [json.loads(x)["cause"] for x in result.stdout.decode().splitlines()] == ["missing_data_role"] * 2


def test_empty_input_gives_no_output_and_success():
    result = run("classify")
    assert (result.returncode, result.stdout) == (0, b"")


def test_the_optional_fields_are_accepted_and_used():
    signal = {**DENIED, "endpoint": None, "route": "/api/projects/p1/assistants", "operation": None,
              "resource_id": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a",
              "principal_type": "User", "object_id": "0a1b2c3d-4e5f-4061-8273-9485a6b7c8d9"}
    result = run("classify", stdin=lines(signal))
    answer = json.loads(result.stdout)
    assert result.returncode == 0
    assert answer["role"] == "Foundry User" and "project a/p1" in answer["summary"]


def test_a_bad_field_type_is_an_error_line_with_the_reason():
    result = run("classify", stdin=lines({"status": 401, "auth": "password"}, {"status": 401, "message": 7}))
    assert [json.loads(x) for x in result.stdout.decode().splitlines()] == [
        {"error": 'auth must be "entra", "key" or null'}, {"error": "message must be a string or null"}]
    assert result.returncode == 1


def test_the_last_line_without_a_newline_is_classified():
    result = run("classify", stdin=json.dumps(DENIED).encode())
    assert json.loads(result.stdout)["cause"] == "missing_data_role"


# ---- diagnose -----------------------------------------------------------------------------------------------


def test_diagnose_from_flags_prints_the_evidence_and_the_fix():
    result = run("diagnose", "--status", "401", "--code", "PermissionDenied", "--message",
                 "Principal does not have access to API/Operation.", "--endpoint", CHAT, "--auth", "entra",
                 "--object-id", "0a1b2c3d-4e5f-4061-8273-9485a6b7c8d9", "--resource-id",
                 "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a")
    text = result.stdout.decode()
    assert result.returncode == 0
    assert "Cause:      missing_data_role" in text
    assert "Evidence:" in text and "Role assignments were not looked up" in text
    assert ("az role assignment create --assignee-object-id 0a1b2c3d-4e5f-4061-8273-9485a6b7c8d9 "
            "--assignee-principal-type ServicePrincipal --role 5e0bd9bd-7b93-4f28-af87-19fc36ad61bd") in text
    assert "https://learn.microsoft.com/" in text


def test_diagnose_reads_a_json_object_with_evidence_from_stdin():
    case = {**DENIED, "object_id": "0a1b2c3d-4e5f-4061-8273-9485a6b7c8d9", "now": "2025-06-02T12:00:00Z",
            "evidence": {"assignments": [{"role_definition_id": "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",
                                          "scope": "/subscriptions/s", "created_on": "2025-06-02T11:57:00Z"}]}}
    result = run("diagnose", "--json", stdin=json.dumps(case).encode())
    answer = json.loads(result.stdout)
    assert result.returncode == 0
    assert answer["cause"] == "propagation_pending" and answer["fix_command"] is None
    assert answer["fix_steps"] and all({"text", "doc_url"} == set(step) for step in answer["fix_steps"])


def test_diagnose_rejects_bad_input_with_a_reason():
    result = run("diagnose", stdin=b"[]")
    assert result.returncode == 2 and b"error:" in result.stderr


# ---- samples / demo -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["samples"])
def test_samples_print_an_aligned_table_covering_most_causes(command):
    result = run(command)
    rows = result.stdout.decode().splitlines()
    assert result.returncode == 0
    assert rows[0].split()[:5] == ["#", "status", "cause", "role", "confidence"]
    body = rows[2:]
    assert 12 <= len(body) <= 24
    cause_column = rows[0].index("cause")
    assert all(row[cause_column - 2: cause_column] == "  " for row in body)  # aligned columns
    shown = {row[cause_column:].split()[0] for row in body}
    assert shown <= set(CAUSE_IDS)
    assert len(shown) >= 19


def test_samples_as_json_lines():
    result = run("samples", "--json")
    answers = [json.loads(x) for x in result.stdout.decode().splitlines()]
    assert answers and all(a["summary"] and a["cause"] in CAUSE_IDS for a in answers)


def test_unknown_command_is_a_usage_error():
    assert run("nope").returncode == 2
