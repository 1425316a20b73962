"""ARM JSON shapes: role assignments and role definitions (api 2022-04-01), Cognitive Services accounts and
projects as azure-mgmt-cognitiveservices 14.1.0 deserializes them."""

from __future__ import annotations

import hashlib
from datetime import datetime
from typing import Any

from localazure import scopes
from localazure.roles import RoleDefinition
from localazure.state import Account, Assignment, Project


def iso(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f") + "0Z"


def assignment(a: Assignment, default_subscription: str) -> dict[str, Any]:
    subscription = scopes.subscription_of(a.scope) or default_subscription
    return {
        "id": a.id,
        "name": a.name,
        "type": "Microsoft.Authorization/roleAssignments",
        "properties": {
            "roleDefinitionId": scopes.role_definition_id(subscription, a.role_guid),
            "principalId": a.principal_id,
            "principalType": a.principal_type,
            "scope": a.scope,
            "condition": a.condition,
            "conditionVersion": a.condition_version,
            "createdOn": iso(a.created_on),
            "updatedOn": iso(a.updated_on),
            "createdBy": a.created_by or None,
            "updatedBy": a.created_by or None,
            "delegatedManagedIdentityResourceId": None,
            "description": a.description,
        },
    }


def role_definition(role: RoleDefinition, subscription: str | None) -> dict[str, Any]:
    return {
        "id": scopes.role_definition_id(subscription, role.guid),
        "name": role.guid,
        "type": "Microsoft.Authorization/roleDefinitions",
        "properties": {
            "roleName": role.name,
            "type": "CustomRole" if role.custom else "BuiltInRole",
            "description": role.description,
            "assignableScopes": ["/"],
            "permissions": [
                {
                    "actions": list(role.actions),
                    "notActions": list(role.not_actions),
                    "dataActions": list(role.data_actions),
                    "notDataActions": list(role.not_data_actions),
                }
            ],
            "createdOn": "2015-02-02T21:55:09.8806423Z",
            "updatedOn": "2025-06-01T00:00:00.0000000Z",
            "createdBy": None,
            "updatedBy": None,
        },
    }


def _stable_hex(text: str, digits: int = 32) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:digits]


def account(a: Account) -> dict[str, Any]:
    endpoints = {"OpenAI Language Model Instance API": f"https://{a.openai_host}/"}
    if a.kind.lower() == "aiservices":
        endpoints.update({
            "AI Foundry API": f"https://{a.services_host}/",
            "Azure AI Model Inference API": f"https://{a.services_host}/",
            "Azure OpenAI Legacy API - Latest moniker": f"https://{a.openai_host}/",
        })
    connections = [
        {
            "id": f"{a.id}/privateEndpointConnections/{pe.rsplit('/', 1)[-1]}.{_stable_hex(pe, 8)}",
            "name": f"{pe.rsplit('/', 1)[-1]}.{_stable_hex(pe, 8)}",
            "type": "Microsoft.CognitiveServices/accounts/privateEndpointConnections",
            "location": a.location,
            "properties": {
                "privateEndpoint": {"id": pe},
                "privateLinkServiceConnectionState": {"status": "Approved", "description": "Auto-Approved",
                                                      "actionsRequired": "None"},
                "provisioningState": "Succeeded",
                "groupIds": ["account"],
            },
        }
        for pe in a.private_endpoints
    ]
    properties: dict[str, Any] = {
        "provisioningState": "Succeeded",
        "endpoint": a.endpoint,
        "endpoints": endpoints,
        "internalId": _stable_hex(a.id),
        "customSubDomainName": a.custom_subdomain,
        "networkAcls": {
            "defaultAction": a.default_action,
            "bypass": "AzureServices",
            "ipRules": [{"value": rule} for rule in a.ip_rules],
            "virtualNetworkRules": [
                {"id": rule, "state": "Succeeded", "ignoreMissingVnetServiceEndpoint": False}
                for rule in a.virtual_network_rules
            ],
        },
        "privateEndpointConnections": connections,
        "publicNetworkAccess": a.public_network_access,
        "disableLocalAuth": a.disable_local_auth,
        "dateCreated": "2025-01-15T09:30:00.0000000Z",
        "capabilities": [],
    }
    if a.kind.lower() == "aiservices":
        properties["allowProjectManagement"] = True
        properties["associatedProjects"] = [p.name for p in a.projects.values()]
        default = next((p.name for p in a.projects.values() if p.is_default), None)
        if default is None and a.projects:
            default = next(iter(a.projects.values())).name
        properties["defaultProject"] = default
    return {
        "id": a.id,
        "name": a.name,
        "type": "Microsoft.CognitiveServices/accounts",
        "etag": '"' + _stable_hex(a.id + str(properties), 16) + '"',
        "kind": a.kind,
        "location": a.location,
        "sku": {"name": "S0"},
        "tags": dict(a.tags),
        "identity": {"type": "None"},
        "properties": properties,
    }


def project(a: Account, p: Project) -> dict[str, Any]:
    return {
        "id": a.project_id(p.name),
        # ARM child resources of Cognitive Services carry "account/child" names [UNCONFIRMED for projects].
        "name": f"{a.name}/{p.name}",
        "type": "Microsoft.CognitiveServices/accounts/projects",
        "location": a.location,
        "tags": {},
        "identity": {
            "type": "SystemAssigned",
            "principalId": p.identity_principal_id or _uuid_from(a.project_id(p.name)),
            "tenantId": a.tenant_id or None,
        },
        "properties": {
            "provisioningState": "Succeeded",
            "displayName": p.display_name or p.name,
            "description": p.description,
            "endpoints": {"AI Foundry API": f"https://{a.services_host}/api/projects/{p.name}"},
            "isDefault": p.is_default,
        },
    }


def _uuid_from(text: str) -> str:
    h = _stable_hex(text)
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


DIAGNOSTIC_SETTING_NAME = "send-to-workspace"


def workspace_resource_id(subscription_id: str, workspace_id: str) -> str:
    """The ARM id the stand-in gives a workspace (diagnostic settings name their destination by it)."""
    return (f"/subscriptions/{subscription_id}/resourceGroups/rg-monitor/providers/"
            f"Microsoft.OperationalInsights/workspaces/law-{workspace_id[:8]}")


def diagnostic_settings(a: Account, workspace_arm_id: str) -> dict[str, Any]:
    """`GET {account}/providers/Microsoft.Insights/diagnosticSettings` (api 2021-05-01-preview): one setting
    sending the account's categories to the workspace, or none."""
    if not a.diagnostic_categories:
        return {"value": []}
    logs = [{"category": c, "categoryGroup": None, "enabled": True, "retentionPolicy": {"enabled": False, "days": 0}}
            for c in a.diagnostic_categories]
    return {"value": [{
        "id": f"{a.id}/providers/microsoft.insights/diagnosticSettings/{DIAGNOSTIC_SETTING_NAME}",
        "name": DIAGNOSTIC_SETTING_NAME,
        "type": "Microsoft.Insights/diagnosticSettings",
        "location": None,
        "properties": {"workspaceId": workspace_arm_id, "logAnalyticsDestinationType": None, "logs": logs,
                       "metrics": [{"category": "AllMetrics", "enabled": False, "timeGrain": None,
                                    "retentionPolicy": {"enabled": False, "days": 0}}]},
    }]}
