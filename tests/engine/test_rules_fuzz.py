"""Issue 13: a bounded, deterministic fuzz of every entry point (Event Grid events as dicts and as the worker's
objects, the alert webhook, diagnose, approve and revoke bodies, the CLI's classify line and --for value) over the
fakes, in enforce mode. Whatever arrives: no internal error (every refusal is a reason), and no ARM write.

CI runs a bounded, deterministic number of examples per entry point; FUZZ_EXAMPLES=<n> runs n random ones each
(the 10-minute run outside CI: `FUZZ_EXAMPLES=20000 pytest tests/engine/test_rules_fuzz.py
--hypothesis-show-statistics`).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.cli import classify_line
from shared.engine import http_api
from shared.engine.events import handle_event_safely
from shared.engine.inputs import BadInput, suppression_duration
from tests.engine.common import ACCOUNT

EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "150"))
# CI: the same examples on every run. A long run (FUZZ_EXAMPLES set) explores new ones each time.
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize="FUZZ_EXAMPLES" not in os.environ, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                       HealthCheck.data_too_large])
ALLOWED = "0f0f0f0f-0f0f-4f0f-8f0f-0f0f0f0f0f0f"  # allowlisted; the fuzz never names it
CALLER = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"
ASSIGNMENT = f"{ACCOUNT}/providers/Microsoft.Authorization/roleAssignments/00000000-0000-4000-8000-000000000001"

# Values that broke entry points before (issue 13) or sit on an edge of what they read.
TRICKY = st.sampled_from([
    "", " ", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "2026-11-22T10:00:00Z", "+99999-01-01",
    "3/22/2019 1:36:31 PM", "13/45/2019 99:99:99 PM", "https://[api/v1/x", "https://api.loganalytics.io/v1/{x}",
    ACCOUNT, ACCOUNT + "/projects/p1", ACCOUNT.upper(), ACCOUNT + "/..", ASSIGNMENT, ASSIGNMENT.replace("0001", "{x}"),
    "{" + ASSIGNMENT + "}", CALLER, CALLER.upper(), "{" + CALLER + "}", "entra", "key", "Fired", "Resolved",
    "azureMonitorCommonAlertSchema", "AOAI.Triage.Failure", "Microsoft.Resources.ResourceWriteSuccess",
    "Microsoft.Resources.ResourceDeleteSuccess", "Microsoft.Authorization/roleAssignments/write",
    "Microsoft.Authorization/roleAssignments/delete", "PermissionDenied", "LogQueryCriteria", "Log Alerts V2",
    "\ud800", "\x00", "x" * 5000, "7d", "-1d", "99999999999d", "1.5h",
])
NUMBERS = st.one_of(st.integers(), st.sampled_from([10**30, -(10**30), 401, 403, 0]), st.floats(allow_nan=True))
SCALARS = st.one_of(st.none(), st.booleans(), NUMBERS, TRICKY, st.text(max_size=40))
KEYS = st.one_of(st.sampled_from([
    "id", "type", "eventType", "specversion", "source", "topic", "subject", "time", "eventTime", "data",
    "dataVersion", "schemaId", "essentials", "alertContext", "alertId", "alertRule", "alertTargetIDs",
    "configurationItems", "firedDateTime", "monitorCondition", "monitoringService", "conditionType", "condition",
    "allOf", "windowStartTime", "windowEndTime", "linkToSearchResultsAPI", "SearchIntervalStartTimeUtc",
    "SearchIntervalEndtimeUtc", "SearchResults", "dataSources", "resourceId", "tables", "SearchQuery",
    "operationName", "resourceUri", "claims", "status", "code", "message", "endpoint", "auth", "object_id",
    "resource_id", "count", "principal_id", "route", "by", "first_seen", "last_seen",
]), st.text(max_size=8))
JSON = st.recursive(SCALARS, lambda inner: st.one_of(st.lists(inner, max_size=5),
                                                     st.dictionaries(KEYS, inner, max_size=8)), max_leaves=30)


def nested(depth: int) -> Any:
    value: Any = {"status": 401}
    for _ in range(depth):
        value = {"data": value}
    return value


DEEP = st.integers(min_value=60, max_value=3000).map(nested)
FIELD = st.one_of(TRICKY, JSON)
# Nearly valid payloads, so the fuzz reaches past the first checks into each parser.
ALERT = st.fixed_dictionaries({
    "schemaId": st.one_of(st.just("azureMonitorCommonAlertSchema"), FIELD),
    "data": st.fixed_dictionaries({
        "essentials": st.fixed_dictionaries({
            "alertId": FIELD, "alertRule": FIELD, "monitorCondition": FIELD, "monitoringService": FIELD,
            "firedDateTime": FIELD, "alertTargetIDs": st.one_of(st.lists(TRICKY, max_size=4), FIELD),
            "configurationItems": st.one_of(st.lists(TRICKY, max_size=4), FIELD)}),
        "alertContext": st.fixed_dictionaries({
            "conditionType": FIELD, "SearchQuery": FIELD, "SearchIntervalStartTimeUtc": FIELD,
            "SearchIntervalEndtimeUtc": FIELD, "LinkToSearchResultsAPI": FIELD,
            "SearchResults": st.fixed_dictionaries({"dataSources": st.lists(st.fixed_dictionaries(
                {"resourceId": FIELD, "tables": st.one_of(st.lists(TRICKY, max_size=3), FIELD)}), max_size=3)}),
            "condition": st.fixed_dictionaries({
                "windowStartTime": FIELD, "windowEndTime": FIELD,
                "allOf": st.lists(st.fixed_dictionaries({"linkToSearchResultsAPI": FIELD,
                                                         "linkToFilteredSearchResultsAPI": FIELD}), max_size=3)}),
        }),
    }),
})
ROLE_EVENT = st.fixed_dictionaries({
    "id": st.uuids().map(str), "subject": FIELD, "eventTime": FIELD,
    "eventType": st.sampled_from(["Microsoft.Resources.ResourceWriteSuccess",
                                  "Microsoft.Resources.ResourceDeleteSuccess"]),
    "data": st.fixed_dictionaries({
        "operationName": st.one_of(st.sampled_from(["Microsoft.Authorization/roleAssignments/write",
                                                    "Microsoft.Authorization/roleAssignments/delete"]), FIELD),
        "resourceUri": FIELD, "claims": FIELD, "correlationId": FIELD}),
})
FAILURE = st.fixed_dictionaries({
    "specversion": st.just("1.0"), "id": st.uuids().map(str), "type": st.just("AOAI.Triage.Failure"),
    "source": FIELD, "time": FIELD,
    "data": st.fixed_dictionaries({"status": st.one_of(NUMBERS, FIELD), "resource_id": FIELD, "code": FIELD,
                                   "message": FIELD, "endpoint": FIELD, "auth": FIELD, "object_id": FIELD,
                                   "time": FIELD, "count": st.one_of(NUMBERS, FIELD)}),
})
ENVELOPES = st.one_of(
    ALERT.map(lambda alert: {"id": "a-1", "eventType": "Microsoft.Insights.Alert", "data": alert}),
    ROLE_EVENT, FAILURE,
    st.fixed_dictionaries({"specversion": st.just("1.0"), "id": st.one_of(st.uuids().map(str), JSON),
                           "type": st.one_of(TRICKY, JSON), "source": st.one_of(TRICKY, JSON),
                           "time": st.one_of(TRICKY, JSON), "data": st.one_of(JSON, DEEP)}),
    st.fixed_dictionaries({"id": st.one_of(st.uuids().map(str), JSON), "eventType": st.one_of(TRICKY, JSON),
                           "subject": st.one_of(TRICKY, JSON), "eventTime": st.one_of(TRICKY, JSON),
                           "data": st.one_of(JSON, DEEP)}),
    JSON, DEEP,
)
DEEP_TEXT = st.integers(min_value=60, max_value=3000).map(
    lambda n: ('{"data": ' * n + '{"status": 401}' + "}" * n).encode())
BODIES = st.one_of(JSON.map(lambda v: json.dumps(v).encode()), ALERT.map(lambda v: json.dumps(v).encode()),
                   FAILURE.map(lambda v: json.dumps(v["data"]).encode()), DEEP_TEXT,
                   st.binary(max_size=200), st.sampled_from([b"", b"[" * 5000, b"1" * 5000, b"\xff\xfe", b"{}"]))


@pytest.fixture
def rt(make_runtime, source):
    # Something to find for a targeted scan, in enforce mode: nothing fuzzed may ever grant.
    source.fail(CALLER, ACCOUNT, count=3)
    return make_runtime(mode="enforce", allowlist=[ALLOWED])


def no_arm_write(roles) -> None:
    assert roles.grants == [] and roles.deletes == []


@FUZZ
@given(event=ENVELOPES)
def test_any_event_is_processed_or_rejected_with_a_reason(rt, roles, event):
    outcome = handle_event_safely(rt, event)
    assert outcome.result in ("processed", "not_relevant", "duplicate", "unknown", "rejected")
    assert not outcome.detail.startswith("internal error"), outcome.detail
    no_arm_write(roles)


class WorkerEvent:
    """What the Functions worker hands the trigger: attributes and get_json()."""

    def __init__(self, data: Any, event_time: Any):
        self.id, self.event_type, self.subject, self.topic = "w-1", "AOAI.Triage.Failure", "", "/t"
        self.event_time, self._data = event_time, data

    def get_json(self) -> Any:
        return self._data


WORKER_TIMES = st.one_of(st.none(), st.datetimes(timezones=st.sampled_from([UTC, None])),
                         st.just(datetime.min), st.just(datetime.max))


@FUZZ
@given(data=st.one_of(JSON, DEEP), when=WORKER_TIMES)
def test_any_event_the_worker_hands_over_is_processed_or_rejected_with_a_reason(rt, roles, data, when):
    outcome = handle_event_safely(rt, WorkerEvent(data, when))
    assert not outcome.detail.startswith("internal error"), outcome.detail
    no_arm_write(roles)


@FUZZ
@given(body=BODIES)
def test_any_alert_webhook_body_is_answered_without_an_internal_error(rt, roles, body):
    status, reply = http_api.alerts_request(rt, body)
    assert status in (200, 400) and (status == 200 or reply["error"])
    no_arm_write(roles)


@FUZZ
@given(body=BODIES)
def test_any_diagnose_body_is_answered_without_an_internal_error(rt, roles, body):
    status, reply = http_api.diagnose_request(rt, body)
    assert status in (200, 400) and (status == 200 or reply["error"])
    no_arm_write(roles)


@FUZZ
@given(body=BODIES, action=st.sampled_from(["approve", "revoke"]), incident=st.one_of(TRICKY, st.text(max_size=30)),
       headers=st.dictionaries(st.sampled_from(["x-ms-client-principal-name", "x-ms-client-principal-id"]),
                               st.text(max_size=20), max_size=2))
def test_any_approve_or_revoke_request_is_answered_without_an_internal_error(rt, roles, body, action, incident,
                                                                             headers):
    status, reply = http_api.incident_action(rt, incident, action, headers, body)
    assert status in (400, 404, 409) and reply["error"]
    no_arm_write(roles)


@FUZZ
@given(line=BODIES)
def test_any_classify_line_is_classified_or_answered_with_an_error(line):
    answer, ok = classify_line(line)
    assert ok or answer["error"]


@FUZZ
@given(text=st.one_of(TRICKY, st.text(max_size=20)))
def test_any_suppression_duration_is_read_or_refused_with_a_reason(text):
    try:
        assert suppression_duration(text).total_seconds() > 0
    except BadInput as exc:
        assert str(exc).startswith("--for")
