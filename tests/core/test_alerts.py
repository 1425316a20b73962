"""Alerts as Azure sends them (shared/core/alerts.py through events.parse_alert): the accounts an alert is about,
its window, and the alerts about anything else. The payloads are Microsoft's published samples, read unchanged
from tests/data/events/azure-monitor/ (each with its .source); a test that needs another shape copies one and
changes only the fields it names."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.alerts import TABLES_READ, read_time
from shared.core.events import AlertScan, Malformed, parse_alert
from tests.support.paths import TEST_DATA

SAMPLES = TEST_DATA / "events" / "azure-monitor"
NOW = datetime(2026, 11, 22, 10, 10, tzinfo=UTC)
ACCOUNT = ("/subscriptions/11111111-1111-1111-1111-111111111111/resourcegroups/test-rg/providers/"
           "microsoft.cognitiveservices/accounts/contoso-openai")


def published(name: str) -> dict:
    return json.loads((SAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def parsed(payload: dict) -> AlertScan:
    result = parse_alert(payload, now=NOW)
    assert isinstance(result, AlertScan), result
    return result


def test_every_published_sample_names_its_source():
    samples = sorted(SAMPLES.glob("*.json"))
    assert samples
    for path in samples:
        source = path.with_suffix(".source").read_text(encoding="utf-8")
        assert source.startswith("https://learn.microsoft.com/"), path.name


@pytest.mark.parametrize("name, about", [
    ("sample_metric_alert_resolved_vm", "virtualmachines/wcus-r2-gen2"),
    ("test_action_activity_log_alert", "virtualmachines/test-VM"),
    ("test_action_metric_alert_static_threshold", "storageaccounts/test-storageAccount"),
    ("test_action_budget_alert", "budgets"),
    ("test_action_service_health_alert", "/subscriptions/11111111-1111-1111-1111-111111111111"),
    ("test_action_smart_alert", "components/test-applicationInsights"),
    ("test_action_log_alert_v2", "test-computer"),  # a workspace query split by Computer
    ("test_action_log_alert_v1_metric_measurement", "Heartbeat"),  # a workspace query over Heartbeat only
])
def test_alerts_about_anything_but_our_accounts_are_not_relevant(name, about):
    alert = parsed(published(name))
    assert alert.resource_ids == ()
    assert about.lower() in alert.not_relevant.lower()


def test_a_metric_alert_window_is_honoured():
    alert = parsed(published("test_action_metric_alert_static_threshold"))
    fired = datetime(2025, 4, 15, 18, 17, 12, 851000, tzinfo=UTC)
    assert (alert.start, alert.end, alert.fired_at, alert.condition) == (fired, fired, fired, "Fired")


def test_a_resolved_notification_keeps_its_condition_and_fired_time():
    alert = parsed(published("sample_metric_alert_resolved_vm"))
    assert not alert.fired and alert.condition == "Resolved"
    assert alert.fired_at == datetime(2019, 3, 22, 13, 58, 24, 371321, tzinfo=UTC)


def test_a_log_alert_v2_on_a_workspace_that_names_no_other_resource_scans_every_account_in_its_window():
    payload = published("test_action_log_alert_v2")
    payload["data"]["essentials"]["configurationItems"] = []  # our own rule: no split, or split by _ResourceId
    condition = payload["data"]["alertContext"]["condition"]
    condition["windowStartTime"], condition["windowEndTime"] = "2025-04-15T17:58:03.626Z", "2025-04-15T18:08:03.626Z"
    alert = parsed(payload)
    assert (alert.resource_ids, alert.not_relevant) == ((), "")
    assert alert.start == datetime(2025, 4, 15, 17, 58, 3, 626000, tzinfo=UTC)
    assert alert.end == datetime(2025, 4, 15, 18, 8, 3, 626000, tzinfo=UTC)


def test_a_workspace_log_alert_split_by_resource_id_scans_only_those_accounts():
    payload = published("test_action_log_alert_v2")
    payload["data"]["essentials"]["configurationItems"] = [ACCOUNT, ACCOUNT.upper()]  # _ResourceId, ResourceId
    assert parsed(payload).resource_ids == (ACCOUNT,)


def test_an_alert_on_an_account_or_a_project_scans_exactly_that_target():
    project = ACCOUNT + "/projects/orders"
    payload = published("test_action_metric_alert_static_threshold")
    payload["data"]["essentials"]["alertTargetIDs"] = [project, ACCOUNT + "/deployments/gpt-4o"]
    assert parsed(payload).resource_ids == (project, ACCOUNT)


def v1_alert(context_name: str = "log_alert_v1_platform_alert_context") -> dict:
    """The V1 test action with the published V1 alert context put in, fired at the end of that context's window."""
    payload = published("test_action_log_alert_v1_metric_measurement")
    payload["data"]["alertContext"] = published(context_name)["alertContext"]
    payload["data"]["essentials"]["firedDateTime"] = "2019-03-22T13:52:10Z"
    return payload


def test_log_alerts_v1_search_interval_is_read_in_its_published_form_and_casing():
    alert = parsed(v1_alert())
    assert alert.start == datetime(2019, 3, 22, 13, 36, 31, tzinfo=UTC)  # "3/22/2019 1:36:31 PM"
    assert alert.end == datetime(2019, 3, 22, 13, 52, 10, tzinfo=UTC)  # the window ends 13:51:31, fired later
    assert "Heartbeat" in alert.not_relevant  # SearchResults.dataSources: the query read Heartbeat only


