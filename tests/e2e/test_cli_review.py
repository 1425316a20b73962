"""`python -m shared review ...` as an operator runs it (a subprocess) against the local stand-in, in each output
form, and the same reviews behind the function key (`GET /api/review/readiness`, `/api/review/access`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from localazure import Clock, JwtCredential, LocalAzure
from localazure import scenario as scenario_file
from localazure.calls import WRITE
from localazure.policy import KEY_ACCESS_DISABLED
from tests.support.functions_worker import call_http, http_request, installed_world
from tests.support.paths import REPO_ROOT


@pytest.fixture
def world():
    """The bundled scenario with a deny policy on the subscription, on real time (the CLI reads the real clock)."""
    raw = scenario_file.read("basic")
    raw["policies"] = {"assignments": [{"name": "no-keys", "scope": "subscription", "definition": KEY_ACCESS_DISABLED,
                                        "parameters": {"effect": "Deny"}}]}
    with LocalAzure.start(raw, clock=Clock()) as az:
        az.tick()
        yield az


def service_env(az: LocalAzure, tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRIAGE_", "AzureWebJobsStorage"))}
    env.update({
        "TRIAGE_WORKSPACE_IDS": az.workspace_id, "TRIAGE_ARM_ENDPOINT": az.arm_url, "TRIAGE_LOGS_ENDPOINT": az.logs_url,
        "TRIAGE_SUBSCRIPTION_ID": az.subscription_id, "TRIAGE_CA_BUNDLE": az.ca_path,
        "TRIAGE_LOCAL_TOKEN": az.own_token(), "TRIAGE_STATE_BACKEND": "sqlite",
        "TRIAGE_SQLITE_PATH": str(tmp_path / "state.sqlite3"), "TRIAGE_SCAN_SCHEDULE": "0 */5 * * * *",
    })
    return env


@pytest.fixture
def clean_env(monkeypatch):
    for key in list(os.environ):
        if key.startswith("TRIAGE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TRIAGE_SCAN_SCHEDULE", "0 */5 * * * *")
    return monkeypatch


def review(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared", "review", *args], cwd=REPO_ROOT, env=env,
                          capture_output=True, text=True, timeout=120, check=False)


def test_readiness_in_each_form(world, tmp_path):
    env = service_env(world, tmp_path)
    table = review(env, "readiness")
    assert table.returncode == 0, table.stderr
    assert "aoai-prod: NOT_READY" in table.stdout and "foundry-hub: ALREADY_DISABLED" in table.stdout
    assert "R2-entra-callers-hold-roles" in table.stdout and "R3-policy-rollback" in table.stdout
    body = json.loads(review(env, "readiness", "--json").stdout)
    verdicts = {r["account"].rsplit("/", 1)[-1]: r["verdict"] for r in body["readiness"]}
    assert verdicts == {"aoai-prod": "not_ready", "foundry-hub": "already_disabled"}
    prod = next(r for r in body["readiness"] if r["account"].endswith("aoai-prod"))
    assert prod["entra_callers_without_role"] == ["3f2b6a10-0000-4000-8000-000000000001"]
    assert [p["effect"] for p in prod["blocking_policies"]] == ["deny"]
    markdown = review(env, "readiness", "--markdown", "--account", world.account_id("aoai-prod")).stdout
    assert markdown.startswith("# Local authentication readiness") and "## aoai-prod: `not_ready`" in markdown
    assert "foundry-hub" not in markdown
    assert not world.calls.count(kind=WRITE)


def test_access_and_upgrade_reviews(world, tmp_path):
    env = service_env(world, tmp_path)
    body = json.loads(review(env, "access", "--json", "--pre-upgrade").stdout)
    rules = {(f["rule"], f["account"].rsplit("/", 1)[-1]) for f in body["access_findings"]}
    assert ("A1-control-plane-role-for-inference", "aoai-prod") in rules
    assert {"principal", "role", "scope", "rule", "recommendation"} <= set(body["access_findings"][0])
    upgrade = review(env, "upgrade")
    assert upgrade.returncode == 0 and "aoai-prod" in upgrade.stdout and "foundry-hub" not in upgrade.stdout
    assert "A1-control-plane-role-for-inference" in review(env, "access", "--markdown").stdout
    assert not world.calls.count(kind=WRITE)


def test_bad_days_and_unreadable_logs(world, tmp_path):
    env = service_env(world, tmp_path)
    bad = review(env, "readiness", "--days", "0")
    assert bad.returncode == 2 and "--days must be 1 to 90" in bad.stderr
    no_logs = review({**env, "TRIAGE_WORKSPACE_IDS": ""}, "readiness", "--json")
    assert no_logs.returncode == 1
    [first, *_] = json.loads(no_logs.stdout)["readiness"]
    assert first["verdict"] == "not_ready" and "TRIAGE_WORKSPACE_IDS is empty" in first["could_not_check"][0]


def test_the_keyed_routes_answer_the_reviews(tmp_path, clean_env):
    token = JwtCredential("0d0d0d0d-0000-4000-8000-00000000a11c", "t").get_token("https://management.azure.com").token
    with installed_world(tmp_path, mode="recommend", TRIAGE_LOCAL_TOKEN=token) as w:
        w.az.call("contoso-openai", "/openai/deployments/gpt-4o/chat/completions", auth="key")
        w.clock.advance(60)
        status, body = call_http("review_readiness", http_request("GET", "review/readiness"))
        assert status == 200, body
        result = next(r for r in body["readiness"] if r["account"].endswith("/contoso-openai"))
        assert result["verdict"] == "not_ready" and result["key_callers"][0]["calls"] == 1
        status, body = call_http("review_access", http_request("GET", "review/access",
                                                               params={"pre_upgrade": "true"}))
        assert status == 200 and body["accounts"][0]["pre_upgrade"] is True
        status, body = call_http("review_readiness", http_request("GET", "review/readiness", params={"days": "x"}))
        assert status == 400 and "days" in body["error"]
        assert not w.az.calls.count(kind=WRITE)


def test_ticket_opens_one_ticket_per_account_through_the_configured_sinks(world, tmp_path):
    env = {**service_env(world, tmp_path), "TRIAGE_TICKET_SINKS": "log"}
    result = review(env, "readiness", "--ticket", "--json")
    assert result.returncode == 0, result.stderr
    tickets = json.loads(result.stdout)["tickets"]
    by_account = {t["account"].rsplit("/", 1)[-1]: t for t in tickets}
    assert by_account["aoai-prod"]["result"] in ("opened", "updated")  # not ready: a ticket
    assert by_account["foundry-hub"]["result"] == "closed"  # already disabled: nothing to track (the log sink
    assert {t["sink"] for t in tickets} == {"log"}            # answers every close with a reference)
    assert not world.calls.count(kind=WRITE)


def test_readiness_as_az_forms_a_table_of_the_accounts_tsv_and_a_query(world, tmp_path):
    env = service_env(world, tmp_path)
    table = review(env, "readiness", "-o", "table")
    assert table.returncode == 0, table.stderr
    header, rule, *rows = table.stdout.splitlines()
    assert header.split()[:2] == ["account", "verdict"] and set(rule) <= {"-", " "} and len(rows) == 2
    tsv = review(env, "readiness", "-o", "tsv", "--query", "readiness[].[account, verdict]")
    assert sorted(line.split("\t")[1] for line in tsv.stdout.splitlines()) == ["already_disabled", "not_ready"]
    picked = review(env, "-o", "json", "readiness", "--query", "readiness[?verdict=='not_ready'].account")
    [account] = json.loads(picked.stdout)
    assert account.endswith("/aoai-prod")
