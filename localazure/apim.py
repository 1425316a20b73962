"""Azure API Management in front of the accounts: the gateway resource (served over ARM with its managed identity)
and the `ApiManagementGatewayLogs` rows its requests write.

A request through a gateway reaches the account as the gateway's own request: authenticated with the gateway's
managed identity (the `authentication-managed-identity` policy), from the gateway's address. The data-plane model
decides that backend request, the account logs it with the gateway's identity as caller (AzureDiagnostics), and the
gateway logs the client's request with the backend's answer.

Columns: the Azure Monitor table reference for ApiManagementGatewayLogs
(https://learn.microsoft.com/azure/azure-monitor/reference/tables/apimanagementgatewaylogs; MicrosoftDocs
azure-reference-other `azure-monitor-ref/tables/apimanagementgatewaylogs.md`), without the billing columns
`_BilledSize` and `_IsBillable`. Stand-in assumptions are listed in docs/localazure.md.
"""

from __future__ import annotations

import json
import random
import uuid
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from localazure.dataplane import COGNITIVE_AUDIENCE, TOKEN, CallSpec, Outcome

API_MANAGEMENT = "Microsoft.ApiManagement/service"
TABLE = "ApiManagementGatewayLogs"

# The documented columns, in the reference's order; DuckDB types (string, int, long, bool, datetime, dynamic).
GATEWAY_LOG_COLUMNS: tuple[tuple[str, str], ...] = (
    ("TenantId", "VARCHAR"), ("TimeGenerated", "TIMESTAMP"), ("_ResourceId", "VARCHAR"),
    ("_SubscriptionId", "VARCHAR"), ("ApiId", "VARCHAR"), ("ApimSubscriptionId", "VARCHAR"),
    ("ApiRevision", "VARCHAR"), ("BackendId", "VARCHAR"), ("BackendMethod", "VARCHAR"),
    ("BackendProtocol", "VARCHAR"), ("BackendRequestBody", "VARCHAR"), ("BackendRequestHeaders", "JSON"),
    ("BackendResponseBody", "VARCHAR"), ("BackendResponseCode", "INTEGER"), ("BackendResponseHeaders", "JSON"),
    ("BackendTime", "BIGINT"), ("BackendUrl", "VARCHAR"), ("Cache", "VARCHAR"), ("CacheTime", "BIGINT"),
    ("CallerIpAddress", "VARCHAR"), ("Category", "VARCHAR"), ("ClientProtocol", "VARCHAR"),
    ("ClientTime", "BIGINT"), ("ClientTlsVersion", "VARCHAR"), ("CorrelationId", "VARCHAR"), ("Errors", "JSON"),
    ("IsMasterTrace", "BOOLEAN"), ("IsRequestSuccess", "BOOLEAN"), ("IsTraceAllowed", "BOOLEAN"),
    ("IsTraceExpired", "BOOLEAN"), ("IsTraceRequested", "BOOLEAN"), ("LastErrorElapsed", "BIGINT"),
    ("LastErrorMessage", "VARCHAR"), ("LastErrorReason", "VARCHAR"), ("LastErrorScope", "VARCHAR"),
    ("LastErrorSection", "VARCHAR"), ("LastErrorSource", "VARCHAR"), ("Method", "VARCHAR"),
    ("OperationId", "VARCHAR"), ("OperationName", "VARCHAR"), ("ProductId", "VARCHAR"), ("Region", "VARCHAR"),
    ("RequestBody", "VARCHAR"), ("RequestHeaders", "JSON"), ("RequestSize", "INTEGER"), ("ResponseBody", "VARCHAR"),
    ("ResponseCode", "INTEGER"), ("ResponseHeaders", "JSON"), ("ResponseSize", "INTEGER"),
    ("SourceSystem", "VARCHAR"), ("Timestamp", "TIMESTAMP"), ("TotalTime", "BIGINT"), ("TraceRecords", "JSON"),
    ("Type", "VARCHAR"), ("Url", "VARCHAR"), ("UserId", "VARCHAR"), ("WorkspaceId", "VARCHAR"),
)


