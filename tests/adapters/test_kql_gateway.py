"""The API Management gateway queries: golden files pin the text, duckdb-kql runs them on seeded rows.

No server needed. Regenerate the golden files after a reviewed change with UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import duckdb_kql
import pytest

from shared.adapters import kql
from tests.support.golden import assert_matches_golden

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
WATERMARK = T0 + timedelta(minutes=10)
END = T0 + timedelta(minutes=30)
GATEWAY = "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.ApiManagement/service/contoso-apim"
OTHER_GATEWAY = GATEWAY.replace("contoso-apim", "other-apim")
CHAT = "https://acct-a.openai.azure.com/openai/deployments/gpt/chat/completions?api-version=2024-10-21"

CASES = {
    "gateway_failures_window": lambda: kql.gateway_failures_query(start=T0, watermark=WATERMARK, end=END),
    "gateway_activity": lambda: kql.gateway_activity_query(
        hosts=("acct-a.services.ai.azure.com", "Acct-A.openai.azure.com"), since=T0, until=END
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_query_text_matches_golden_file(name):
    assert_matches_golden(name, CASES[name]())


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_golden_query_parses(name):
    assert duckdb_kql.validate(CASES[name]()) == []


def _gateway_logs(con, rows):
    con.sql("CREATE TABLE ApiManagementGatewayLogs (TimeGenerated TIMESTAMP, _ResourceId VARCHAR, "
            "BackendMethod VARCHAR, BackendUrl VARCHAR, BackendResponseCode INTEGER, ResponseCode INTEGER, "
            "LastErrorReason VARCHAR, LastErrorMessage VARCHAR, BackendResponseBody VARCHAR)")
    for r in rows:
        con.execute("INSERT INTO ApiManagementGatewayLogs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", r)


def _row(minutes, code, *, url=CHAT, gateway=GATEWAY, reason="", message="", body="", method="POST"):
    at = (T0 + timedelta(minutes=minutes)).replace(tzinfo=None)
    return (at, gateway, method, url, code, code, reason, message, body)


def _records(con, text):
    result = duckdb_kql.query(con, text)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def test_failures_query_groups_backend_failures_to_inference_hosts():
    denied = json.dumps({"error": {"code": "PermissionDenied", "message": "lacks the data action"}})
    expired = json.dumps({"statusCode": 401, "message": "Unauthorized. Access token is missing"})
    con = duckdb_kql.connect()
    _gateway_logs(con, [
        _row(1, 401),  # in the overlap
        _row(12, 401),
        _row(13, 401, url=CHAT.replace("acct-a.openai", "ACCT-A.openai")),  # host case does not split the group
        _row(14, 403, reason="PolicyError", message="from the gateway"),
        _row(15, 401, body=denied),
        _row(15, 401, body=expired, url=CHAT.replace("chat/completions", "embeddings")),
        _row(16, 401, body="{truncated"),  # a cut-off body reads as no text
        _row(16, 200),  # success
        _row(16, 401, url="https://example.com/openai/x"),  # not an inference host
        _row(16, 401, url="https://openai.azure.com.evil.example/x"),
        _row(-1, 401),  # before the window
        _row(30, 401),  # end is exclusive
    ])
    groups = _records(con, kql.gateway_failures_query(start=T0, watermark=WATERMARK, end=END))
    by_key = {(g["BackendPath"].rsplit("/", 1)[-1], g["Status"], g["ErrorCode"]): g for g in groups}
    assert set(by_key) == {("completions", 401, ""), ("completions", 403, "PolicyError"),
                           ("completions", 401, "PermissionDenied"), ("embeddings", 401, "")}
    plain = by_key[("completions", 401, "")]
    assert (plain["Failures"], plain["OverlapFailures"]) == (4, 1)
    assert plain["GatewayId"] == GATEWAY.lower() and plain["BackendHost"] == "acct-a.openai.azure.com"
    assert (plain["BackendPath"], plain["BackendMethod"]) == ("/openai/deployments/gpt/chat/completions", "POST")
    assert by_key[("completions", 403, "PolicyError")]["SampleMessage"] == "from the gateway"
    assert by_key[("completions", 401, "PermissionDenied")]["SampleMessage"] == "lacks the data action"
    assert by_key[("embeddings", 401, "")]["SampleMessage"].startswith("Unauthorized.")


def test_activity_query_counts_per_gateway_only_the_given_hosts():
    con = duckdb_kql.connect()
    _gateway_logs(con, [
        _row(1, 401), _row(2, 200), _row(3, 201), _row(3, 429),
        _row(4, 403, gateway=OTHER_GATEWAY), _row(4, 200, gateway=OTHER_GATEWAY),
        _row(5, 401, url="https://acct-b.openai.azure.com/openai/x"),
        _row(31, 200),  # after the window
    ])
    rows = _records(con, kql.gateway_activity_query(hosts=("ACCT-A.openai.azure.com",), since=T0, until=END))
    counts = {r["GatewayId"]: (r["Failures"], r["Successes"]) for r in rows}
    assert counts == {GATEWAY.lower(): (1, 2), OTHER_GATEWAY.lower(): (1, 1)}
