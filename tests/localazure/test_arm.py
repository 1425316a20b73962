"""The ARM stand-in driven by the real AuthorizationManagementClient and CognitiveServicesManagementClient."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import requests
from azure.core.exceptions import HttpResponseError, ResourceExistsError, ResourceNotFoundError
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

from localazure import Clock, LocalAzure
from tests.support.azure import START, arm_auth_client, cognitive_client

pytestmark = pytest.mark.slow  # every test talks to a running stand-in

OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
CS_USER = "a97b65f3-24c7-4388-baec-2e87135dc908"
FOUNDRY_USER = "53ca6127-db72-4b80-b1b0-d745d6d5456d"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
RBAC_ADMIN = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"

DELEGATION_CONDITION = (
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/write'})) OR "
    f"(@Request[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
    f"{{{OPENAI_USER}, {FOUNDRY_USER}}} AND @Request[Microsoft.Authorization/roleAssignments:PrincipalType] "
    "ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'})) AND "
    "((!(ActionMatches{'Microsoft.Authorization/roleAssignments/delete'})) OR "
    f"(@Resource[Microsoft.Authorization/roleAssignments:RoleDefinitionId] ForAnyOfAnyValues:GuidEquals "
    f"{{{OPENAI_USER}, {FOUNDRY_USER}}} AND @Resource[Microsoft.Authorization/roleAssignments:PrincipalType] "
    "ForAnyOfAnyValues:StringEqualsIgnoreCase {'ServicePrincipal'}))"
)


@pytest.fixture(scope="module")
def az():
    with LocalAzure.start(clock=Clock.frozen(START)) as stand_in:
        stand_in.add_account("aoai", kind="OpenAI", resource_group="rg-a")
        stand_in.add_account("hub", kind="AIServices", resource_group="rg-a", projects=["p1", "p2"],
                             disable_local_auth=True, default_action="Deny", ip_rules=["203.0.113.0/24"])
        yield stand_in


@pytest.fixture(scope="module")
def client(az):
    return arm_auth_client(az, retry_backoff_factor=0.01)


def new_sp(az: LocalAzure, **kwargs) -> str:
    return az.add_principal(str(uuid.uuid4()), **kwargs).object_id


def params(az: LocalAzure, principal_id: str, role: str = OPENAI_USER, principal_type: str = "ServicePrincipal"):
    return RoleAssignmentCreateParameters(
        role_definition_id=f"/subscriptions/{az.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/{role}",
        principal_id=principal_id,
        principal_type=principal_type,
    )


def test_create_get_delete_round_trip(az, client):
    sp = new_sp(az)
    scope = az.account_id("aoai")
    name = str(uuid.uuid4())
    created = client.role_assignments.create(scope, name, params(az, sp))
    assert created.name == name and created.principal_id == sp and created.principal_type == "ServicePrincipal"
    assert created.role_definition_id.endswith(OPENAI_USER) and created.scope == scope
    assert created.created_on.isoformat().startswith("2025-06-01T12:00:00")
    assert client.role_assignments.get_by_id(created.id).name == name
    deleted = client.role_assignments.delete(scope, name)
    assert deleted is not None and deleted.name == name
    with pytest.raises(ResourceNotFoundError):
        client.role_assignments.get(scope, name)
    # Deleting what is already gone answers 204: the SDK returns None.
    assert client.role_assignments.delete(scope, name) is None


def test_same_principal_role_and_scope_under_another_name_is_409_with_existing_id(az, client):
    sp = new_sp(az)
    scope = az.account_id("aoai")
    first = client.role_assignments.create(scope, str(uuid.uuid4()), params(az, sp))
    with pytest.raises(ResourceExistsError) as info:
        client.role_assignments.create(scope, str(uuid.uuid4()), params(az, sp))
    assert info.value.status_code == 409
    assert info.value.error.code == "RoleAssignmentExists"
    assert first.name.replace("-", "") in info.value.error.message
    # A different role for the same principal and scope is a different assignment.
    other = client.role_assignments.create(scope, str(uuid.uuid4()), params(az, sp, role=CS_USER))
    assert other.name != first.name


def test_repeating_an_identical_put_is_idempotent(az, client):
    sp = new_sp(az)
    scope = az.account_id("aoai")
    name = str(uuid.uuid4())
    first = client.role_assignments.create(scope, name, params(az, sp))
    again = client.role_assignments.create(scope, name, params(az, sp))
    assert again.id == first.id


def test_reusing_a_name_with_other_properties_is_update_not_permitted(az, client):
    sp, other = new_sp(az), new_sp(az)
    scope = az.account_id("aoai")
    name = str(uuid.uuid4())
    client.role_assignments.create(scope, name, params(az, sp))
    with pytest.raises(HttpResponseError) as info:
        client.role_assignments.create(scope, name, params(az, other))
    assert info.value.status_code == 400 and info.value.error.code == "RoleAssignmentUpdateNotPermitted"


def test_unknown_principal_is_principal_not_found(az, client):
    with pytest.raises(HttpResponseError) as info:
        client.role_assignments.create(az.account_id("aoai"), str(uuid.uuid4()), params(az, str(uuid.uuid4())))
    assert info.value.status_code == 400 and info.value.error.code == "PrincipalNotFound"
    assert "replication delay" in info.value.error.message


def test_replicating_principal_is_not_found_until_replication_ends(az, client):
    sp = new_sp(az, replicating_until=az.clock.now() + timedelta(seconds=90))
    scope = az.account_id("aoai")
    with pytest.raises(HttpResponseError) as info:
        client.role_assignments.create(scope, str(uuid.uuid4()), params(az, sp))
    assert info.value.error.code == "PrincipalNotFound"
    az.clock.advance(91)
    assert client.role_assignments.create(scope, str(uuid.uuid4()), params(az, sp)).principal_id == sp


def test_declared_principal_type_must_match_the_directory(az, client):
    sp = new_sp(az)
    with pytest.raises(HttpResponseError) as info:
        # The SDK's default principal_type is "User": wrong for a service principal.
        client.role_assignments.create(az.account_id("aoai"), str(uuid.uuid4()),
                                       params(az, sp, principal_type="User"))
    assert info.value.status_code == 400 and info.value.error.code == "UnmatchedPrincipalType"
    assert "'ServicePrincipal'" in info.value.error.message and "'User'" in info.value.error.message


def test_unknown_role_definition_and_non_guid_name_are_rejected(az, client):
    sp = new_sp(az)
    with pytest.raises(HttpResponseError) as info:
        client.role_assignments.create(az.account_id("aoai"), str(uuid.uuid4()), params(az, sp, role=str(uuid.uuid4())))
    assert info.value.error.code == "RoleDefinitionDoesNotExist"
    with pytest.raises(HttpResponseError) as info:
        client.role_assignments.create(az.account_id("aoai"), "not-a-guid", params(az, sp))
    assert info.value.error.code == "InvalidRoleAssignmentId"


def test_missing_scopes_are_404(az, client):
    sp = new_sp(az)
    sub = f"/subscriptions/{az.subscription_id}"
    with pytest.raises(ResourceNotFoundError) as info:
        client.role_assignments.create(f"{sub}/resourceGroups/nope", str(uuid.uuid4()), params(az, sp))
    assert info.value.error.code == "ResourceGroupNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        client.role_assignments.create(az.account_id("aoai") + "x", str(uuid.uuid4()), params(az, sp))
    assert info.value.error.code == "ResourceNotFound"
    with pytest.raises(ResourceNotFoundError) as info:
        list(client.role_assignments.list_for_scope(az.project_id("hub", "nope")))
    assert info.value.error.code == "ResourceNotFound"


def test_own_identity_allowed_roles_and_types_forbid_other_writes(local_azure_factory):
    az = local_azure_factory({"settings": {"own_identity": {
        "allowed_roles": ["Cognitive Services OpenAI User", "Foundry User"],
        "allowed_principal_types": ["ServicePrincipal"]}}})
    az.add_account("aoai", resource_group="rg")
    client = arm_auth_client(az)
    sp = new_sp(az)
    user = az.add_principal(str(uuid.uuid4()), type="User").object_id
    scope = az.account_id("aoai")
    assert client.role_assignments.create(scope, str(uuid.uuid4()), params(az, sp)).principal_id == sp
    for forbidden in (params(az, sp, role=OWNER), params(az, user, principal_type="User")):
        with pytest.raises(HttpResponseError) as info:
            client.role_assignments.create(scope, str(uuid.uuid4()), forbidden)
        assert info.value.status_code == 403 and info.value.error.code == "AuthorizationFailed"
        assert "ABAC condition not fulfilled" in info.value.error.message
    # Delete is judged on the existing assignment (@Resource): one the service may not grant is not its to delete.
    owner_id = az.add_assignment(sp, OWNER, scope)
    with pytest.raises(HttpResponseError) as info:
        client.role_assignments.delete_by_id(owner_id)
    assert info.value.error.code == "AuthorizationFailed"


def test_abac_condition_on_the_delegation_assignment_is_enforced(local_azure_factory):
    own = str(uuid.uuid4())
    az = local_azure_factory({"settings": {"own_identity": {"principal_id": own, "use_assignments": True}}})
    az.add_account("aoai", resource_group="rg-x")
    az.add_account("other", resource_group="rg-y")
    az.add_principal(own)
    az.add_assignment(own, RBAC_ADMIN, "rg:rg-x", condition=DELEGATION_CONDITION)
    client = arm_auth_client(az)
    sp = new_sp(az)
    ok = client.role_assignments.create(az.account_id("aoai"), str(uuid.uuid4()), params(az, sp, role=FOUNDRY_USER))
    assert ok.created_by == own
    with pytest.raises(HttpResponseError) as info:  # a role outside the condition's list
        client.role_assignments.create(az.account_id("aoai"), str(uuid.uuid4()), params(az, sp, role=CS_USER))
    assert info.value.error.code == "AuthorizationFailed"
    with pytest.raises(HttpResponseError) as info:  # outside the delegated resource group
        client.role_assignments.create(az.account_id("other"), str(uuid.uuid4()), params(az, sp))
    assert info.value.error.code == "AuthorizationFailed"
    client.role_assignments.delete_by_id(ok.id)
    reader = az.add_assignment(sp, READER, az.account_id("aoai"))
    with pytest.raises(HttpResponseError):
        client.role_assignments.delete_by_id(reader)


def test_filters_follow_inheritance(az, client):
    sp = new_sp(az)
    group = az.add_principal(str(uuid.uuid4()), type="Group").object_id
    az.state.principal(sp).groups[group] = az.clock.now()
    sub = f"/subscriptions/{az.subscription_id}"
    at_sub = az.add_assignment(sp, READER, sub).rsplit("/", 1)[-1]
    at_account = az.add_assignment(sp, OPENAI_USER, az.account_id("hub")).rsplit("/", 1)[-1]
    at_project = az.add_assignment(sp, FOUNDRY_USER, az.project_id("hub", "p1")).rsplit("/", 1)[-1]
    via_group = az.add_assignment(group, CS_USER, az.account_id("hub")).rsplit("/", 1)[-1]

    def names(scope, flt):
        return {a.name for a in client.role_assignments.list_for_scope(scope, filter=flt)}

    account = az.account_id("hub")
    assert names(account, f"principalId eq '{sp}'") == {at_sub, at_account, at_project}
    assert names(account, f"atScope() and principalId eq '{sp}'") == {at_sub, at_account}
    assert names(az.project_id("hub", "p2"), f"principalId eq '{sp}'") == {at_sub, at_account}
    assert names(account, f"assignedTo('{sp}')") == {at_sub, at_account, at_project, via_group}
    assert {at_sub, at_account, via_group} <= names(account, "atScope()")
    assert at_project not in names(account, "atScope()")
    with pytest.raises(HttpResponseError) as info:
        names(account, "roleDefinitionId eq 'x'")
    assert info.value.status_code == 400 and info.value.error.code == "UnsupportedQuery"


def test_paging_follows_next_link(local_azure_factory):
    az = local_azure_factory(page_size=2)
    az.add_account("aoai", resource_group="rg")
    client = arm_auth_client(az)
    sp = new_sp(az)
    made = {az.add_assignment(sp, role, "account:aoai").rsplit("/", 1)[-1]
            for role in (OPENAI_USER, CS_USER, FOUNDRY_USER, READER, OWNER)}
    az.calls.reset()
    listed = [a.name for a in client.role_assignments.list_for_scope(az.account_id("aoai"),
                                                                      filter=f"principalId eq '{sp}'")]
    assert sorted(listed) == sorted(made) and len(listed) == len(set(listed))
    assert az.calls.count(service="arm", route="roleAssignments.list") == 3


def test_role_definitions_carry_real_guids_and_data_actions(az, client):
    scope = az.account_id("aoai")
    openai_user = client.role_definitions.get(scope, OPENAI_USER)
    assert openai_user.role_name == "Cognitive Services OpenAI User" and openai_user.role_type == "BuiltInRole"
    data = openai_user.permissions[0].data_actions
    assert "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action" in data
    assert not any("MaaS" in d or "AIServices" in d for d in data)
    owner = client.role_definitions.get_by_id(f"/subscriptions/{az.subscription_id}/providers/"
                                              f"Microsoft.Authorization/roleDefinitions/{OWNER}")
    assert owner.permissions[0].actions == ["*"] and owner.permissions[0].data_actions == []
    listed = {d.name: d.role_name for d in client.role_definitions.list(f"/subscriptions/{az.subscription_id}")}
    assert listed[FOUNDRY_USER] == "Foundry User" and listed[CS_USER] == "Cognitive Services User"
    assert [d.name for d in client.role_definitions.list(scope, filter="roleName eq 'Reader'")] == [READER]
    with pytest.raises(ResourceNotFoundError):
        client.role_definitions.get(scope, str(uuid.uuid4()))


def test_cognitive_services_accounts_and_projects(az):
    cs = cognitive_client(az)
    hub = cs.accounts.get("rg-a", "hub")
    assert hub.kind == "AIServices" and hub.id == az.account_id("hub")
    props = hub.properties
    assert props.disable_local_auth is True and props.public_network_access == "Enabled"
    assert props.network_acls.default_action == "Deny"
    assert [r.value for r in props.network_acls.ip_rules] == ["203.0.113.0/24"]
    assert props.custom_sub_domain_name == "hub" and props.endpoint == "https://hub.cognitiveservices.azure.com/"
    assert props.private_endpoint_connections == []
    projects = list(cs.projects.list("rg-a", "hub"))
    assert sorted(p.id for p in projects) == sorted([az.project_id("hub", "p1"), az.project_id("hub", "p2")])
    p1 = cs.projects.get("rg-a", "hub", "p1")
    assert p1.properties.endpoints["AI Foundry API"] == "https://hub.services.ai.azure.com/api/projects/p1"
    aoai = cs.accounts.get("rg-a", "aoai")
    assert aoai.kind == "OpenAI" and aoai.properties.endpoint == "https://aoai.openai.azure.com/"
    assert {a.name for a in cs.accounts.list()} >= {"aoai", "hub"}
    with pytest.raises(ResourceNotFoundError):
        cs.accounts.get("rg-a", "missing")
    with pytest.raises(ResourceNotFoundError):
        cs.projects.get("rg-a", "hub", "missing")


def test_private_endpoints_and_settings_changes_show_in_arm(local_azure_factory):
    az = local_azure_factory()
    pe = "/subscriptions/x/resourceGroups/net/providers/Microsoft.Network/privateEndpoints/pe-aoai"
    az.add_account("aoai", resource_group="rg", private_endpoints=[pe], public_network_access="Disabled")
    az.update_account("aoai", disable_local_auth=True)
    account = cognitive_client(az).accounts.get("rg", "aoai")
    assert account.properties.public_network_access == "Disabled" and account.properties.disable_local_auth
    [connection] = account.properties.private_endpoint_connections
    assert connection.properties.private_endpoint.id == pe


def test_calls_are_counted_per_route_and_kind(local_azure_factory):
    az = local_azure_factory()
    az.add_account("aoai", resource_group="rg")
    client = arm_auth_client(az)
    sp = new_sp(az)
    scope = az.account_id("aoai")
    created = client.role_assignments.create(scope, str(uuid.uuid4()), params(az, sp))
    client.role_assignments.get_by_id(created.id)
    list(client.role_assignments.list_for_scope(scope))
    client.role_assignments.delete_by_id(created.id)
    assert az.calls.by_route("arm") == {"roleAssignments.put": 1, "roleAssignments.get": 1,
                                        "roleAssignments.list": 1, "roleAssignments.delete": 1}
    assert az.calls.reads("arm") == 2 and az.calls.writes("arm") == 2
    assert az.calls.count(service="arm", method="PUT", status=201) == 1


def test_requests_without_authorization_are_401(az):
    url = f"{az.arm_url}{az.account_id('aoai')}/providers/Microsoft.Authorization/roleAssignments"
    response = requests.get(url, params={"api-version": "2022-04-01"}, verify=az.ca_path, timeout=10)
    assert response.status_code == 401 and response.json()["error"]["code"] == "AuthenticationFailed"
    response = requests.get(url, headers={"Authorization": "Bearer t"}, verify=az.ca_path, timeout=10)
    assert response.status_code == 400 and response.json()["error"]["code"] == "MissingApiVersionParameter"


def test_app_resources_expose_their_managed_identity(az):
    app = f"/subscriptions/{az.subscription_id}/resourceGroups/rg-a/providers/Microsoft.Web/sites/chat-api"
    oid = str(uuid.uuid4())
    az.add_app_resource(app, oid)
    response = requests.get(f"{az.arm_url}{app}", params={"api-version": "2023-12-01"},
                            headers={"Authorization": "Bearer t"}, verify=az.ca_path, timeout=10)
    assert response.status_code == 200 and response.json()["identity"]["principalId"] == oid
