"""The self-check's KQL (kql.request_traffic_query): its text pinned by a golden file, parsed and run by duckdb-kql
on seeded rows. No server needed; regenerate the golden file after a reviewed change with UPDATE_GOLDEN=1."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import duckdb_kql

from shared.adapters import kql
from tests.support.golden import assert_matches_golden

SINCE = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
UNTIL = SINCE + timedelta(days=30)
ACCOUNT = "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acct-a"


def test_request_traffic_query_matches_its_golden_file():
    text = kql.request_traffic_query(since=SINCE, until=UNTIL)
    assert_matches_golden("request_traffic", text)
    assert duckdb_kql.validate(text) == []


def test_request_traffic_counts_request_response_rows_per_account_and_status():
    con = duckdb_kql.connect()
    con.execute("CREATE TABLE AzureDiagnostics (TimeGenerated TIMESTAMP, ResourceProvider VARCHAR, "
                "Category VARCHAR, _ResourceId VARCHAR, ResultSignature VARCHAR)")
    inside, outside = (SINCE + timedelta(days=1)).replace(tzinfo=None), (SINCE - timedelta(days=1)).replace(tzinfo=None)
    rows = [(inside, "MICROSOFT.COGNITIVESERVICES", "RequestResponse", ACCOUNT.upper(), "200"),
            (inside + timedelta(hours=1), "MICROSOFT.COGNITIVESERVICES", "RequestResponse", ACCOUNT.upper(), "200"),
            (inside, "MICROSOFT.COGNITIVESERVICES", "RequestResponse", ACCOUNT.upper(), "401"),
            (inside, "MICROSOFT.COGNITIVESERVICES", "Audit", ACCOUNT.upper(), "200"),
            (outside, "MICROSOFT.COGNITIVESERVICES", "RequestResponse", ACCOUNT.upper(), "403")]
    con.executemany("INSERT INTO AzureDiagnostics VALUES (?, ?, ?, ?, ?)", rows)
    result = duckdb_kql.query(con, kql.request_traffic_query(since=SINCE, until=UNTIL)).fetchall()
    assert [(r[0], r[1], r[2]) for r in result] == [(ACCOUNT.lower(), "200", 2), (ACCOUNT.lower(), "401", 1)]
    assert result[0][3] == inside + timedelta(hours=1)
