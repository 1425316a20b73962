"""The `events` (Event Grid) and `scan` (timer) functions, called directly with realistic deliveries.

The service runs whole on the local stand-in (real SDK clients over HTTPS, real SQLite store, frozen clock); the
events go through the Functions worker's own converter. Returning normally means Event Grid sees a success and
does not redeliver; raising means it retries.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime

import pytest
from azure.functions.timer import TimerRequest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core import incidents as inc
from shared.state.sqlite import SqliteStore
from tests.support.azure import arm_auth_client
from tests.support.functions_worker import (
    ACCOUNT,
    ACCOUNT_ID,
    CALLER,
    CHAT_ROUTE,
    OTHER_ACCOUNT,
    SUBSCRIPTION,
    WRITTEN_ASSIGNMENT_NAME,
    alert_event,
    contoso_scenario,
    deliver,
    eventgrid_event,
    failure_cloudevent,
    installed_world,
    log_alert,
    rejections,
    role_assignment_event,
    sample,
    user_function,
)

OPENAI_USER = "Cognitive Services OpenAI User"


def at(world, text: str) -> None:
    world.clock.set_now(text)


def fail_calls(world, account: str = ACCOUNT, times: int = 3) -> None:
    """The sample caller fails `times` chat calls on `account` now (401 PermissionDenied: Contributor only)."""
    for _ in range(times):
        outcome = world.az.call(account, CHAT_ROUTE, caller=CALLER)
        assert outcome.status == 401


def incidents_of(world) -> dict[str, inc.Incident]:
    return {i.resource_id.lower(): i for i in world.rt.store.list_incidents()}


def test_the_sample_log_alert_scans_its_window_and_targets_only(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        at(world, "2026-11-22T09:50:00Z")
        fail_calls(world, ACCOUNT)  # before the alert window (09:55-10:05): not this alert's business
        at(world, "2026-11-22T10:01:00Z")
        fail_calls(world, OTHER_ACCOUNT)  # inside the window, but not a target of the alert
        at(world, "2026-11-22T10:06:00Z")

        deliver(alert_event(sample("common_alert_log_v2.json"), "alert-evt-1"))
        assert world.rt.store.list_incidents() == []  # the only failures in the window are on another account

        at(world, "2026-11-22T10:02:00Z")
        fail_calls(world, ACCOUNT)
        at(world, "2026-11-22T10:06:00Z")
        deliver(alert_event(sample("common_alert_log_v2.json"), "alert-evt-2"))

        found = incidents_of(world)
        assert list(found) == [ACCOUNT_ID.lower()]
        incident = found[ACCOUNT_ID.lower()]
        assert incident.principal_id == CALLER
        assert incident.cause == "control_plane_role_only"
        assert incident.status == inc.RECOMMENDED
        assert incident.diagnosis.role_name == OPENAI_USER
        # Only the in-window failures are the alert's evidence (the 09:50 ones are older than the window).
        assert incident.first_seen >= datetime(2026, 11, 22, 9, 55, tzinfo=UTC)


def test_a_log_alert_on_the_workspace_scans_the_accounts_named_in_its_configuration_items(tmp_path):
    # A log search alert's target is the workspace it queries; the accounts come from _ResourceId.
    workspace = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-ops/providers/Microsoft.OperationalInsights/"
                 "workspaces/ops")
    with installed_world(tmp_path, mode="recommend") as world:
        at(world, "2026-11-22T10:01:00Z")
        fail_calls(world, ACCOUNT)
        fail_calls(world, OTHER_ACCOUNT)
        at(world, "2026-11-22T10:06:00Z")
        alert = log_alert([workspace])
        alert["data"]["essentials"]["configurationItems"] = [ACCOUNT_ID.lower()]
        deliver(alert_event(alert, "alert-on-workspace"))
        assert list(incidents_of(world)) == [ACCOUNT_ID.lower()]


def test_microsofts_log_alert_v2_on_a_workspace_scans_every_account_over_its_window(tmp_path):
    # The published test-action payload, as our own rule on the workspace would send it: no split (so no
    # configuration items) and a ten-minute window.
    alert = sample("azure-monitor/test_action_log_alert_v2.json")
    alert["data"]["essentials"]["configurationItems"] = []
    alert["data"]["essentials"]["firedDateTime"] = "2026-11-22T10:06:00Z"
    condition = alert["data"]["alertContext"]["condition"]
    condition["windowStartTime"], condition["windowEndTime"] = "2026-11-22T09:55:00Z", "2026-11-22T10:05:00Z"
    with installed_world(tmp_path, mode="recommend") as world:
        at(world, "2026-11-22T09:50:00Z")
        fail_calls(world, ACCOUNT)  # before the window
        at(world, "2026-11-22T10:01:00Z")
        fail_calls(world, OTHER_ACCOUNT)
        at(world, "2026-11-22T10:06:00Z")
        deliver(alert_event(alert, "workspace-alert"))
        (incident,) = world.rt.store.list_incidents()
        assert incident.resource_id.lower().endswith(f"/accounts/{OTHER_ACCOUNT}")
        assert world.rt.store.get_watermark(f"logs:{world.az.workspace_id}") is None


def test_a_redelivered_alert_event_is_processed_once(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        at(world, "2026-11-22T10:01:00Z")
        fail_calls(world)
        at(world, "2026-11-22T10:06:00Z")
        event = alert_event(sample("common_alert_log_v2.json"), "alert-evt-dup")
        deliver(event)
        queries = world.az.calls.count(service="logs")
        audit = len(world.rt.store.list_audit())
        assert queries > 0 and len(world.rt.store.list_incidents()) == 1

        deliver(event)
        assert world.az.calls.count(service="logs") == queries  # no second scan
        assert len(world.rt.store.list_audit()) == audit


def test_a_resolved_alert_is_acknowledged_without_a_scan(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        at(world, "2026-11-22T10:01:00Z")
        fail_calls(world)
        at(world, "2026-11-22T10:21:00Z")
        deliver(alert_event(log_alert(condition="Resolved"), "alert-resolved"))
        assert world.az.calls.count(service="logs") == 0
        assert world.rt.store.list_incidents() == []


def test_the_documented_failure_cloudevent_is_diagnosed_and_counted_once(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        at(world, "2026-11-22T10:01:30Z")
        event = failure_cloudevent("9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d", count=4)
        deliver(event)
        (incident,) = world.rt.store.list_incidents()
        assert (incident.cause, incident.status, incident.count) == ("control_plane_role_only", inc.RECOMMENDED, 4)

        deliver(event)  # Event Grid delivers at least once
        assert world.rt.store.get_incident(incident.id).count == 4

        deliver(failure_cloudevent("0d3c8f0e-54a4-4c39-8a51-2f1c5e6a7b80", count=2))  # a new event does count
        assert world.rt.store.get_incident(incident.id).count == 6


def test_the_failure_event_in_event_grid_schema_is_accepted(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        data = sample("failure_cloudevent.json")["data"]
        deliver(eventgrid_event("AOAI.Triage.Failure", data, event_id="eg-failure-1", subject="orders-api"))
        (incident,) = world.rt.store.list_incidents()
        assert incident.principal_id == CALLER and incident.cause == "control_plane_role_only"


TRUSTED_TOPIC = f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-apps/providers/Microsoft.EventGrid/topics/failures"


def trusted_failure_event(event_id: str) -> dict:
    """The documented failure event in the Event Grid schema, from a topic listed in TRIAGE_TRUSTED_EVENT_TOPICS."""
    return eventgrid_event("AOAI.Triage.Failure", failure_cloudevent(event_id)["data"], event_id=event_id,
                           subject="orders-api", topic=TRUSTED_TOPIC)


def test_in_enforce_mode_a_failure_event_nothing_confirms_writes_nothing(tmp_path):
    with installed_world(tmp_path, mode="enforce", TRIAGE_TRUSTED_EVENT_TOPICS=TRUSTED_TOPIC) as world:
        deliver(failure_cloudevent("1a2b3c4d-0000-4000-8000-00000000e0a1"))  # a CloudEvent: the publisher's word
        deliver(eventgrid_event("AOAI.Triage.Failure", failure_cloudevent("x")["data"], event_id="eg-untrusted",
                                topic=TRUSTED_TOPIC.replace("failures", "open-to-all")))
        assert world.az.calls.count(service="arm", method="PUT") == 0
        (incident,) = world.rt.store.list_incidents()
        assert incident.status == inc.RECOMMENDED and incident.actions[-1].rules == ("corroborated",)


def test_a_redelivered_failure_event_grants_once_in_enforce_mode(tmp_path):
    # From a trusted topic (an event the app could write itself grants nothing: the test above).
    with installed_world(tmp_path, mode="enforce", TRIAGE_TRUSTED_EVENT_TOPICS=TRUSTED_TOPIC) as world:
        event = trusted_failure_event("1a2b3c4d-0000-4000-8000-00000000e001")
        deliver(event)
        deliver(event)
        granted = [a for a in world.az.assignments() if a.principal_id == CALLER and a.role_guid
                   == "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"]
        assert len(granted) == 1
        assert world.az.calls.count(service="arm", method="PUT") == 1
        (incident,) = world.rt.store.list_incidents()
        assert incident.assignment_id and incident.assignment_id.lower() == granted[0].id.lower()


def test_a_role_assignment_written_by_hand_moves_the_recommended_incident_to_verifying(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        deliver(failure_cloudevent("2a2b3c4d-0000-4000-8000-00000000e002"))
        (incident,) = world.rt.store.list_incidents()
        assert incident.status == inc.RECOMMENDED

        # The engineer assigns the role (in the stand-in, under the name the ARM event names).
        at(world, "2026-11-22T10:07:31Z")
        assignment_id = world.az.add_assignment(CALLER, OPENAI_USER, f"account:{ACCOUNT}", created_ago_seconds=0,
                                                name=WRITTEN_ASSIGNMENT_NAME)
        event = sample("resource_write_success_role_assignment.json")
        assert event["data"]["resourceUri"].lower() == assignment_id.lower()
        deliver(event)

        moved = world.rt.store.get_incident(incident.id)
        assert moved.status == inc.VERIFYING
        assert moved.verify_due is not None and moved.verify_due > world.clock.now()  # after propagation
        trail = world.rt.store.list_audit(incident.id)
        assert any(a.actor == "Alex Oncall" and WRITTEN_ASSIGNMENT_NAME in json.dumps(a.inputs) for a in trail)

        deliver(event)  # the redelivery changes nothing
        assert len(world.rt.store.list_audit(incident.id)) == len(trail)
        assert world.rt.store.get_incident(incident.id).actions == moved.actions


def test_a_role_assignment_for_someone_else_leaves_incidents_alone(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        deliver(failure_cloudevent("3a2b3c4d-0000-4000-8000-00000000e003"))
        (incident,) = world.rt.store.list_incidents()
        other = "7d1e2f3a-0000-4000-8000-0000000000b2"
        world.az.add_principal(other)
        assignment_id = world.az.add_assignment(other, OPENAI_USER, f"account:{ACCOUNT}", created_ago_seconds=0)
        deliver(role_assignment_event(assignment_id, event_id="write-other"))
        assert world.rt.store.get_incident(incident.id).status == inc.RECOMMENDED


def test_an_assignment_on_an_account_whose_name_prefixes_the_incidents_does_not_match(tmp_path):
    scenario = contoso_scenario()
    scenario["resources"].append({"name": "contoso", "kind": "OpenAI", "resource_group": "rg-ai"})
    with installed_world(tmp_path, mode="recommend", scenario=scenario) as world:
        deliver(failure_cloudevent("3b2b3c4d-0000-4000-8000-00000000e003"))
        (incident,) = world.rt.store.list_incidents()
        assignment_id = world.az.add_assignment(CALLER, OPENAI_USER, "account:contoso", created_ago_seconds=0)
        assert incident.resource_id.lower().startswith(assignment_id.lower().split("/providers/microsoft.auth")[0])
        deliver(role_assignment_event(assignment_id, event_id="write-prefix-account"))
        assert world.rt.store.get_incident(incident.id).status == inc.RECOMMENDED


def test_an_assignment_at_the_resource_group_covers_the_incident(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        deliver(failure_cloudevent("3c2b3c4d-0000-4000-8000-00000000e003"))
        (incident,) = world.rt.store.list_incidents()
        assignment_id = world.az.add_assignment(CALLER, "Cognitive Services User", "rg:rg-ai", created_ago_seconds=0)
        deliver(role_assignment_event(assignment_id, event_id="write-rg"))
        assert world.rt.store.get_incident(incident.id).status == inc.VERIFYING


def test_a_written_role_without_the_needed_data_actions_leaves_the_incident_open(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        deliver(failure_cloudevent("3d2b3c4d-0000-4000-8000-00000000e003"))
        (incident,) = world.rt.store.list_incidents()
        assignment_id = world.az.add_assignment(CALLER, "Reader", f"account:{ACCOUNT}", created_ago_seconds=0)
        deliver(role_assignment_event(assignment_id, event_id="write-reader"))
        assert world.rt.store.get_incident(incident.id).status == inc.RECOMMENDED
        assert any("does not grant the data access" in a.detail for a in world.rt.store.list_audit(incident.id))


def test_arm_unavailable_while_reading_a_written_assignment_raises_and_the_retry_is_processed(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        deliver(failure_cloudevent("3d2b3c4d-0000-4000-8000-00000000e003"))
        (incident,) = world.rt.store.list_incidents()
        assignment_id = world.az.add_assignment(CALLER, OPENAI_USER, f"account:{ACCOUNT}", created_ago_seconds=0)
        event = role_assignment_event(assignment_id, event_id="write-during-arm-outage")
        world.az.faults.add("arm", route="roleAssignments.get", status=503, retry_after=0.01, times=None)
        with pytest.raises(Exception):  # noqa: B017 - any error: Event Grid only needs to see a failure
            deliver(event)
        assert rejections(world) == []
        assert world.rt.store.get_incident(incident.id).status == inc.RECOMMENDED

        world.az.faults.clear()
        deliver(event)
        assert world.rt.store.get_incident(incident.id).status == inc.VERIFYING


def test_an_event_time_without_a_zone_is_read_as_utc(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        event = failure_cloudevent("3e2b3c4d-0000-4000-8000-00000000e003", time=None)
        event["time"] = "2026-11-22T10:01:02"  # the worker's converter turns this into a naive datetime
        deliver(event)
        assert rejections(world) == []
        (incident,) = world.rt.store.list_incidents()
        assert incident.first_seen == datetime(2026, 11, 22, 10, 1, 2, tzinfo=UTC)


def test_deleting_the_services_own_assignment_opens_a_ticket(tmp_path):
    with installed_world(tmp_path, mode="enforce", sinks="github", TRIAGE_TRUSTED_EVENT_TOPICS=TRUSTED_TOPIC) as world:
        deliver(trusted_failure_event("4a2b3c4d-0000-4000-8000-00000000e004"))
        (incident,) = world.rt.store.list_incidents()
        assert incident.assignment_id
        tickets_before = {t.ref: t for t in world.trackers.tickets("github")}

        arm_auth_client(world.az).role_assignments.delete_by_id(incident.assignment_id)  # someone deletes it
        assert all(a.id.lower() != incident.assignment_id.lower() for a in world.az.assignments())
        deliver(role_assignment_event(incident.assignment_id, deleted=True, event_id="delete-own",
                                      actor="Sam Cleanup"))

        reopened = world.rt.store.get_incident(incident.id)
        assert reopened.status == inc.TICKETED and reopened.assignment_id is None
        tickets = world.trackers.tickets("github")
        said = [t for t in tickets if "Sam Cleanup" in t.body or any("Sam Cleanup" in c for c in t.comments)]
        assert said, (tickets_before, tickets)
        assert reopened.ticket_refs


def test_deleting_an_assignment_the_service_did_not_create_does_nothing(tmp_path):
    with installed_world(tmp_path, mode="recommend", sinks="github") as world:
        deliver(failure_cloudevent("5a2b3c4d-0000-4000-8000-00000000e005"))
        (incident,) = world.rt.store.list_incidents()
        tickets = world.trackers.tickets("github")
        requests = len(world.trackers.received("github"))
        contributor = next(a for a in world.az.assignments() if a.principal_id == CALLER)

        deliver(role_assignment_event(contributor.id, deleted=True, event_id="delete-foreign"))

        assert world.rt.store.get_incident(incident.id) == incident
        assert world.trackers.tickets("github") == tickets
        assert len(world.trackers.received("github")) == requests
        assert world.az.calls.count(service="arm", method="DELETE") == 0


# ---- malformed and unknown events: recorded and acknowledged ------------------------------------------------


def account_write_event(event_id: str) -> dict:
    """ARM's ResourceWriteSuccess for something other than a role assignment (an account's settings changed)."""
    event = role_assignment_event(ACCOUNT_ID, event_id=event_id)
    event["data"]["operationName"] = event["data"]["authorization"]["action"] = (
        "Microsoft.CognitiveServices/accounts/write")
    return event


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (failure_cloudevent("bad-1", status=None), "status"),
        (failure_cloudevent("bad-2", resource_id=None), "resource_id"),
        (failure_cloudevent("bad-2b", resource_id="/x/providers/Microsoft.CognitiveServices/accounts/a"),
         "resource_id"),
        (failure_cloudevent("bad-3", count=0), "count"),
        (failure_cloudevent("bad-4", time="yesterday"), "time"),
        ({**failure_cloudevent("bad-5"), "data": "status=401"}, "JSON object"),
        ({**failure_cloudevent("x"), "id": ""}, "no id"),
        (eventgrid_event("Contoso.Monitoring.AlertFired", {"schemaId": "azureMonitorCommonAlertSchema", "data": {}},
                         event_id="bad-alert"), "essentials"),
        (role_assignment_event("/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg-ai",
                               event_id="bad-ra"), "roleAssignments"),
    ],
    ids=["no-status", "no-resource", "resource-without-subscription", "zero-count", "bad-time", "data-not-object",
         "no-id", "alert-no-essentials", "ra-without-id"],
)
def test_a_malformed_event_is_rejected_with_its_reason_and_acknowledged(tmp_path, event, reason):
    with installed_world(tmp_path) as world:
        deliver(event)  # returns normally: Event Grid must not redeliver a poison event for 24 hours
        (record,) = rejections(world)
        assert reason in record.detail
        assert record.inputs["event_id"] == event["id"]
        assert world.rt.store.list_incidents() == []


@pytest.mark.parametrize(
    "event",
    [
        eventgrid_event("Microsoft.Storage.BlobCreated", {"api": "PutBlob", "url": "https://x/y"}, event_id="u-1"),
        account_write_event("u-2"),
        {"specversion": "1.0", "id": "u-3", "source": "/apps/x", "type": "Contoso.Something", "data": {"a": 1}},
    ],
    ids=["blob-created", "other-arm-write", "unknown-cloudevent"],
)
def test_an_unknown_event_type_is_acknowledged_and_ignored(tmp_path, event, caplog):
    with installed_world(tmp_path) as world:
        caplog.set_level("INFO", logger="triage")
        deliver(event)
        assert rejections(world) == []
        assert world.rt.store.list_incidents() == []
        assert f"event {event['id']}: unknown" in caplog.text


@pytest.fixture(scope="module")
def shared_world(tmp_path_factory):
    with installed_world(tmp_path_factory.mktemp("prop")) as world:
        yield world


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-1000, 1000) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=12,
)
failure_fields = st.fixed_dictionaries({}, optional={
    "status": st.one_of(st.sampled_from([401, 403, "401", 200, 999, True]), json_values),
    "resource_id": st.one_of(st.just(ACCOUNT_ID), st.text(max_size=30), json_values),
    "code": json_values, "message": json_values, "auth": st.one_of(st.sampled_from(["entra", "key"]), json_values),
    "object_id": st.one_of(st.just(CALLER), json_values), "time": json_values, "count": json_values,
})


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.one_of(failure_fields, json_values))
def test_any_failure_event_data_is_acknowledged(shared_world, data):
    """Whatever a publisher sends as a failure event's data, the function returns (no redelivery loop) and the
    event is either processed or rejected with a reason."""
    event_id = str(uuid.uuid4())  # a new event each example (hypothesis replays examples)
    event = {"specversion": "1.0", "id": event_id, "source": "/apps/p", "type": "AOAI.Triage.Failure", "data": data}
    deliver(event)
    rejected = [r for r in rejections(shared_world) if r.inputs.get("event_id") == event_id]
    processed = not shared_world.rt.store.mark_event_processed(event_id, shared_world.clock.now())
    assert processed != bool(rejected)
    assert all(r.detail for r in rejected)


# ---- transient failures: raise, so Event Grid retries; the retry is processed ------------------------------


def test_an_unreachable_store_makes_the_function_raise_and_the_retry_is_processed(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        event = failure_cloudevent("6a2b3c4d-0000-4000-8000-00000000e006")
        world.rt.store.close()  # the state store goes away
        with pytest.raises(Exception, match="SQLite state"):
            deliver(event)

        world.rt.store = SqliteStore(str(tmp_path / "state.sqlite3"))  # ... and comes back
        deliver(event)  # Event Grid's retry
        (incident,) = world.rt.store.list_incidents()
        assert incident.count == 1


def test_logs_unavailable_during_an_alert_raises_and_releases_the_event_id(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        at(world, "2026-11-22T10:01:00Z")
        fail_calls(world)
        at(world, "2026-11-22T10:06:00Z")
        outage = world.az.faults.add("logs", status=503, retry_after=0.01, times=None)
        event = alert_event(sample("common_alert_log_v2.json"), "alert-during-outage")
        with pytest.raises(Exception):  # noqa: B017 - any error: what matters is that Event Grid sees a failure
            deliver(event)
        assert outage.hits > 0
        assert world.rt.store.list_incidents() == []
        assert rejections(world) == []  # a transient failure is not a poison event

        world.az.faults.clear()  # Log Analytics is back
        deliver(event)  # the retry is processed, not taken for a duplicate
        assert len(world.rt.store.list_incidents()) == 1


# ---- timer ---------------------------------------------------------------------------------------------------


def test_the_timer_runs_a_scan_even_when_past_due(tmp_path):
    with installed_world(tmp_path, mode="recommend") as world:
        at(world, "2026-11-22T10:01:00Z")
        fail_calls(world, times=5)
        at(world, "2026-11-22T10:05:00Z")
        user_function("scan")(TimerRequest(past_due=True))
        (incident,) = world.rt.store.list_incidents()
        assert incident.count == 5 and incident.status == inc.RECOMMENDED
        assert world.rt.store.get_watermark(f"logs:{world.az.workspace_id}") is not None


def test_the_contoso_world_matches_the_samples():
    """Guard for the helpers: the samples name the world's account and caller (else every test above is moot)."""
    scenario = contoso_scenario()
    failure = sample("failure_cloudevent.json")["data"]
    assert failure["resource_id"] == ACCOUNT_ID and failure["object_id"] == CALLER
    assert sample("common_alert_log_v2.json")["data"]["essentials"]["alertTargetIDs"] == [ACCOUNT_ID.lower()]
    assert scenario["subscription_id"] in ACCOUNT_ID


