"""The bundled demo runs as a test: every case of the demo scenario ends exactly as specified.

The demo drives the real entry points (timer, Event Grid, HTTP approve) of function_app against the local stand-in
with a real clock and a 10 s propagation window, so this module takes a little under a minute.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor

import pytest

from localazure.demo import (
    CASES,
    CONTRACT_KEYS,
    FINDING_KEYS,
    GATEWAY_CALLER,
    READINESS_KEYS,
    SOURCE_KEYS,
    Demo,
    contract_view,
    print_report,
)
from tests.support.paths import REPO_ROOT

OPENAI_USER = "Cognitive Services OpenAI User"

EXPECTED = {
    # case: (cause, action, role, verification, tickets)
    "mi-missing-openai-user": ("missing_data_role", "assigned", OPENAI_USER, "resolved", 0),
    "not-allowlisted": ("missing_data_role", "ticketed", OPENAI_USER, None, 1),
    "owner-only": ("control_plane_role_only", "assigned", OPENAI_USER, "resolved", 0),
    "key-auth-disabled": ("local_auth_disabled", "ticketed", None, None, 1),
    "firewall": ("network_denied", "ticketed", None, None, 1),
    "wrong-audience": ("token_audience_invalid", "ticketed", None, None, 1),
    "recently-assigned": ("propagation_pending", "waiting", None, "resolved", 0),
    "foundry-project": ("missing_data_role", "assigned", "Foundry User", "resolved", 0),
    "models-with-openai-user": ("wrong_role_for_surface", "assigned", "Cognitive Services User", "resolved", 0),
    "repeated-failures": ("invalid_api_key", "ticketed", None, None, 1),
    "allowlisted-user": ("missing_data_role", "ticketed", OPENAI_USER, None, 1),
    "approved-by-oncall": ("missing_data_role", "assigned", OPENAI_USER, "resolved", 1),
    # API Management in front of aoai-demo: its allowlisted managed identity gets the role, not the app behind it.
    "ai-gateway": ("missing_data_role", "assigned", OPENAI_USER, "resolved", 0),
}
MAIN_WORKSPACE = "de70de70-0000-4000-8000-000000000003"
NO_DATA_WORKSPACE = "de70de70-0000-4000-8000-000000000004"  # no diagnostics received yet
SOURCES = {f"logs:{MAIN_WORKSPACE}": "ok", f"logs:{NO_DATA_WORKSPACE}": "no_data",
           f"appinsights:{MAIN_WORKSPACE}": "ok", f"apim:{MAIN_WORKSPACE}": "ok"}
NO_DATA_LINE = (f"    source logs:{NO_DATA_WORKSPACE} has no data yet: Log Analytics query on workspace "
                f"{NO_DATA_WORKSPACE}: no data yet: HTTP 400 BadArgumentError: The request had some invalid "
                "properties; SemanticError: A semantic error occurred.; SEM0100: 'where' operator: Failed to resolve "
                "table or column expression named 'AzureDiagnostics'")


@pytest.fixture(scope="module")
def demo_run():
    out = io.StringIO()
    report = Demo("github", out=out).run()
    return report, out.getvalue()


@pytest.fixture(scope="module")
def report(demo_run):
    return demo_run[0]


def by_case(report):
    return {i["case"]: i for i in report["incidents"]}


def test_every_case_ends_as_specified(report):
    cases = by_case(report)
    assert list(cases) == [c.id for c in CASES] == list(EXPECTED)
    actual = {case: (i["cause"], i["action"], i["role"], i["verification"], i["tickets"]) for case, i in cases.items()}
    assert actual == EXPECTED


def test_grants_are_least_privilege_at_the_narrowest_scope(report):
    cases = by_case(report)
    account = cases["mi-missing-openai-user"]["resource_id"].rstrip("/")
    assert cases["mi-missing-openai-user"]["scope"].lower() == account.lower()
    assert cases["foundry-project"]["scope"].lower().endswith("/accounts/foundry-demo/projects/agents")
    assert cases["models-with-openai-user"]["scope"].lower().endswith("/accounts/foundry-demo")
    assert report["grants"] == sum(1 for i in report["incidents"] if i["action"] == "assigned") == 6
    assert report["tickets"] == sum(i["tickets"] for i in report["incidents"])


def test_assigned_callers_kept_failing_during_propagation_then_resolved(report):
    counts = by_case(report)["mi-missing-openai-user"]["counts_by_cycle"]
    # the role was assigned in cycle 1; failures kept arriving while it propagated
    assert counts[2] > counts[1] > counts[0]


def test_recently_assigned_is_not_assigned_again(report):
    case = by_case(report)["recently-assigned"]
    assert case["action"] == "waiting" and case["status"] == "resolved"


def test_repeated_failures_make_one_incident_and_one_ticket_with_growing_counts(report):
    case = by_case(report)["repeated-failures"]
    counts = case["counts_by_cycle"]
    assert len(counts) >= 3 and counts == sorted(counts) and counts[-1] > counts[0]
    assert case["tickets"] == 1
    titles = [t["title"] for t in report["ticket_views"] if "invalid_api_key" in t["title"]]
    assert len(titles) == 1


def test_explanations_and_fix_commands(report):
    cases = by_case(report)
    assert "no data" in cases["owner-only"]["summary"].lower()
    command = cases["not-allowlisted"]["fix_command"]
    assert command.startswith("az role assignment create --assignee-object-id 0de70000-0002-4000-8000-000000000002")
    assert "--role 5e0bd9bd-7b93-4f28-af87-19fc36ad61bd" in command
    ticket = next(t for t in report["ticket_views"] if "0de70000-0002" in t["body"])
    assert "az role assignment create" in ticket["body"]
    assert any("principal_type" in r for r in cases["allowlisted-user"]["refusals"])
    assert any("allowlist" in r for r in cases["not-allowlisted"]["refusals"])


def test_event_grid_and_http_entry_points(report):
    outcomes = [e["outcome"] for e in report["events"]]
    assert "processed" in outcomes[0] and "duplicate" in outcomes[1] and "rejected" in outcomes[2]
    approval = report["approval"]
    assert approval["status_code"] == 200 and approval["body"]["status"] in ("verifying", "assigned")


def test_resolved_incidents_close_their_tickets(report):
    approved = by_case(report)["approved-by-oncall"]
    assert approved["verification"] == "resolved"
    closed = [t for t in report["ticket_views"] if not t["open"]]
    assert len(closed) == 1 and "0de70000-0012" in closed[0]["body"]


def test_the_gateway_identity_is_the_failing_principal_and_its_caller_has_no_incident(report):
    gateway = by_case(report)["ai-gateway"]
    assert gateway["principal_id"] == "0de70000-0013-4000-8000-000000000013"
    assert gateway["scope"].lower().endswith("/accounts/aoai-demo") and gateway["verification"] == "resolved"
    assert report["gateway_caller_incidents"] == 0
    # The account's row and the gateway's row of each failure are one failure: counted once (one call per cycle).
    assert gateway["counts_by_cycle"][:3] == [1, 2, 3]
    assert all(GATEWAY_CALLER not in (i["principal_id"] or "") for i in report["incidents"])


def test_a_workspace_with_no_data_yet_is_reported_and_the_scan_goes_on(demo_run):
    report, output = demo_run
    assert {s["name"]: s["state"] for s in report["sources"]} == SOURCES
    assert output.splitlines().count(NO_DATA_LINE) == 1  # said once, on the first cycle
    printed = io.StringIO()
    print_report(report, printed)
    lines = printed.getvalue().splitlines()
    assert (f"  logs:{NO_DATA_WORKSPACE}         no data yet  SEM0100: 'where' operator: Failed to resolve table "
            "or column expression named 'AzureDiagnostics'") in lines
    assert f"  logs:{MAIN_WORKSPACE}         ok" in lines
    assert all(line == line.rstrip() for line in lines if not line.startswith("event grid:"))


def _readme_block(first_line_start: str) -> list[str]:
    """The lines of the README's code block that starts with a line beginning `first_line_start`."""
    text = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    for block in re.findall(r"```[a-z]*\n(.*?)```", text, re.S):
        if block.startswith(first_line_start):
            return block.splitlines()
    raise AssertionError(f"README has no code block starting {first_line_start!r}")


