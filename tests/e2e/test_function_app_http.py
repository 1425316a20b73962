"""The HTTP functions (diagnose, alerts, incidents, incident, approve, revoke), called directly with HttpRequests.

Every answer is checked to be JSON without a stack trace (`call_http`). The service runs whole on the local
stand-in, so approvals and revocations really write and delete role assignments there.
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core import incidents as inc
from shared.engine.approvals import suppress
from shared.state.sqlite import SqliteStore
from tests.support.functions_worker import (
    ACCOUNT,
    ACCOUNT_ID,
    CALLER,
    CHAT_ROUTE,
    SUBSCRIPTION,
    call_http,
    contoso_scenario,
    deliver,
    failure_cloudevent,
    http_request,
    installed_world,
    log_alert,
    rejections,
    sample,
)

OPENAI_USER_GUID = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
PASTED = sample("failure_cloudevent.json")["data"]  # the fields a developer pastes from a failed call


def diagnose(body):
    return call_http("diagnose", http_request("POST", "diagnose", body=body))


def recommended_incident(world) -> inc.Incident:
    deliver(failure_cloudevent("7a2b3c4d-0000-4000-8000-00000000e007"))
    (incident,) = world.rt.store.list_incidents()
    assert incident.status == inc.RECOMMENDED
    return incident


def act(action: str, incident_id: str, *, body=None, headers=None):
    request = http_request("POST", f"incidents/{incident_id}/{action}", body=body, headers=headers,
                           route_params={"incident_id": incident_id})
    return call_http(action, request)


# ---- POST /api/diagnose -------------------------------------------------------------------------------------


def test_diagnose_pasted_error_text_returns_the_diagnosis_with_the_fix_command(tmp_path):
    with installed_world(tmp_path) as world:
        status, body = diagnose({k: PASTED[k] for k in ("status", "code", "message", "endpoint", "auth",
                                                        "object_id")})
        assert status == 200
        diagnosis = body["diagnosis"]
        assert diagnosis["cause"] == "missing_data_role"  # no resource named: no live evidence to say more
        assert body["live_evidence"] is False
        assert OPENAI_USER_GUID in diagnosis["fix_command"] and CALLER in diagnosis["fix_command"]
        assert world.az.calls.count(service="arm") == 0


def test_diagnose_pasted_error_with_the_resource_uses_live_evidence(tmp_path):
    with installed_world(tmp_path) as world:
        status, body = diagnose({**{k: PASTED[k] for k in ("status", "code", "message", "auth", "object_id")},
                                 "resource_id": ACCOUNT_ID})
        assert status == 200 and body["live_evidence"] is True
        assert body["diagnosis"]["cause"] == "control_plane_role_only"  # the caller holds Contributor only
        assert world.az.calls.count(service="arm") > 0


def test_diagnose_principal_and_resource_reads_live_evidence_and_writes_nothing(tmp_path):
    with installed_world(tmp_path, scenario=contoso_scenario(caller_role="Owner"), mode="enforce") as world:
        status, body = diagnose({"principal_id": CALLER.upper(), "resource_id": ACCOUNT_ID, "route": CHAT_ROUTE})
        assert status == 200 and body["live_evidence"] is True
        diagnosis = body["diagnosis"]
        assert diagnosis["cause"] == "control_plane_role_only"
        assert any("Owner" in line for line in diagnosis["evidence"])
        assert diagnosis["role"] == "Cognitive Services OpenAI User"
        assert ACCOUNT in diagnosis["fix_command"]
        # Nothing written, even in enforce mode with the caller allowlisted.
        assert world.rt.store.list_incidents() == []
        assert world.rt.store.list_audit() == []
        assert world.az.calls.count(service="arm", method="PUT") == 0


def test_diagnose_accepts_a_foundry_project_id(tmp_path):
    with installed_world(tmp_path):
        status, body = diagnose({"principal_id": CALLER, "resource_id": f"{ACCOUNT_ID}/projects/research",
                                 "route": CHAT_ROUTE})
        assert status == 200 and body["live_evidence"] is True


def test_diagnose_a_principal_that_holds_the_data_role_is_not_told_to_assign_it(tmp_path):
    with installed_world(tmp_path, scenario=contoso_scenario(caller_role="Cognitive Services OpenAI User")):
        status, body = diagnose({"principal_id": CALLER, "resource_id": ACCOUNT_ID, "route": CHAT_ROUTE})
        assert status == 200
        assert body["diagnosis"]["cause"] not in ("control_plane_role_only", "missing_data_role")


@pytest.mark.parametrize(
    ("body", "names"),
    [
        (b"{not json", "not valid JSON"),
        (b"", "JSON object"),
        (b"\xff\xfe", "not valid JSON"),
        ([1, 2], "JSON object"),
        ({"resource_id": ACCOUNT_ID}, "principal_id"),
        ({"principal_id": "not-a-guid", "resource_id": ACCOUNT_ID}, "principal_id"),
        ({"principal_id": CALLER}, "resource_id"),
        ({"status": "teapot", "message": "x"}, "status"),
        ({"status": 401, "auth": "password"}, "auth"),
        ({"status": 401, "resource_id": 7}, "resource_id"),
        ({"principal_id": CALLER, "resource_id": "contoso-openai"}, "resource_id"),
        ({"principal_id": CALLER, "resource_id": "   "}, "resource_id"),
        ({"principal_id": CALLER, "resource_id": f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-ai"},
         "resource_id"),
        ({**PASTED, "resource_id": "/x/providers/Microsoft.CognitiveServices/accounts/contoso-openai"}, "resource_id"),
        ({"principal_id": CALLER, "resource_id": ACCOUNT_ID, "endpoint": 443}, "endpoint"),
        ({"principal_id": CALLER, "resource_id": ACCOUNT_ID, "route": ["/openai"]}, "route"),
    ],
    ids=["bad-json", "empty", "not-utf8", "array", "no-principal", "bad-principal", "no-resource", "bad-status",
         "bad-auth", "resource-not-text", "resource-a-name", "resource-blank", "resource-a-group",
         "resource-no-subscription", "endpoint-not-text", "route-not-text"],
)
def test_diagnose_bad_requests_get_400_naming_the_problem(tmp_path, body, names):
    with installed_world(tmp_path) as world:
        status, answer = diagnose(body)
        assert status == 400
        assert names in answer["error"]
        assert world.rt.store.list_incidents() == []


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory):
    with installed_world(tmp_path_factory.mktemp("http-prop")) as world:
        yield world


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=st.one_of(st.binary(max_size=60), st.text(max_size=60).map(str.encode),
                      st.dictionaries(st.sampled_from(["status", "principal_id", "resource_id", "code", "auth",
                                                       "object_id", "message", "endpoint"]),
                                      st.one_of(st.none(), st.integers(), st.text(max_size=10), st.booleans()),
                                      max_size=5).map(lambda d: json.dumps(d).encode())))
def test_any_body_to_diagnose_or_alerts_is_answered_as_json_never_as_a_crash(shared_world, body):
    for name, route in (("diagnose", "diagnose"), ("alerts", "alerts")):
        status, answer = call_http(name, http_request("POST", route, body=body))
        assert status in (200, 400), answer
        if status == 400:
            assert answer["error"]


# ---- POST /api/alerts (action-group webhook) ----------------------------------------------------------------


def test_alert_webhook_scans_the_alert_window_and_acknowledges_a_duplicate(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        world.clock.set_now("2026-11-22T10:01:00Z")
        world.az.call(ACCOUNT, CHAT_ROUTE, caller=CALLER)
        world.clock.set_now("2026-11-22T10:06:00Z")
        alert = sample("common_alert_log_v2.json")

        status, body = call_http("alerts", http_request("POST", "alerts", body=alert))
        assert status == 200 and body["result"] == "processed"
        assert body["alert_id"] == alert["data"]["essentials"]["alertId"]
        (incident,) = world.rt.store.list_incidents()
        assert incident.principal_id == CALLER and incident.status == inc.RECOMMENDED
        queries = world.az.calls.count(service="logs")

        status, body = call_http("alerts", http_request("POST", "alerts", body=alert))  # the action group retries
        assert status == 200 and body["result"] == "duplicate"
        assert world.az.calls.count(service="logs") == queries


PUBLISHED_OTHER_ALERTS = ("sample_metric_alert_resolved_vm", "test_action_activity_log_alert",
                          "test_action_metric_alert_static_threshold", "test_action_budget_alert",
                          "test_action_service_health_alert", "test_action_smart_alert", "test_action_log_alert_v2",
                          "test_action_log_alert_v1_metric_measurement")


def test_alert_webhook_acknowledges_microsofts_published_alerts_about_other_resources_without_a_scan(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        world.az.call(ACCOUNT, CHAT_ROUTE, caller=CALLER)  # a failure a full scan would find
        for name in PUBLISHED_OTHER_ALERTS:
            published = sample(f"azure-monitor/{name}.json")
            status, body = call_http("alerts", http_request("POST", "alerts", body=published))
            assert status == 200 and body["result"] == "not_relevant", (name, body)
        assert world.az.calls.count(service="logs") == 0
        assert world.rt.store.list_incidents() == [] and rejections(world) == []
        recorded = [a for a in world.rt.store.list_audit() if a.kind == "alert-not-relevant"]
        assert len(recorded) == len(PUBLISHED_OTHER_ALERTS)


def test_alert_webhook_during_a_log_analytics_outage_is_500_and_the_retry_is_processed(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        world.clock.set_now("2026-11-22T10:01:00Z")
        world.az.call(ACCOUNT, CHAT_ROUTE, caller=CALLER)
        world.clock.set_now("2026-11-22T10:06:00Z")
        world.az.faults.add("logs", status=503, retry_after=0.01, times=None)
        request = http_request("POST", "alerts", body=log_alert())

        status, body = call_http("alerts", request)
        assert status == 500 and body["error"].startswith("internal error (")
        assert "Injected" not in body["error"]  # the service's message stays in the log

        world.az.faults.clear()
        status, body = call_http("alerts", request)  # the action group's retry
        assert status == 200 and body["result"] == "processed"
        assert len(world.rt.store.list_incidents()) == 1


def test_alert_webhook_rejects_a_payload_outside_the_common_schema_with_a_reason(tmp_path):
    with installed_world(tmp_path) as world:
        legacy = {"status": "Activated", "context": {"name": "aoai-401-403"}}  # the pre-common-schema shape
        status, body = call_http("alerts", http_request("POST", "alerts", body=legacy))
        assert status == 400 and "schemaId" in body["error"]
        (record,) = rejections(world)
        assert "schemaId" in record.detail


def test_alert_webhook_with_the_store_unreachable_answers_500_without_details(tmp_path):
    with installed_world(tmp_path) as world:
        world.rt.store.close()
        status, body = call_http("alerts", http_request("POST", "alerts", body=log_alert()))
        assert status == 500
        assert body["error"].startswith("internal error (StoreError)")
        assert str(tmp_path) not in json.dumps(body)  # no file paths or messages leak
        world.rt.store = SqliteStore(str(tmp_path / "state.sqlite3"))


# ---- GET /api/incidents and /api/incidents/{id} -----------------------------------------------------------------


def test_list_incidents_filters_by_status(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        incident = recommended_incident(world)
        status, body = call_http("incidents", http_request("GET", "incidents"))
        assert status == 200 and [i["id"] for i in body["incidents"]] == [incident.id]
        listed = body["incidents"][0]
        assert (listed["status"], listed["cause"], listed["principal_id"]) == (
            "recommended", "control_plane_role_only", CALLER)

        status, body = call_http("incidents", http_request("GET", "incidents", params={"status": "recommended"}))
        assert status == 200 and [i["id"] for i in body["incidents"]] == [incident.id]
        status, body = call_http("incidents", http_request("GET", "incidents", params={"status": "ticketed"}))
        assert status == 200 and body["incidents"] == []


@pytest.mark.parametrize("bad", ["open", "RECOMMENDED ", "", "recommended;drop"])
def test_list_incidents_with_an_unknown_status_is_400_naming_the_choices(tmp_path, bad):
    with installed_world(tmp_path):
        status, body = call_http("incidents", http_request("GET", "incidents", params={"status": bad}))
        assert status == 400
        assert "status" in body["error"] and "recommended" in body["error"]


def test_get_incident_returns_it_with_its_audit_trail(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        incident = recommended_incident(world)
        status, body = call_http("incident", http_request("GET", f"incidents/{incident.id}",
                                                          route_params={"incident_id": incident.id}))
        assert status == 200
        assert body["id"] == incident.id and body["status"] == "recommended"
        assert body["audit"], "the audit trail is part of the answer"
        assert all(a["correlation_id"] for a in body["audit"])
        assert any("recommend" in a["detail"] for a in body["audit"])


def test_get_unknown_incident_is_404(tmp_path):
    with installed_world(tmp_path):
        status, body = call_http("incident", http_request("GET", "incidents/inc-0000000000000000",
                                                          route_params={"incident_id": "inc-0000000000000000"}))
        assert status == 404 and "inc-0000000000000000" in body["error"]


def test_list_incidents_with_the_store_unreachable_is_500_json(tmp_path):
    with installed_world(tmp_path) as world:
        world.rt.store.close()
        status, body = call_http("incidents", http_request("GET", "incidents"))
        assert status == 500 and "StoreError" in body["error"]
        world.rt.store = SqliteStore(str(tmp_path / "state.sqlite3"))


# ---- approve / revoke ---------------------------------------------------------------------------------------


def test_approve_with_the_signed_in_engineer_grants_and_revoke_by_body_removes_it(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        incident = recommended_incident(world)
        puts = world.az.calls.count(service="arm", method="PUT")

        status, body = act("approve", incident.id, headers={"X-MS-CLIENT-PRINCIPAL-NAME": "alex@contoso.com"})
        assert status == 200, body
        assert body["incident_id"] == incident.id and body["status"] in (inc.ASSIGNED, inc.VERIFYING)
        granted = [a for a in world.az.assignments() if a.principal_id == CALLER and a.role_guid == OPENAI_USER_GUID]
        assert len(granted) == 1 and world.az.calls.count(service="arm", method="PUT") == puts + 1
        approved = world.rt.store.get_incident(incident.id)
        assert approved.approved_by == "alex@contoso.com"
        assert any(a.actor == "alex@contoso.com" for a in world.rt.store.list_audit(incident.id))

        status, body = act("approve", incident.id, body={"by": "alex@contoso.com"})  # already approved
        assert status == 409 and "not recommended" in body["error"]

        status, body = act("revoke", incident.id, body={"by": "sam@contoso.com"})
        assert status == 200, body
        assert body["status"] == inc.TICKETED
        assert not [a for a in world.az.assignments() if a.principal_id == CALLER and a.role_guid == OPENAI_USER_GUID]
        assert any(a.actor == "sam@contoso.com" and a.kind == "revoke" for a in world.rt.store.list_audit(incident.id))

        status, body = act("revoke", incident.id, body={"by": "sam@contoso.com"})  # nothing left to revoke
        assert status == 409


def test_the_signed_in_identity_wins_over_the_body(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        incident = recommended_incident(world)
        status, _ = act("approve", incident.id, body={"by": "mallory"},
                        headers={"x-ms-client-principal-name": "alex@contoso.com"})
        assert status == 200
        assert world.rt.store.get_incident(incident.id).approved_by == "alex@contoso.com"


def test_revoke_refuses_an_incident_without_an_assignment_of_the_service(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        incident = recommended_incident(world)
        deletes = world.az.calls.count(service="arm", method="DELETE")
        status, body = act("revoke", incident.id, body={"by": "sam@contoso.com"})
        assert status == 409 and "no assignment" in body["error"]
        assert world.az.calls.count(service="arm", method="DELETE") == deletes


@pytest.mark.parametrize("action", ["approve", "revoke"])
@pytest.mark.parametrize(
    ("body", "headers"),
    [(None, None), ({}, None), ({"by": "   "}, None), ({"by": 42}, None), ([], None),
     (None, {"x-ms-client-principal-name": ""})],
    ids=["nothing", "empty-object", "blank-by", "by-not-text", "array", "empty-header"],
)
def test_an_action_without_an_identity_is_400(tmp_path, action, body, headers):
    with installed_world(tmp_path, mode="recommend") as world:
        incident = recommended_incident(world)
        status, answer = act(action, incident.id, body=body, headers=headers)
        assert status == 400 and "engineer" in answer["error"]
        assert world.rt.store.get_incident(incident.id).status == inc.RECOMMENDED


def test_an_action_with_a_bad_json_body_is_400(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        incident = recommended_incident(world)
        status, answer = act("approve", incident.id, body=b"{by: alex}")
        assert status == 400 and "JSON" in answer["error"]


@pytest.mark.parametrize("action", ["approve", "revoke"])
def test_an_action_on_an_unknown_incident_is_404(tmp_path, action):
    with installed_world(tmp_path):
        status, answer = act(action, "inc-ffffffffffffffff", body={"by": "alex@contoso.com"})
        assert status == 404 and "inc-ffffffffffffffff" in answer["error"]


def test_approve_refused_by_policy_is_409_with_the_rule(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        incident = recommended_incident(world)
        # Since the recommendation, on-call suppressed the caller: the approval re-checks every rule but the mode.
        suppress(world.rt, CALLER, timedelta(hours=2), "app being migrated", "oncall@contoso.com")
        status, body = act("approve", incident.id, body={"by": "alex@contoso.com"})
        assert status == 409 and "suppression" in body["error"]
        assert world.az.calls.count(service="arm", method="PUT") == 0
        assert world.rt.store.get_incident(incident.id).status == inc.RECOMMENDED


def test_approve_after_the_approval_window_is_409(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        incident = recommended_incident(world)
        world.advance(25 * 3600)  # TRIAGE_APPROVAL_TTL_HOURS defaults to 24
        status, body = act("approve", incident.id, headers={"x-ms-client-principal-name": "alex@contoso.com"})
        assert status == 409 and "expired" in body["error"]
        assert world.az.calls.count(service="arm", method="PUT") == 0
