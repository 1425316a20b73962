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
  `service_status` (a throttling or service-error status), `subcause` (of `blocked_or_other`), `control_plane`,
  `engine_error`;
- another identity refused: `who`, `needs` (role names), `on` (the resource), `commands`, `doc`;
- sign-in: `problem` (an AADSTS code or a credential problem, keys of SIGN_IN_PROBLEMS), `token_scope`;
- endpoints: `where` (a key of WRONG_ENDPOINTS); dependencies: `service`, `account`, `resource_group`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from functools import lru_cache
from typing import Any

from shared.core.fixes import (
    DOC_ABUSE,
    DOC_ACCOUNT_IDENTITY,
    DOC_AI_SERVICES_AUTH,
    DOC_API_VERSIONS,
    DOC_APP_MANAGED_IDENTITY,
    DOC_AZ_ROLE_CREATE,
    DOC_CONTENT_FILTER,
    DOC_CREATE_DEPLOYMENT,
    DOC_CREDENTIAL_TROUBLESHOOT,
    DOC_CUSTOM_SUBDOMAIN,
    DOC_DISABLE_LOCAL_AUTH,
    DOC_ENTRA_ERRORS,
    DOC_FOUNDRY_AUTH,
    DOC_KEYVAULT_NETWORK,
    DOC_MANAGED_IDENTITY,
    DOC_MI_GROUPS,
    DOC_MODEL_OPERATIONS,
    DOC_MODELS_ENTRA,
    DOC_NETWORK,
    DOC_ON_YOUR_DATA,
    DOC_QUOTA,
    DOC_RBAC_TROUBLESHOOT,
    DOC_SEARCH_NETWORK,
    DOC_STORAGE_NETWORK,
    FOUNDRY_PROJECT_SCOPE,
    STANDARD_SCOPE,
    minutes,
    role_doc,
    surface_text,
    where,
)
from shared.core.model import FixStep
from shared.core.roles import COGNITIVE_SERVICES_USER, GRANTABLE, Role
from shared.core.surfaces import SURFACES

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


def _role_note(role: Role | None, surface: str | None) -> tuple[FixStep, ...]:
    """What to know about the role named: Cognitive Services User is broad; narrower built-ins are not granted here."""
    return () if role is None else _role_note_of(role.guid, role.name, surface)


@lru_cache(maxsize=256)
def _role_note_of(guid: str, name: str, surface: str | None) -> tuple[FixStep, ...]:
    spec = SURFACES.get(surface or "")
    if spec is None:
        return ()
    if guid == COGNITIVE_SERVICES_USER.guid:
        return (FixStep(f"Cognitive Services User is the narrowest built-in role for {spec.label}, and it grants every "
                        "Cognitive Services data action (Microsoft.CognitiveServices/*); a custom role with "
                        f"{spec.namespaces[0].rstrip('/')}/* only is narrower", role_doc(surface)),)
    if guid not in GRANTABLE:
        return (FixStep(f"{name} is the least-privilege built-in role here, but the service grants only Cognitive "
                        "Services OpenAI User, Cognitive Services User and Foundry User itself: this is ticketed with "
                        "the command", role_doc(surface)),)
    return ()


