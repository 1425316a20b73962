"""The data-plane caller model: what each request gets, and the rows it leaves in the workspace."""

from __future__ import annotations

import json
import uuid
from datetime import timedelta

import pytest

from localazure import Clock, LocalAzure

pytestmark = pytest.mark.slow  # every test talks to a running stand-in

CHAT = "/openai/deployments/gpt-4o/chat/completions"
MODELS = "/models/chat/completions"
AGENTS = "/api/projects/p1/assistants"

OPENAI_USER = "Cognitive Services OpenAI User"
CS_USER = "Cognitive Services User"
FOUNDRY_USER = "Foundry User"


@pytest.fixture(scope="module")
def az():
    with LocalAzure.start(clock=Clock.frozen("2025-06-01T12:00:00Z"), propagation_seconds=300) as stand_in:
        stand_in.add_account("aoai", kind="OpenAI", deployments=["gpt-4o"])
        stand_in.add_account("hub", kind="AIServices", projects=["p1"], deployments=["gpt-4o", "Phi-4"])
        stand_in.add_account("locked", kind="OpenAI", disable_local_auth=True)
        stand_in.add_account("fenced", kind="OpenAI", default_action="Deny", ip_rules=["203.0.113.0/24"])
        stand_in.add_account("private", kind="OpenAI", public_network_access="Disabled",
                             private_endpoints=["/subscriptions/x/resourceGroups/n/providers/Microsoft.Network/"
                                                "privateEndpoints/pe"])
        yield stand_in


def sp(az: LocalAzure, **kwargs) -> str:
    return az.add_principal(str(uuid.uuid4()), **kwargs).object_id


def status(az: LocalAzure, resource: str, route: str, **fields) -> int:
    return az.call(resource, route, log=False, **fields).status


def test_missing_data_role_is_401_permission_denied_with_the_real_text(az):
    caller = sp(az)
    az.add_assignment(caller, "Contributor", "account:aoai")
    outcome = az.call("aoai", CHAT, caller=caller, log=False)
    assert (outcome.status, outcome.code) == (401, "PermissionDenied")
    assert outcome.message == (
        f"The principal `{caller}` lacks the required data action "
        "`Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action` to perform "
        "`POST /openai/deployments/{deployment-id}/chat/completions` operation."
    )
    assert outcome.body == {"error": {"code": "PermissionDenied", "message": outcome.message}}


@pytest.mark.parametrize("role", ["Owner", "Contributor", "Reader", "Cognitive Services Contributor",
                                  "Foundry Account Owner"])
def test_control_plane_roles_grant_no_data_access(az, role):
    caller = sp(az)
    az.add_assignment(caller, role, "subscription")
    assert status(az, "hub", CHAT, caller=caller) == 401
    assert status(az, "hub", MODELS, caller=caller, deployment="Phi-4") == 401


def test_azure_ai_developer_reaches_openai_only(az):
    # Its published data actions are accounts/OpenAI/*, SpeechServices/* and ContentSafety/*: no MaaS, no projects.
    caller = sp(az)
    az.add_assignment(caller, "Azure AI Developer", "subscription")
    assert status(az, "hub", CHAT, caller=caller) == 200
    assert status(az, "hub", MODELS, caller=caller, deployment="Phi-4") == 401
    assert status(az, "hub", AGENTS, caller=caller) == 401


def test_a_custom_role_is_honoured_by_its_data_actions(az):
    caller = sp(az)
    agents_only = az.add_custom_role("Agents only", data_actions=[
        "Microsoft.CognitiveServices/accounts/AIServices/agents/*"])
    az.add_assignment(caller, agents_only, "account:hub")
    assert status(az, "hub", AGENTS, caller=caller) == 200
    assert status(az, "hub", CHAT, caller=caller) == 401


@pytest.mark.parametrize(
    ("role", "scope", "expected"),
    [
        # OpenAI User: /openai only, never MaaS or project data actions.
        (OPENAI_USER, "account:hub", {CHAT: 200, MODELS: 401, AGENTS: 401}),
        # Cognitive Services User: every surface.
        (CS_USER, "account:hub", {CHAT: 200, MODELS: 200, AGENTS: 200}),
        (FOUNDRY_USER, "account:hub", {CHAT: 200, MODELS: 200, AGENTS: 200}),
        # At the project scope it covers the project's routes only, not the account's.
        (FOUNDRY_USER, "project:hub/p1", {CHAT: 401, MODELS: 401, AGENTS: 200}),
        (OPENAI_USER, "rg:rg", {CHAT: 200, MODELS: 401, AGENTS: 401}),
    ],
)
def test_each_role_authorizes_its_surfaces(az, role, scope, expected):
    caller = sp(az)
    az.add_assignment(caller, role, scope)
    got = {
        CHAT: status(az, "hub", CHAT, caller=caller),
        MODELS: status(az, "hub", MODELS, caller=caller, deployment="Phi-4"),
        AGENTS: status(az, "hub", AGENTS, caller=caller, method="GET"),
    }
    assert got == expected


