"""The tracker stand-ins answer like the real trackers where the sinks depend on it (auth failures, odd status
codes, recording, faults)."""

from __future__ import annotations

import base64
from dataclasses import replace

import pytest

from localazure.trackers import TrackerStandIns
from shared.tickets.http import TrackerClient
from tests.support.trackers import CREDENTIALS, FAST


def _raw_client(standins: TrackerStandIns, url: str, authorization: str | None,
                headers: dict[str, str] | None = None) -> TrackerClient:
    return TrackerClient(sink="probe", base_url=url, options=replace(FAST, connection_verify=standins.ca_path),
                         secrets=(), credential_hint="-", headers=headers,
                         authorization=(lambda: authorization) if authorization else None)


@pytest.mark.parametrize("tracker,path", [
    ("github", "/repos/contoso/ai-platform/issues"),
    ("servicenow", "/api/now/table/incident"),
    ("jira", "/rest/api/3/search/jql?jql=project%3DAIP"),
])
def test_wrong_credentials_get_401_with_the_trackers_error_shape(standins, tracker, path):
    url = {"github": standins.github_url, "servicenow": standins.servicenow_url, "jira": standins.jira_url}[tracker]
    result = _raw_client(standins, url, "Bearer wrong").request("GET", path, idempotent=True, allow=(401,))
    assert result.status == 401
    body = result.json()
    assert {"github": "message", "servicenow": "error", "jira": "errorMessages"}[tracker] in body


def test_azure_devops_answers_a_bad_pat_with_203_sign_in_page_unless_redirects_are_suppressed(standins):
    bad = "Basic " + base64.b64encode(b":not-the-pat").decode()
    path = "/AI%20Platform/_apis/wit/wiql?api-version=7.1"
    page = _raw_client(standins, standins.ado_url, bad).request(
        "POST", path, json={"query": "SELECT [System.Id] FROM WorkItems"}, idempotent=True, allow=(203,))
    assert page.status == 203 and b"Sign In" in page.body
    suppressed = _raw_client(standins, standins.ado_url, bad, {"X-TFS-FedAuthRedirect": "Suppress"}).request(
        "POST", path, json={"query": "SELECT [System.Id] FROM WorkItems"}, idempotent=True, allow=(401,))
    assert suppressed.status == 401 and "TF400813" in suppressed.json()["message"]


def test_every_request_is_recorded_with_method_path_headers_and_body(standins):
    before = len(standins.received("jira"))
    good = "Basic " + base64.b64encode(f"{CREDENTIALS.jira_user}:{CREDENTIALS.jira_token}".encode()).decode()
    _raw_client(standins, standins.jira_url, good).request(
        "POST", "/rest/api/3/issue", json={"fields": {"summary": "x"}}, idempotent=False, allow=(400,))
    recorded = standins.received("jira")[before:]
    assert [(r.method, r.path) for r in recorded] == [("POST", "/rest/api/3/issue")]
    assert recorded[0].json() == {"fields": {"summary": "x"}}
    assert recorded[0].headers["authorization"] == good


def test_faults_are_served_in_order_then_normal_service_resumes(standins):
    standins.faults.add("servicenow", status=503, times=2, retry_after=0.5)
    good = "Basic " + base64.b64encode(
        f"{CREDENTIALS.servicenow_user}:{CREDENTIALS.servicenow_password}".encode()).decode()
    client = TrackerClient(sink="probe", base_url=standins.servicenow_url, secrets=(), credential_hint="-",
                           options=replace(FAST, retry_total=0, connection_verify=standins.ca_path),
                           authorization=lambda: good)
    statuses = [client.request("GET", "/api/now/table/incident", idempotent=True, allow=(503,)) for _ in range(3)]
    assert [s.status for s in statuses] == [503, 503, 200]
    assert statuses[0].headers.get("Retry-After") == "0.5"


def test_servicenow_refuses_to_resolve_without_close_code_and_to_edit_a_closed_incident(standins):
    good = "Basic " + base64.b64encode(
        f"{CREDENTIALS.servicenow_user}:{CREDENTIALS.servicenow_password}".encode()).decode()
    client = _raw_client(standins, standins.servicenow_url, good)
    created = client.request("POST", "/api/now/table/incident", json={"short_description": "x"},
                             idempotent=False).json()["result"]
    path = f"/api/now/table/incident/{created['sys_id']}"
    refused = client.request("PATCH", path, json={"state": "6"}, idempotent=True, allow=(403,))
    assert refused.status == 403 and "Data Policy" in refused.json()["error"]["detail"]
    standins.set_state("servicenow", created["number"], "7")
    locked = client.request("PATCH", path, json={"description": "y"}, idempotent=True, allow=(403,))
    assert locked.status == 403 and "ACL" in locked.json()["error"]["detail"]
