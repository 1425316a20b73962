"""Mapping summarized query rows to FailureSignals: pure, no server. Malformed rows are rejected with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters.failure_rows import (
    dependency_signal,
    diagnostics_signal,
    map_rows,
    merge_groups,
)
from shared.core.model import ENTRA, KEY

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
OID = "11111111-2222-3333-4444-555555555555"
ACCOUNT = "/subscriptions/sub-1/resourcegroups/rg/providers/microsoft.cognitiveservices/accounts/acct-a"


def diag_row(**over):
    row = {
        "ResourceId": ACCOUNT, "ObjectId": OID, "AuthKind": "entra", "Status": "401",
        "OperationName": "ChatCompletions_Create", "Route": "/openai/deployments/gpt/chat/completions",
        "ErrorCode": "PermissionDenied", "Failures": 5, "OverlapFailures": 2,
        "FirstSeen": T0, "LastSeen": T0 + timedelta(minutes=3), "SampleMessage": "lacks the data action",
    }
    row.update(over)
    return row


def diag(row):
    return diagnostics_signal(row, "logs:ws")


def test_a_well_formed_row_becomes_a_signal():
    s = diag(diag_row())
    assert (s.status, s.code, s.object_id, s.auth, s.resource_id) == (401, "PermissionDenied", OID, ENTRA, ACCOUNT)
    assert (s.count, s.overlap_count, s.first_seen, s.source) == (5, 2, T0, "logs:ws")
    assert s.route == "/openai/deployments/gpt/chat/completions" and s.operation == "ChatCompletions_Create"


def test_a_documented_row_carries_its_caller_operation_and_api_name_and_no_text():
    """What a real RequestResponse row gives (the query returns "" for the keys real rows lack)."""
    s = diag(diag_row(ErrorCode="", SampleMessage="", Route="Azure OpenAI API version 2024-10-21"))
    assert (s.code, s.message, s.object_id, s.auth) == (None, None, OID, ENTRA)
    assert (s.operation, s.route) == ("ChatCompletions_Create", "Azure OpenAI API version 2024-10-21")


def test_key_callers_and_absent_optional_columns():
    s = diag(diag_row(ObjectId="", AuthKind="key", ErrorCode="", SampleMessage="", Route=None,
                      OverlapFailures=None, FirstSeen="2024-05-01T10:00:00Z", LastSeen="2024-05-01T10:00:00Z"))
    assert (s.object_id, s.auth, s.code, s.message, s.route, s.overlap_count) == (None, KEY, None, None, None, 0)
    assert s.first_seen == T0


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"ResourceId": ""}, "missing resource id"),
        ({"ResourceId": None}, "missing resource id"),
        ({"ResourceId": "acct-a"}, "not an ARM resource id"),
        ({"Status": "Unauthorized"}, "unparsable status"),
        ({"Status": None}, "unparsable status"),
        ({"Status": "99"}, "unparsable status"),
        ({"Failures": 0}, "positive whole number"),
        ({"Failures": "3"}, "positive whole number"),
        ({"OverlapFailures": 6}, "overlap count"),
        ({"OverlapFailures": -1}, "overlap count"),
        ({"FirstSeen": "yesterday"}, "FirstSeen"),
        ({"LastSeen": None}, "LastSeen"),
        ({"LastSeen": T0 - timedelta(seconds=1)}, "before FirstSeen"),
        ({"ObjectId": "not-a-guid"}, "not a GUID"),
        ({"AuthKind": "cert"}, "unknown auth kind"),
        ({"ErrorCode": 42}, "not text"),
    ],
)
def test_malformed_rows_are_rejected_with_a_reason(change, reason):
    signals, rejected = map_rows([diag_row(), diag_row(**change)], "logs:ws", diag)
    assert len(signals) == 1 and len(rejected) == 1
    assert reason in rejected[0].reason
    assert rejected[0].source == "logs:ws"
    assert all(not isinstance(v, datetime) for v in rejected[0].row.values())  # JSON-safe for the audit


_values = st.one_of(st.none(), st.text(max_size=20), st.integers(-5, 700), st.booleans(), st.floats(),
                    st.datetimes(timezones=st.just(UTC)), st.lists(st.integers(), max_size=2))


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(st.sampled_from(list(diag_row())), _values, max_size=12))
def test_any_row_is_either_a_signal_or_rejected_never_a_crash(row):
    signals, rejected = map_rows([row], "logs:ws", diag)
    assert len(signals) + len(rejected) == 1
    for s in signals:
        assert s.count >= 1 and 0 <= s.overlap_count <= s.count and 100 <= s.status <= 599


def test_groups_that_differ_only_in_case_are_merged():
    upper = diag_row(ResourceId=ACCOUNT.upper(), Failures=2, OverlapFailures=1, LastSeen=T0 + timedelta(hours=1))
    signals, rejected = map_rows([diag_row(), upper], "logs:ws", diag)
    assert rejected == () and len(signals) == 1
    assert (signals[0].count, signals[0].overlap_count) == (7, 3)
    assert (signals[0].first_seen, signals[0].last_seen) == (T0, T0 + timedelta(hours=1))


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["401", "403"]), st.integers(1, 50), st.integers(0, 50)), max_size=8))
def test_merging_never_loses_or_invents_rows(groups):
    rows = [diag_row(Status=s, Failures=n, OverlapFailures=min(o, n)) for s, n, o in groups]
    signals, _ = map_rows(rows, "logs:ws", diag)
    assert sum(s.count for s in signals) == sum(n for _, n, _ in groups)
    assert sum(s.overlap_count for s in signals) == sum(min(o, n) for _, n, o in groups)
    assert len(merge_groups(signals)) == len(signals) == len({s for s, _, _ in groups})


def dep_row(**over):
    row = {"AppRoleName": "web", "Host": "acct-a.openai.azure.com", "Name": "POST /openai/deployments/gpt/chat",
           "Status": "401", "Failures": 3, "OverlapFailures": 0, "FirstSeen": T0, "LastSeen": T0,
           "SampleMessage": "Error code: 401"}
    row.update(over)
    return row


def dep(row, identities=None, resources=None):
    identities = {"web": OID.upper()} if identities is None else identities
    resources = {"acct-a.openai.azure.com": ACCOUNT} if resources is None else resources
    return dependency_signal(row, "appinsights:ws", identity_of=identities.get, resource_of=resources.get)


def test_a_dependency_row_gets_its_identity_and_account_when_known():
    s = dep(dep_row())
    assert (s.object_id, s.auth, s.resource_id, s.endpoint) == (OID, ENTRA, ACCOUNT, "https://acct-a.openai.azure.com")
    assert (s.route, s.operation, s.message) == ("/openai/deployments/gpt/chat", "POST /openai/deployments/gpt/chat",
                                                "Error code: 401")


def test_an_unmapped_app_leaves_caller_and_auth_unknown():
    s = dep(dep_row(AppRoleName="other"), resources={})
    assert (s.object_id, s.auth, s.resource_id) == (None, None, None)


@pytest.mark.parametrize(("change", "reason"), [({"Host": ""}, "missing endpoint host"),
                                                ({"Host": "not a host"}, "not a host name"),
                                                ({"Status": "x"}, "unparsable status")])
def test_malformed_dependency_rows_are_rejected(change, reason):
    signals, rejected = map_rows([dep_row(**change)], "appinsights:ws", dep)
    assert signals == () and reason in rejected[0].reason