@dataclass
class Gateway:
    """An API Management service whose APIs forward to the accounts with its managed identity."""

    name: str
    subscription_id: str
    principal_id: str  # the managed identity it authenticates to the backends with
    resource_group: str = "rg"
    location: str = "eastus"
    user_assigned: bool = False  # the identity is its one user-assigned identity (else system-assigned)
    public_ip: str = "20.40.0.10"  # where its backend calls come from (the account's firewall sees this)
    api_id: str = "azure-openai"
    # The diagnostic setting logs backend response bodies (payload bytes > 0); APIM's default logs none.
    log_backend_body: bool = False

    @property
    def id(self) -> str:
        return (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/"
                f"{API_MANAGEMENT}/{self.name}")

    @property
    def host(self) -> str:
        return f"{self.name}.azure-api.net"

    def arm_body(self, tenant_id: str) -> dict[str, Any]:
        """GET Microsoft.ApiManagement/service (api-version 2024-05-01), abridged to what a reader needs."""
        if self.user_assigned:
            uami = (f"/subscriptions/{self.subscription_id}/resourceGroups/{self.resource_group}/providers/"
                    f"Microsoft.ManagedIdentity/userAssignedIdentities/{self.name}-identity")
            identity: dict[str, Any] = {"type": "UserAssigned", "userAssignedIdentities": {
                uami: {"principalId": self.principal_id, "clientId": str(uuid.uuid5(uuid.NAMESPACE_URL, uami))}}}
        else:
            identity = {"type": "SystemAssigned", "principalId": self.principal_id, "tenantId": tenant_id}
        return {
            "id": self.id,
            "name": self.name,
            "type": API_MANAGEMENT,
            "location": self.location,
            "sku": {"name": "Developer", "capacity": 1},
            "identity": identity,
            "properties": {
                "provisioningState": "Succeeded",
                "gatewayUrl": f"https://{self.host}",
                "publicIPAddresses": [self.public_ip],
                "publisherEmail": "apis@contoso.example",
                "publisherName": "Contoso",
                "virtualNetworkType": "None",
            },
        }


def backend_request(gateway: Gateway, request: CallSpec) -> CallSpec:
    """The request the gateway sends the account for `request`: the same route, made by the gateway's identity
    with a valid token for Cognitive Services, from the gateway's address."""
    return replace(request, caller=gateway.principal_id, auth=TOKEN, token="valid", audience=COGNITIVE_AUDIENCE,
                   tenant=None, client_ip=gateway.public_ip, subnet=None, private_endpoint=False,
                   app_role_name=None, gateway=None)


def backend_host(outcome: Outcome) -> str:
    """The backend URL's host as an operator configures it: the account's Azure OpenAI host, or its Foundry host
    for the /models and project routes."""
    account = outcome.account
    if outcome.spec.endpoint != "right":
        return f"{account.custom_subdomain}-wrong.openai.azure.com"
    if outcome.route.surface in ("models", "project"):
        return account.services_host
    return account.openai_host if account.kind.lower() in ("openai", "aiservices") else account.cognitive_host


def gateway_row(gateway: Gateway, request: CallSpec, outcome: Outcome, rng: random.Random) -> dict[str, Any]:
    """The gateway's log row for the client's `request`, whose backend call got `outcome`. The gateway passes the
    backend's status through; a backend 4xx is not a gateway error, so the LastError* columns stay empty."""
    path = request.route if request.route.startswith("/") else "/" + request.route
    query = f"?api-version={request.api_version}"
    at: datetime = outcome.at
    backend_ms = (120 + rng.randint(0, 900)) if outcome.ok else (3 + rng.randint(0, 25))
    body = json.dumps(outcome.body)
    return {
        "TimeGenerated": at,
        "Timestamp": at,
        "_ResourceId": gateway.id.lower(),
        "_SubscriptionId": gateway.subscription_id,
        "Category": "GatewayLogs",
        "OperationName": "Microsoft.ApiManagement/GatewayLogs",
        "CorrelationId": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
        "Region": gateway.location,
        "IsRequestSuccess": outcome.status < 400,
        "Method": request.method.upper(),
        "Url": f"https://{gateway.host}{path}{query}",
        "ApiId": gateway.api_id,
        "ApimSubscriptionId": request.apim_subscription,
        "ApiRevision": "1",
        "OperationId": outcome.route.operation,
        "ClientProtocol": "HTTP/1.1",
        "ClientTlsVersion": "1.2",
        "ClientTime": rng.randint(0, 3),
        "CallerIpAddress": request.client_ip,
        "Cache": "none",
        "CacheTime": 0,
        "BackendMethod": request.method.upper(),
        "BackendUrl": f"https://{backend_host(outcome)}{path}{query}",
        "BackendProtocol": "HTTP/1.1",
        "BackendResponseCode": outcome.status,
        "BackendResponseBody": body if gateway.log_backend_body else "",
        "BackendTime": backend_ms,
        "ResponseCode": outcome.status,
        "RequestSize": 0 if request.method.upper() == "GET" else 400 + rng.randint(0, 400),
        "ResponseSize": len(body) + 300,
        "TotalTime": backend_ms + rng.randint(1, 6),
        "SourceSystem": "Azure",
    }
