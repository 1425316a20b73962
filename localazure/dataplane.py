"""The caller model: what a data-plane request to an Azure OpenAI / Foundry account would get.

Checks run in the order the service applies them: endpoint, network, authentication (key or token), RBAC
data action (with propagation and group caching), then the target deployment or project. Error bodies use
the real texts (azure-facts section 1).
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from localazure import rbac, routes
from localazure.routes import RouteInfo
from localazure.state import Account, State

COGNITIVE_AUDIENCE = "https://cognitiveservices.azure.com"
AI_AUDIENCE = "https://ai.azure.com"

TOKEN = "token"
KEY = "key"
NONE = "none"

TOKEN_INVALID = (
    "Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure.com), "
    "or have expired."
)
KEY_INVALID = (
    "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an "
    "active subscription and use a correct regional API endpoint for your resource."
)
KEY_MISSING = (
    "Access denied due to missing subscription key. Make sure to include subscription key when making requests "
    "to an API."
)
KEY_DISABLED = "Key based authentication is disabled for this resource."
FIREWALL = "Access denied due to Virtual Network/Firewall rules."
DEPLOYMENT_MISSING = (
    "The API deployment for this resource does not exist. If you created the deployment within the last 5 minutes, "
    "please wait a moment and try again."
)
TENANT_CODE = "Tenant provided in token does not match resource token"

# The check that rejected a request (Outcome.rejected_by), in the order the service applies them.
ENDPOINT = "endpoint"
NETWORK = "network"
AUTHENTICATION = "authentication"
AUTHORIZATION = "authorization"
TARGET = "target"


@dataclass(frozen=True)
class CallSpec:
    """One kind of request: who calls which route on which account, and how it authenticates."""

    resource: str  # account name or ARM id
    route: str  # e.g. /openai/deployments/gpt-4o/chat/completions
    method: str = "POST"
    caller: str | None = None  # Entra object id (token callers)
    auth: str = TOKEN  # token | key | none
    key: str = "valid"  # valid | wrong (auth=key)
    token: str = "valid"  # valid | expired (auth=token)
    audience: str = COGNITIVE_AUDIENCE
    tenant: str | None = None  # token issuer tenant; None = the resource's tenant
    client_ip: str = "10.0.0.4"
    subnet: str | None = None  # a virtual network subnet id the call comes from
    private_endpoint: bool = False  # arrives through a private endpoint of the account
    endpoint: str = "right"  # right | wrong (a host that is not this account's)
    deployment: str | None = None  # for routes that name the model in the body (/openai/v1, /models)
    api_version: str = "2024-10-21"
    app_role_name: str | None = None  # emit App Insights rows as this app (AppDependencies/AppExceptions)
    sdk: str = "openai"  # openai | azure: shapes the AppExceptions type and message
    gateway: str | None = None  # an API Management gateway (by name) the request goes through (localazure/apim.py)
    name: str = ""
    per_tick: int = 1
    ingestion_delay_seconds: float = 0  # its log rows arrive this late in the workspace (logstore.py)
    from_seconds: float | None = None  # active window, relative to when the traffic was added
    until_seconds: float | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    # Through a gateway: the API Management subscription whose key the client sent (ApimSubscriptionId)
    apim_subscription: str = ""


@dataclass(frozen=True)
class Outcome:
    status: int
    code: str | None
    message: str | None
    route: RouteInfo
    spec: CallSpec
    account: Account
    at: datetime
    data_action_granted_by: str | None = None  # role name, when RBAC allowed the call
    # The client's request when the call went through a gateway (`spec` is then the gateway's backend request).
    gateway_request: CallSpec | None = None
    rejected_by: str | None = None  # the check that answered a failure (ENDPOINT ... TARGET); None on success

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300

    @property
    def token_accepted(self) -> bool:
        """A token caller got past authentication: only then does the service know (and log) who called."""
        return self.spec.auth == TOKEN and self.rejected_by in (None, AUTHORIZATION, TARGET)

    @property
    def body(self) -> dict[str, Any]:
        if self.ok:
            return {"object": "result", "status": "ok"}
        if self.message == TOKEN_INVALID:
            return {"statusCode": self.status, "message": self.message}
        return {"error": {"code": self.code, "message": self.message}}


def _outcome(spec, account, info, at, status, code=None, message=None, granted_by=None, check=None) -> Outcome:
    return Outcome(status, code, message, info, spec, account, at, granted_by, rejected_by=check)


def _network_allows(account: Account, spec: CallSpec) -> bool:
    if spec.private_endpoint and account.private_endpoints:
        return True
    if account.public_network_access.lower() == "disabled":
        return False
    if account.default_action.lower() != "deny":
        return True
    if spec.subnet and any(spec.subnet.lower() == r.lower() for r in account.virtual_network_rules):
        return True
    try:
        ip = ipaddress.ip_address(spec.client_ip)
    except ValueError:
        return False
    for rule in account.ip_rules:
        try:
            if ip in ipaddress.ip_network(rule, strict=False):
                return True
        except ValueError:
            continue
    return False


def _surface_exists(account: Account, info: RouteInfo) -> bool:
    # Classic Azure OpenAI accounts serve only /openai; Foundry (AIServices) accounts serve every surface.
    return info.surface == routes.OPENAI or account.kind.lower() == "aiservices"


def decide(state: State, spec: CallSpec, at: datetime | None = None) -> Outcome:
    at = at or state.clock.now()
    account = state.require_account(spec.resource)
    info = routes.classify(spec.method, spec.route, deployment=spec.deployment, api_version=spec.api_version)
    check = ENDPOINT

    def fail(status: int, code: str, message: str) -> Outcome:
        return _outcome(spec, account, info, at, status, code, message, check=check)

    if spec.endpoint != "right" or not _surface_exists(account, info):
        return fail(404, "404", "Resource not found")
    check = NETWORK
    if not _network_allows(account, spec):
        return fail(403, "403", FIREWALL)
    check = AUTHENTICATION

    granted_by = None
    if spec.auth == NONE:
        return fail(401, "401", KEY_MISSING)
    if spec.auth == KEY:
        if account.disable_local_auth:
            return fail(403, "AuthenticationTypeDisabled", KEY_DISABLED)
        if spec.key != "valid" and spec.key not in account.keys:
            return fail(401, "401", KEY_INVALID)
        granted_by = "key"
    else:
        audiences = {COGNITIVE_AUDIENCE, AI_AUDIENCE} if info.surface == routes.PROJECT else {COGNITIVE_AUDIENCE}
        audience = spec.audience.rstrip("/").removesuffix("/.default")
        if spec.token != "valid":
            return fail(401, "401", TOKEN_INVALID)
        if audience not in audiences:
            # Stand-in assumption (docs/localazure.md): a well-formed token for another resource is answered in
            # the ARM-style wording that names the token's audience, as several Azure front doors do.
            return fail(401, "InvalidAuthenticationTokenAudience",
                        f"The access token has been obtained for wrong audience or resource '{audience}'. It should "
                        "exactly match with one of the allowed audiences "
                        f"{', '.join(repr(a) for a in sorted(audiences))}.")
        resource_tenant = account.tenant_id or state.tenant_id
        if spec.tenant and spec.tenant.lower() != resource_tenant.lower():
            return fail(400, TENANT_CODE, f"Token tenant {spec.tenant} does not match resource tenant.")
        check = AUTHORIZATION
        granted_by = _rbac_grant(state, spec, account, info, at)
        if granted_by is None:
            message = (
                f"The principal `{spec.caller}` lacks the required data action `{info.data_action}` to perform "
                f"`{spec.method.upper()} {info.template}` operation."
            )
            return fail(401, "PermissionDenied", message)

    check = TARGET
    if info.deployment and not account.has_deployment(info.deployment):
        return fail(404, "DeploymentNotFound", DEPLOYMENT_MISSING)
    if info.project and info.project.lower() not in account.projects:
        return fail(404, "ProjectNotFound", f"Project '{info.project}' was not found.")  # stand-in wording
    return _outcome(spec, account, info, at, 200, granted_by=granted_by)


def _rbac_grant(state: State, spec: CallSpec, account: Account, info: RouteInfo, at: datetime) -> str | None:
    principal = state.principal(spec.caller)
    if principal is None:
        return None
    scope = account.project_id(info.project) if info.project else account.id
    for grant in rbac.grants(state, principal, scope):
        if grant.effective_at <= at and grant.role.allows_data_action(info.data_action):
            return grant.role.name
    return None
