"""Issue 13: bad input is refused at the translators with a reason (shared/core/limits.py, core/events.py,
core/alerts.py, core/signals.py), never an internal error further in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared.core.events import Envelope, Malformed, classify_event, envelope_from_dict, parse_alert
from shared.core.limits import (
    MAX_NESTING,
    TimeOutOfRange,
    checked_time,
    clipped_text,
    is_role_assignment_id,
    shape_problem,
)
from shared.core.signals import SignalError, TimeRangeError, parse_failure, parse_time

NOW = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
ACCOUNT = ("/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/"
           "Microsoft.CognitiveServices/accounts/a")
ASSIGNMENT = f"{ACCOUNT}/providers/Microsoft.Authorization/roleAssignments/0b5f7a52-4e61-4b3c-9d4c-6fa3c8c1b9e2"


def deep(levels: int) -> list:
    value: list = []
    for _ in range(levels - 1):
        value = [value]
    return value


def alert(essentials: dict | None = None, context: dict | None = None) -> dict:
    return {"schemaId": "azureMonitorCommonAlertSchema",
            "data": {"essentials": {"alertId": "a-1", "alertTargetIDs": [ACCOUNT], **(essentials or {})},
                     "alertContext": context or {}}}


def reason(result) -> str:
    assert isinstance(result, Malformed), result
    return result.reason


def test_times_that_overflow_in_utc_or_cannot_be_real_are_refused():
    for text in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00", "1999-12-31T23:59:59Z", "2200-01-01"):
        with pytest.raises(TimeRangeError, match="out of range"):
            parse_time(text)
    assert parse_time("2026-11-22T12:00:00+02:00") == NOW  # a real time in another zone: its UTC instant
    with pytest.raises(TimeOutOfRange):
        checked_time(datetime.max.replace(tzinfo=timezone(timedelta(hours=-1))))
    assert checked_time(datetime(2026, 11, 22, 10)) == NOW  # naive: UTC


def test_nesting_and_size_are_measured_without_recursion():
    assert shape_problem(deep(MAX_NESTING)) is None
    assert "nested deeper than 64" in shape_problem(deep(MAX_NESTING + 1))
    assert "nested deeper" in shape_problem(deep(20_000))  # far beyond Python's recursion limit
    assert "more than" in shape_problem(list(range(200_000)))
    assert clipped_text(deep(20_000)).startswith("[[[[") and len(clipped_text(deep(20_000))) <= 2000
    assert clipped_text({"a": [1, {"b": None}]}) == "{'a': [1, {'b': None}]}"


def test_role_assignment_ids_with_braces_query_or_spaces_are_not_ids():
    assert is_role_assignment_id(ASSIGNMENT)
    assert is_role_assignment_id("/providers/Microsoft.Management/managementGroups/mg/providers/"
                                 "Microsoft.Authorization/roleAssignments/0b5f7a52-4e61-4b3c-9d4c-6fa3c8c1b9e2")
    for bad in (ASSIGNMENT.replace("/rg/", "/{rg}/"), "{" + ASSIGNMENT + "}", ASSIGNMENT + "?api-version=1",
                ASSIGNMENT.replace("/rg/", "/r g/"), ASSIGNMENT.replace("/rg/", "/r%2Fg/"),
                ASSIGNMENT[:-36] + "not-a-guid", ASSIGNMENT + "#x", 42, None):
        assert not is_role_assignment_id(bad), bad


@pytest.mark.parametrize(("essentials", "context", "expected"), [
    ({"configurationItems": "acct-a"}, None, "configurationItems must be a list of strings"),
    ({"configurationItems": [{"x": 1}]}, None, "configurationItems must be a list of strings"),
    ({"alertTargetIDs": {"a": 1}}, None, "alertTargetIDs must be a list of resource ids"),
    ({"alertTargetIDs": [ACCOUNT] * 1001}, None, "more than 1000 resources"),
    ({"monitorCondition": ["Fired"]}, None, "monitorCondition must be a string"),
    ({"alertId": 7}, None, "alertId must be a string"),
    ({"firedDateTime": "0001-01-01T00:00:00+01:00"}, None, "out of range"),
    (None, {"condition": {"windowStartTime": "9999-12-31T23:59:59-01:00", "windowEndTime": "2026-11-22"}},
     "out of range"),
    (None, {"condition": {"windowStartTime": "2026-11-01T00:00:00Z", "windowEndTime": "2026-11-22T00:00:00Z"}},
     "longer than 7 days"),
    (None, {"conditionType": "LogQueryCriteria",
            "condition": {"allOf": [{"linkToSearchResultsAPI": "https://[api/v1/workspaces/w/query"}]}},
     "not a URL"),
])
def test_alert_shapes_are_refused_with_a_reason(essentials, context, expected):
    assert expected in reason(parse_alert(alert(essentials, context), now=NOW))


def test_an_alert_nested_too_deep_is_refused():
    payload = alert()
    payload["data"]["alertContext"] = {"x": deep(100)}
    assert "nested deeper" in reason(parse_alert(payload, now=NOW))


@pytest.mark.parametrize(("raw", "expected"), [
    ({"id": {"x": 1}, "eventType": "AOAI.Triage.Failure"}, "event id must be a string"),
    ({"id": "e", "eventType": ["x"]}, "event eventType must be a string"),
    ({"id": "e" * 1025, "eventType": "x"}, "longer than 1024"),
    ({"id": "e", "eventType": "x", "eventTime": "9999-12-31T23:59:59-05:00"}, "out of range"),
    ({"id": "e", "eventType": "x", "data": deep(100)}, "nested deeper"),
])
def test_event_envelopes_are_refused_with_a_reason(raw, expected):
    assert expected in reason(envelope_from_dict(raw))


def test_a_failure_event_with_an_impossible_time_is_refused():
    def failure(**data):
        return Envelope(id="e", type="AOAI.Triage.Failure", subject="", source="/s", time=None,
                        data={"status": 401, "resource_id": ACCOUNT, **data})

    assert "out of range" in reason(classify_event(failure(time="0001-01-01T00:00:00+05:00"), now=NOW))
    assert "future" in reason(classify_event(failure(time="2026-11-24T10:00:00Z"), now=NOW))
    assert not isinstance(classify_event(failure(time="2026-11-22T10:30:00Z"), now=NOW), Malformed)  # skew


def test_a_role_assignment_event_with_braces_in_its_uri_is_refused():
    event = Envelope(id="e", type="Microsoft.Resources.ResourceWriteSuccess", subject="", source="", time=None,
                     data={"operationName": "Microsoft.Authorization/roleAssignments/write",
                           "resourceUri": ASSIGNMENT.replace("/rg/", "/{rg}/")})
    assert "braces" in reason(classify_event(event, now=NOW))


def test_a_status_far_out_of_range_is_refused_without_printing_it():
    with pytest.raises(SignalError, match="far out of range"):
        parse_failure({"status": 10**5000})