def test_project_permission_denied_names_the_agents_data_action(az):
    caller = sp(az)
    outcome = az.call("hub", AGENTS, method="GET", caller=caller, log=False)
    assert "Microsoft.CognitiveServices/accounts/AIServices/agents/read" in outcome.message
    assert "`GET /api/projects/{projectName}/assistants`" in outcome.message


def test_assignment_takes_effect_only_after_propagation(az):
    caller = sp(az)
    az.add_assignment(caller, OPENAI_USER, "account:aoai", created_ago_seconds=0)
    assert status(az, "aoai", CHAT, caller=caller) == 401
    az.clock.advance(299)
    assert status(az, "aoai", CHAT, caller=caller) == 401
    az.clock.advance(1)
    assert status(az, "aoai", CHAT, caller=caller) == 200


def test_assignments_created_through_arm_propagate_from_their_creation_time(local_azure_factory):
    from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

    from tests.support.azure import arm_auth_client

    az = local_azure_factory(propagation_seconds=120)
    az.add_account("aoai", deployments=["gpt-4o"])
    caller = sp(az)
    arm_auth_client(az).role_assignments.create(
        az.account_id("aoai"), str(uuid.uuid4()),
        RoleAssignmentCreateParameters(role_definition_id="5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",
                                       principal_id=caller, principal_type="ServicePrincipal"),
    )
    az.clock.advance(60)
    assert status(az, "aoai", CHAT, caller=caller) == 401
    az.clock.advance(61)
    assert status(az, "aoai", CHAT, caller=caller) == 200


def test_group_roles_apply_to_members_but_managed_identities_wait_for_the_cache(az):
    group = az.add_principal(str(uuid.uuid4()), type="Group").object_id
    user = sp(az)
    identity = sp(az, managed_identity=True)
    az.add_group_member(user, group)
    az.add_group_member(identity, group)
    az.add_assignment(group, OPENAI_USER, "account:aoai", created_ago_seconds=0)
    az.clock.advance(az.state.settings.propagation_seconds)
    assert status(az, "aoai", CHAT, caller=user) == 200
    assert status(az, "aoai", CHAT, caller=identity) == 401
    az.clock.advance(az.state.settings.group_cache_seconds)
    assert status(az, "aoai", CHAT, caller=identity) == 200


def test_keys_bypass_rbac_unless_local_auth_is_disabled(az):
    assert status(az, "aoai", CHAT, auth="key") == 200
    wrong = az.call("aoai", CHAT, auth="key", key="wrong", log=False)
    assert (wrong.status, wrong.code) == (401, "401")
    assert wrong.message.startswith("Access denied due to invalid subscription key or wrong API endpoint.")
    disabled = az.call("locked", CHAT, auth="key", log=False)
    assert (disabled.status, disabled.code) == (403, "AuthenticationTypeDisabled")
    assert disabled.message == "Key based authentication is disabled for this resource."
    assert status(az, "aoai", CHAT, auth="none") == 401


def test_token_audience_expiry_and_tenant(az):
    caller = sp(az)
    az.add_assignment(caller, CS_USER, "account:hub")
    bad = az.call("hub", CHAT, caller=caller, audience="https://management.azure.com", log=False)
    assert bad.status == 401 and bad.code == "InvalidAuthenticationTokenAudience"
    assert "wrong audience or resource 'https://management.azure.com'" in bad.message
    expired = az.call("hub", CHAT, caller=caller, token="expired", log=False)
    assert expired.status == 401 and expired.body == {
        "statusCode": 401,
        "message": "Unauthorized. Access token is missing, invalid, audience is incorrect "
        "(https://cognitiveservices.azure.com), or have expired.",
    }
    other_tenant = str(uuid.uuid4())
    mismatch = az.call("hub", CHAT, caller=caller, tenant=other_tenant, log=False)
    assert mismatch.status == 400 and mismatch.message == f"Token tenant {other_tenant} does not match resource tenant."
    # Foundry project endpoints also accept the ai.azure.com audience.
    assert status(az, "hub", AGENTS, method="GET", caller=caller, audience="https://ai.azure.com") == 200


def test_network_rules(az):
    assert status(az, "fenced", CHAT, auth="key", client_ip="198.51.100.7") == 403
    assert az.call("fenced", CHAT, auth="key", client_ip="198.51.100.7", log=False).message == (
        "Access denied due to Virtual Network/Firewall rules.")
    assert status(az, "fenced", CHAT, auth="key", client_ip="203.0.113.40") == 200
    assert status(az, "private", CHAT, auth="key") == 403
    assert status(az, "private", CHAT, auth="key", private_endpoint=True) == 200


