"""The cause catalogue: one record per cause with everything said about it.

A record holds the cause's stable id, its family (for incident fingerprints), whether a role assignment fixes it,
its title, the one-sentence summary and the fix steps a diagnosis shows, and the prose docs/causes.md shows
(generated from here: `python -m shared settings-files`). Ids are a public contract (`classify` output, tickets,
docs/causes.md): never rename one.

`summary` and `steps` are either fixed text or a builder the diagnosis calls with the facts it found, by keyword;
a builder takes the facts it names and ignores the rest. The facts a diagnosis passes:
- role fixes: `role` (None when no surface is known), `surface`, `scope`, `held_roles` (names), `looked_up`
  (whether assignments were read), and for the steps `command` (the az command) and `surface`;
- role ages: `held_role`, `age`, `window`;
- other causes: `audience`, `token_scope`, `key_as_bearer`, `token_tenant`, `phrase` (the matched text),
  `service_status` (a throttling or service-error status), `control_plane`, `engine_error`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from shared.core.fixes import (
    DOC_ABUSE,
    DOC_AI_SERVICES_AUTH,
    DOC_API_VERSIONS,
    DOC_AZ_ROLE_CREATE,
    DOC_CREATE_DEPLOYMENT,
    DOC_DISABLE_LOCAL_AUTH,
    DOC_FOUNDRY_AUTH,
    DOC_MANAGED_IDENTITY,
    DOC_MI_GROUPS,
    DOC_MODELS_ENTRA,
    DOC_NETWORK,
    DOC_RBAC_TROUBLESHOOT,
    STANDARD_SCOPE,
    minutes,
    role_doc,
    surface_text,
    where,
)
from shared.core.model import FixStep
from shared.core.roles import Role

Steps = tuple[FixStep, ...]


@dataclass(frozen=True)
class Cause:
    id: str
    family: str  # incidents are keyed by family, so a cause that evolves (missing -> pending) stays one incident
    role_fixable: bool  # a role assignment is the fix
    title: str
    summary: str | Callable[..., str]
    steps: Steps | Callable[..., Steps]
    doc: str  # markdown for docs/causes.md: what the cause is and the signals that lead to it

    def summary_for(self, **facts: Any) -> str:
        """The summary, filled with what the diagnosis found when it depends on it."""
        summary = self.summary
        return summary if type(summary) is str else summary(**facts)  # type: ignore[operator]

    def steps_for(self, **facts: Any) -> Steps:
        """The fix steps, built from what the diagnosis found when they depend on it."""
        steps = self.steps
        return steps if type(steps) is tuple else steps(**facts)  # type: ignore[operator]


# ---- role causes --------------------------------------------------------------------------------------------


def _missing_summary(*, role: Role | None, surface: str | None, scope: str | None, looked_up: bool, **_) -> str:
    held = "holds no role" if looked_up else "appears to hold no role"
    if role is None:
        return (f"The caller is authenticated but {held} with the data action for this call; the endpoint surface "
                "is unknown, so no role is named.")
    return (f"The caller is authenticated but {held} with data access to {surface_text(surface)}; "
            f"assign {role.name} {where(scope, surface)}.")


def _control_plane_summary(*, held_roles: list[str], role: Role | None, scope: str | None, surface: str | None,
                           **_) -> str:
    tail = f"; assign {role.name} {where(scope, surface)}" if role else ""
    return (f"The caller holds only control-plane roles ({', '.join(held_roles)}): control-plane roles "
            f"(Owner/Contributor and the like) grant no data access{tail}.")


def _wrong_surface_summary(*, held_roles: list[str], role: Role | None, surface: str | None, scope: str | None,
                           **_) -> str:
    tail = f"; assign {role.name} {where(scope, surface)}" if role else ""
    return f"The caller's data role ({', '.join(held_roles)}) does not cover {surface_text(surface)}{tail}."


def _group_summary(*, held_roles: list[str], role: Role | None, scope: str | None, surface: str | None,
                   **_) -> str:
    held = held_roles[0] if held_roles else "the role"
    name = role.name if role else held
    return (f"The managed identity holds {held} only through a group, and group changes can take about 24 hours "
            f"to reach managed-identity tokens; assign {name} to the identity directly {where(scope, surface)}.")


def _role_steps(*, command: str, surface: str | None, **_) -> Steps:
    return (
        FixStep(f"Assign the least-privilege data role: {command}", DOC_AZ_ROLE_CREATE),
        FixStep("Which role each endpoint surface needs, and why Owner/Contributor are not enough", role_doc(surface)),
        FixStep("Allow up to 10 minutes for RBAC to propagate, then retry with a fresh token",
                DOC_RBAC_TROUBLESHOOT),
    )


def _group_steps(*, command: str, surface: str | None, **_) -> Steps:
    return (
        FixStep(f"Assign the role to the managed identity directly: {command}", DOC_AZ_ROLE_CREATE),
        FixStep("Managed identities cache group memberships for about 24 hours; do not rely on group changes",
                DOC_MI_GROUPS),
        FixStep("Role guidance for this endpoint surface", role_doc(surface)),
    )


def _pending_summary(*, held_role: str, age: timedelta, window: timedelta, **_) -> str:
    return (f"{held_role} was assigned {minutes(age)} ago, inside the {minutes(window)} RBAC propagation window: "
            "wait and retry with a fresh token; do not assign it again.")


def _present_summary(*, held_role: str, **_) -> str:
    return (f"The caller already holds {held_role} covering this resource, older than the propagation window: "
            "this is not a missing role.")


# ---- token, key, network, endpoint and other causes ----------------------------------------------------------


def _audience_summary(*, audience: str | None, token_scope: str, **_) -> str:
    expects = f" (the endpoint expects {audience})" if audience else ""
    return f"The token was issued for the wrong audience{expects}; request it for {token_scope}."


def _audience_steps(*, token_scope: str = STANDARD_SCOPE, **_) -> Steps:
    return (
        FixStep(f"Request the token for {token_scope} (e.g. get_bearer_token_provider(credential, \"{token_scope}\"))",
                DOC_MANAGED_IDENTITY),
        FixStep("Send it as 'Authorization: Bearer <token>' to the resource's custom-domain endpoint",
                DOC_AI_SERVICES_AUTH),
    )


def _token_summary(*, key_as_bearer: bool, token_scope: str, **_) -> str:
    key_note = " (an API key was sent as a bearer token)" if key_as_bearer else ""
    return f"The bearer token is missing, invalid or expired{key_note}; request a fresh token for {token_scope}."


def _tenant_summary(*, token_tenant: str | None, **_) -> str:
    tenant = f" ({token_tenant})" if token_tenant else ""
    return f"The token was issued by another tenant{tenant} than the resource's; request it from the resource's tenant."


_BLOCKED_WHAT = (
    ("temporarily blocked", "abuse monitoring has temporarily blocked the resource"),
    ("content", "the content filter rejected the request"),
    ("api version", "the api-version is not supported for this call"),
    ("api-version", "the api-version is not supported for this call"),
    ("rate", "the request was throttled"),
    ("too many", "the request was throttled"),
    ("quota", "the quota is exhausted"),
)


def _blocked_summary(*, phrase: str = "", service_status: int | None = None, **_) -> str:
    if service_status is not None:
        what = f"HTTP {service_status} is a throttling or service error"
    else:
        what = next((text for marker, text in _BLOCKED_WHAT if marker in phrase), f"the service says {phrase!r}")
    return f"Not an access problem: {what}; no role or key change helps."


def _unknown_summary(*, control_plane: bool = False, engine_error: bool = False, **_) -> str:
    why = ""
    if control_plane:
        why = " as an inference failure"
    elif engine_error:
        why = " (the engine could not read this signal)"
    return f"The failure was not recognized{why}; no role is recommended."


_ENTRA_INSTEAD = FixStep("Better: move the caller from keys to Microsoft Entra ID", DOC_MANAGED_IDENTITY)

_CAUSES = (
    Cause(
        "missing_data_role", "rbac", True, "Caller holds no data-plane role", _missing_summary, _role_steps,
        "An authenticated Entra caller lacks the data action and holds no relevant role. "
        "**Signals:** 401 `PermissionDenied` \"The principal ... lacks the required data action ...\" or \"Principal "
        "does not have access to API/Operation.\" (also 403 `PermissionDenied` \"The client does not have permission "
        "to perform this action.\"); or a bare 401/403 with the caller's object id logged. Evidence: no assignment "
        "applies at the target scope, or assignments were not looked up (medium/low confidence).",
    ),
    Cause(
        "control_plane_role_only", "rbac", True, "Caller holds only control-plane roles", _control_plane_summary,
        _role_steps,
        "The caller holds only roles without data actions: Owner, Contributor, Reader, Cognitive Services "
        "Contributor, Foundry Account Owner, ... Control-plane roles (Owner/Contributor...) grant no data access, so "
        "widening the control-plane role never helps. "
        "**Signals:** a role-family failure and applicable assignments that are all control-plane roles.",
    ),
    Cause(
        "wrong_role_for_surface", "rbac", True, "Caller's data role covers another endpoint surface",
        _wrong_surface_summary, _role_steps,
        "The caller holds a data role for another surface: Cognitive Services OpenAI User (or OpenAI Contributor) "
        "calling `/models` or a Foundry project; Azure AI Developer (an Azure ML / hub role) on a Foundry project. "
        "The fix is the role for the surface actually called. "
        "**Signals:** a role-family failure and applicable data roles none of which cover the call's surface.",
    ),
    Cause(
        "propagation_pending", "rbac", False, "Role assigned recently; RBAC still propagating", _pending_summary,
        (
            FixStep("Wait until the assignment is older than the propagation window, then retry",
                    DOC_RBAC_TROUBLESHOOT),
            FixStep("Get a new access token (sign in again, or restart the client) so it carries the new grant",
                    DOC_RBAC_TROUBLESHOOT),
            FixStep("Do not create the assignment again: a second assignment does not propagate faster", None),
        ),
        "The right role covers the scope but was created less than the propagation window ago (default 10 minutes,"
        " `propagation_window`). Requires a current time (`now`); without one ages are not judged.",
    ),
    Cause(
        "group_membership_cache", "rbac", True, "Managed identity holds the role only through a group",
        _group_summary, _group_steps,
        "A managed identity (principal type ServicePrincipal) holds the right role only through a group. "
        "Managed-identity tokens cache group membership for about 24 hours, so group changes can take hours to "
        "apply. **Signals:** matching assignments all `via_group`, no direct one; principal type ServicePrincipal "
        "(unknown type: medium confidence). A *user* in a group is judged by the assignment's age instead.",
    ),
    Cause(
        "role_present_still_denied", "rbac", False, "Right role in place, still denied", _present_summary,
        (
            FixStep("Check the call goes to the resource (and project) the role covers, not another account or "
                    "region", DOC_FOUNDRY_AUTH),
            FixStep("Check for deny assignments, ABAC conditions or a custom role that removes the data action",
                    DOC_RBAC_TROUBLESHOOT),
            FixStep("Get a new access token; if the role was changed recently the old token still carries the old "
                    "state", DOC_RBAC_TROUBLESHOOT),
        ),
        "The right role already covers the scope and is older than the window. Not a role problem.",
    ),
    Cause(
        "token_audience_invalid", "token", False, "Token requested for the wrong audience", _audience_summary,
        _audience_steps,
        "The token was requested for another audience. **Signals:** `InvalidAudience`, "
        "`InvalidAuthenticationTokenAudience` (\"obtained for wrong audience or resource 'X'\"), or \"audience is "
        "incorrect (X)\" naming an audience other than `https://cognitiveservices.azure.com` (e.g. "
        "`https://ai.azure.com`, which project endpoints expect). The token is requested for "
        "`https://cognitiveservices.azure.com/.default`, or `https://ai.azure.com/.default` for project endpoints "
        "(the steps name the one for the call).",
    ),
    Cause(
        "token_invalid_or_expired", "token", False, "Token missing, invalid or expired", _token_summary,
        (
            FixStep(f"Request a fresh token for {STANDARD_SCOPE}; tokens expire after about an hour, so let the SDK "
                    "credential refresh them instead of caching one string", DOC_MANAGED_IDENTITY),
            FixStep("Send keys in the 'api-key' header, never as 'Authorization: Bearer <key>'", DOC_AI_SERVICES_AUTH),
            FixStep("Use the resource's custom-domain endpoint (https://<name>.openai.azure.com or "
                    "https://<name>.services.ai.azure.com), not a regional endpoint", DOC_AI_SERVICES_AUTH),
        ),
        "Missing, invalid or expired token, including an API key sent as `Authorization: Bearer <key>`. "
        "**Signals:** \"Unauthorized. Access token is missing, invalid, audience is incorrect "
        "(https://cognitiveservices.azure.com), or have expired.\" (medium confidence: it covers several cases), "
        "`ExpiredAuthenticationToken`, \"Lifetime validation failed\", \"invalid token\". A key caller getting this "
        "text sent its key as a bearer token (said in the evidence and summary).",
    ),
    Cause(
        "tenant_mismatch", "token", False, "Token issued by another tenant", _tenant_summary,
        (
            FixStep("Request the token from the resource's tenant (e.g. DefaultAzureCredential("
                    "additionally_allowed_tenants=...) or az login --tenant <resource tenant>)", DOC_AI_SERVICES_AUTH),
            FixStep("For a cross-tenant app, use a multi-tenant app registration consented in the resource's tenant",
                    DOC_AI_SERVICES_AUTH),
        ),
        "The token's tenant differs from the resource's. Comes back as **400** (\"Token tenant X does not match "
        "resource tenant\", code \"Tenant provided in token does not match resource token\"), or 401 "
        "`InvalidAuthenticationTokenTenant` (\"from the wrong issuer\"). The token tenant and, with evidence, the "
        "resource tenant are shown.",
    ),
    Cause(
        "invalid_api_key", "key", False, "Invalid API key (or wrong endpoint)",
        "The API key was rejected: it is not a key of this resource, or the endpoint is wrong.",
        (
            FixStep("Copy a current key from the resource's Keys and Endpoint page (keys may have been regenerated)",
                    DOC_AI_SERVICES_AUTH),
            FixStep("Check the endpoint: the key belongs to one resource; a key for another resource or a wrong "
                    "regional endpoint gives the same error", DOC_AI_SERVICES_AUTH),
            _ENTRA_INSTEAD,
        ),
        "\"Access denied due to invalid subscription key or wrong API endpoint.\" (401, code `401`; .NET may show "
        "`401 (PermissionDenied)` in its status line). The same text is returned for a **wrong endpoint** (a key of "
        "another resource or region): the evidence says so. A bare 401 from a key caller lands here at low "
        "confidence.",
    ),
    Cause(
        "missing_api_key", "key", False, "No API key or token sent",
        "The request carried no API key (and no bearer token).",
        (
            FixStep("Send the key in the 'api-key' header (or a bearer token); behind API Management also send "
                    "'Ocp-Apim-Subscription-Key'", DOC_AI_SERVICES_AUTH),
            _ENTRA_INSTEAD,
        ),
        "\"Access denied due to missing subscription key.\" (also API Management's `Ocp-Apim-Subscription-Key`).",
    ),
    Cause(
        "local_auth_disabled", "key", False, "Key sent to a resource with key auth disabled",
        "A key was sent to a resource whose key authentication is disabled; the caller must use Microsoft Entra ID.",
        (
            FixStep("Move the caller from keys to Microsoft Entra ID (managed identity + least-privilege data role)",
                    DOC_MANAGED_IDENTITY),
            FixStep("Keep key authentication disabled; re-enabling keys bypasses RBAC", DOC_DISABLE_LOCAL_AUTH),
        ),
        "A key was sent to a resource with key auth disabled: 403 `AuthenticationTypeDisabled` \"Key based "
        "authentication is disabled for this resource.\", or a key caller's 401/403 on a resource whose evidence "
        "says `disableLocalAuth=true`.",
    ),
    Cause(
        "network_denied", "network", False, "Blocked by firewall, VNet or private endpoint rules",
        "The resource's network rules (firewall, virtual network, private endpoint or disabled public access) "
        "refused the caller's network.",
        (
            FixStep("Allow the caller's network: add its public IP range or virtual network rule to the resource's "
                    "firewall", DOC_NETWORK),
            FixStep("Or call through the resource's private endpoint (check DNS resolves the host to the private IP)",
                    DOC_NETWORK),
            FixStep("If public network access is disabled, only private endpoints work; no role assignment helps",
                    DOC_NETWORK),
        ),
        "Firewall, virtual network, private endpoint or disabled public access. **Signals:** 403 \"Access denied due "
        "to Virtual Network/Firewall rules.\", \"A Virtual Network is configured for this resource\", \"Public "
        "access is disabled. Please configure private endpoint\", policy `ThrowExceptionDueToTrafficDenied`, an HTML "
        "403 page from a gateway (medium unless the resource's settings confirm it), or a bare 403 on a closed "
        "resource.",
    ),
    Cause(
        "endpoint_or_deployment_not_found", "endpoint", False, "Wrong endpoint or missing deployment",
        "The endpoint route or the deployment does not exist on this resource.",
        (
            FixStep("Check the deployment name (not the model name) and that it exists on this resource",
                    DOC_CREATE_DEPLOYMENT),
            FixStep("Check the endpoint route matches the SDK: https://<name>.openai.azure.com for AzureOpenAI, "
                    "https://<name>.services.ai.azure.com/models for Foundry Models", DOC_MODELS_ENTRA),
            FixStep("Check the api-version is supported", DOC_API_VERSIONS),
        ),
        "404 `DeploymentNotFound` (\"The API deployment for this resource does not exist\"), \"Resource not found\" "
        "(also a wrong or missing api-version), any other 404.",
    ),
    Cause(
        "blocked_or_other", "other", False, "Not an access problem (abuse block, API version, ...)", _blocked_summary,
        (
            FixStep("Read the service's message: abuse blocks, content filtering, quota and API versions are not "
                    "access problems", DOC_ABUSE),
            FixStep("Use a supported api-version for the deployment's model", DOC_API_VERSIONS),
        ),
        "Not an access problem: abuse blocks (\"temporarily blocked ... content policy\"), content filtering, \"API "
        "version not supported\", models enabled only for newer api-versions, throttling (429) and service errors "
        "(5xx). No role or key change helps.",
    ),
    Cause(
        "unknown", "unknown", False, "Unrecognised failure", _unknown_summary,
        (FixStep("Capture the full response body (code and message) and the request URL, then re-run the diagnosis",
                 None),),
        "Anything else, including Azure Resource Manager (control-plane) `AuthorizationFailed` errors, which a data "
        "role would not fix. No role is ever guessed for `unknown`.",
    ),
)

CAUSES: dict[str, Cause] = {c.id: c for c in _CAUSES}
CAUSE_IDS: tuple[str, ...] = tuple(c.id for c in _CAUSES)
ROLE_FIXABLE: frozenset[str] = frozenset(c.id for c in _CAUSES if c.role_fixable)
RBAC_CAUSES: frozenset[str] = frozenset(c.id for c in _CAUSES if c.family == "rbac")


def family_of(cause_id: str) -> str:
    cause = CAUSES.get(cause_id)
    return cause.family if cause else "unknown"