def test_the_readme_shows_the_output_as_printed(demo_run):
    report, output = demo_run
    printed = io.StringIO()
    print_report(report, printed)
    lines = printed.getvalue().splitlines()
    table = _readme_block("case ")
    start = lines.index(table[0])
    assert lines[start:start + len(table)] == table
    cycle = _readme_block("  timer cycle 1")
    assert cycle[1] == NO_DATA_LINE and "\n".join(cycle) in output


def run_demo_json(provider: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "shared", "demo", "--json", "--provider", provider], cwd=REPO_ROOT,
                          capture_output=True, timeout=240, check=False)


def test_demo_json_contract_and_every_ticket_provider():
    providers = ["github", "azuredevops", "servicenow", "jira", "webhook", "slack", "teams", "log"]
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = dict(zip(providers, pool.map(run_demo_json, providers), strict=True))
    for provider, result in results.items():
        assert result.returncode == 0, (provider, result.stderr.decode()[-2000:])
        lines = result.stdout.decode().strip().splitlines()
        assert len(lines) == 1, provider
        payload = json.loads(lines[0])
        assert set(payload) == {"mode", "incidents", "grants", "tickets", "sources", "readiness", "access_findings"}
        assert payload["mode"] == "enforce"
        for incident in payload["incidents"]:
            assert tuple(incident) == CONTRACT_KEYS
            expected = EXPECTED[incident["case"]]
            assert (incident["cause"], incident["action"], incident["role"], incident["verification"]) == \
                expected[:4], (provider, incident["case"])
        assert payload["grants"] == 6
        assert payload["tickets"] == 7, provider
        assert [tuple(s) for s in payload["sources"]] == [SOURCE_KEYS] * len(SOURCES)
        assert {s["name"]: s["state"] for s in payload["sources"]} == SOURCES, provider


