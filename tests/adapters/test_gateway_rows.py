"""API Management gateway rows to FailureSignals: pure, no server. The caller is the gateway's identity, the
resource the account behind the backend host; malformed rows are rejected with a reason."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.adapters.failure_rows import map_rows
from shared.adapters.gateway_logs import gateway_signal
from shared.core.model import ENTRA

T0 = datetime(2024, 5, 1, 10, 0, tzinfo=UTC)
GATEWAY_OID = "11111111-2222-3333-4444-555555555555"
GATEWAY = "/subscriptions/sub-1/resourcegroups/rg/providers/microsoft.apimanagement/service/contoso-apim"
ACCOUNT = "/subscriptions/sub-1/resourcegroups/rg/providers/microsoft.cognitiveservices/accounts/acct-a"
HOST = "acct-a.openai.azure.com"
PATH = "/openai/deployments/gpt-4o/chat/completions"


def gateway_row(**over):
    row = {"GatewayId": GATEWAY, "BackendHost": HOST, "BackendPath": PATH, "BackendMethod": "POST", "Status": 401,
           "ErrorCode": "", "Failures": 4, "OverlapFailures": 1, "FirstSeen": T0,
           "LastSeen": T0 + timedelta(minutes=2), "SampleMessage": ""}
    row.update(over)
    return row


def parse(row, identities=None, resources=None):
    identities = {GATEWAY: GATEWAY_OID.upper()} if identities is None else identities
    resources = {HOST: ACCOUNT} if resources is None else resources
    return gateway_signal(row, "apim:ws", identity_of=identities.get, resource_of=resources.get)


def test_a_backend_failure_is_the_gateways_identity_on_the_backend_account():
    s = parse(gateway_row())
    assert (s.status, s.object_id, s.auth, s.resource_id) == (401, GATEWAY_OID, ENTRA, ACCOUNT)
    assert (s.endpoint, s.route, s.operation) == (f"https://{HOST}", PATH, f"POST {PATH}")
    assert (s.count, s.overlap_count, s.first_seen, s.last_seen) == (4, 1, T0, T0 + timedelta(minutes=2))
    assert (s.code, s.message, s.source) == (None, None, "apim:ws")  # the gateway logged no error of its own


def test_the_error_reason_and_message_are_kept_when_the_row_has_them():
    s = parse(gateway_row(Status="403", ErrorCode="PermissionDenied", SampleMessage="lacks the data action"))
    assert (s.status, s.code, s.message) == (403, "PermissionDenied", "lacks the data action")


def test_an_unknown_identity_or_host_leaves_them_unknown_without_rejecting():
    s = parse(gateway_row(), identities={}, resources={})
    assert (s.object_id, s.auth, s.resource_id) == (None, None, None)


def test_a_row_without_a_method_keeps_the_path_as_operation():
    s = parse(gateway_row(BackendMethod=""))
    assert (s.route, s.operation) == (PATH, PATH)


@pytest.mark.parametrize(("change", "reason"), [
    ({"GatewayId": ""}, "missing gateway resource id"),
    ({"GatewayId": "contoso-apim"}, "not an ARM resource id"),
    ({"GatewayId": ACCOUNT}, "not an API Management service"),
    ({"BackendHost": None}, "missing backend host"),
    ({"BackendHost": "not a host"}, "not a host name"),
    ({"Status": "x"}, "unparsable status"),
    ({"Failures": 0}, "failure count"),
    ({"OverlapFailures": 9}, "overlap count"),
    ({"LastSeen": T0 - timedelta(minutes=1)}, "LastSeen is before FirstSeen"),
    ({"BackendPath": 7}, "BackendPath is not text"),
])
def test_malformed_rows_are_rejected_with_the_reason_and_the_rest_go_on(change, reason):
    signals, rejected = map_rows([gateway_row(**change), gateway_row()], "apim:ws", parse)
    assert len(signals) == 1 and signals[0].object_id == GATEWAY_OID
    (bad,) = rejected
    assert reason in bad.reason and bad.source == "apim:ws"
    assert bad.row["GatewayId"] == change.get("GatewayId", GATEWAY)
