"""Log rows for data-plane outcomes: AzureDiagnostics (Cognitive Services RequestResponse) and, for apps that
declare a role name, Application Insights AppDependencies / AppExceptions.

Stand-in assumptions (documented in docs/localazure.md): every request is logged, including ones rejected at
authentication; properties_s carries `errorCode`, `errorMessage` and `requestPath` besides the documented keys.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Any

from localazure.dataplane import Outcome

PROVIDER = "MICROSOFT.COGNITIVESERVICES"


def _masked_ip(ip: str) -> str:
    head, _, _ = ip.rpartition(".")
    return f"{head}.***" if head else ip


def _hex_id(rng: random.Random, digits: int = 32) -> str:
    return f"{rng.getrandbits(digits * 4):0{digits}x}"


def _host(outcome: Outcome) -> str:
    account = outcome.account
    if outcome.spec.endpoint != "right":
        return f"{account.custom_subdomain}-wrong.openai.azure.com"
    if outcome.route.surface in ("models", "project"):
        return account.services_host
    return account.openai_host if account.kind.lower() in ("openai", "aiservices") else account.cognitive_host


def diagnostics_row(outcome: Outcome, rng: random.Random) -> dict[str, Any]:
    account, spec = outcome.account, outcome.spec
    props: dict[str, Any] = {
        "apiName": outcome.route.api_name,
        "requestTime": outcome.at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "requestLength": 0 if spec.method.upper() == "GET" else 210 + rng.randint(0, 400),
        "responseLength": 180 + rng.randint(0, 900) if outcome.ok else len(json.dumps(outcome.body)),
        "objectId": spec.caller if spec.auth == "token" and spec.caller else "",
        "streamType": "Non-Streaming",
        "modelDeploymentName": outcome.route.deployment or "",
        # Stand-in additions (see module docstring):
        "requestPath": spec.route,
        "errorCode": outcome.code or "",
        "errorMessage": outcome.message or "",
    }
    return {
        "TimeGenerated": outcome.at,
        "ResourceId": account.id.upper(),
        "_ResourceId": account.id.lower(),
        "Category": "RequestResponse",
        "ResourceGroup": account.resource_group.upper(),
        "SubscriptionId": account.subscription_id,
        "ResourceProvider": PROVIDER,
        "Resource": account.name.upper(),
        "ResourceType": "ACCOUNTS",
        "OperationName": outcome.route.operation,
        "ResultType": "Succeeded" if outcome.ok else "Failed",
        "CorrelationId": _uuid(rng),
        "ResultSignature": str(outcome.status),
        "DurationMs": (120 + rng.randint(0, 900)) if outcome.ok else (3 + rng.randint(0, 25)),
        "CallerIPAddress": _masked_ip(spec.client_ip),
        "properties_s": json.dumps(props),
        "SourceSystem": "Azure",
        "Type": "AzureDiagnostics",
    }


def _uuid(rng: random.Random) -> str:
    h = _hex_id(rng)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


_OPENAI_ERRORS = {400: "BadRequestError", 401: "AuthenticationError", 403: "PermissionDeniedError",
                  404: "NotFoundError", 429: "RateLimitError"}
_AZURE_ERRORS = {401: "ClientAuthenticationError", 404: "ResourceNotFoundError"}


def exception_type(outcome: Outcome) -> str:
    if outcome.spec.sdk == "azure":
        return "azure.core.exceptions." + _AZURE_ERRORS.get(outcome.status, "HttpResponseError")
    return "openai." + _OPENAI_ERRORS.get(outcome.status, "APIStatusError")


def exception_message(outcome: Outcome) -> str:
    if outcome.spec.sdk == "azure":
        return f"({outcome.code}) {outcome.message}\nCode: {outcome.code}\nMessage: {outcome.message}"
    # The openai SDK's text: the status and the Python repr of the JSON error body.
    return f"Error code: {outcome.status} - {outcome.body!r}"


def app_rows(outcome: Outcome, rng: random.Random) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """(AppDependencies row, AppExceptions row or None) for a call made by an instrumented app."""
    spec = outcome.spec
    host = _host(outcome)
    operation_id = _hex_id(rng)
    parent = _hex_id(rng, 16)
    instance = f"{spec.app_role_name}-{hashlib.sha256((spec.app_role_name or '').encode()).hexdigest()[:6]}"
    route_path = spec.route if spec.route.startswith("/") else "/" + spec.route
    dependency = {
        "TimeGenerated": outcome.at,
        "Id": _hex_id(rng, 16),
        "Target": host,
        "DependencyType": "HTTP",
        "Name": f"{spec.method.upper()} {route_path}",
        "Data": f"https://{host}{route_path}?api-version={spec.api_version}",
        "Success": outcome.ok,
        "ResultCode": str(outcome.status),
        "DurationMs": float((150 + rng.randint(0, 900)) if outcome.ok else (10 + rng.randint(0, 40))),
        "Properties": {"caller": spec.caller or "", "auth": spec.auth},
        "OperationName": f"{spec.method.upper()} {route_path}",
        "OperationId": operation_id,
        "ParentId": parent,
        "AppRoleName": spec.app_role_name,
        "AppRoleInstance": instance,
        "ItemCount": 1,
        "SDKVersion": "py3:otel1.29.0",
        "Type": "AppDependencies",
    }
    if outcome.ok:
        return dependency, None
    ex_type, message = exception_type(outcome), exception_message(outcome)
    exception = {
        "TimeGenerated": outcome.at,
        "ProblemId": f"{ex_type} at _request",
        "HandledAt": "UserCode",
        "ExceptionType": ex_type,
        "Message": message,
        "OuterType": ex_type,
        "OuterMessage": message,
        "InnermostType": ex_type,
        "InnermostMessage": message,
        "SeverityLevel": 3,
        "Details": [{"message": message, "type": ex_type}],
        "Properties": {"http.status_code": str(outcome.status), "server.address": host},
        "OperationName": dependency["OperationName"],
        "OperationId": operation_id,
        "ParentId": parent,
        "AppRoleName": spec.app_role_name,
        "AppRoleInstance": instance,
        "ItemCount": 1,
        "Type": "AppExceptions",
    }
    return dependency, exception