def test_contract_view_keeps_only_documented_keys(report):
    view = contract_view(report)
    assert [tuple(i) for i in view["incidents"]] == [CONTRACT_KEYS] * len(CASES)


def test_the_reviews_of_the_demo_world(report):
    """Issue 16: an account not ready (key callers), one already disabled, one under a deny policy; an Owner used
    for inference, a data role at subscription scope, a managed identity with a group-only role."""
    view = contract_view(report)
    readiness = {r["account"].rsplit("/", 1)[-1]: r for r in view["readiness"]}
    assert [tuple(r) for r in view["readiness"]] == [READINESS_KEYS] * len(readiness)
    assert readiness["aoai-demo"]["verdict"] == "not_ready" and readiness["aoai-demo"]["key_callers"]
    assert readiness["aoai-keyless"]["verdict"] == "already_disabled"
    assert [p["effect"] for p in readiness["aoai-locked"]["blocking_policies"]] == ["deny"]
    assert readiness["aoai-locked"]["verdict"] == "not_ready"
    findings = {(f["rule"], f["principal"], f["role"]) for f in view["access_findings"]}
    assert [tuple(f) for f in view["access_findings"]] == [FINDING_KEYS] * len(view["access_findings"])
    assert ("A1-control-plane-role-for-inference", "0de70000-0003-4000-8000-000000000003", "Owner") in findings
    assert ("A3-data-role-at-broad-scope", "0de70000-0020-4000-8000-000000000020", OPENAI_USER) in findings
    assert ("A4-identity-role-only-through-group", "0de70000-0021-4000-8000-000000000021", OPENAI_USER) in findings
    printed = io.StringIO()
    print_report(report, printed)
    text = printed.getvalue()
    assert "  aoai-locked: not_ready" in text and "A4-identity-role-only-through-group" in text
