"""Log rows for data-plane outcomes: AzureDiagnostics (Cognitive Services RequestResponse) and, for apps that
declare a role name, Application Insights AppDependencies / AppExceptions.

A RequestResponse row carries only the columns and `properties_s` keys Azure documents (docs/localazure.md, "Rows
written", with the sources): no error code, no error text, no request path. Where the documentation is silent,
the scenario's log shape decides (localazure/logshape.py): whether rejected requests are logged at all, the
`apiName` of the Foundry routes, and undocumented keys added only to test tolerance.
"""

from __future__ import annotations

import hashlib
import json
import random
from datetime import UTC, datetime, timedelta
from typing import Any

from localazure import routes
from localazure.dataplane import AUTHENTICATION, AUTHORIZATION, NETWORK, Outcome
from localazure.logshape import OPENAI_NAMES, LogShape

PROVIDER = "MICROSOFT.COGNITIVESERVICES"
_REJECTING_CHECKS = frozenset({NETWORK, AUTHENTICATION, AUTHORIZATION})
_DOTNET_EPOCH = datetime(1, 1, 1, tzinfo=UTC)


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


def _ticks(at: datetime) -> int:
    """A .NET DateTime tick count (100 ns since 0001-01-01), as `requestTime`/`responseTime` are written."""
    return (at.astimezone(UTC) - _DOTNET_EPOCH) // timedelta(microseconds=1) * 10


def is_logged(outcome: Outcome, shape: LogShape) -> bool:
    """Whether the outcome writes a RequestResponse row under this log shape."""
    return shape.rejections_logged or outcome.rejected_by not in _REJECTING_CHECKS


def api_name(outcome: Outcome, shape: LogShape) -> str:
    info = outcome.route
    if shape.foundry_api_names == OPENAI_NAMES and info.surface in (routes.MODELS, routes.PROJECT):
        return f"Azure OpenAI API version {outcome.spec.api_version}"
    return info.api_name


def diagnostics_row(outcome: Outcome, rng: random.Random, shape: LogShape | None = None) -> dict[str, Any]:
    shape = shape or LogShape()
    account, spec = outcome.account, outcome.spec
    duration = (120 + rng.randint(0, 900)) if outcome.ok else (3 + rng.randint(0, 25))
    props: dict[str, Any] = {
        "apiName": api_name(outcome, shape),
        "requestTime": _ticks(outcome.at),
        "responseTime": _ticks(outcome.at + timedelta(milliseconds=duration)),
        "requestLength": 0 if spec.method.upper() == "GET" else 210 + rng.randint(0, 400),
        "responseLength": 180 + rng.randint(0, 900) if outcome.ok else len(json.dumps(outcome.body)),
        # The caller is known once its token is accepted; key callers (and rejected tokens) log "".
        "objectId": spec.caller if outcome.token_accepted and spec.caller else "",
        "streamType": "Non-Streaming",
        "modelDeploymentName": outcome.route.deployment or "",
        "modelName": "",
        "modelVersion": "",
    }
    extra = {"errorCode": outcome.code or "", "errorMessage": outcome.message or "", "requestPath": spec.route}
    props.update((key, extra[key]) for key in shape.extra_properties)
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
        "DurationMs": duration,
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
