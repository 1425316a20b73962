"""API Management gateways in the stand-in: the backend call is decided with the gateway's identity and address,
the account logs it with the gateway's identity as caller, the gateway logs only documented columns, and ARM serves
the gateway resource with its managed identity."""

from __future__ import annotations

import json
import random
from datetime import datetime

import pytest

from localazure import Clock, LocalAzure, apim
from localazure.scenario import ScenarioError

pytestmark = pytest.mark.slow  # starts the stand-in

CLIENT = "7e000000-0000-4000-8000-00000000c11e"
GATEWAY_OID = "7e000000-0000-4000-8000-0000000000a1"
CHAT = "/openai/deployments/gpt-4o/chat/completions"
DOCUMENTED = {  # the ApiManagementGatewayLogs columns of the Azure Monitor table reference
    "_BilledSize", "_IsBillable", "_ResourceId", "_SubscriptionId", "ApiId", "ApimSubscriptionId", "ApiRevision",
    "BackendId", "BackendMethod", "BackendProtocol", "BackendRequestBody", "BackendRequestHeaders",
    "BackendResponseBody", "BackendResponseCode", "BackendResponseHeaders", "BackendTime", "BackendUrl", "Cache",
    "CacheTime", "CallerIpAddress", "Category", "ClientProtocol", "ClientTime", "ClientTlsVersion",
    "CorrelationId", "Errors", "IsMasterTrace", "IsRequestSuccess", "IsTraceAllowed", "IsTraceExpired",
    "IsTraceRequested", "LastErrorElapsed", "LastErrorMessage", "LastErrorReason", "LastErrorScope",
    "LastErrorSection", "LastErrorSource", "Method", "OperationId", "OperationName", "ProductId", "Region",
    "RequestBody", "RequestHeaders", "RequestSize", "ResponseBody", "ResponseCode", "ResponseHeaders",
    "ResponseSize", "SourceSystem", "TenantId", "TimeGenerated", "Timestamp", "TotalTime", "TraceRecords", "Type",
    "Url", "UserId", "WorkspaceId",
}


def records(az, kql):
    result = az.query(kql)
    names = [name for name, _ in result.columns]
    return [dict(zip(names, row, strict=True)) for row in result.rows]


@pytest.fixture
def az(local_azure_factory):
    az = local_azure_factory(None)
    az.add_account("aoai", default_action="Deny", ip_rules=["20.40.0.0/24"])  # only the gateway's address
    az.add_principal(CLIENT)
    az.add_assignment(CLIENT, "Cognitive Services OpenAI User", "account:aoai")  # the client's role is no help
    return az


def test_the_backend_call_is_the_gateways_own_request(az):
    gateway = az.add_gateway("contoso-apim", GATEWAY_OID)
    denied = az.call("aoai", CHAT, gateway="contoso-apim", caller=CLIENT, client_ip="203.0.113.7")
    assert (denied.status, denied.code) == (401, "PermissionDenied")
    assert denied.spec.caller == GATEWAY_OID and denied.gateway_request.caller == CLIENT
    assert az.state.principal(GATEWAY_OID).managed_identity  # declared as the gateway's managed identity

    az.add_assignment(GATEWAY_OID, "Cognitive Services OpenAI User", "account:aoai")
    assert az.call("aoai", CHAT, gateway="contoso-apim", caller=CLIENT, client_ip="203.0.113.7").status == 200
    assert az.call("aoai", CHAT, caller=CLIENT, client_ip="203.0.113.7").status == 403  # directly: the firewall

    [diagnostics, _, _] = records(az, "AzureDiagnostics | order by TimeGenerated asc")
    assert json.loads(diagnostics["properties_s"])["objectId"] == GATEWAY_OID
    assert diagnostics["CallerIPAddress"] == "20.40.0.***"
    rows = records(az, "ApiManagementGatewayLogs")
    assert len(rows) == 2  # the direct call went around the gateway
    row = rows[0]
    assert row["_ResourceId"] == gateway.lower() and row["CallerIpAddress"] == "203.0.113.7"
    assert row["BackendUrl"] == f"https://aoai.openai.azure.com{CHAT}?api-version=2024-10-21"
    assert row["Url"].startswith(f"https://contoso-apim.azure-api.net{CHAT}")
    assert (row["BackendResponseCode"], row["ResponseCode"], row["IsRequestSuccess"]) == (401, 401, False)
    assert (row["LastErrorReason"], row["LastErrorMessage"], row["BackendResponseBody"]) == ("", "", "")
    assert (row["Category"], row["Type"]) == ("GatewayLogs", "ApiManagementGatewayLogs")


def test_gateway_rows_carry_only_documented_columns(az):
    assert {name for name, _ in apim.GATEWAY_LOG_COLUMNS} <= DOCUMENTED
    gateway = apim.Gateway("g", az.subscription_id, GATEWAY_OID)
    az.state.put_gateway(gateway)
    outcome = az.call("aoai", CHAT, gateway="g", log=False)
    row = apim.gateway_row(gateway, outcome.gateway_request, outcome, random.Random(0))
    assert set(row) <= {name for name, _ in apim.GATEWAY_LOG_COLUMNS}
    assert isinstance(row["TimeGenerated"], datetime)


def test_arm_serves_the_gateway_with_its_managed_identity(az):
    system = az.state.app_resources[az.add_gateway("apim-system", GATEWAY_OID).lower()]
    assert system["type"] == "Microsoft.ApiManagement/service"
    assert system["identity"] == {"type": "SystemAssigned", "principalId": GATEWAY_OID, "tenantId": az.tenant_id}
    user = az.state.app_resources[az.add_gateway("apim-user", CLIENT, user_assigned=True).lower()]
    [(uami, identity)] = user["identity"]["userAssignedIdentities"].items()
    assert identity["principalId"] == CLIENT and uami.endswith("/userAssignedIdentities/apim-user-identity")


def test_scenario_gateways_and_traffic_through_them():
    scenario = {
        "resources": [{"name": "aoai"}],
        "gateways": [{"name": "contoso-apim", "principal_id": GATEWAY_OID, "log_backend_body": True}],
        "assignments": [{"principal": GATEWAY_OID, "role": "Cognitive Services OpenAI User", "scope": "account:aoai"}],
        "traffic": [{"name": "via-gateway", "resource": "aoai", "route": CHAT, "gateway": "contoso-apim",
                     "caller": CLIENT}],
    }
    with LocalAzure.start(scenario, clock=Clock.frozen("2025-06-01T12:00:00Z")) as az:
        [outcome] = az.tick()
        assert outcome.status == 200 and outcome.spec.caller == GATEWAY_OID
        [row] = records(az, "ApiManagementGatewayLogs")
        assert json.loads(row["BackendResponseBody"]) == outcome.body  # the diagnostic setting logs bodies

    with pytest.raises(ScenarioError, match="unknown gateway"):
        LocalAzure.start({**scenario, "gateways": [], "assignments": []})
    with pytest.raises(ScenarioError, match="unknown keys"):
        LocalAzure.start({**scenario, "gateways": [{"name": "g", "sku": "Developer"}]})
