"""The human side of a diagnosis: one-sentence summaries, fix steps with their Learn pages, the role command.

Kept apart from the decision logic so wording can change without touching a rule, and so the rules stay short.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from shared.core.model import FixStep
from shared.core.roles import MODELS, OPENAI, PROJECT, Role

STANDARD_SCOPE = "https://cognitiveservices.azure.com/.default"
FOUNDRY_PROJECT_SCOPE = "https://ai.azure.com/.default"

_LEARN = "https://learn.microsoft.com"
DOC_OPENAI_RBAC = f"{_LEARN}/azure/ai-foundry/openai/how-to/role-based-access-control"
DOC_FOUNDRY_RBAC = f"{_LEARN}/azure/ai-foundry/concepts/rbac-foundry"
DOC_MODELS_ENTRA = f"{_LEARN}/azure/ai-foundry/foundry-models/how-to/configure-entra-id"
DOC_FOUNDRY_AUTH = f"{_LEARN}/azure/foundry/concepts/authentication-authorization-foundry"
DOC_RBAC_TROUBLESHOOT = f"{_LEARN}/azure/role-based-access-control/troubleshooting"
DOC_MI_GROUPS = (
    f"{_LEARN}/entra/identity/managed-identities-azure-resources/managed-identity-best-practice-recommendations"
)
DOC_MANAGED_IDENTITY = f"{_LEARN}/azure/ai-foundry/openai/how-to/managed-identity"
DOC_AI_SERVICES_AUTH = f"{_LEARN}/azure/ai-services/authentication"
DOC_DISABLE_LOCAL_AUTH = f"{_LEARN}/azure/ai-services/disable-local-auth"
DOC_NETWORK = f"{_LEARN}/azure/ai-services/cognitive-services-virtual-networks"
DOC_API_VERSIONS = f"{_LEARN}/azure/ai-foundry/openai/api-version-lifecycle"
DOC_ABUSE = f"{_LEARN}/azure/ai-foundry/openai/concepts/abuse-monitoring"
DOC_CREATE_DEPLOYMENT = f"{_LEARN}/azure/ai-foundry/openai/how-to/create-resource"
DOC_AZ_ROLE_CREATE = f"{_LEARN}/cli/azure/role/assignment#az-role-assignment-create"

SURFACE_TEXT = {
    OPENAI: "Azure OpenAI (/openai/...)",
    MODELS: "Foundry Models inference (/models)",
    PROJECT: "the Foundry project API (/api/projects/...)",
}
_SURFACE_DOC = {OPENAI: DOC_OPENAI_RBAC, MODELS: DOC_MODELS_ENTRA, PROJECT: DOC_FOUNDRY_RBAC}


def surface_text(surface: str | None) -> str:
    return SURFACE_TEXT.get(surface or "", "this endpoint")


def role_doc(surface: str | None) -> str:
    return _SURFACE_DOC.get(surface or "", DOC_OPENAI_RBAC)


def role_command(object_id: str | None, principal_type: str, role_guid: str, scope: str | None) -> str:
    """The exact az command; placeholders stand in for what the signal did not carry."""
    return (
        "az role assignment create"
        f" --assignee-object-id {object_id or '<caller-object-id>'}"
        f" --assignee-principal-type {principal_type}"
        f" --role {role_guid}"
        f" --scope {scope or '<account-resource-id>'}"
    )


def minutes(delta: timedelta) -> str:
    """A duration the way people say it: "4 min", "3 h", "12 days"."""
    total = int(delta.total_seconds() // 60)
    if total < 120:
        return f"{total} min"
    if total < 48 * 60:
        return f"{total // 60} h"
    return f"{total // (24 * 60)} days"


# ---- summaries (one sentence each) --------------------------------------------------------------------------


@lru_cache(maxsize=4096)
def where(scope: str | None, surface: str | None = None) -> str:
    """A short scope label for sentences (the full id is in the command): "on account x" / "on project x/p"."""
    if not scope:
        return "on the project" if surface == PROJECT else "on the account"
    parts = scope.rstrip("/").split("/")
    lowered = [p.lower() for p in parts]
    if len(parts) >= 4 and lowered[-2] == "projects" and lowered[-4] == "accounts":
        return f"on project {parts[-3]}/{parts[-1]}"
    if len(parts) >= 2 and lowered[-2] == "accounts":
        return f"on account {parts[-1]}"
    return f"at scope {scope}"


def summary_missing(role: Role | None, surface: str | None, scope: str | None, looked_up: bool) -> str:
    held = "holds no role" if looked_up else "appears to hold no role"
    if role is None:
        return (f"The caller is authenticated but {held} with the data action for this call; the endpoint surface "
                "is unknown, so no role is named.")
    return (f"The caller is authenticated but {held} with data access to {surface_text(surface)}; "
            f"assign {role.name} {where(scope, surface)}.")


def summary_control_plane(held: list[str], role: Role | None, scope: str | None, surface: str | None) -> str:
    names = ", ".join(held)
    tail = f"; assign {role.name} {where(scope, surface)}" if role else ""
    return (f"The caller holds only control-plane roles ({names}): control-plane roles (Owner/Contributor and the "
            f"like) grant no data access{tail}.")


def summary_wrong_surface(held: list[str], role: Role | None, surface: str | None, scope: str | None) -> str:
    tail = f"; assign {role.name} {where(scope, surface)}" if role else ""
    return f"The caller's data role ({', '.join(held)}) does not cover {surface_text(surface)}{tail}."


def summary_pending(held: str, age: timedelta, window: timedelta) -> str:
    return (f"{held} was assigned {minutes(age)} ago, inside the {minutes(window)} RBAC propagation window: "
            "wait and retry with a fresh token; do not assign it again.")


def summary_group_cache(held: str, role: Role | None, scope: str | None, surface: str | None) -> str:
    name = role.name if role else held
    return (f"The managed identity holds {held} only through a group, and group changes can take about 24 hours "
            f"to reach managed-identity tokens; assign {name} to the identity directly {where(scope, surface)}.")


def summary_present(held: str) -> str:
    return (f"The caller already holds {held} covering this resource, older than the propagation window: "
            "this is not a missing role.")


SUMMARIES = {
    "token_audience_invalid": "The token was issued for the wrong audience{audience}; request it for {scope}.",
    "token_invalid_or_expired": "The bearer token is missing, invalid or expired{key_note}; request a fresh token "
    "for {scope}.",
    "tenant_mismatch": "The token was issued by another tenant{tenant} than the resource's; request it from the "
    "resource's tenant.",
    "invalid_api_key": "The API key was rejected: it is not a key of this resource, or the endpoint is wrong.",
    "missing_api_key": "The request carried no API key (and no bearer token).",
    "local_auth_disabled": "A key was sent to a resource whose key authentication is disabled; the caller must use "
    "Microsoft Entra ID.",
    "network_denied": "The resource's network rules (firewall, virtual network, private endpoint or disabled public "
    "access) refused the caller's network.",
    "endpoint_or_deployment_not_found": "The endpoint route or the deployment does not exist on this resource.",
    "blocked_or_other": "Not an access problem: {what}; no role or key change helps.",
    "unknown": "The failure was not recognized{why}; no role is recommended.",
}


_BLOCKED_WHAT = (
    ("temporarily blocked", "abuse monitoring has temporarily blocked the resource"),
    ("content", "the content filter rejected the request"),
    ("api version", "the api-version is not supported for this call"),
    ("api-version", "the api-version is not supported for this call"),
    ("rate", "the request was throttled"),
    ("too many", "the request was throttled"),
    ("quota", "the quota is exhausted"),
)


def blocked_what(phrase: str) -> str:
    for marker, text in _BLOCKED_WHAT:
        if marker in phrase:
            return text
    return f"the service says {phrase!r}"


# ---- fix steps ---------------------------------------------------------------------------------------------


def steps_role(command: str, surface: str | None) -> tuple[FixStep, ...]:
    return (
        FixStep(f"Assign the least-privilege data role: {command}", DOC_AZ_ROLE_CREATE),
        FixStep("Which role each endpoint surface needs, and why Owner/Contributor are not enough", role_doc(surface)),
        FixStep("Allow up to 10 minutes for RBAC to propagate, then retry with a fresh token",
                DOC_RBAC_TROUBLESHOOT),
    )


def steps_group_cache(command: str, surface: str | None) -> tuple[FixStep, ...]:
    return (
        FixStep(f"Assign the role to the managed identity directly: {command}", DOC_AZ_ROLE_CREATE),
        FixStep("Managed identities cache group memberships for about 24 hours; do not rely on group changes",
                DOC_MI_GROUPS),
        FixStep("Role guidance for this endpoint surface", role_doc(surface)),
    )


STEPS_PENDING = (
    FixStep("Wait until the assignment is older than the propagation window, then retry", DOC_RBAC_TROUBLESHOOT),
    FixStep("Get a new access token (sign in again, or restart the client) so it carries the new grant",
            DOC_RBAC_TROUBLESHOOT),
    FixStep("Do not create the assignment again: a second assignment does not propagate faster", None),
)

STEPS_PRESENT = (
    FixStep("Check the call goes to the resource (and project) the role covers, not another account or region",
            DOC_FOUNDRY_AUTH),
    FixStep("Check for deny assignments, ABAC conditions or a custom role that removes the data action",
            DOC_RBAC_TROUBLESHOOT),
    FixStep("Get a new access token; if the role was changed recently the old token still carries the old state",
            DOC_RBAC_TROUBLESHOOT),
)


def steps_token_scope(scope: str) -> tuple[FixStep, ...]:
    return (
        FixStep(f"Request the token for {scope} (e.g. get_bearer_token_provider(credential, \"{scope}\"))",
                DOC_MANAGED_IDENTITY),
        FixStep("Send it as 'Authorization: Bearer <token>' to the resource's custom-domain endpoint",
                DOC_AI_SERVICES_AUTH),
    )


STEPS_TOKEN = (
    FixStep(f"Request a fresh token for {STANDARD_SCOPE}; tokens expire after about an hour, so let the SDK "
            "credential refresh them instead of caching one string", DOC_MANAGED_IDENTITY),
    FixStep("Send keys in the 'api-key' header, never as 'Authorization: Bearer <key>'", DOC_AI_SERVICES_AUTH),
    FixStep("Use the resource's custom-domain endpoint (https://<name>.openai.azure.com or "
            "https://<name>.services.ai.azure.com), not a regional endpoint", DOC_AI_SERVICES_AUTH),
)

STEPS_TENANT = (
    FixStep("Request the token from the resource's tenant (e.g. DefaultAzureCredential(additionally_allowed_tenants"
            "=...) or az login --tenant <resource tenant>)", DOC_AI_SERVICES_AUTH),
    FixStep("For a cross-tenant app, use a multi-tenant app registration consented in the resource's tenant",
            DOC_AI_SERVICES_AUTH),
)

STEPS_INVALID_KEY = (
    FixStep("Copy a current key from the resource's Keys and Endpoint page (keys may have been regenerated)",
            DOC_AI_SERVICES_AUTH),
    FixStep("Check the endpoint: the key belongs to one resource; a key for another resource or a wrong regional "
            "endpoint gives the same error", DOC_AI_SERVICES_AUTH),
    FixStep("Better: move the caller from keys to Microsoft Entra ID", DOC_MANAGED_IDENTITY),
)

STEPS_MISSING_KEY = (
    FixStep("Send the key in the 'api-key' header (or a bearer token); behind API Management also send "
            "'Ocp-Apim-Subscription-Key'", DOC_AI_SERVICES_AUTH),
    FixStep("Better: move the caller from keys to Microsoft Entra ID", DOC_MANAGED_IDENTITY),
)

STEPS_LOCAL_AUTH = (
    FixStep("Move the caller from keys to Microsoft Entra ID (managed identity + least-privilege data role)",
            DOC_MANAGED_IDENTITY),
    FixStep("Keep key authentication disabled; re-enabling keys bypasses RBAC", DOC_DISABLE_LOCAL_AUTH),
)

STEPS_NETWORK = (
    FixStep("Allow the caller's network: add its public IP range or virtual network rule to the resource's firewall",
            DOC_NETWORK),
    FixStep("Or call through the resource's private endpoint (check DNS resolves the host to the private IP)",
            DOC_NETWORK),
    FixStep("If public network access is disabled, only private endpoints work; no role assignment helps",
            DOC_NETWORK),
)

STEPS_NOT_FOUND = (
    FixStep("Check the deployment name (not the model name) and that it exists on this resource",
            DOC_CREATE_DEPLOYMENT),
    FixStep("Check the endpoint route matches the SDK: https://<name>.openai.azure.com for AzureOpenAI, "
            "https://<name>.services.ai.azure.com/models for Foundry Models", DOC_MODELS_ENTRA),
    FixStep("Check the api-version is supported", DOC_API_VERSIONS),
)

STEPS_BLOCKED = (
    FixStep("Read the service's message: abuse blocks, content filtering, quota and API versions are not access "
            "problems", DOC_ABUSE),
    FixStep("Use a supported api-version for the deployment's model", DOC_API_VERSIONS),
)

STEPS_UNKNOWN = (
    FixStep("Capture the full response body (code and message) and the request URL, then re-run the diagnosis",
            None),
)