def test_log_alerts_v1_with_the_schema_tables_spelling_and_iso_times():
    payload = published("test_action_log_alert_v1_metric_measurement")
    context = payload["data"]["alertContext"]
    context["SearchIntervalStartTimeUtc"] = "2025-04-15T17:47:27.967Z"
    # as the field table of alerts-common-schema.md spells it
    context["SearchIntervalEndTimeUtc"] = context.pop("SearchIntervalEndtimeUtc")
    context["SearchResults"]["dataSources"][0]["tables"] = ["AzureDiagnostics"]
    alert = parsed(payload)
    assert (alert.resource_ids, alert.not_relevant) == ((), "")
    assert (alert.end - alert.start).total_seconds() == 600


def test_the_log_query_scope_names_the_account_of_a_resource_centric_rule():
    payload = published("test_action_log_alert_v2")
    payload["data"]["essentials"].update(alertTargetIDs=[], configurationItems=[])
    context = published("log_alert_v2_alert_context")["alertContext"]
    criterion = context["condition"]["allOf"][0]
    vm = "resourceGroups/Contoso/providers/Microsoft.Compute/virtualMachines/Contoso"
    assert vm in criterion["linkToSearchResultsAPI"]
    payload["data"]["alertContext"] = copy.deepcopy(context)
    assert "virtualmachines/contoso" in parsed(payload).not_relevant.lower()  # the published VM: not ours

    for key in ("linkToSearchResultsAPI", "linkToFilteredSearchResultsAPI"):
        criterion[key] = criterion[key].replace(vm, "resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/"
                                                     "accounts/contoso-openai")
    payload["data"]["alertContext"] = context
    assert parsed(payload).resource_ids == (
        "/subscriptions/aaaa0a0a-bb1b-cc2c-dd3d-eeeeee4e4e4e/resourcegroups/rg-ai/providers/"
        "microsoft.cognitiveservices/accounts/contoso-openai",)
    assert parsed(payload).start == datetime(2020, 7, 7, 13, 54, 34, tzinfo=UTC)


def test_an_alert_without_a_window_scans_back_from_its_fired_time():
    payload = published("test_action_activity_log_alert")
    payload["data"]["essentials"]["alertTargetIDs"] = [ACCOUNT]
    alert = parsed(payload)
    assert alert.resource_ids == (ACCOUNT,)
    assert alert.end == datetime(2025, 4, 15, 11, 26, 21, 386000, tzinfo=UTC)
    assert (alert.end - alert.start).total_seconds() == 30 * 60


def test_a_window_that_ends_before_it_starts_is_malformed():
    payload = published("test_action_metric_alert_static_threshold")
    payload["data"]["alertContext"]["condition"]["windowStartTime"] = "2025-04-15T18:27:12.851Z"
    result = parse_alert(payload, now=NOW)
    assert isinstance(result, Malformed) and "window" in result.reason


@pytest.mark.parametrize("text, expected", [
    ("3/22/2019 1:36:31 PM", datetime(2019, 3, 22, 13, 36, 31, tzinfo=UTC)),
    ("12/1/2025 12:05:00 AM", datetime(2025, 12, 1, 0, 5, tzinfo=UTC)),
    ("2025-04-15T17:57:27.967Z", datetime(2025, 4, 15, 17, 57, 27, 967000, tzinfo=UTC)),
    ("2019-03-22T13:58:24.3713213Z", datetime(2019, 3, 22, 13, 58, 24, 371321, tzinfo=UTC)),
    ("yesterday", None), ("", None), (None, None), (42, None),
])
def test_alert_times(text, expected):
    assert read_time(text) == expected


def test_the_tables_read_are_named_in_lower_case():
    assert all(t == t.lower() for t in TABLES_READ) and "azurediagnostics" in TABLES_READ


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=30),
                           lambda c: st.lists(c, max_size=3) | st.dictionaries(st.text(max_size=8), c, max_size=3),
                           max_leaves=12)
essentials_keys = st.sampled_from(["alertId", "alertRule", "signalType", "monitorCondition", "monitoringService",
                                   "alertTargetIDs", "configurationItems", "firedDateTime"])
context_keys = st.sampled_from(["conditionType", "condition", "SearchQuery", "SearchIntervalStartTimeUtc",
                                "SearchIntervalEndtimeUtc", "SearchResults", "LinkToSearchResultsAPI"])


@settings(max_examples=300, deadline=None)
@given(essentials=st.dictionaries(essentials_keys, json_values, max_size=8),
       context=st.dictionaries(context_keys, json_values, max_size=7))
def test_any_common_schema_payload_is_read_or_refused_never_raises(essentials, context):
    result = parse_alert({"schemaId": "azureMonitorCommonAlertSchema",
                          "data": {"essentials": essentials, "alertContext": context}}, now=NOW)
    assert isinstance(result, (AlertScan, Malformed))
    if isinstance(result, AlertScan):
        assert result.start <= result.end
        assert not (result.resource_ids and result.not_relevant)
