"""Shared pieces of the fix wording: the Learn pages, surface names, the role command, durations, scope labels.

The per-cause text (summaries, steps) lives on the cause records in `shared.core.causes`; this module holds what
several causes share.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache

from shared.core import resource_ids
from shared.core.surfaces import LANGUAGE, MODELS, OPENAI, PROJECT, SPEECH, SURFACES

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
DOC_ENTRA_ERRORS = f"{_LEARN}/entra/identity-platform/reference-error-codes"
DOC_CREDENTIAL_TROUBLESHOOT = "https://aka.ms/azsdk/python/identity/defaultazurecredential/troubleshoot"
DOC_APP_MANAGED_IDENTITY = f"{_LEARN}/entra/identity/managed-identities-azure-resources/overview"
DOC_ON_YOUR_DATA = f"{_LEARN}/azure/ai-foundry/openai/how-to/on-your-data-configuration"
DOC_SEARCH_RBAC = f"{_LEARN}/azure/search/search-security-rbac"
DOC_STORAGE_RBAC = f"{_LEARN}/azure/storage/blobs/assign-azure-role-data-access"
DOC_ACCOUNT_IDENTITY = f"{_LEARN}/cli/azure/cognitiveservices/account/identity"
DOC_SEARCH_NETWORK = f"{_LEARN}/azure/search/service-configure-firewall"
DOC_STORAGE_NETWORK = f"{_LEARN}/azure/storage/common/storage-network-security"
DOC_KEYVAULT_NETWORK = f"{_LEARN}/azure/key-vault/general/network-security"
DOC_CUSTOM_SUBDOMAIN = f"{_LEARN}/azure/ai-services/cognitive-services-custom-subdomains"
DOC_MODEL_OPERATIONS = f"{_LEARN}/azure/ai-foundry/openai/concepts/models"
DOC_CONTENT_FILTER = f"{_LEARN}/azure/ai-foundry/openai/concepts/content-filter"
DOC_QUOTA = f"{_LEARN}/azure/ai-foundry/openai/quotas-limits"

SURFACE_TEXT = {s.id: s.label for s in SURFACES.values()}
DOC_SPEECH_RBAC = f"{_LEARN}/azure/ai-services/speech-service/role-based-access-control"
DOC_LANGUAGE_RBAC = f"{_LEARN}/azure/ai-services/language-service/concepts/role-based-access-control"
_SURFACE_DOC = {OPENAI: DOC_OPENAI_RBAC, MODELS: DOC_MODELS_ENTRA, PROJECT: DOC_FOUNDRY_RBAC,
                SPEECH: DOC_SPEECH_RBAC, LANGUAGE: DOC_LANGUAGE_RBAC}


def surface_text(surface: str | None) -> str:
    return SURFACE_TEXT.get(surface or "", "this endpoint")


def role_doc(surface: str | None) -> str:
    """The role guidance page of a surface; the AI Services authentication page for the others (known surfaces)."""
    if surface in _SURFACE_DOC:
        return _SURFACE_DOC[surface]
    return DOC_AI_SERVICES_AUTH if surface in SURFACES else DOC_OPENAI_RBAC


def role_command(object_id: str | None, principal_type: str, role_guid: str, scope: str | None) -> str:
    """The exact az command; placeholders stand in for what the signal did not carry."""
    return (
        "az role assignment create"
        f" --assignee-object-id {object_id or '<caller-object-id>'}"
        f" --assignee-principal-type {principal_type}"
        f" --role {role_guid}"
        f" --scope {scope or '<account-resource-id>'}"
    )


def other_role_command(assignee: str, role_guid: str, scope: str, principal_type: str = "ServicePrincipal") -> str:
    """The az command for a role the service never grants itself (another identity, another resource): the
    assignee and the scope may be shell expressions that look the ids up."""
    return (f"az role assignment create --assignee-object-id {assignee} --assignee-principal-type {principal_type} "
            f"--role {role_guid} --scope {scope}")


def account_identity(account: str | None, resource_group: str | None) -> str:
    """A shell expression for the account's system-assigned identity's principal id."""
    return (f'"$(az cognitiveservices account show --name {account or "<account>"} --resource-group '
            f'{resource_group or "<resource-group>"} --query identity.principalId -o tsv)"')


def project_identity(account: str | None, resource_group: str | None, project: str | None) -> str:
    """A shell expression for a Foundry project's managed identity's principal id."""
    return (f'"$(az cognitiveservices account project show --name {account or "<account>"} --resource-group '
            f'{resource_group or "<resource-group>"} --project-name {project or "<project>"} --query '
            'identity.principalId -o tsv)"')


def minutes(delta: timedelta) -> str:
    """A duration the way people say it: "4 min", "3 h", "12 days"."""
    total = int(delta.total_seconds() // 60)
    if total < 120:
        return f"{total} min"
    if total < 48 * 60:
        return f"{total // 60} h"
    return f"{total // (24 * 60)} days"


@lru_cache(maxsize=4096)
def where(scope: str | None, surface: str | None = None) -> str:
    """A short scope label for sentences (the full id is in the command): "on account x" / "on project x/p"."""
    if not scope:
        return "on the project" if surface == PROJECT else "on the account"
    target = resource_ids.parse(scope)
    if target is None:
        return f"at scope {scope}"
    if target.project_name is not None:
        return f"on project {target.account_name}/{target.project_name}"
    return f"on account {target.account_name}"
