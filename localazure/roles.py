"""Built-in Azure role definitions as the stand-in serves them, with their real GUIDs and permissions.

Permissions follow the Learn built-in roles pages (azure-facts section 3), abridged to what matters here:
the data actions that decide data-plane access and the `Microsoft.Authorization/roleAssignments/*` actions that
decide who may assign roles. This module is deliberately independent of `shared/`: the stand-in is the world
the service is tested against, not a copy of the service's own beliefs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

CS = "Microsoft.CognitiveServices"
OPENAI_DATA = f"{CS}/accounts/OpenAI"
ROLE_ASSIGNMENT_WRITE = "Microsoft.Authorization/roleAssignments/write"
ROLE_ASSIGNMENT_DELETE = "Microsoft.Authorization/roleAssignments/delete"


@dataclass(frozen=True)
class RoleDefinition:
    guid: str
    name: str
    description: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()
    aliases: tuple[str, ...] = field(default=(), compare=False)

    def allows_action(self, action: str) -> bool:
        return _granted(action, self.actions, self.not_actions)

    def allows_data_action(self, data_action: str) -> bool:
        return _granted(data_action, self.data_actions, self.not_data_actions)


@lru_cache(maxsize=512)
def _pattern(permission: str) -> re.Pattern[str]:
    # Azure permission strings use `*` as a wildcard that may span "/" segments; matching is case-insensitive.
    return re.compile("^" + ".*".join(re.escape(p) for p in permission.split("*")) + "$", re.IGNORECASE)


def permission_matches(permission: str, operation: str) -> bool:
    return bool(_pattern(permission).match(operation))


def _granted(operation: str, allowed: tuple[str, ...], denied: tuple[str, ...]) -> bool:
    return any(permission_matches(p, operation) for p in allowed) and not any(
        permission_matches(p, operation) for p in denied
    )


_OPENAI_USER_DATA = (
    f"{OPENAI_DATA}/*/read",
    f"{OPENAI_DATA}/engines/completions/action",
    f"{OPENAI_DATA}/engines/search/action",
    f"{OPENAI_DATA}/engines/generate/action",
    f"{OPENAI_DATA}/deployments/audio/action",
    f"{OPENAI_DATA}/deployments/search/action",
    f"{OPENAI_DATA}/deployments/completions/action",
    f"{OPENAI_DATA}/deployments/chat/completions/action",
    f"{OPENAI_DATA}/deployments/extensions/chat/completions/action",
    f"{OPENAI_DATA}/deployments/embeddings/action",
    f"{OPENAI_DATA}/deployments/realtime/action",
    f"{OPENAI_DATA}/images/generations/action",
    f"{OPENAI_DATA}/assistants/*",
    f"{OPENAI_DATA}/responses/*",
)
_READ_AUTHZ = ("Microsoft.Authorization/*/read",)
_MONITORING_READS = (
    "Microsoft.Insights/alertRules/read",
    "Microsoft.Insights/diagnosticSettings/read",
    "Microsoft.Insights/logDefinitions/read",
    "Microsoft.Insights/metricdefinitions/read",
    "Microsoft.Insights/metrics/read",
    "Microsoft.ResourceHealth/availabilityStatuses/read",
    "Microsoft.Resources/deployments/operations/read",
    "Microsoft.Resources/subscriptions/operationresults/read",
    "Microsoft.Resources/subscriptions/read",
    "Microsoft.Resources/subscriptions/resourceGroups/read",
    "Microsoft.Support/*",
)

BUILT_IN: tuple[RoleDefinition, ...] = (
    RoleDefinition(
        "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",
        "Cognitive Services OpenAI User",
        "Read access to view files, models, deployments. The ability to create completion and embedding calls.",
        actions=(f"{CS}/*/read", "Microsoft.Authorization/roleAssignments/read",
                 "Microsoft.Authorization/roleDefinitions/read"),
        data_actions=_OPENAI_USER_DATA,
        not_data_actions=(f"{OPENAI_DATA}/stored-completions/read",),
    ),
    RoleDefinition(
        "a001fd3d-188f-4b5d-821b-7da978bf7442",
        "Cognitive Services OpenAI Contributor",
        "Full access including the ability to fine-tune, deploy and generate text",
        actions=(f"{CS}/*/read", f"{CS}/accounts/deployments/write", f"{CS}/accounts/deployments/delete",
                 f"{CS}/accounts/raiPolicies/read", f"{CS}/accounts/raiPolicies/write",
                 f"{CS}/accounts/raiPolicies/delete", "Microsoft.Authorization/roleAssignments/read",
                 "Microsoft.Authorization/roleDefinitions/read"),
        data_actions=(f"{OPENAI_DATA}/*",),
    ),
    RoleDefinition(
        "a97b65f3-24c7-4388-baec-2e87135dc908",
        "Cognitive Services User",
        "Lets you read and list keys of Cognitive Services.",
        actions=(f"{CS}/*/read", f"{CS}/accounts/listkeys/action", *_MONITORING_READS),
        data_actions=(f"{CS}/*",),
    ),
    RoleDefinition(
        "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68",
        "Cognitive Services Contributor",
        "Lets you create, read, update, delete and manage keys of Cognitive Services.",
        actions=(*_READ_AUTHZ, f"{CS}/*", "Microsoft.Features/features/read",
                 "Microsoft.Features/providers/features/read", *_MONITORING_READS),
    ),
    RoleDefinition(
        "bba48692-92b0-4667-a9ad-c31c7b334ac2",
        "Cognitive Services Usages Reader",
        "Minimal permission to view Cognitive Services usages.",
        actions=(f"{CS}/locations/usages/read",),
    ),
    RoleDefinition(
        "53ca6127-db72-4b80-b1b0-d745d6d5456d",
        "Foundry User",
        "Grants reader access to Foundry projects and resources, and data actions to build and develop.",
        actions=(f"{CS}/*/read", *_READ_AUTHZ, f"{CS}/accounts/listkeys/action", "Microsoft.Resources/deployments/*"),
        data_actions=(f"{CS}/*",),
        aliases=("Azure AI User",),
    ),
    RoleDefinition(
        "eadc314b-1a2d-4efa-be10-5d325db5065e",
        "Foundry Project Manager",
        "Manage Foundry projects, build in them, and conditionally assign the Foundry User role.",
        actions=(f"{CS}/*/read", *_READ_AUTHZ, f"{CS}/accounts/projects/*", ROLE_ASSIGNMENT_WRITE,
                 ROLE_ASSIGNMENT_DELETE, "Microsoft.Resources/deployments/*"),
        data_actions=(f"{CS}/*",),
        aliases=("Azure AI Project Manager",),
    ),
    RoleDefinition(
        "e47c6f54-e4a2-4754-9501-8e0985b135e1",
        "Foundry Account Owner",
        "Manage Foundry accounts and conditionally assign the Foundry User role; no data actions.",
        actions=(f"{CS}/*", *_READ_AUTHZ, ROLE_ASSIGNMENT_WRITE, ROLE_ASSIGNMENT_DELETE,
                 "Microsoft.Resources/deployments/*"),
        aliases=("Azure AI Account Owner",),
    ),
    RoleDefinition(
        "c883944f-8b7b-4483-af10-35834be79c4a",
        "Foundry Owner",
        "Full access to Foundry resources and projects, including data actions.",
        actions=(f"{CS}/*", *_READ_AUTHZ, ROLE_ASSIGNMENT_WRITE, ROLE_ASSIGNMENT_DELETE,
                 "Microsoft.Resources/deployments/*"),
        data_actions=(f"{CS}/*",),
        aliases=("Azure AI Owner",),
    ),
    RoleDefinition(
        "8e3af657-a8ff-443c-a75c-2fe8c4bcb635",
        "Owner",
        "Grants full access to manage all resources, including the ability to assign roles in Azure RBAC.",
        actions=("*",),
    ),
    RoleDefinition(
        "b24988ac-6180-42a0-ab88-20f7382dd24c",
        "Contributor",
        "Grants full access to manage all resources, but does not allow you to assign roles in Azure RBAC.",
        actions=("*",),
        not_actions=("Microsoft.Authorization/*/Delete", "Microsoft.Authorization/*/Write",
                     "Microsoft.Authorization/elevateAccess/Action"),
    ),
    RoleDefinition(
        "acdd72a7-3385-48ef-bd42-f606fba81ae7",
        "Reader",
        "View all resources, but does not allow you to make any changes.",
        actions=("*/read",),
    ),
    RoleDefinition(
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        "User Access Administrator",
        "Lets you manage user access to Azure resources.",
        actions=("*/read", "Microsoft.Authorization/*", "Microsoft.Support/*"),
    ),
    RoleDefinition(
        "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        "Role Based Access Control Administrator",
        "Manage access to Azure resources by assigning roles using Azure RBAC.",
        actions=(ROLE_ASSIGNMENT_WRITE, ROLE_ASSIGNMENT_DELETE, "*/read", "Microsoft.Support/*"),
    ),
    # Azure ML / hub role. Its Cognitive Services data actions were not confirmed from documentation; the
    # stand-in grants it none, so it never authorizes Foundry projects (seed 002).
    RoleDefinition(
        "64702f94-c441-49e6-a78b-ef80e0188fee",
        "Azure AI Developer",
        "Can perform all actions within an Azure AI resource besides managing the resource itself.",
        actions=("Microsoft.MachineLearningServices/workspaces/*/read",
                 "Microsoft.MachineLearningServices/workspaces/*/action", *_READ_AUTHZ,
                 "Microsoft.Resources/deployments/*"),
    ),
)

BY_GUID: dict[str, RoleDefinition] = {r.guid: r for r in BUILT_IN}


def guid_of(role_definition_id: str) -> str:
    return role_definition_id.strip().rstrip("/").rsplit("/", 1)[-1].strip("{}").lower()


def resolve(name_or_id: str) -> RoleDefinition | None:
    """A built-in role by GUID, full role definition id, name or former name (case-insensitive)."""
    role = BY_GUID.get(guid_of(name_or_id))
    if role is not None:
        return role
    folded = name_or_id.strip().casefold()
    for r in BUILT_IN:
        if r.name.casefold() == folded or any(a.casefold() == folded for a in r.aliases):
            return r
    return None


def require(name_or_id: str) -> RoleDefinition:
    role = resolve(name_or_id)
    if role is None:
        raise ValueError(f"unknown built-in role {name_or_id!r}")
    return role
