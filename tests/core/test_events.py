"""Pure parsing of Event Grid / CloudEvents / common alert schema payloads (shared/core/events.py)."""

import copy
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.events import (
    FAILURE_EVENT_TYPE,
    AlertScan,
    FailureReport,
    Malformed,
    RoleAssignmentChange,
    Unknown,
    classify_event,
    envelope_from_dict,
    parse_alert,
)
from tests.support.paths import TEST_DATA

DATA = TEST_DATA / "events"
NOW = datetime(2026, 11, 22, 10, 10, tzinfo=UTC)


def load(name):
    return json.loads((DATA / name).read_text())


def test_log_alert_in_common_schema_becomes_a_targeted_scan_of_its_window():
    parsed = parse_alert(load("common_alert_log_v2.json"), now=NOW)
    assert isinstance(parsed, AlertScan)
    assert parsed.fired
    assert parsed.start == datetime(2026, 11, 22, 9, 55, tzinfo=UTC)
    # fired after the window closed: the scan covers up to the fired time (7-digit fraction tolerated)
    assert parsed.end == datetime(2026, 11, 22, 10, 5, 12, 123456, tzinfo=UTC)
    assert parsed.resource_ids == (
        "/subscriptions/11111111-1111-1111-1111-111111111111/resourcegroups/rg-ai/providers/"
        "microsoft.cognitiveservices/accounts/contoso-openai",
    )


def test_resolved_alert_is_not_a_scan():
    payload = load("common_alert_log_v2.json")
    payload["data"]["essentials"]["monitorCondition"] = "Resolved"
    parsed = parse_alert(payload, now=NOW)
    assert isinstance(parsed, AlertScan) and not parsed.fired


def test_alert_without_window_scans_back_from_fired_time():
    payload = load("common_alert_log_v2.json")
    del payload["data"]["alertContext"]["condition"]["windowStartTime"]
    del payload["data"]["alertContext"]["condition"]["windowEndTime"]
    parsed = parse_alert(payload, now=NOW)
    assert (parsed.end - parsed.start).total_seconds() == 30 * 60


@pytest.mark.parametrize("mutate, reason", [
    (lambda p: p.update(schemaId="other"), "schemaId"),
    (lambda p: p["data"].pop("essentials"), "essentials"),
    (lambda p: p["data"]["essentials"].update(alertTargetIDs="x"), "alertTargetIDs"),
])
def test_malformed_alerts_say_why(mutate, reason):
    payload = load("common_alert_log_v2.json")
    mutate(payload)
    parsed = parse_alert(payload, now=NOW)
    assert isinstance(parsed, Malformed) and reason in parsed.reason


def test_alert_forwarded_through_event_grid_is_recognised_by_its_schema():
    event = {"id": "e1", "eventType": "Contoso.Alerts.Fired", "subject": "s", "topic": "t",
             "eventTime": "2026-11-22T10:05:00Z", "data": load("common_alert_log_v2.json"), "dataVersion": "1"}
    assert isinstance(classify_event(envelope_from_dict(event), now=NOW), AlertScan)


def test_role_assignment_write_event():
    env = envelope_from_dict(load("resource_write_success_role_assignment.json"))
    parsed = classify_event(env, now=NOW)
    assert isinstance(parsed, RoleAssignmentChange)
    assert not parsed.deleted
    assert parsed.assignment_id.endswith("/roleAssignments/0b5f7a52-4e61-4b3c-9d4c-6fa3c8c1b9e2")
    assert parsed.actor == "Alex Oncall"


def test_role_assignment_delete_event_and_other_operations():
    raw = load("resource_write_success_role_assignment.json")
    raw["eventType"] = "Microsoft.Resources.ResourceDeleteSuccess"
    raw["data"]["operationName"] = "Microsoft.Authorization/roleAssignments/delete"
    assert classify_event(envelope_from_dict(raw), now=NOW).deleted
    other = copy.deepcopy(raw)
    other["data"]["operationName"] = "Microsoft.Storage/storageAccounts/write"
    assert isinstance(classify_event(envelope_from_dict(other), now=NOW), Unknown)


def test_custom_failure_cloudevent_carries_a_signal():
    parsed = classify_event(envelope_from_dict(load("failure_cloudevent.json")), now=NOW)
    assert isinstance(parsed, FailureReport)
    assert parsed.signal.status == 401
    assert parsed.signal.resource_id.endswith("/accounts/contoso-openai")
    assert parsed.signal.last_seen == datetime(2026, 11, 22, 10, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize("field, value, reason", [
    ("status", "four-oh-one", "status"),
    ("resource_id", "/subscriptions/x/resourceGroups/rg", "resource_id"),
    ("time", "yesterday", "time"),
    ("count", 0, "count"),
])
def test_malformed_failure_events_are_rejected_with_a_reason(field, value, reason):
    raw = load("failure_cloudevent.json")
    raw["data"][field] = value
    parsed = classify_event(envelope_from_dict(raw), now=NOW)
    assert isinstance(parsed, Malformed)
    assert reason in parsed.reason


def test_unknown_types_and_missing_ids():
    assert isinstance(classify_event(envelope_from_dict({"id": "1", "eventType": "X.Y", "data": {}}), now=NOW),
                      Unknown)
    assert isinstance(classify_event(envelope_from_dict({"eventType": FAILURE_EVENT_TYPE}), now=NOW), Malformed)
    assert isinstance(envelope_from_dict(["not", "an", "object"]), Malformed)


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=20),
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
                           max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(raw=st.dictionaries(st.sampled_from(["id", "eventType", "type", "specversion", "data", "subject", "time",
                                            "eventTime", "topic", "source"]), json_values, max_size=8))
def test_arbitrary_events_never_raise(raw):
    env = envelope_from_dict(raw)
    if not isinstance(env, Malformed):
        assert isinstance(classify_event(env, now=NOW), (AlertScan, RoleAssignmentChange, FailureReport, Unknown,
                                                          Malformed))
