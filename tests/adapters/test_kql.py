"""The KQL texts: golden files pin the exact text; duckdb-kql runs them on seeded rows to pin their meaning.

No server needed. Regenerate the golden files after a reviewed change with UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import duckdb_kql
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localazure.logstore import with_ingestion_column
from shared.adapters import kql
from tests.support.golden import assert_matches_golden

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
WATERMARK = T0 + timedelta(minutes=10)
END = T0 + timedelta(minutes=30)
OID = "11111111-2222-3333-4444-555555555555"
ACCOUNT = "/subscriptions/sub-1/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acct-a"
LOG_ACCOUNT = ACCOUNT.upper()  # AzureDiagnostics carries upper-cased resource ids

CASES = {
    "failures_window": lambda: kql.failures_query(start=T0, watermark=WATERMARK, end=END),
    "failures_resources": lambda: kql.failures_query(
        start=T0, watermark=WATERMARK, end=END, resource_ids=(ACCOUNT + "/projects/p1", ACCOUNT)
    ),
    "activity_principal": lambda: kql.activity_query(principal_id=OID.upper(), resource_id=ACCOUNT, since=T0,
                                                     until=END),
    "activity_key_callers": lambda: kql.activity_query(principal_id=None, resource_id=ACCOUNT, since=T0, until=END),
    "client_failures_window": lambda: kql.client_failures_query(start=T0, watermark=WATERMARK, end=END),
    "failures_page": lambda: kql.failures_query(start=T0, watermark=WATERMARK, end=END, account_buckets=("00", "7f"),
                                                limit=20_001),
    "failures_account_buckets": lambda: kql.failures_account_buckets_query(start=T0, watermark=WATERMARK, end=END),
    "client_messages_window": lambda: kql.client_messages_query(start=T0, end=END),
    "client_activity": lambda: kql.client_activity_query(
        app_role_names=("web-b", "web-a"), hosts=("Acct-A.openai.azure.com",), since=T0, until=END
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_query_text_matches_golden_file(name):
    assert_matches_golden(name, CASES[name]())


@pytest.mark.parametrize("name", sorted(CASES))
def test_every_golden_query_parses(name):
    assert duckdb_kql.validate(CASES[name]()) == []


def test_datetime_literal_is_utc_and_refuses_naive_times():
    plus_two = timezone(timedelta(hours=2))
    assert kql.datetime_literal(datetime(2024, 5, 1, 12, 0, tzinfo=plus_two)) == kql.datetime_literal(T0.replace(
        hour=10))
    with pytest.raises(ValueError):
        kql.datetime_literal(datetime(2024, 5, 1))


_PRINT_CON = duckdb_kql.connect()


@settings(max_examples=60, deadline=None)
@given(st.text(max_size=60))
def test_string_literal_never_lets_a_value_escape(value):
    # Whatever the value, the literal parses and evaluates to exactly that string.
    rows = duckdb_kql.query(_PRINT_CON, f"print v = {kql.literal(value)}").fetchall()
    assert rows == [(value,)]


def test_activity_refuses_a_principal_that_is_not_a_guid():
    with pytest.raises(ValueError):
        kql.activity_query(principal_id='x" or 1==1 or "', resource_id=ACCOUNT, since=T0, until=END)


def test_account_of_maps_projects_to_their_account():
    assert kql.account_of(ACCOUNT + "/projects/p1") == ACCOUNT.lower()
    assert kql.account_of(ACCOUNT.upper()) == ACCOUNT.lower()


# ---- semantics on seeded rows -------------------------------------------------------------------------


def _diagnostics(con, rows):
    con.sql(
        "CREATE TABLE AzureDiagnostics (TimeGenerated TIMESTAMP, _ResourceId VARCHAR, ResourceProvider VARCHAR, "
        "Category VARCHAR, OperationName VARCHAR, ResultSignature VARCHAR, properties_s VARCHAR)"
    )
    for r in rows:
        con.execute("INSERT INTO AzureDiagnostics VALUES (?, ?, ?, ?, ?, ?, ?)", r)


def _row(at, status, props, *, resource=LOG_ACCOUNT, op="ChatCompletions_Create", category="RequestResponse",
         provider="MICROSOFT.COGNITIVESERVICES"):
    return (at.replace(tzinfo=None), resource, provider, category, op, status,
            None if props is None else json.dumps(props))


def _records(con, text):
    """The query's rows, run as the stand-in runs it: these seeded rows arrived when they were generated, so
    `ingestion_time()` reads TimeGenerated (duckdb-kql has no ingestion time); the failures query's ReadThrough
    row is left out (the adapter reads it apart from the groups)."""
    result = duckdb_kql.query(con, with_ingestion_column(text, "TimeGenerated"))
    names = [d[0] for d in result.description]
    rows = [dict(zip(names, row, strict=True)) for row in result.fetchall()]
    return [row for row in rows if row.get(kql.READ_THROUGH) is None]


def test_failures_query_groups_counts_overlap_and_filters():
    entra = {"objectId": OID.upper(), "errorCode": "PermissionDenied", "errorMessage": "lacks data action",
             "requestPath": "/openai/deployments/gpt/chat/completions"}
    con = duckdb_kql.connect()
    _diagnostics(con, [
        _row(T0 + timedelta(minutes=1), "401", entra),  # in the overlap (before the watermark)
        _row(T0 + timedelta(minutes=12), "401", entra),
        _row(T0 + timedelta(minutes=13), "401", {**entra, "objectId": OID}),  # same caller, other case
        _row(T0 + timedelta(minutes=14), "403", {"objectId": ""}),  # key caller
        _row(T0 + timedelta(minutes=14), "403", None),  # no properties at all: still a key-caller group
        _row(T0 + timedelta(minutes=15), "400", {"objectId": OID, "errorCode": "BadRequest"}),  # not tenant
        _row(T0 + timedelta(minutes=15), "400", {"objectId": OID, "errorMessage": "Token tenant t1 does not "
                                                 "match resource tenant"}),
        _row(T0 + timedelta(minutes=16), "200", entra),  # success
        _row(T0 + timedelta(minutes=16), "401", entra, category="Audit"),
        _row(T0 - timedelta(minutes=1), "401", entra),  # before the window
        _row(END, "401", entra),  # end is exclusive
    ])
    groups = _records(con, kql.failures_query(start=T0, watermark=WATERMARK, end=END))
    by_key = {(g["ObjectId"], g["Status"], g["ErrorCode"]): g for g in groups}
    assert set(by_key) == {(OID, "401", "PermissionDenied"), ("", "403", ""), (OID, "400", "")}
    rbac = by_key[(OID, "401", "PermissionDenied")]
    assert (rbac["Failures"], rbac["OverlapFailures"]) == (3, 1)
    assert rbac["ResourceId"] == ACCOUNT.lower() and rbac["AuthKind"] == "entra"
    assert rbac["Route"] == "/openai/deployments/gpt/chat/completions"
    assert rbac["SampleMessage"] == "lacks data action"
    keyed = by_key[("", "403", "")]
    assert (keyed["Failures"], keyed["AuthKind"]) == (2, "key")
    assert by_key[(OID, "400", "")]["SampleMessage"].startswith("Token tenant")


def test_failures_query_keeps_only_the_requested_accounts():
    other = LOG_ACCOUNT.replace("ACCT-A", "ACCT-B")
    con = duckdb_kql.connect()
    _diagnostics(con, [_row(T0 + timedelta(minutes=11), "401", {"objectId": OID}),
                       _row(T0 + timedelta(minutes=11), "401", {"objectId": OID}, resource=other)])
    groups = _records(con, kql.failures_query(start=T0, watermark=WATERMARK, end=END,
                                              resource_ids=(ACCOUNT + "/projects/p1",)))
    assert [g["ResourceId"] for g in groups] == [ACCOUNT.lower()]


def test_activity_query_counts_failures_and_successes_of_one_caller():
    con = duckdb_kql.connect()
    other = "99999999-2222-3333-4444-555555555555"
    _diagnostics(con, [
        _row(T0 + timedelta(minutes=1), "401", {"objectId": OID}),
        _row(T0 + timedelta(minutes=2), "200", {"objectId": OID.upper()}),
        _row(T0 + timedelta(minutes=3), "201", {"objectId": OID}),
        _row(T0 + timedelta(minutes=3), "429", {"objectId": OID}),  # neither
        _row(T0 + timedelta(minutes=4), "401", {"objectId": other}),
        _row(T0 + timedelta(minutes=4), "403", {"objectId": ""}),
        _row(T0 + timedelta(minutes=5), "200", None),
    ])
    mine = _records(con, kql.activity_query(principal_id=OID, resource_id=ACCOUNT, since=T0, until=END))
    keys = _records(con, kql.activity_query(principal_id=None, resource_id=ACCOUNT, since=T0, until=END))
    assert (mine[0]["Failures"], mine[0]["Successes"]) == (1, 2)
    assert (keys[0]["Failures"], keys[0]["Successes"]) == (1, 1)


def _app_tables(con, deps, exceptions):
    con.sql("CREATE TABLE AppDependencies (TimeGenerated TIMESTAMP, Target VARCHAR, Name VARCHAR, "
            "ResultCode VARCHAR, OperationId VARCHAR, AppRoleName VARCHAR)")
    con.sql("CREATE TABLE AppExceptions (TimeGenerated TIMESTAMP, OperationId VARCHAR, OuterMessage VARCHAR)")
    for d in deps:
        con.execute("INSERT INTO AppDependencies VALUES (?, ?, ?, ?, ?, ?)", (d[0].replace(tzinfo=None), *d[1:]))
    for e in exceptions:
        con.execute("INSERT INTO AppExceptions VALUES (?, ?, ?)", (e[0].replace(tzinfo=None), *e[1:]))


def test_client_failures_query_groups_failures_to_the_inference_hosts_and_messages_come_from_exceptions():
    at = T0 + timedelta(minutes=12)
    con = duckdb_kql.connect()
    _app_tables(con, [
        (T0 + timedelta(minutes=2), "acct-a.openai.azure.com", "POST /openai/deployments/gpt/chat/completions",
         "401", "op-1", "web"),
        (at, "ACCT-A.openai.azure.com:443", "POST /openai/deployments/gpt/chat/completions", "401", "op-2", "web"),
        (at, "acct-a.services.ai.azure.com", "POST /models/chat/completions", "403", "op-3", "web"),
        (at, "acct-a.cognitiveservices.azure.com", "POST /openai/x", "200", "op-4", "web"),
        (at, "example.com", "GET /", "401", "op-5", "web"),
        (at, "openai.azure.com.evil.example", "GET /", "401", "op-6", "web"),
    ], [(at, "op-2", "Error code: 401 - PermissionDenied"), (at, "", "unrelated"), (at, "op-4", "not a failure")])
    groups = _records(con, kql.client_failures_query(start=T0, watermark=WATERMARK, end=END))
    by_host = {(g["Host"], g["Status"]): g for g in groups}
    assert set(by_host) == {("acct-a.openai.azure.com", "401"), ("acct-a.services.ai.azure.com", "403")}
    openai = by_host[("acct-a.openai.azure.com", "401")]
    assert (openai["Failures"], openai["OverlapFailures"]) == (2, 1)
    assert "SampleMessage" not in openai  # the failures query never names AppExceptions

    messages = _records(con, kql.client_messages_query(start=T0, end=END))
    by_group = {(m["AppRoleName"], m["Host"], m["Name"], m["Status"]): m["SampleMessage"] for m in messages}
    assert by_group == {("web", "acct-a.openai.azure.com", "POST /openai/deployments/gpt/chat/completions", "401"):
                        "Error code: 401 - PermissionDenied"}  # the /models group has no exception


def test_client_activity_query_counts_only_the_given_apps_and_hosts():
    at = T0 + timedelta(minutes=3)
    con = duckdb_kql.connect()
    _app_tables(con, [
        (at, "acct-a.openai.azure.com", "POST /openai/x", "200", "1", "web-a"),
        (at, "acct-a.openai.azure.com:443", "POST /openai/x", "401", "2", "web-b"),
        (at, "acct-b.openai.azure.com", "POST /openai/x", "401", "3", "web-a"),
        (at, "acct-a.openai.azure.com", "POST /openai/x", "401", "4", "other-app"),
    ], [])
    rows = _records(con, CASES["client_activity"]())
    assert (rows[0]["Failures"], rows[0]["Successes"]) == (1, 1)


# ---- large reads: hash buckets and a row cap (shared/adapters/logs.py reads a flood of groups this way) -------


def _many_groups(con):
    entra = {"errorCode": "PermissionDenied", "errorMessage": "lacks data action",
             "requestPath": "/openai/deployments/gpt/chat/completions"}
    rows = [_row(T0 + timedelta(minutes=11 + n % 5), "401", {**entra, "objectId": f"{n:08x}-2222-3333-4444-"
                                                             "555555555555"}) for n in range(40)]
    rows += [_row(T0 + timedelta(minutes=12), "403", {"objectId": ""}),  # a key caller
             _row(T0 + timedelta(minutes=12), "403", None),  # no properties at all
             _row(T0 + timedelta(minutes=13), "401", {"objectId": OID}, op="Embeddings_Create")]
    _diagnostics(con, rows)


def _keys(groups):
    return sorted((g["ResourceId"], g["ObjectId"], g["Status"], g["OperationName"], g["Route"], g["ErrorCode"],
                   g["Failures"], g["OverlapFailures"]) for g in groups)


@pytest.mark.parametrize("count", [1, 5])
def test_hash_buckets_split_the_groups_into_disjoint_parts_that_add_up_to_all(count):
    from shared.adapters.logs import buckets, split_bucket

    con = duckdb_kql.connect()
    _many_groups(con)
    everything = _keys(_records(con, kql.failures_query(start=T0, watermark=WATERMARK, end=END)))
    parts = []
    for bucket in buckets(count):
        for half in split_bucket(bucket):  # a split bucket covers exactly what its bucket did
            parts += _records(con, kql.failures_query(start=T0, watermark=WATERMARK, end=END, buckets=half))
    assert _keys(parts) == everything and len(everything) == 42


def test_the_row_cap_and_the_group_count():
    con = duckdb_kql.connect()
    _many_groups(con)
    capped = _records(con, kql.failures_query(start=T0, watermark=WATERMARK, end=END, limit=7))
    [count] = _records(con, kql.failures_group_count_query(start=T0, watermark=WATERMARK, end=END))
    assert len(capped) == 7 and count["Count"] == 42
    assert duckdb_kql.validate(kql.failures_query(start=T0, watermark=WATERMARK, end=END, buckets=("0a", "ff"),
                                                  limit=10)) == []


@pytest.mark.parametrize("prefixes", [(), ("0", "ab"), ("0g",), ("AB",)])
def test_bucket_prefixes_must_be_lower_case_hex_of_one_length(prefixes):
    with pytest.raises(ValueError):
        kql.bucket_filter(prefixes)


# ---- pages of accounts: filtered before any row is parsed ------------------------------------------------------


def _many_accounts(con, accounts=24, callers=3):
    rows = []
    for a in range(accounts):
        resource = LOG_ACCOUNT[:-len("acct-a")] + f"ACCT-{a:02d}"
        for c in range(callers):
            caller = {"objectId": f"{a:04x}{c:04x}-2222-3333-4444-555555555555"}
            rows += [_row(T0 + timedelta(minutes=11 + c), "401", caller, resource=resource),
                     _row(T0 + timedelta(minutes=5), "403", caller, resource=resource)]
    _diagnostics(con, rows)


def test_the_account_bucket_counts_plan_pages_that_read_every_group_exactly_once(monkeypatch):
    from shared.adapters import logs

    con = duckdb_kql.connect()
    _many_accounts(con)
    everything = _keys(_records(con, kql.failures_query(start=T0, watermark=WATERMARK, end=END)))
    counts = {r["Bucket"]: r["Groups"] for r in _records(
        con, kql.failures_account_buckets_query(start=T0, watermark=WATERMARK, end=END))}
    assert sum(counts.values()) == len(everything) == 24 * 3 * 2
    monkeypatch.setattr(logs, "GROUPS_PER_RESPONSE", 20)
    pages = logs.plan_pages(counts)
    assert len(pages) > 1 and sorted(p for page in pages for p in page.accounts) == list(logs.ACCOUNT_PREFIXES)
    parts = []
    for page in pages:
        got = _records(con, kql.failures_query(start=T0, watermark=WATERMARK, end=END, account_buckets=page.accounts,
                                               buckets=page.buckets))
        assert len(got) == page.groups <= 20
        parts += got
    assert _keys(parts) == everything


def test_a_page_of_one_account_bucket_splits_on_the_group_key():
    from shared.adapters.logs import Page

    con = duckdb_kql.connect()
    _many_groups(con)  # one account: its groups can only be told apart after parsing
    everything = _keys(_records(con, kql.failures_query(start=T0, watermark=WATERMARK, end=END)))
    [bucket] = {r["Bucket"] for r in _records(
        con, kql.failures_account_buckets_query(start=T0, watermark=WATERMARK, end=END))}
    parts = []
    for half in Page((bucket,)).split():
        for quarter in half.split():
            assert quarter.accounts == (bucket,) and quarter.buckets is not None
            parts += _records(con, kql.failures_query(start=T0, watermark=WATERMARK, end=END,
                                                      account_buckets=quarter.accounts, buckets=quarter.buckets))
    assert _keys(parts) == everything


@pytest.mark.parametrize("prefixes", [(), ("0",), ("0ab",), ("0g",), ("AB",)])
def test_account_bucket_prefixes_are_two_lower_case_hex_digits(prefixes):
    with pytest.raises(ValueError):
        kql.account_bucket_filter(prefixes)
