"""The Log Analytics stand-in executes real KQL (duckdb-kql) and answers with the real response shapes, driven
by the real LogsQueryClient."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime, timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.monitor.query import LogsBatchQuery, LogsQueryPartialResult, LogsQueryStatus
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localazure import Clock, LocalAzure
from localazure.scenario import ScenarioError
from tests.support.azure import START, logs_client

pytestmark = pytest.mark.slow  # every test talks to a running stand-in

NOW = datetime.fromisoformat(START)
ACCOUNT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/aoai"
OTHER = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/other"
ALICE, BOB = "11111111-1111-1111-1111-111111111111", "22222222-2222-2222-2222-222222222222"

# (minutes ago, caller objectId, status, resource)
ROWS = [
    (5, ALICE, "401", ACCOUNT), (6, ALICE, "401", ACCOUNT), (7, ALICE, "200", ACCOUNT),
    (8, BOB, "403", ACCOUNT), (9, "", "401", ACCOUNT), (10, BOB, "403", OTHER),
    (90, ALICE, "401", ACCOUNT),  # outside a one-hour window
]


def diag(minutes_ago: float, caller: str, status: str, resource: str = ACCOUNT) -> dict:
    return {
        "TimeGenerated": NOW - timedelta(minutes=minutes_ago),
        "_ResourceId": resource.lower(),
        "ResourceId": resource.upper(),
        "ResourceProvider": "MICROSOFT.COGNITIVESERVICES",
        "Category": "RequestResponse",
        "OperationName": "ChatCompletions_Create",
        "ResultSignature": status,
        "DurationMs": 12,
        "CallerIPAddress": "10.0.0.***",
        "properties_s": json.dumps({"objectId": caller, "apiName": "Azure OpenAI API version 2024-10-21"}),
    }


@pytest.fixture(scope="module")
def az():
    with LocalAzure.start(clock=Clock.frozen(NOW)) as stand_in:
        stand_in.add_log_rows("AzureDiagnostics", [diag(*r) for r in ROWS])
        yield stand_in


@pytest.fixture(scope="module")
def client(az):
    return logs_client(az, retry_backoff_factor=0.01)


SUMMARY = """AzureDiagnostics
| where ResourceProvider == "MICROSOFT.COGNITIVESERVICES" and Category == "RequestResponse"
| extend ObjectId = tostring(parse_json(properties_s).objectId)
| summarize Requests = count(), Failures = countif(ResultSignature != "200"), LastSeen = max(TimeGenerated),
            Ops = make_set(OperationName) by ObjectId, ResultSignature
