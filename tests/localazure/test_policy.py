"""The stand-in's Azure Policy routes through azure-mgmt-resource-policy's PolicyClient, as the REST reference
describes them: assignments that apply to a resource (`atScope()` leaves out those below it), definitions by id
(built-in, subscription, management group), 404s, exemptions with `excludeExpired()`, an unreadable scope's 403."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.core.rest import HttpRequest
from azure.mgmt.resource.policy import PolicyClient

from localazure import FakeCredential
from localazure.policy import KEY_ACCESS_DISABLED
from localazure.scenario import ScenarioError

RAW = {
    "resources": [{"name": "acc", "kind": "AIServices", "resource_group": "rg", "projects": ["p1"]}],
    "policies": {
        "definitions": [{"name": "custom-keys", "properties": {"displayName": "keys", "policyRule": {
            "if": {"field": "Microsoft.CognitiveServices/accounts/disableLocalAuth", "equals": False},
            "then": {"effect": "audit"}}}}],
        "assignments": [
            {"name": "sub-deny", "scope": "subscription", "definition": KEY_ACCESS_DISABLED,
             "parameters": {"effect": "Deny"}},
            {"name": "on-project", "scope": "project:acc/p1", "definition": "custom-keys"},
        ],
        "exemptions": [
            {"name": "live", "scope": "account:acc", "assignment": "sub-deny", "expires_in_seconds": 3600},
            {"name": "expired", "scope": "account:acc", "assignment": "sub-deny", "expires_in_seconds": -3600},
        ],
    },
}


def client(az) -> PolicyClient:
    return PolicyClient(FakeCredential(), az.subscription_id, base_url=az.arm_url, connection_verify=az.ca_path,
                        retry_total=0)


def test_assignments_definitions_and_exemptions_as_the_sdk_reads_them(local_azure_factory):
    az = local_azure_factory(RAW)
    policy = client(az)
    unfiltered = policy.policy_assignments.list_for_resource("rg", "Microsoft.CognitiveServices", "", "accounts", "acc")
    assert sorted(a.name for a in unfiltered) == ["on-project", "sub-deny"]
    [applying] = policy.policy_assignments.list_for_resource("rg", "Microsoft.CognitiveServices", "", "accounts",
                                                             "acc", filter="atScope()")
    assert applying.name == "sub-deny" and applying.parameters["effect"]["value"] == "Deny"
    assert applying.scope == f"/subscriptions/{az.subscription_id}"
    built_in = policy.policy_definitions.get_built_in(KEY_ACCESS_DISABLED)
    assert built_in.policy_type == "BuiltIn" and "disableLocalAuth" in str(built_in.policy_rule)
    assert policy.policy_definitions.get("custom-keys").display_name == "keys"
    with pytest.raises(ResourceNotFoundError):
        policy.policy_set_definitions.get("nothing")
    account = az.account_id("acc")
    for expression, names in (("atScope()", ["expired", "live"]), ("atScope() and excludeExpired()", ["live"])):
        request_url = (f"{az.arm_url}{account}/providers/Microsoft.Authorization/policyExemptions?"
                       f"api-version=2022-07-01-preview&$filter={expression}")
        body = policy.send_request(HttpRequest("GET", request_url)).json()
        assert sorted(e["name"] for e in body["value"]) == names
        assert body["value"][0]["properties"]["policyAssignmentId"].endswith("/policyAssignments/sub-deny")
    assert az.calls.count(route="policyAssignments.list") == 2


def test_an_unreadable_scope_answers_403(local_azure_factory):
    az = local_azure_factory({**RAW, "policies": {**RAW["policies"], "unreadable_scopes": ["rg:rg"]}})
    with pytest.raises(HttpResponseError) as raised:
        list(client(az).policy_assignments.list_for_resource("rg", "Microsoft.CognitiveServices", "", "accounts",
                                                             "acc"))
    assert raised.value.status_code == 403 and raised.value.error.code == "AuthorizationFailed"


@pytest.mark.parametrize("policies, message", [
    ({"assignments": [{"name": "x", "definition": "nope"}]}, "unknown definition"),
    ({"exemptions": [{"name": "x", "assignment": "nope"}]}, "unknown assignment"),
    ({"bogus": []}, "unknown keys"),
])
def test_scenario_mistakes_are_named(local_azure_factory, policies, message):
    with pytest.raises(ScenarioError, match=message):
        local_azure_factory({**RAW, "policies": policies})


def test_resource_graph_serves_the_policies_as_policyresources_without_unreadable_scopes(local_azure_factory):
    from azure.mgmt.resourcegraph import ResourceGraphClient
    from azure.mgmt.resourcegraph.models import QueryRequest

    query = ("policyresources | where type in~ ('microsoft.authorization/policyassignments', "
             "'microsoft.authorization/policyexemptions') | project id, name, type, properties | order by id asc")

    def rows(az) -> dict:
        graph = ResourceGraphClient(FakeCredential(), base_url=az.arm_url, connection_verify=az.ca_path,
                                    retry_total=0)
        answer = graph.resources(QueryRequest(subscriptions=[az.subscription_id], query=query))
        return {row["name"]: row for row in answer.data}

    found = rows(local_azure_factory(RAW))
    assert set(found) == {"sub-deny", "on-project", "live", "expired"}
    deny = found["sub-deny"]
    assert deny["type"] == "microsoft.authorization/policyassignments"  # Resource Graph lower-cases types
    assert deny["properties"]["parameters"]["effect"]["value"] == "Deny"
    assert deny["properties"]["scope"] == f"/subscriptions/{found['sub-deny']['id'].split('/')[2]}"
    assert found["live"]["properties"]["policyAssignmentId"] == deny["id"]
    hidden = rows(local_azure_factory({**RAW, "policies": {**RAW["policies"], "unreadable_scopes": ["rg:rg"]}}))
    assert set(hidden) == {"sub-deny"}  # what the caller cannot read is left out, not refused
