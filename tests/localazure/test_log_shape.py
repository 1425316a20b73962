"""The RequestResponse rows the stand-in writes: by default only what Azure documents; where the documentation is
silent, the scenario's log shape decides (localazure/logshape.py).

The documented sets are written out here, not imported, so a new key in localazure/telemetry.py fails this test
until someone shows where Azure documents it. Sources: the Azure Monitor `AzureDiagnostics` table reference
(MicrosoftDocs/azure-reference-other azure-monitor-ref/tables/azurediagnostics.md) with the standard columns of
every table (`Type`, `SourceSystem`, `_ResourceId`); the supported-logs page for Microsoft.CognitiveServices/accounts
and monitor-openai-reference.md (MicrosoftDocs/azure-monitor-docs, azure-ai-docs); real records in
elastic/integrations packages/azure_openai/data_stream/logs/_dev/test/pipeline/test-open-ai-request-response.log.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime

import pytest

from localazure import LocalAzure, LogShape, telemetry
from localazure.clock import Clock
from localazure.dataplane import CallSpec, decide
from localazure.scenario import ScenarioError
from localazure.state import Account, Principal, Project, State

DOCUMENTED_COLUMNS = frozenset({
    "TimeGenerated", "_ResourceId", "ResourceId", "Resource", "ResourceGroup", "ResourceProvider", "ResourceType",
    "SubscriptionId", "Category", "OperationName", "ResultSignature", "ResultType", "DurationMs", "CallerIPAddress",
    "CorrelationId", "Location", "properties_s", "SourceSystem", "Type", "TenantId",
})
DOCUMENTED_PROPERTIES = frozenset({
    "apiName", "requestTime", "responseTime", "requestLength", "responseLength", "objectId", "streamType",
    "modelDeploymentName", "modelName", "modelVersion",
})

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
CALLER = "0a1b2c3d-4e5f-4061-8273-9485a6b7c8d9"
CHAT = "/openai/deployments/gpt-4o/chat/completions"


def world() -> State:
    state = State(clock=Clock.frozen(NOW))
    state.put_principal(Principal(CALLER))
    state.put_account(Account("aoai", state.subscription_id, deployments=["gpt-4o"]))
    state.put_account(Account("fenced", state.subscription_id, default_action="Deny"))
    state.put_account(Account("keyless", state.subscription_id, disable_local_auth=True))
    state.put_account(Account("hub", state.subscription_id, kind="AIServices", projects={"p1": Project("p1")}))
    return state


# (name, account, route, spec fields): one outcome of every kind the data plane decides
CALLS = {
    "role missing": ("aoai", CHAT, {"caller": CALLER}),
    "token expired": ("aoai", CHAT, {"caller": CALLER, "token": "expired"}),
    "wrong audience": ("aoai", CHAT, {"caller": CALLER, "audience": "https://ai.azure.com"}),
    "other tenant": ("aoai", CHAT, {"caller": CALLER, "tenant": "99999999-0000-4000-8000-000000000001"}),
    "firewall": ("fenced", CHAT, {"caller": CALLER}),
    "wrong key": ("aoai", CHAT, {"auth": "key", "key": "wrong"}),
    "keyless": ("keyless", CHAT, {"auth": "key"}),
    "no deployment": ("aoai", "/openai/deployments/nope/chat/completions", {"auth": "key"}),
    "success": ("aoai", CHAT, {"auth": "key"}),
    "models": ("hub", "/models/chat/completions", {"caller": CALLER, "deployment": "Phi-4"}),
    "project": ("hub", "/api/projects/p1/assistants", {"caller": CALLER, "method": "GET"}),
}


def outcome(name: str, state: State | None = None):
    account, route, fields = CALLS[name]
    return decide(state or world(), CallSpec(resource=account, route=route, **fields))


def row(name: str, shape: LogShape | None = None) -> tuple[dict, dict]:
    written = telemetry.diagnostics_row(outcome(name), random.Random(3), shape)
    return written, json.loads(written["properties_s"])


@pytest.mark.parametrize("name", list(CALLS))
def test_the_default_row_carries_only_documented_columns_and_keys(name):
    written, props = row(name)
    assert set(written) <= DOCUMENTED_COLUMNS, set(written) - DOCUMENTED_COLUMNS
    assert set(props) <= DOCUMENTED_PROPERTIES, set(props) - DOCUMENTED_PROPERTIES
    assert {"objectId", "apiName"} <= set(props)
    assert written["ResultSignature"] == str(outcome(name).status)
    assert written["CallerIPAddress"].endswith(".***")


def test_the_caller_is_logged_only_once_its_token_is_accepted():
    logged = {name: row(name)[1]["objectId"] for name in CALLS}
    assert logged["role missing"] == logged["models"] == logged["project"] == CALLER
    for name in ("token expired", "wrong audience", "other tenant", "firewall", "wrong key", "keyless", "success"):
        assert logged[name] == "", name


def test_request_and_response_times_are_dotnet_ticks():
    written, props = row("role missing")
    epoch_ticks = 621_355_968_000_000_000  # 1970-01-01 in .NET ticks
    assert props["requestTime"] == epoch_ticks + int(NOW.timestamp()) * 10_000_000
    assert props["responseTime"] - props["requestTime"] == written["DurationMs"] * 10_000


def test_the_surface_shows_only_through_operation_name_and_api_name():
    names = {name: (row(name)[0]["OperationName"], row(name)[1]["apiName"]) for name in ("role missing", "models",
                                                                                          "project")}
    assert names["role missing"] == ("ChatCompletions_Create", "Azure OpenAI API version 2024-10-21")
    assert names["models"] == ("ChatCompletions_Create", "Azure AI Model Inference API")
    assert names["project"] == ("Assistants_List", "Azure AI Foundry Projects API")
    openai_names = LogShape(foundry_api_names="openai")
    for name in ("models", "project"):
        assert row(name, openai_names)[1]["apiName"] == "Azure OpenAI API version 2024-10-21"


def test_undocumented_keys_only_when_a_scenario_opts_in():
    _, props = row("role missing", LogShape(extra_properties=("errorCode", "errorMessage", "requestPath")))
    assert props["errorCode"] == "PermissionDenied" and CALLER in props["errorMessage"]
    assert props["requestPath"] == CHAT
    with pytest.raises(ValueError, match="unknown extra properties"):
        LogShape(extra_properties=("innerError",))


@pytest.mark.parametrize(("name", "logged"), [("role missing", False), ("token expired", False), ("firewall", False),
                                              ("wrong key", False), ("other tenant", False), ("keyless", False),
                                              ("no deployment", True), ("success", True)])
def test_rejections_can_go_unlogged(name, logged):
    assert telemetry.is_logged(outcome(name), LogShape()) is True
    assert telemetry.is_logged(outcome(name), LogShape(rejections_logged=False)) is logged


@pytest.mark.slow
def test_the_switches_in_a_scenario_and_through_the_python_api():
    scenario = {"settings": {"log_shape": {"rejections_logged": False, "foundry_api_names": "openai"}},
                "principals": [{"id": CALLER}],
                "resources": [{"name": "aoai", "deployments": ["gpt-4o"]}],
                "traffic": [{"resource": "aoai", "route": CHAT, "caller": CALLER, "app_role_name": "web"},
                            {"resource": "aoai", "route": CHAT, "auth": "key"}]}
    with LocalAzure.start(scenario, clock=Clock.frozen(NOW)) as az:
        assert az.log_shape == LogShape(rejections_logged=False, foundry_api_names="openai")
        az.simulate(ticks=2)
        statuses = [r[0] for r in az.query("AzureDiagnostics | project ResultSignature").rows]
        assert statuses == ["200", "200"]  # the 401s went unlogged
        client = az.query("AppDependencies | project ResultCode").rows
        assert sorted(r[0] for r in client) == ["401", "401"]  # the app still saw them
        az.set_log_shape(rejections_logged=True)
        az.tick()
        assert len(az.query('AzureDiagnostics | where ResultSignature == "401"').rows) == 1


@pytest.mark.parametrize("shape", [{"rejections_logged": "no"}, {"foundry_api_names": "maas"},
                                   {"extra_properties": ["x"]}, {"unknown": 1}])
def test_a_wrong_log_shape_fails_the_scenario_load(shape):
    from localazure import scenario as scenario_file

    with pytest.raises(ScenarioError):
        scenario_file.settings_from({"log_shape": shape})