| order by ObjectId asc, ResultSignature asc"""


def test_summarize_by_caller_and_status_matches_a_hand_count(az, client):
    result = client.query_workspace(az.workspace_id, SUMMARY, timespan=timedelta(hours=1))
    assert result.status == LogsQueryStatus.SUCCESS
    [table] = result.tables
    assert table.columns == ["ObjectId", "ResultSignature", "Requests", "Failures", "LastSeen", "Ops"]
    assert table.columns_types == ["string", "string", "long", "long", "datetime", "dynamic"]
    expected = Counter((caller, status) for minutes, caller, status, _ in ROWS if minutes <= 60)
    got = {(row["ObjectId"], row["ResultSignature"]): row["Requests"] for row in table.rows}
    assert got == dict(expected)
    alice_401 = next(r for r in table.rows if r["ObjectId"] == ALICE and r["ResultSignature"] == "401")
    assert alice_401["Failures"] == 2
    assert alice_401["LastSeen"] == NOW - timedelta(minutes=5)  # the SDK parsed the datetime column
    assert json.loads(alice_401["Ops"]) == ["ChatCompletions_Create"]  # dynamic comes back as JSON text


def test_timespan_bounds_every_table(az, client):
    def count(timespan):
        result = client.query_workspace(az.workspace_id, "AzureDiagnostics | count", timespan=timespan)
        return result.tables[0].rows[0][0]

    assert count(timedelta(hours=1)) == 6
    assert count(timedelta(minutes=7, seconds=30)) == 3
    assert count(None) == len(ROWS)
    assert count((NOW - timedelta(minutes=95), NOW - timedelta(minutes=60))) == 1
    assert count((NOW - timedelta(minutes=9, seconds=30), timedelta(minutes=2))) == 2


def test_ago_is_relative_to_the_stand_in_clock(az, client):
    result = client.query_workspace(az.workspace_id, "AzureDiagnostics | where TimeGenerated > ago(510s) | count",
                                    timespan=None)
    assert result.tables[0].rows[0][0] == 4


def test_resource_centric_queries_see_only_that_resource(az, client):
    result = client.query_resource(OTHER, "AzureDiagnostics | project ResultSignature", timespan=timedelta(hours=1))
    assert [list(r) for r in result.tables[0].rows] == [["403"]]


def test_kql_that_cannot_be_parsed_is_a_400_with_an_error_body(az, client):
    with pytest.raises(HttpResponseError) as info:
        client.query_workspace(az.workspace_id, "AzureDiagnostics | wherex", timespan=timedelta(hours=1))
    assert info.value.status_code == 400
    assert info.value.error.code == "BadArgumentError"
    with pytest.raises(HttpResponseError) as info:
        client.query_workspace(az.workspace_id, "NoSuchTable | take 1", timespan=timedelta(hours=1))
    assert info.value.status_code == 400


def test_unknown_workspace_is_404(az, client):
    with pytest.raises(HttpResponseError) as info:
        client.query_workspace("00000000-0000-0000-0000-00000000dead", "AzureDiagnostics | count", timespan=None)
    assert info.value.status_code == 404


# The body a workspace without the table answers with (as quoted from a real answer in
# CDCgov/prime-reportstream#11773; the column case from dolevshor/Azure-OpenAI-Insights#5).
MISSING_TABLE = "'where' operator: Failed to resolve table or column expression named 'AzureDiagnostics'"
MISSING_COLUMN = "'extend' operator: Failed to resolve scalar expression named 'properties_s'"


def test_a_workspace_without_a_table_answers_as_log_analytics_does_until_its_first_rows(local_azure_factory):
    az = local_azure_factory()
    empty = az.add_workspace("11111111-0000-4000-8000-00000000e001", missing_tables=["AzureDiagnostics"])
    client = logs_client(az)
    query = "AzureDiagnostics | where TimeGenerated > ago(1h) | count"
    with pytest.raises(HttpResponseError) as info:
        client.query_workspace(empty, query, timespan=timedelta(hours=1))
    error = info.value
    assert error.status_code == 400
    assert (error.error.code, error.error.message) == ("BadArgumentError", "The request had some invalid properties")
    assert error.error.innererror == {"code": "SemanticError", "message": "A semantic error occurred.",
                                      "innererror": {"code": "SEM0100", "message": MISSING_TABLE}}
    # azure-monitor-query's own model: the top code and the innermost message.
    assert (error.model.code, error.model.message) == ("BadArgumentError", MISSING_TABLE)
    # The main workspace has every table.
    assert client.query_workspace(az.workspace_id, query, timespan=timedelta(hours=1)).tables[0].rows[0][0] == 0

    az.add_log_rows("AzureDiagnostics", [diag(1, ALICE, "401")], workspace=empty)  # the first diagnostics arrive
    assert client.query_workspace(empty, query, timespan=timedelta(hours=1)).tables[0].rows[0][0] == 1
    assert az.workspace().count("AzureDiagnostics") == 0  # the rows went to that workspace only


def test_a_column_not_received_yet_is_the_same_semantic_error(local_azure_factory):
    az = local_azure_factory({"workspaces": [{"id": "ws-columns",
                                              "missing_columns": {"AzureDiagnostics": ["properties_s"]}}]})
    client = logs_client(az)
    text = "AzureDiagnostics | extend P = parse_json(properties_s) | project P"
    with pytest.raises(HttpResponseError) as info:
        client.query_workspace("ws-columns", text, timespan=timedelta(hours=1))
    assert info.value.status_code == 400 and info.value.model.message == MISSING_COLUMN
    rows = client.query_workspace("ws-columns", 'AzureDiagnostics | where Category == "properties_s" | take 1',
                                  timespan=timedelta(hours=1))
    assert rows.tables[0].rows == []  # named only inside a string: no reference, and no column in the answer
    az.add_log_rows("AzureDiagnostics", [diag(1, ALICE, "401")], workspace="ws-columns")
    assert len(client.query_workspace("ws-columns", text, timespan=timedelta(hours=1)).tables[0].rows) == 1


def test_a_scenario_rejects_a_workspace_switch_it_cannot_honour(local_azure_factory):
    with pytest.raises(ScenarioError, match="unknown table"):
        local_azure_factory({"workspaces": [{"id": "w", "missing_tables": ["AzureDiagnostic"]}]})
    with pytest.raises(ScenarioError, match="no columns"):
        local_azure_factory({"workspaces": [{"id": "w", "missing_columns": {"AzureDiagnostics": ["props"]}}]})


def test_an_injected_403_has_log_analytics_error_code(local_azure_factory):
    az = local_azure_factory()
    az.faults.add("logs", status=403)
    with pytest.raises(HttpResponseError) as info:
        logs_client(az).query_workspace(az.workspace_id, "AzureDiagnostics | count", timespan=None)
    assert info.value.status_code == 403 and info.value.error.code == "InsufficientAccessError"
    assert "insufficient access" in info.value.error.message


def test_batch_returns_results_in_request_order(az, client):
    results = client.query_batch([
        LogsBatchQuery(az.workspace_id, "AzureDiagnostics | count", timespan=timedelta(hours=1)),
        LogsBatchQuery(az.workspace_id, "AzureDiagnostics | wherex", timespan=None),
        LogsBatchQuery(az.workspace_id, "AzureDiagnostics | count", timespan=None),
    ])
    assert results[0].tables[0].rows[0][0] == 6
    assert results[1].status == LogsQueryStatus.FAILURE
    assert results[2].tables[0].rows[0][0] == len(ROWS)


def test_results_over_the_row_limit_come_back_partial(local_azure_factory):
    az = local_azure_factory()
    az.state.settings.max_query_rows = 3
    az.add_log_rows("AzureDiagnostics", [diag(m, ALICE, "401") for m in range(5)])
    result = logs_client(az).query_workspace(az.workspace_id, "AzureDiagnostics", timespan=timedelta(hours=1))
    assert isinstance(result, LogsQueryPartialResult)
    assert len(result.partial_data[0].rows) == 3
    assert result.partial_error.code == "PartialError"
    assert "E_QUERY_RESULT_SET_TOO_LARGE" in result.partial_error.message


def test_bulk_load_goes_through_duckdb_and_is_queryable(local_azure_factory):
    az = local_azure_factory()
    columns = ["TimeGenerated", "_ResourceId", "ResourceProvider", "Category", "ResultSignature", "properties_s"]
    statuses = ["401", "403", "200", "200"]
    rows = [
        ((NOW - timedelta(seconds=i)).isoformat(), ACCOUNT.lower(), "MICROSOFT.COGNITIVESERVICES",
         "RequestResponse", statuses[i % 4], json.dumps({"objectId": f"caller-{i % 7}"}))
        for i in range(5000)
    ]
    assert az.load_rows_bulk("AzureDiagnostics", columns, rows) == 5000
    result = logs_client(az).query_workspace(
        az.workspace_id, "AzureDiagnostics | summarize n = count() by ResultSignature | order by ResultSignature asc",
        timespan=timedelta(hours=2))
    assert [list(r) for r in result.tables[0].rows] == [["200", 2500], ["401", 1250], ["403", 1250]]
    # Columns left out of a bulk load are empty strings, as Log Analytics string columns are never null.
    empty = az.query('AzureDiagnostics | where isempty(OperationName) and OperationName == "" | count')
    assert empty.rows == [[5000]]


def test_bulk_load_from_sql(local_azure_factory):
    az = local_azure_factory()
    loaded = az.load_rows_sql("AzureDiagnostics", (
        "SELECT TIMESTAMP '2025-06-01 11:30:00' - to_seconds(i) AS TimeGenerated, "
        "CASE WHEN i % 2 = 0 THEN '401' ELSE '200' END AS ResultSignature FROM range(1000) t(i)"))
    assert loaded == 1000
    assert az.query('AzureDiagnostics | where ResultSignature == "401" | count').rows == [[500]]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, 200), st.sampled_from([ALICE, BOB, ""]),
                          st.sampled_from(["200", "400", "401", "403"])), max_size=40))
def test_kql_counts_agree_with_python_for_any_rows(scratch, rows):
    az = scratch
    az.logs.clear()
    az.add_log_rows("AzureDiagnostics", [diag(m, caller, status) for m, caller, status in rows])
    result = az.query(
        'AzureDiagnostics | where ResultSignature in ("401", "403") '
        "| summarize n = count() by Caller = tostring(parse_json(properties_s).objectId), ResultSignature",
        timespan=timedelta(minutes=120),
    )
    got = {(caller, status): n for caller, status, n in result.rows}
    expected = Counter((caller, status) for m, caller, status in rows if m <= 120 and status in ("401", "403"))
    assert got == dict(expected)


@pytest.fixture(scope="module")
def scratch():
    """A stand-in the property test empties and refills for each example."""
    with LocalAzure.start(clock=Clock.frozen(NOW)) as stand_in:
        yield stand_in
