"""The Resource Graph stand-in driven by the real ResourceGraphClient: KQL over the stand-in's RBAC and account
state, the documented answer shape, and $skipToken paging."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.resourcegraph import ResourceGraphClient
from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

from localazure import FakeCredential

pytestmark = pytest.mark.slow

OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
ASSIGNMENTS = ("authorizationresources | where type =~ 'microsoft.authorization/roleassignments' "
               "| extend principalId = tolower(tostring(properties.principalId)) | project id, principalId, "
               "properties | order by id asc")


@pytest.fixture
def az(local_azure_factory):
    az = local_azure_factory(None)
    az.add_account("a1", disable_local_auth=True, default_action="Deny")
    az.add_account("a2", kind="AIServices")
    return az


def graph(az):
    return ResourceGraphClient(FakeCredential(), base_url=az.arm_url, connection_verify=az.ca_path, retry_total=0)


def test_accounts_through_resources(az):
    answer = graph(az).resources(QueryRequest(
        subscriptions=[az.subscription_id],
        query="resources | where type =~ 'microsoft.cognitiveservices/accounts' | where name == 'a1' "
              "| project id, name, type, ['kind'], properties, identity"))
    assert (answer.total_records, answer.count, str(answer.result_truncated)) == (1, 1, "false")
    row = answer.data[0]
    assert row["type"] == "microsoft.cognitiveservices/accounts"  # Resource Graph lower-cases types
    assert row["properties"]["disableLocalAuth"] is True
    assert row["properties"]["networkAcls"]["defaultAction"] == "Deny"
    assert row["id"] == az.account_id("a1")


def test_role_assignments_follow_rbac_state_and_page(az):
    principals = [az.add_principal().object_id for _ in range(5)]
    for oid in principals:
        az.add_assignment(oid, OPENAI_USER, az.account_id("a1"))
    client = graph(az)
    seen, token, pages = [], None, 0
    while True:
        answer = client.resources(QueryRequest(query=ASSIGNMENTS, subscriptions=[az.subscription_id],
                                               options=QueryRequestOptions(top=2, skip_token=token)))
        pages += 1
        assert answer.total_records == 5 and answer.count == len(answer.data) <= 2
        seen += [row["principalId"] for row in answer.data]
        token = answer.skip_token
        if not token:
            break
    assert pages == 3 and sorted(seen) == sorted(p.lower() for p in principals)
    # A removed assignment is gone from the next query.
    az.state.remove_assignment(az.assignments()[0].name)
    assert graph(az).resources(QueryRequest(query=ASSIGNMENTS)).total_records == 4


def test_take_is_not_pageable(az):
    answer = graph(az).resources(QueryRequest(
        query="resources | project id | take 5", options=QueryRequestOptions(top=1)))
    assert (answer.count, str(answer.result_truncated), answer.skip_token) == (1, "true", None)


def test_other_subscription_sees_nothing(az):
    answer = graph(az).resources(QueryRequest(query="resources | project id",
                                              subscriptions=["00000000-0000-0000-0000-00000000dead"]))
    assert answer.total_records == 0 and answer.data == []


def test_bad_query_is_400(az):
    with pytest.raises(HttpResponseError) as caught:
        graph(az).resources(QueryRequest(query="resources | where"))
    assert caught.value.status_code == 400


def test_managed_identity_resources_are_in_the_resources_table(az):
    uami = az.add_managed_identity("orders-identity").object_id
    site = az.add_managed_identity("orders-api", resource_group="rg-apps",
                                   resource_type="Microsoft.Web/sites").object_id
    az.add_gateway("apim")
    gateway = az.state.gateway("apim").principal_id
    answer = graph(az).resources(QueryRequest(
        subscriptions=[az.subscription_id],
        query="resources | where type !~ 'microsoft.cognitiveservices/accounts' "
              "| project id, name, type, resourceGroup, subscriptionId, identity, properties | order by name asc"))
    rows = {row["name"]: row for row in answer.data}
    assert set(rows) == {"apim", "orders-api", "orders-identity"}
    assert rows["orders-identity"]["type"] == "microsoft.managedidentity/userassignedidentities"
    assert rows["orders-identity"]["properties"]["principalId"] == uami and rows["orders-identity"]["identity"] is None
    assert rows["orders-api"]["type"] == "microsoft.web/sites" and rows["orders-api"]["resourceGroup"] == "rg-apps"
    assert rows["orders-api"]["identity"] == {"type": "SystemAssigned", "principalId": site,
                                              "tenantId": az.tenant_id}
    assert rows["apim"]["identity"]["principalId"] == gateway
    assert {row["subscriptionId"] for row in rows.values()} == {az.subscription_id}
    assert az.state.principal(uami).managed_identity and az.state.principal(uami).display_name == "orders-identity"