def test_missing_deployment_and_wrong_endpoint_are_404(az):
    caller = sp(az)
    az.add_assignment(caller, OPENAI_USER, "account:aoai")
    missing = az.call("aoai", "/openai/deployments/gpt-5/chat/completions", caller=caller, log=False)
    assert (missing.status, missing.code) == (404, "DeploymentNotFound")
    assert status(az, "aoai", CHAT, caller=caller, endpoint="wrong") == 404
    # A classic Azure OpenAI account has no /models surface.
    assert status(az, "aoai", MODELS, auth="key", deployment="gpt-4o") == 404


def test_simulated_traffic_writes_diagnostics_and_app_insights_rows(local_azure_factory):
    az = local_azure_factory()
    az.add_account("aoai", deployments=["gpt-4o"])
    failing, working = sp(az), sp(az)
    az.add_assignment(working, OPENAI_USER, "account:aoai")
    az.add_traffic("aoai", CHAT, caller=failing, per_tick=2, app_role_name="chat-api", client_ip="10.1.2.3")
    az.add_traffic("aoai", CHAT, caller=working, per_tick=1)
    az.add_traffic("aoai", CHAT, auth="key", per_tick=1)
    outcomes = az.simulate(ticks=3, every_seconds=60)
    assert [o.status for o in outcomes].count(401) == 6 and len(outcomes) == 12
    assert az.clock.now() == Clock.frozen("2025-06-01T12:02:00Z").now()

    rows = az.query("AzureDiagnostics | order by TimeGenerated asc").rows
    cols = [c for c, _ in az.query("AzureDiagnostics | take 1").columns]
    records = [dict(zip(cols, r, strict=True)) for r in rows]
    assert len(records) == 12
    denied = [r for r in records if r["ResultSignature"] == "401"]
    assert len(denied) == 6
    props = json.loads(denied[0]["properties_s"])
    # The documented keys only (tests/localazure/test_log_shape.py): no error code, text or request path.
    assert props["objectId"] == failing and not {"errorCode", "errorMessage", "requestPath"} & set(props)
    assert props["modelDeploymentName"] == "gpt-4o" and props["apiName"] == "Azure OpenAI API version 2024-10-21"
    assert denied[0]["OperationName"] == "ChatCompletions_Create"
    assert denied[0]["ResourceProvider"] == "MICROSOFT.COGNITIVESERVICES" and denied[0]["Category"] == "RequestResponse"
    assert denied[0]["_ResourceId"] == az.account_id("aoai").lower()
    assert denied[0]["CallerIPAddress"] == "10.1.2.***"
    key_rows = [r for r in records if json.loads(r["properties_s"])["objectId"] == ""]
    assert len(key_rows) == 3 and {r["ResultSignature"] for r in key_rows} == {"200"}

    dependencies = az.query("AppDependencies | project Name, Target, ResultCode, Success, AppRoleName, OperationId")
    assert len(dependencies.rows) == 6
    assert {tuple(r[:5]) for r in dependencies.rows} == {
        (f"POST {CHAT}", "aoai.openai.azure.com", "401", False, "chat-api")}
    exceptions = az.query("AppExceptions | project OperationId, ExceptionType, Message")
    assert len(exceptions.rows) == 6
    assert {r[0] for r in exceptions.rows} == {r[5] for r in dependencies.rows}
    assert all(r[1] == "openai.AuthenticationError" and "PermissionDenied" in r[2] for r in exceptions.rows)


def test_traffic_windows_follow_the_clock(local_azure_factory):
    az = local_azure_factory()
    az.add_account("aoai", deployments=["gpt-4o"])
    az.add_traffic("aoai", CHAT, auth="key", from_seconds=120, until_seconds=240)
    counts = []
    for _ in range(5):
        az.clock.advance(60)
        counts.append(len(az.tick()))
    assert counts == [0, 1, 1, 0, 0]


def test_the_full_arc_failure_assignment_propagation_success(local_azure_factory):
    az = local_azure_factory(propagation_seconds=600)
    az.add_account("aoai", deployments=["gpt-4o"])
    caller = sp(az)
    az.add_traffic("aoai", CHAT, caller=caller)
    assert {o.status for o in az.simulate(ticks=2)} == {401}
    az.add_assignment(caller, OPENAI_USER, "account:aoai", created_ago_seconds=0)
    assert {o.status for o in az.simulate(ticks=9, every_seconds=60)} == {401}  # 0..480 s after the assignment
    az.clock.advance(120)
    assert {o.status for o in az.simulate(ticks=2, every_seconds=60)} == {200}
    summary = az.query("AzureDiagnostics | summarize n = count() by ResultSignature | order by ResultSignature asc",
                       timespan=timedelta(hours=1))
    assert summary.rows == [["200", 2], ["401", 11]]