def _role_steps(*, command: str, surface: str | None, role: Role | None = None, **_) -> Steps:
    return (
        FixStep(f"Assign the least-privilege data role: {command}", DOC_AZ_ROLE_CREATE),
        *_role_note(role, surface),
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


# Sub-causes of `blocked_or_other` (messages.py finds them): what the service said, and its fix.
SUBCAUSES: dict[str, tuple[str, tuple[FixStep, ...]]] = {
    "abuse_blocked": ("abuse monitoring has temporarily blocked the resource",
                      (FixStep("Review the abuse-monitoring notice; the block lifts after review, no access change "
                               "helps", DOC_ABUSE),)),
    "content_filtered": ("the content filter rejected the request",
                         (FixStep("Change the prompt, or review the deployment's content filter configuration",
                                  DOC_CONTENT_FILTER),)),
    "operation_not_supported": ("the deployment's model does not support this operation (OperationNotSupported: "
                                "e.g. embeddings on a chat model, chat completions on an embeddings model)",
                                (FixStep("Call a deployment whose model supports the operation (an embeddings model "
                                         "for /embeddings, a chat model for /chat/completions)", DOC_MODEL_OPERATIONS),
                                 FixStep("Check the deployment name the client sends: it picks the model",
                                         DOC_CREATE_DEPLOYMENT))),
    "request_headers_too_large": ("HTTP 431, the request headers are too large for the service or a proxy in "
                                  "front of it (usually a token: one with many group claims, or a token sent in "
                                  "the api-key header)",
                                  (FixStep("Send keys in the 'api-key' header and tokens only as 'Authorization: "
                                           "Bearer <token>'", DOC_AI_SERVICES_AUTH),
                                   FixStep("Use a managed identity or an app registration without group claims, so "
                                           "the token stays small; drop large custom headers and cookies",
                                           DOC_MANAGED_IDENTITY))),
    "api_version": ("the api-version is not supported for this call",
                    (FixStep("Use a supported api-version for the deployment's model", DOC_API_VERSIONS),)),
    "throttled": ("the request was throttled",
                  (FixStep("Retry after the Retry-After delay; raise the deployment's rate limit if it persists",
                           DOC_QUOTA),)),
    "quota": ("the quota is exhausted",
              (FixStep("Raise the quota or the deployment's capacity", DOC_QUOTA),)),
    "service_error": ("the service returned an error of its own",
                      (FixStep("Retry with backoff; check Azure status if it persists", None),)),
}
_BLOCKED_DEFAULT_STEPS = (
    FixStep("Read the service's message: abuse blocks, content filtering, quota and API versions are not "
            "access problems", DOC_ABUSE),
    FixStep("Use a supported api-version for the deployment's model", DOC_API_VERSIONS),
)


def _blocked_summary(*, phrase: str = "", service_status: int | None = None, subcause: str | None = None,
                     **_) -> str:
    if subcause in SUBCAUSES:
        what = SUBCAUSES[subcause][0]
        if service_status is not None:
            what = f"HTTP {service_status}: {what}"
    elif service_status is not None:
        what = f"HTTP {service_status} is a throttling or service error"
    else:
        what = f"the service says {phrase!r}"
    return f"Not an access problem: {what}; no role or key change helps."


def _blocked_steps(*, subcause: str | None = None, **_) -> Steps:
    return SUBCAUSES[subcause][1] if subcause in SUBCAUSES else _BLOCKED_DEFAULT_STEPS


# ---- no token was issued ---------------------------------------------------------------------------------

# What each sign-in failure means and its fix: AADSTS codes (Entra ID's error codes) and azure-identity's
# credential-chain messages. `{scope}` is the token scope for the call.
SIGN_IN_PROBLEMS: dict[str, tuple[str, str]] = {
    "AADSTS70011": ("the requested scope is not valid (a bare resource URL, or a scope list Entra cannot read)",
                    "request the token for {scope} (the resource followed by /.default)"),
    "AADSTS1002012": ("the scope names a delegated permission (user_impersonation) in a client-credentials flow",
                      "request the token for {scope}"),
    "AADSTS500011": ("the resource in the scope does not exist in the tenant (a typo in the scope, or the wrong "
                     "tenant)", "request the token for {scope} from the resource's tenant"),
    "AADSTS7000215": ("the client secret is wrong (its ID was sent instead of its value, or it was mistyped)",
                      "send the secret's Value, or create a new secret; better, use a managed identity"),
    "AADSTS7000222": ("the client secret has expired",
                      "create a new secret (az ad app credential reset --id <app-id>) and update the app's settings; "
                      "better, use a managed identity or a certificate"),
    "AADSTS700016": ("the application (client) id is not found in the tenant (an object id was used, or the wrong "
                     "tenant)", "use the app registration's Application (client) ID and the tenant that holds it "
                                "(AZURE_CLIENT_ID, AZURE_TENANT_ID)"),
    "AADSTS90002": ("the tenant was not found (a wrong tenant id or domain, or another cloud's authority)",
                    "set the resource's Directory (tenant) ID (AZURE_TENANT_ID, or az login --tenant <tenant-id>)"),
    "AADSTS900023": ("the tenant identifier is malformed",
                     "set the resource's Directory (tenant) ID (AZURE_TENANT_ID, or az login --tenant <tenant-id>)"),
    "AADSTS50020": ("the user account is from another tenant and is not a guest of the resource's tenant",
                    "sign in to the resource's tenant (az login --tenant <tenant-id>) with an account it holds, or "
                    "invite the user as a guest"),
    "AADSTS50034": ("the user account does not exist in the tenant",
                    "sign in with an account of the resource's tenant (az login --tenant <tenant-id>)"),
    "AADSTS50126": ("the user name or password is wrong", "sign in again; services should use a managed identity"),
    "AADSTS50076": ("multi-factor authentication is required",
                    "sign in interactively (az login); services should use a managed identity"),
    "AADSTS50079": ("multi-factor authentication registration is required",
                    "sign in interactively (az login) and register; services should use a managed identity"),
    "AADSTS53003": ("Conditional Access blocked the sign-in",
                    "ask the tenant's identity administrators which policy applies; use a managed identity"),
    "AADSTS65001": ("the application has not been consented to in the tenant", "grant admin consent for it"),
    "AADSTS700024": ("the client assertion is outside its valid time range (an expired federated token, or clock "
                     "skew)", "get a fresh federated token for each request and check the clock"),
    "AADSTS70021": ("no federated identity credential matches the token's issuer and subject",
                    "add a federated credential with the exact issuer and subject (service account, branch, ...)"),
    "AADSTS700213": ("no federated identity credential matches the token's issuer and subject",
                     "add a federated credential with the exact issuer and subject (service account, branch, ...)"),
    "AADSTS70043": ("the refresh token expired or was revoked (or sign-in frequency was enforced)",
                    "sign in again (az login)"),
    "AADSTS700082": ("the refresh token expired because it was not used", "sign in again (az login)"),
    "AADSTS50058": ("no user is signed in for a silent token request", "sign in interactively first"),
    "mi_not_assigned": ("the managed identity the code asked for (by client id) is not assigned to the compute it "
                        "runs on", "assign that user-assigned identity to the app (e.g. az webapp identity assign "
                                   "--identities <identity-id>), or set AZURE_CLIENT_ID to an identity it has"),
    "no_managed_identity": ("no managed identity is available where the code runs (the managed identity endpoint "
                            "did not answer: it runs outside Azure, or the compute has no identity)",
                            "enable a managed identity on the compute (e.g. az webapp identity assign); locally, "
                            "sign in with az login"),
    "credential_chain": ("DefaultAzureCredential tried every credential and none issued a token",
                         "on Azure, enable the compute's managed identity (and set AZURE_CLIENT_ID for a "
                         "user-assigned one); locally, run az login --tenant <tenant-id>"),
    "not_signed_in": ("the Azure CLI credential is not signed in", "run az login --tenant <tenant-id>"),
    "client_secret": ("the service principal's credentials were refused",
                      "check the client id, the tenant id and the secret's value; better, use a managed identity"),
    "workload_identity": ("the workload identity federation exchange failed",
                          "check the federated credential's issuer and subject and the workload's client id"),
}


def sign_in_problem(problem: str | None, scope: str = STANDARD_SCOPE) -> tuple[str, str]:
    """(what is wrong, the fix) for a sign-in problem key; an unlisted AADSTS code gets Entra's error page."""
    if problem in SIGN_IN_PROBLEMS:
        what, fix = SIGN_IN_PROBLEMS[problem]
        return what, fix.format(scope=scope)
    code = problem[6:] if problem and problem.startswith("AADSTS") else ""
    page = f"https://login.microsoftonline.com/error?code={code}" if code else DOC_ENTRA_ERRORS
    return "Entra ID refused to issue the token", f"look the error up ({page}) and fix the sign-in it names"


def _sign_in_summary(*, problem: str | None = None, token_scope: str = STANDARD_SCOPE, **_) -> str:
    what, fix = sign_in_problem(problem, token_scope)
    code = f" ({problem})" if problem and problem.startswith("AADSTS") else ""
    return f"No token was issued{code}: {what}; {fix}."


def _sign_in_steps(*, problem: str | None = None, token_scope: str = STANDARD_SCOPE, **_) -> Steps:
    fix = sign_in_problem(problem, token_scope)[1]
    doc = DOC_ENTRA_ERRORS if problem and problem.startswith("AADSTS") else DOC_CREDENTIAL_TROUBLESHOOT
    return (
        FixStep(fix[:1].upper() + fix[1:], doc),
        FixStep(f"Request the token for {token_scope} (project endpoints: {FOUNDRY_PROJECT_SCOPE})",
                DOC_MANAGED_IDENTITY),
        FixStep("No role assignment helps until a token is issued; prefer a managed identity for services",
                DOC_APP_MANAGED_IDENTITY),
    )


# ---- the request reached another service -------------------------------------------------------------------

WRONG_ENDPOINTS: dict[str, str] = {
    "public_openai": "the request went to the public OpenAI API (api.openai.com), where Azure keys and tokens are "
                     "not valid",
    "regional": "token authentication went to a regional endpoint (<region>.api.cognitive.microsoft.com), which "
                "accepts keys only; tokens need the resource's custom-subdomain endpoint",
    "azure_ml": "the request went to an Azure Machine Learning or serverless endpoint, not to the AI Services "
                "resource",
}
_ENDPOINT_FORMS = (
    FixStep("AzureOpenAI client (OpenAI models): azure_endpoint=https://<resource>.openai.azure.com; the OpenAI client "
            "with base_url=https://<resource>.openai.azure.com/openai/v1/", DOC_MODELS_ENTRA),
    FixStep("Azure AI Inference SDK (any Foundry model): https://<resource>.services.ai.azure.com/models with "
            f"model=<deployment>, token scope {STANDARD_SCOPE}", DOC_MODELS_ENTRA),
    FixStep("Foundry project SDK: https://<resource>.services.ai.azure.com/api/projects/<project>, token scope "
            f"{FOUNDRY_PROJECT_SCOPE}", DOC_FOUNDRY_AUTH),
)


def _wrong_endpoint_summary(*, where: str | None = None, **_) -> str:
    what = WRONG_ENDPOINTS.get(where or "", "the request did not reach the resource")
    return f"Wrong endpoint: {what}; use the resource's own endpoint for the SDK in use."


def _wrong_endpoint_steps(*, where: str | None = None, **_) -> Steps:
    if where == "regional":
        return (FixStep("Use the resource's custom-subdomain endpoint (https://<resource>.cognitiveservices.azure.com "
                        "or https://<resource>.openai.azure.com); a resource without one needs it generated first "
                        "(it cannot be changed later)", DOC_CUSTOM_SUBDOMAIN), *_ENDPOINT_FORMS)
    return _ENDPOINT_FORMS


# ---- another identity than the caller, the account's own identity and its dependencies ------------------------

DEPENDENCY_LABELS = {"search": "Azure AI Search", "storage": "Azure Storage", "keyvault": "Azure Key Vault"}


def _other_summary(*, who: str = "another identity", needs: str = "the role the error names",
                   on: str = "the resource", **_) -> str:
    return (f"The identity that was refused is not the caller: {who} needs {needs} on {on}; the service never "
            "grants a role to another identity, so this is ticketed with the command.")


def _other_steps(*, commands: tuple[str, ...] = (), doc: str | None = None, **_) -> Steps:
    assign = [FixStep(f"Assign it: {command}", DOC_AZ_ROLE_CREATE) for command in commands]
    return (
        *(assign or [FixStep("Assign the role the error names to the identity it names", DOC_AZ_ROLE_CREATE)]),
        FixStep("A role for the caller does not help: the refused identity is another one", doc or DOC_ON_YOUR_DATA),
        FixStep("Allow up to 10 minutes for RBAC to propagate, then retry", DOC_RBAC_TROUBLESHOOT),
    )


def _identity_summary(*, account: str | None = None, **_) -> str:
    return (f"The managed identity the feature uses is not enabled on {account or 'the account'}: enable the "
            "account's system-assigned identity, then give it the roles the feature needs on its dependencies.")


def _identity_steps(*, account: str | None = None, resource_group: str | None = None, **_) -> Steps:
    command = (f"az cognitiveservices account identity assign --name {account or '<account>'} --resource-group "
               f"{resource_group or '<resource-group>'}")
    return (
        FixStep(f"Enable it: {command}", DOC_ACCOUNT_IDENTITY),
        FixStep("Then give that identity what the feature needs: on your data, Search Index Data Reader and Search "
                "Service Contributor on the Search service and Storage Blob Data Contributor on the storage account; "
                "customer-managed keys, get/wrap/unwrap on the key vault", DOC_ON_YOUR_DATA),
    )


def _downstream_summary(*, service: str | None = None, account: str | None = None, **_) -> str:
    label = DEPENDENCY_LABELS.get(service or "", "a dependency")
    return (f"{account or 'The account'}'s own call to {label} was refused by {label}'s network rules: not the "
            "caller's network and not a role; let the account through them.")


_DOWNSTREAM_STEPS = {
    "search": (FixStep("On the Search service's Networking page, allow Azure services on the trusted services list "
                       "(or add a shared private link to the account)", DOC_SEARCH_NETWORK),),
    "storage": (FixStep("Allow the account through the storage firewall: az storage account network-rule add "
                        "--account-name <storage> --resource-id <account-resource-id> --tenant-id <tenant-id> (or "
                        "--bypass AzureServices on az storage account update)", DOC_STORAGE_NETWORK),),
    "keyvault": (FixStep("Let trusted services through the key vault firewall: az keyvault update --name <vault> "
                         "--bypass AzureServices", DOC_KEYVAULT_NETWORK),),
}


def _downstream_steps(*, service: str | None = None, **_) -> Steps:
    return (
        *_DOWNSTREAM_STEPS.get(service or "", (FixStep("Allow the account through the dependency's network rules",
                                                      DOC_NETWORK),)),
        FixStep("The account calls its dependencies with its own managed identity: it also needs their data roles",
                DOC_ON_YOUR_DATA),
    )


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
        "\"Access denied due to missing subscription key.\" (also API Management's `Ocp-Apim-Subscription-Key`, and "
        "its \"missing application credentials or subscription key\" when the API also accepts a token).",
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
        _blocked_steps,
        "Not an access problem, though it can look like one (a 4xx from the same endpoint). The sub-cause is named in "
        "the summary and an evidence line: `abuse_blocked` (\"temporarily blocked ... content policy\"), "
        "`content_filtered`, `operation_not_supported` (400 `OperationNotSupported` \"The embeddings operation does "
        "not work with the specified model\"), `request_headers_too_large` (HTTP 431), `api_version` (\"API version "
        "not supported\", models enabled only for newer api-versions), `throttled` (429), `quota`, `service_error` "
        "(5xx). No role or key change helps.",
    ),
    Cause(
        "wrong_endpoint", "endpoint", False, "The request reached another service", _wrong_endpoint_summary,
        _wrong_endpoint_steps,
        "A refinement of `endpoint_or_deployment_not_found` (same family, so one incident): the request reached "
        "another service than the resource. **Signals:** the OpenAI platform's own body (\"Incorrect API key "
        "provided ... You can find your API key at https://platform.openai.com/account/api-keys\": the key is fine, "
        "the endpoint is api.openai.com); \"Please provide a custom subdomain for token authentication, otherwise "
        "API key is required\" or \"Please provide an authentication key\" (a token sent to a regional endpoint); "
        "or, without a decisive text, the endpoint's host: `api.openai.com`, `<region>.api.cognitive.microsoft.com` "
        "with a token, an Azure ML `*.inference.ml.azure.com` host for `/openai` calls. The steps give the endpoint "
        "form for each SDK (seed 001).",
    ),
    Cause(
        "token_acquisition_failed", "token", False, "No token was issued", _sign_in_summary, _sign_in_steps,
        "No token was ever issued, so the service never saw a request: an AADSTS error from Entra ID surfaced by the "
        "SDK, or a credential chain that found no credential (`DefaultAzureCredential failed to retrieve a token`, "
        "`ManagedIdentityCredential authentication unavailable`, \"Identity not found\"). These dominate client-side "
        "401s in Application Insights. The table below says what each code or message means and its fix; an "
        "unlisted AADSTS code links Entra's error page.",
    ),
    Cause(
        "other_principal_denied", "delegated", False, "The refused identity is not the caller", _other_summary,
        _other_steps,
        "The identity that was refused is not the logged caller: an error that names another principal than the "
        "caller, or a feature whose call is made with another identity: Azure OpenAI \"on your data\" (the account's "
        "own managed identity refused by Azure AI Search: \"Invalid AzureCognitiveSearch configuration detected: Call "
        "to get Azure Search index failed ... Azure Search Error: 403\", or by Storage: "
        "`AuthorizationPermissionMismatch`), a project's or agent's identity, a gateway's. The diagnosis names the "
        "identity, the role (often on another service: Search Index Data Reader, Search Service Contributor, "
        "Storage Blob Data Reader/Contributor), the scope and the `az role assignment create` command. Never a role "
        "for the caller and never granted by the service: it is ticketed. The on-your-data message also covers a "
        "Search firewall; without \"Authorization failed\" it is medium confidence.",
    ),
    Cause(
        "identity_not_enabled", "delegated", False, "The feature's managed identity is not enabled",
        _identity_summary, _identity_steps,
        "The managed identity a feature needs is not turned on: `ManagedIdentityIsNotEnabled` \"Managed Identity "
        "(MI) is not set for this account while the encryption key source is 'Microsoft.KeyVault', customer managed "
        "storage or Network Security Perimeter is used\" (on your data, customer-managed keys). The steps enable the "
        "account's system-assigned identity (`az cognitiveservices account identity assign`).",
    ),
    Cause(
        "downstream_network_denied", "delegated", False, "The account's call to a dependency was blocked by its "
        "network rules", _downstream_summary, _downstream_steps,
        "The service's own call to a dependency is blocked by that dependency's network rules (not the caller's "
        "network, not a role): Key Vault `ForbiddenByFirewall` \"Client address is not authorized and caller is not "
        "a trusted service\", Storage `AuthorizationFailure` \"This request is not authorized to perform this "
        "operation\" (without \"using this permission\", which is a role). Family `delegated`, with "
        "`other_principal_denied` and `identity_not_enabled`: the same dependency chain, fixed step by step, stays "
        "one incident.",
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
