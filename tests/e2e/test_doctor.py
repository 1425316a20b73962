"""`python -m shared doctor` as an operator runs it (a subprocess) against the local stand-in, and the same checks
behind the function key (`GET /api/health/deep`).

On the bundled "basic" scenario every check passes (the role assigner only warns: it has no condition and sits on
the resource group, and recommend mode writes nothing); an injected 403 on the workspace and an assignment without
the condition, in enforce mode, are both named and the command exits 1.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import pytest

from localazure import Clock, JwtCredential, LocalAzure
from shared.bootstrap import build_doctor_ports
from shared.core.abac import policy_condition
from shared.core.doctor import FAIL, OK, STATUSES, WARN
from shared.doctor import doctor_report
from shared.settings import load_settings
from tests.support.functions_worker import call_http, http_request, installed_world
from tests.support.paths import REPO_ROOT

RBAC_ADMIN = "Role Based Access Control Administrator"
BASIC_ACCOUNTS = ("aoai-prod", "foundry-hub")


@pytest.fixture
def basic():
    """The bundled scenario on real time (the CLI reads the real clock), with one round of its traffic logged."""
    with LocalAzure.start("basic", clock=Clock()) as az:
        az.tick()
        yield az


def service_env(az: LocalAzure, tmp_path, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIAGE_", "AzureWebJobsStorage"))}
    env.update({
        "TRIAGE_WORKSPACE_IDS": az.workspace_id, "TRIAGE_ARM_ENDPOINT": az.arm_url, "TRIAGE_LOGS_ENDPOINT": az.logs_url,
        "TRIAGE_SUBSCRIPTION_ID": az.subscription_id, "TRIAGE_CA_BUNDLE": az.ca_path,
        "TRIAGE_LOCAL_TOKEN": az.own_token(), "TRIAGE_STATE_BACKEND": "sqlite",
        "TRIAGE_SQLITE_PATH": str(tmp_path / "state.sqlite3"), "TRIAGE_SCAN_SCHEDULE": "0 */5 * * * *",
    })
    env.update(more)
    return env


def doctor(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared", "doctor", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def by_name(report: dict[str, Any]) -> dict[str, dict[str, str]]:
    return {c["name"]: c for c in report["checks"]}


def test_the_default_scenario_passes_every_check_and_prints_each_with_its_result(basic, tmp_path):
    result = doctor(service_env(basic, tmp_path))
    assert result.returncode == 0, result.stdout + result.stderr
    expected = ["settings", "state store (sqlite)", "ARM token", "Log Analytics token", "Event Grid token", "who am I",
                f"workspace {basic.workspace_id}", "own role assignments", "ticket sink log"]
    expected += [f"{a}: {what}" for a in BASIC_ACCOUNTS
                 for what in ("role assigner", "diagnostic settings", "RequestResponse rows")]
    lines = result.stdout.splitlines()
    for name in expected:
        [line] = [line for line in lines if f"  {name}  " in line]
        assert line.split()[0].lower() in STATUSES
    assert lines[-1].startswith("doctor: ") and " 0 fail" in lines[-1]
    assert f"object id {basic.own_principal_id}" in result.stdout

    report = json.loads(doctor(service_env(basic, tmp_path), "--json").stdout)
    checks = by_name(report)
    assert report["ok"] is True and set(expected) <= set(checks)
    assert {c["status"] for c in report["checks"]} <= {OK, WARN}
    assigner = checks["aoai-prod: role assigner"]
    assert assigner["status"] == WARN and "no condition" in assigner["detail"] and "above the account" in assigner[
        "detail"]
    assert checks["aoai-prod: RequestResponse rows"]["status"] == OK
    assert "401/403 row(s) seen" in checks["aoai-prod: RequestResponse rows"]["detail"]  # chat-api is denied
    assert RBAC_ADMIN in checks["own role assignments"]["detail"]


def test_a_forbidden_workspace_and_an_unconditioned_assigner_are_both_named_and_exit_1(basic, tmp_path):
    basic.faults.add("logs", route=f"/v1/workspaces/{basic.workspace_id}/query", status=403, times=None)
    basic.add_assignment(basic.own_principal_id, RBAC_ADMIN, "account:aoai-prod")  # no condition
    result = doctor(service_env(basic, tmp_path, TRIAGE_MODE="enforce"), "--json")
    assert result.returncode == 1, result.stdout + result.stderr
    checks = by_name(json.loads(result.stdout))
    workspace = checks[f"workspace {basic.workspace_id}"]
    assert workspace["status"] == FAIL and "403" in workspace["detail"]
    assert workspace["hint"] == f"grant Log Analytics Reader on the workspace to {basic.own_principal_id}"
    assigner = checks["aoai-prod: role assigner"]
    assert assigner["status"] == FAIL
    assert f"{RBAC_ADMIN} on aoai-prod: no condition" in assigner["detail"]

    table = doctor(service_env(basic, tmp_path, TRIAGE_MODE="enforce"))
    assert table.returncode == 1
    failed = table.stdout.splitlines()[-1]
    assert failed.startswith("failed: ") and f"workspace {basic.workspace_id}" in failed
    assert "aoai-prod: role assigner" in failed


def test_a_conditioned_assigner_on_each_account_passes_in_enforce_mode(tmp_path):
    own = "0c0c0c0c-0000-4000-8000-00000000a11c"
    condition = policy_condition()
    scenario = {
        "settings": {"own_identity": {"principal_id": own}},
        "principals": [{"id": own, "type": "ServicePrincipal", "managed_identity": True}],
        "resources": [{"name": "aoai-a"}, {"name": "aoai-b", "diagnostic_categories": ["Audit"]}],
        "assignments": [{"principal": own, "role": RBAC_ADMIN, "scope": f"account:{name}", "condition": condition,
                         "condition_version": "2.0"} for name in ("aoai-a", "aoai-b")]
                       + [{"principal": own, "role": "Reader", "scope": "subscription"}],
    }
    with LocalAzure.start(scenario, clock=Clock()) as az:
        env = service_env(az, tmp_path, TRIAGE_MODE="enforce")
        settings = load_settings(env)
        report = doctor_report(settings, build_doctor_ports(settings, credential=JwtCredential(own, az.tenant_id)),
                               env=env)
    checks = by_name(report.to_json())
    assert checks["aoai-a: role assigner"]["status"] == OK
    assert checks["aoai-b: role assigner"]["status"] == OK
    assert checks["aoai-a: diagnostic settings"]["status"] == OK
    assert checks["aoai-b: diagnostic settings"]["status"] == FAIL  # it sends only Audit
    assert "Reader on /subscriptions/" in checks["own role assignments"]["detail"]
    assert not report.ok


def test_invalid_settings_are_failed_checks(tmp_path, basic):
    result = doctor(service_env(basic, tmp_path, TRIAGE_WORKSPACE_IDS="law-prod", TRIAGE_MODE="enforce"), "--json")
    assert result.returncode == 1 and result.stderr == ""
    checks = by_name(json.loads(result.stdout))
    assert checks["TRIAGE_WORKSPACE_IDS"]["status"] == FAIL and "not a GUID" in checks["TRIAGE_WORKSPACE_IDS"]["detail"]


def test_unknown_settings_are_listed_with_the_closest_name(tmp_path, basic):
    result = doctor(service_env(basic, tmp_path, TRIAGE_MAX_GRANT_PER_RUN="3"), "--json")
    check = by_name(json.loads(result.stdout))["TRIAGE_MAX_GRANT_PER_RUN"]
    assert check["status"] == WARN and check["hint"] == "did you mean TRIAGE_MAX_GRANTS_PER_RUN?"


# ---- GET /api/health/deep ----------------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("TRIAGE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TRIAGE_SCAN_SCHEDULE", "0 */5 * * * *")
    return monkeypatch


def test_the_anonymous_health_route_refuses_deep_checks(clean_env):
    status, body = call_http("health", http_request("GET", "health", params={"deep": "1"}))
    assert status == 401 and "/api/health/deep" in body["error"]


def test_health_lists_unknown_settings_and_stays_ok(tmp_path, clean_env):
    clean_env.setenv("TRIAGE_ALLOW_USER_GRANT", "true")
    with installed_world(tmp_path):
        status, body = call_http("health", http_request("GET", "health"))
    assert status == 200 and body["ok"] is True
    assert body["unknown_settings"] == [{"key": "TRIAGE_ALLOW_USER_GRANT", "closest": "TRIAGE_ALLOW_USER_GRANTS"}]


def test_the_keyed_deep_health_route_answers_the_doctor_report(tmp_path, clean_env):
    token = JwtCredential("0d0d0d0d-0000-4000-8000-00000000a11c", "t").get_token("https://management.azure.com").token
    with installed_world(tmp_path, mode="recommend", TRIAGE_LOCAL_TOKEN=token):
        status, body = call_http("health_deep", http_request("GET", "health/deep"))
    assert status == 200 and body["ok"] is True, body
    checks = by_name(body)
    assert checks["who am I"]["detail"].startswith("object id 0d0d0d0d-0000-4000-8000-00000000a11c")
    assert checks["contoso-openai: diagnostic settings"]["status"] == OK
    assert token not in json.dumps(body)
