"""The account GET through the ARM pipeline (shared.adapters.resources.Accounts) is the generated client's
`accounts.get`: the same evidence from the same JSON, the same request, user agent and API version, and the same
exceptions for the same ARM answers (401/403/404/409/5xx), against the local stand-in over HTTPS."""

from __future__ import annotations

import pytest
from azure.core.exceptions import HttpResponseError
from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient
from azure.mgmt.cognitiveservices.models import Account

from localazure import FakeCredential
from shared.adapters.azure import AzureClients
from shared.adapters.resources import ACCOUNTS_API_VERSION, ArmJson, hosts_of, to_evidence
from shared.settings import Settings

ACCOUNT_ID = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acc"
RICH = {
    "id": ACCOUNT_ID, "name": "acc", "kind": "AIServices", "location": "westeurope", "tags": {"team": "x"},
    "identity": {"type": "systemassigned", "tenantId": "t-1", "principalId": "p-1",
                 "userAssignedIdentities": {"/u/1": {"principalId": "p-2"}}},
    "properties": {
        "endpoint": "https://acc.cognitiveservices.azure.com/", "customSubDomainName": "acc",
        "endpoints": {"OpenAI Language Model Instance API": "https://acc.openai.azure.com/",
                      "Inference": "https://acc.services.ai.azure.com/"},
        "disableLocalAuth": "true", "publicNetworkAccess": "disabled",
        "networkAcls": {"defaultAction": "Deny", "ipRules": [{"value": "1.2.3.4"}, {}],
                        "virtualNetworkRules": [{"id": "/vnet/1"}, {"id": None}]},
        "privateEndpointConnections": [{"id": "pe1"}, {"id": "pe2"}], "associatedProjects": ["p1", "p2"],
        "unknownNewProperty": {"x": 1},
    },
}


@pytest.mark.parametrize("body", [
    RICH,
    {"id": ACCOUNT_ID, "kind": "OpenAI"},
    {"id": ACCOUNT_ID, "kind": "OpenAI", "properties": {}},
    {"id": ACCOUNT_ID, "properties": {"disableLocalAuth": False, "networkAcls": {}, "endpoints": {}}},
    {"id": ACCOUNT_ID, "properties": {"disableLocalAuth": 1, "publicNetworkAccess": None}, "identity": {}},
], ids=["rich", "no-properties", "empty-properties", "empty-acls", "numeric-bool"])
def test_the_json_reads_as_the_sdk_model_reads_it(body):
    model = Account.deserialize(body)
    assert to_evidence(ArmJson(body), ACCOUNT_ID) == to_evidence(model, ACCOUNT_ID)
    assert hosts_of(ArmJson(body)) == hosts_of(model)


def test_a_boolean_the_sdk_refuses_is_refused():
    with pytest.raises(TypeError):
        to_evidence(ArmJson({"properties": {"disableLocalAuth": "maybe"}}), ACCOUNT_ID)


def _clients(az):
    settings = Settings(arm_endpoint=az.arm_url, logs_endpoint=az.logs_url, ca_bundle=az.ca_path,
                        subscription_id=az.subscription_id)
    return AzureClients.from_settings(settings, FakeCredential(),
                                      client_options={"retry_backoff_factor": 0.01, "retry_total": 1})


def _sdk(az):
    return CognitiveServicesManagementClient(FakeCredential(), az.subscription_id, base_url=az.arm_url,
                                             connection_verify=az.ca_path, retry_backoff_factor=0.01, retry_total=1)


def test_the_get_is_the_sdk_clients_get(local_azure_factory):
    az = local_azure_factory(None)
    account = az.add_account("acc-a", disable_local_auth=True, public_network_access="Disabled",
                             default_action="Deny", projects=["p1"], ip_rules=["10.0.0.1"])
    clients = _clients(az)
    try:
        got = clients.accounts.get(account)
        assert to_evidence(got, account) == to_evidence(_sdk(az).accounts.get("rg", "acc-a"), account)
        assert hosts_of(got) == hosts_of(_sdk(az).accounts.get("rg", "acc-a"))
        assert clients.calls.count("arm", "GET") == 1  # counted, as every ARM call is
        assert az.calls.count(service="arm", route="accounts.get", status=200) == 3
        assert clients.accounts.get(account.replace("acc-a", "missing")) is None  # 404
    finally:
        clients.accounts.close()


def test_the_api_version_and_user_agent_are_the_sdk_clients(local_azure_factory):
    sdk = _sdk(local_azure_factory(None))
    assert ACCOUNTS_API_VERSION == sdk._config.api_version  # moves with the pinned SDK
    clients = _clients(local_azure_factory(None))
    pipeline = clients.config.arm_pipeline("azure-mgmt-cognitiveservices")
    agents = [p._policy.user_agent for p in pipeline._pipeline._impl_policies
              if type(getattr(p, "_policy", p)).__name__ == "UserAgentPolicy"]
    assert agents == [sdk._config.user_agent_policy.user_agent]

    def names(chain):
        return [type(getattr(p, "_policy", p)).__name__ for p in chain]

    sdk_with_ours = CognitiveServicesManagementClient(clients.config.credential, "s",
                                                      **clients.config.arm_kwargs())
    assert names(pipeline._pipeline._impl_policies) == names(sdk_with_ours._client._pipeline._impl_policies)


@pytest.mark.parametrize("status", [401, 403, 409, 500, 503])
def test_an_error_raises_what_the_sdk_raises(local_azure_factory, status):
    az = local_azure_factory(None)
    account = az.add_account("acc-e")
    az.faults.add(service="arm", route="accounts.get", status=status, times=None)
    clients = _clients(az)
    try:
        with pytest.raises(HttpResponseError) as ours:
            clients.accounts.get(account)
        with pytest.raises(HttpResponseError) as theirs:
            _sdk(az).accounts.get("rg", "acc-e")
    finally:
        clients.accounts.close()
    assert type(ours.value) is type(theirs.value)
    assert ours.value.status_code == theirs.value.status_code == status
    assert str(ours.value) == str(theirs.value)
    assert (getattr(ours.value.error, "code", None), getattr(ours.value.error, "message", None)) == (
        getattr(theirs.value.error, "code", None), getattr(theirs.value.error, "message", None))
