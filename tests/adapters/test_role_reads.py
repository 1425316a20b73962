"""The two role reads through the ARM pipeline (RoleAssignments.list_for and .definitions) are the SDK's
`role_assignments.list_for_scope` and `role_definitions.list`: the same evidence from the same JSON over every page,
the same user agent, policies and API version, and the same exceptions for the same ARM answers, against the local
stand-in over HTTPS."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.authorization import AuthorizationManagementClient
from azure.mgmt.authorization.v2022_04_01.models import RoleAssignment, RoleDefinition

from localazure import FakeCredential
from shared.adapters.azure import AzureClients
from shared.adapters.role_assignments import ROLES_API_VERSION, ArmRecord, RoleAssignments, to_evidence
from shared.core import roles
from shared.settings import Settings

SP = "6b000000-0000-4000-8000-000000000001"
USER = "6b000000-0000-4000-8000-000000000002"
GROUP = "6b000000-0000-4000-8000-000000000003"
OPENAI_USER = roles.COGNITIVE_SERVICES_OPENAI_USER.guid
FOUNDRY_USER = roles.FOUNDRY_USER.guid
ASSIGNMENT = {"id": "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/a1", "name": "a1",
              "type": "Microsoft.Authorization/roleAssignments",
              "properties": {"scope": "/subscriptions/s", "principalId": SP.upper(), "principalType": "Group",
                             "roleDefinitionId": f"/subscriptions/s/providers/x/roleDefinitions/{OPENAI_USER}",
                             "createdOn": "2025-03-04T05:06:07.123456789Z", "description": "d", "condition": None}}
DEFINITION = {"id": f"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{OPENAI_USER}",
              "name": OPENAI_USER, "type": "Microsoft.Authorization/roleDefinitions",
              "properties": {"roleName": "R", "type": "CustomRole", "createdOn": "2024-01-02T03:04:05+02:00",
                             "permissions": [{"actions": ["a/*"], "dataActions": ["d/*"], "notDataActions": ["n"]},
                                             {"notActions": ["x"]}]}}
ASSIGNMENT_ATTRIBUTES = ("id", "name", "type", "scope", "principal_id", "principal_type", "role_definition_id",
                         "created_on", "updated_on", "description", "condition")


@pytest.mark.parametrize("body", [ASSIGNMENT, {"id": "x"}, {"id": "x", "properties": {}}],
                         ids=["full", "bare", "empty"])
def test_an_assignment_reads_as_the_sdk_model_reads_it(body):
    ours, theirs = ArmRecord(body), RoleAssignment.deserialize(body)
    assert [getattr(ours, a) for a in ASSIGNMENT_ATTRIBUTES] == [getattr(theirs, a) for a in ASSIGNMENT_ATTRIBUTES]
    assert to_evidence(ours, SP) == to_evidence(theirs, SP)


@pytest.mark.parametrize("body", [DEFINITION, {"id": "y", "properties": {"roleName": "R"}}], ids=["full", "bare"])
def test_a_definition_reads_as_the_sdk_model_reads_it(body):
    ours, theirs = ArmRecord(body), RoleDefinition.deserialize(body)
    for name in ("id", "name", "role_name", "role_type", "created_on", "description"):
        assert getattr(ours, name) == getattr(theirs, name)
    fields = ("actions", "not_actions", "data_actions", "not_data_actions")
    assert [[getattr(p, f) for f in fields] for p in ours.permissions or ()] == [
        [getattr(p, f) for f in fields] for p in theirs.permissions or ()]


def _clients(az):
    settings = Settings(arm_endpoint=az.arm_url, logs_endpoint=az.logs_url, ca_bundle=az.ca_path,
                        subscription_id=az.subscription_id)
    return AzureClients.from_settings(settings, FakeCredential(),
                                      client_options={"retry_backoff_factor": 0.01, "retry_total": 1})


def _sdk_reads(az):
    """The same adapter reading through the SDK's own operations (no pipeline given)."""
    client = AuthorizationManagementClient(FakeCredential(), az.subscription_id, base_url=az.arm_url,
                                           connection_verify=az.ca_path, retry_backoff_factor=0.01, retry_total=1)
    return RoleAssignments(client)


def test_the_reads_are_the_sdk_reads_over_every_page(local_azure_factory):
    az = local_azure_factory(None, page_size=2)
    az.add_principal(USER, type="User", groups=[GROUP])
    az.add_principal(GROUP, type="Group")
    accounts = [az.add_account(f"acct-{i}") for i in range(3)]
    for account in accounts:
        az.add_assignment(USER, OPENAI_USER, account)
    az.add_assignment(GROUP, FOUNDRY_USER, f"/subscriptions/{az.subscription_id}")
    az.add_custom_role("Reader of models", data_actions=["Microsoft.CognitiveServices/accounts/OpenAI/*/read"])
    scope = f"/subscriptions/{az.subscription_id}"
    clients = _clients(az)
    ours = clients.roles.list_for(USER, scope)
    assert len(ours) == 4 and ours == _sdk_reads(az).list_for(USER, scope)
    assert clients.roles.definitions(az.subscription_id) == _sdk_reads(az).definitions(az.subscription_id)
    assert clients.calls.count("arm", "GET") == az.calls.count(service="arm", route="roleAssignments.list") // 2 + (
        az.calls.count(service="arm", route="roleDefinitions.list") // 2)


def test_the_pipeline_api_version_and_user_agent_are_the_sdk_clients(local_azure_factory):
    clients = _clients(local_azure_factory(None))
    sdk = AuthorizationManagementClient(clients.config.credential, "s", **clients.config.arm_kwargs())
    assert ROLES_API_VERSION == sdk._get_api_version("role_assignments") == sdk._get_api_version("role_definitions")
    pipeline = clients.config.arm_pipeline("azure-mgmt-authorization", multi_api=True)

    def described(client):
        chain = [getattr(p, "_policy", p) for p in client._pipeline._impl_policies]
        return [type(p).__name__ for p in chain], [p.user_agent for p in chain if hasattr(p, "user_agent")]

    assert described(pipeline) == described(sdk._client)


@pytest.mark.parametrize("status", [401, 403, 404, 500])
def test_an_error_raises_what_the_sdk_raises(local_azure_factory, status):
    az = local_azure_factory(None)
    az.add_principal(SP)
    az.faults.add(service="arm", route="roleAssignments.list", status=status, times=None)
    az.faults.add(service="arm", route="roleDefinitions.list", status=status, times=None)
    scope = f"/subscriptions/{az.subscription_id}"
    for read in (lambda r: r.list_for(SP, scope), lambda r: r.definitions(az.subscription_id)):
        with pytest.raises(HttpResponseError) as ours:
            read(_clients(az).roles)
        with pytest.raises(HttpResponseError) as theirs:
            read(_sdk_reads(az))
        assert type(ours.value) is type(theirs.value)
        assert ours.value.status_code == theirs.value.status_code == status
        assert str(ours.value) == str(theirs.value)
        assert getattr(ours.value.error, "code", None) == getattr(theirs.value.error, "code", None)