def test_a_burst_of_events_shares_evidence_until_a_role_changes(tmp_path):
    with installed_world(tmp_path, mode="observe") as world:
        deliver(failure_cloudevent("4a2b3c4d-0000-4000-8000-00000000e004"))
        reads_after_first = world.az.calls.count(service="arm", method="GET")
        assert reads_after_first > 0
        world.advance(30)
        deliver(failure_cloudevent("4a2b3c4d-0000-4000-8000-00000000e005"))
        assert world.az.calls.count(service="arm", method="GET") == reads_after_first  # evidence reused

        # Someone writes a role: the next event must look again.
        assignment_id = world.az.add_assignment(CALLER, "Reader", f"account:{ACCOUNT}", created_ago_seconds=0)
        deliver(role_assignment_event(assignment_id, event_id="write-invalidates"))
        before = world.az.calls.count(service="arm", method="GET")
        deliver(failure_cloudevent("4a2b3c4d-0000-4000-8000-00000000e006"))
        assert world.az.calls.count(service="arm", method="GET") > before

        world.advance(61)  # and evidence older than a minute is never reused
        before = world.az.calls.count(service="arm", method="GET")
        deliver(failure_cloudevent("4a2b3c4d-0000-4000-8000-00000000e007"))
        assert world.az.calls.count(service="arm", method="GET") > before
