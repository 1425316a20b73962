"""Both reviews against the local stand-in over HTTPS, through the real SDK clients (ARM, Log Analytics, Azure Policy):
each verdict, the policy effects and exemptions as ARM serves them, an unreadable policy scope and an account
without traffic reported as "could not check", the access findings, and no Azure write in any mode."""

from __future__ import annotations

from datetime import timedelta

import pytest

from localazure import FakeCredential
from localazure import scenario as scenario_file
from localazure.calls import WRITE
from localazure.policy import CONFIGURE_LOCAL_AUTH_DISABLED, KEY_ACCESS_DISABLED
from shared.bootstrap import build_review_reader
from shared.core.reviews import access, readiness
from shared.engine.reviews import review_access, review_readiness
from shared.settings import Settings

CHAT_API = "3f2b6a10-0000-4000-8000-000000000001"  # Contributor only, calls /openai
BATCH = "3f2b6a10-0000-4000-8000-000000000002"
IDENTITY = "3f2b6a10-0000-4000-8000-0000000000a7"  # a managed identity whose role comes only through a group
GROUP = "3f2b6a10-0000-4000-8000-0000000000a8"


def world(**policies) -> dict:
    raw = scenario_file.read("basic")
    raw["principals"] += [{"id": IDENTITY, "managed_identity": True, "groups": [GROUP]},
                          {"id": GROUP, "type": "Group"}]
    raw["resources"].append({"name": "aoai-quiet", "kind": "OpenAI", "resource_group": "rg-ai"})
    raw["assignments"] += [
        {"principal": GROUP, "role": "Cognitive Services OpenAI User", "scope": "account:aoai-prod"},
        {"principal": BATCH, "role": "Cognitive Services OpenAI User", "scope": "subscription"},
    ]
    raw["traffic"] += [
        {"name": "grouped", "caller": IDENTITY, "resource": "aoai-prod",
         "route": "/openai/deployments/gpt-4o/chat/completions", "per_tick": 1},
        {"name": "old-script", "auth": "key", "resource": "aoai-prod",
         "route": "/openai/deployments/gpt-4o/chat/completions", "per_tick": 2, "client_ip": "10.9.8.7"},
    ]
    raw["policies"] = policies or {"assignments": [
        {"name": "no-keys", "scope": "subscription", "definition": KEY_ACCESS_DISABLED,
         "parameters": {"effect": "Deny"}},
        {"name": "configure-keys-off", "scope": "rg:rg-ai", "definition": CONFIGURE_LOCAL_AUTH_DISABLED},
    ], "exemptions": [
        {"name": "foundry-waiver", "scope": "account:foundry-hub", "assignment": "configure-keys-off",
         "expires_in_seconds": 86400},
    ]}
    return raw


def reader_for(az, **more):
    settings = Settings(arm_endpoint=az.arm_url, logs_endpoint=az.logs_url, ca_bundle=az.ca_path,
                        subscription_id=az.subscription_id, workspace_ids=(az.workspace_id,), **more)
    return build_review_reader(settings, credential=FakeCredential(),
                               client_options={"retry_total": 0, "retry_backoff_factor": 0.01})


def by_name(found) -> dict:
    return {item.account_id.rsplit("/", 1)[-1]: item for item in found}


@pytest.fixture
def reviewed(local_azure_factory):
    az = local_azure_factory(world())
    az.simulate(3)
    return az


def test_readiness_gives_each_verdict_with_its_reasons_and_policies(reviewed):
    az = reviewed
    now = az.clock.now() + timedelta(seconds=1)
    found, problem = review_readiness(reader_for(az), now=now)
    assert problem == ""
    result = by_name(found)
    assert set(result) == {"aoai-prod", "foundry-hub", "aoai-quiet"}

    prod = result["aoai-prod"]
    assert prod.verdict == readiness.NOT_READY
    assert {r.rule for r in prod.reasons if r.blocking} == {readiness.KEY_CALLERS, readiness.ENTRA_ROLES}
    [key] = prod.key_callers
    assert key.operation == "ChatCompletions_Create" and key.calls == 6 and key.caller_ips == ("10.9.8.***",)
    without = {c.object_id for c in prod.entra_callers if not c.covered}
    assert without == {CHAT_API}  # the grouped identity and the subscription-wide role both cover their calls
    by_policy = {p.name: p for p in prod.policies}
    assert by_policy["no-keys"].effect == "deny" and by_policy["no-keys"].blocks_rollback
    assert by_policy["configure-keys-off"].effect == "modify" and by_policy["configure-keys-off"].blocks_rollback
    assert any("az policy exemption create" in step for step in prod.rollback)

    hub = result["foundry-hub"]
    assert hub.verdict == readiness.ALREADY_DISABLED
    assert {p.name: p.exempt for p in hub.policies} == {"no-keys": False, "configure-keys-off": True}

    quiet = result["aoai-quiet"]  # no traffic at all: never "ready"
    assert quiet.verdict == readiness.NOT_READY and "no RequestResponse rows" in quiet.could_not_check[0]
    assert not az.calls.count(kind=WRITE, service="arm")


def test_an_account_with_every_caller_ready_is_ready(local_azure_factory):
    raw = world(assignments=[])
    raw["traffic"] = [t for t in raw["traffic"] if t["name"] == "batch-embeddings"]
    az = local_azure_factory(raw)
    az.tick()
    account = az.account_id("aoai-prod")
    [result], _ = review_readiness(reader_for(az), now=az.clock.now() + timedelta(seconds=1), account=account)
    assert result.verdict == readiness.READY and not result.policies and result.entra_callers[0].covered
    assert result.disable_command.endswith("--set properties.disableLocalAuth=true")


def test_an_unreadable_policy_scope_is_could_not_check(local_azure_factory):
    raw = world(unreadable_scopes=["subscription"])
    raw["traffic"] = [t for t in raw["traffic"] if t["name"] == "batch-embeddings"]
    az = local_azure_factory(raw)
    az.tick()
    [result], _ = review_readiness(reader_for(az), now=az.clock.now() + timedelta(seconds=1),
                                   account=az.account_id("aoai-prod"))
    assert result.verdict == readiness.NOT_READY
    assert "AuthorizationFailed" in result.could_not_check[0] and "Azure Policy" in result.could_not_check[0]
    assert az.calls.count(route="policyAssignments.list", status=403) >= 1


def test_a_set_definition_and_its_members_are_read_by_id(local_azure_factory):
    initiative = {"name": "ai-baseline", "set": True, "properties": {
        "displayName": "AI baseline", "policyType": "Custom",
        "parameters": {"keysEffect": {"type": "String", "defaultValue": "Audit"}},
        "policyDefinitions": [{"policyDefinitionId": "/providers/Microsoft.Authorization/policyDefinitions/"
                               f"{KEY_ACCESS_DISABLED}", "policyDefinitionReferenceId": "keys",
                               "parameters": {"effect": {"value": "[parameters('keysEffect')]"}}}]}}
    raw = world(definitions=[initiative], assignments=[
        {"name": "baseline", "scope": "rg:rg-ai", "definition": "ai-baseline", "parameters": {"keysEffect": "Deny"}}])
    az = local_azure_factory(raw)
    az.tick()
    [result], _ = review_readiness(reader_for(az), now=az.clock.now() + timedelta(seconds=1),
                                   account=az.account_id("aoai-prod"))
    [found] = result.policies
    assert (found.name, found.effect, found.blocks_rollback) == ("baseline", "deny", True)
    assert az.calls.count(route="policySetDefinitions.get", status=200) == 1


def test_the_access_review_finds_each_class_and_writes_nothing(reviewed):
    az = reviewed
    before = len(az.assignments())
    now = az.clock.now() + timedelta(seconds=1)
    found, _ = review_access(reader_for(az), now=now, pre_upgrade=True, names={CHAT_API: "chat-api"})
    named = {f.principal_name for r in found for f in r.findings if f.principal == CHAT_API}
    assert named == {"chat-api"}  # the allowlist's names (engine.reviews.known_names), the only ones known
    findings = {(f.rule, f.principal, f.account_id.rsplit("/", 1)[-1]) for r in found for f in r.findings}
    assert (access.CONTROL_PLANE_FOR_INFERENCE, CHAT_API, "aoai-prod") in findings
    assert (access.BROAD_SCOPE, BATCH, "aoai-prod") in findings
    assert (access.GROUP_ONLY_IDENTITY, IDENTITY, "aoai-prod") in findings
    quiet = by_name(found)["aoai-quiet"]
    assert quiet.could_not_check and all(f.calls_account is None for f in quiet.findings)
    upgrade, _ = review_access(reader_for(az), now=now, upgrade_only=True)
    assert {r.account_id.rsplit("/", 1)[-1] for r in upgrade} == {"aoai-prod", "aoai-quiet"}  # classic only
    assert len(az.assignments()) == before
    assert not [c for c in az.calls.records if c.kind == WRITE]
    assert {c.method for c in az.calls.records} <= {"GET", "POST"}  # POST: the Log Analytics query, a read


def test_an_assignment_that_excludes_the_account_is_not_reported(local_azure_factory):
    raw = world(assignments=[{"name": "no-keys", "scope": "subscription", "definition": KEY_ACCESS_DISABLED,
                              "parameters": {"effect": "Deny"}, "not_scopes": ["rg:rg-ai"]}])
    az = local_azure_factory(raw)
    az.tick()
    [result], _ = review_readiness(reader_for(az), now=az.clock.now() + timedelta(seconds=1),
                                   account=az.account_id("aoai-prod"))
    assert result.policies == () and not result.could_not_check


GATEWAY_IDENTITY = "3f2b6a10-0000-4000-8000-0000000000b1"


def test_apps_seen_calling_the_account_are_attached_to_its_key_callers(local_azure_factory):
    raw = world()
    raw["gateways"] = [{"name": "contoso-apim", "principal_id": GATEWAY_IDENTITY, "resource_group": "rg-ai"}]
    raw["assignments"].append({"principal": GATEWAY_IDENTITY, "role": "Cognitive Services OpenAI User",
                               "scope": "account:aoai-prod"})
    for traffic in raw["traffic"]:
        if traffic["name"] == "old-script":
            traffic["app_role_name"] = "old-script"
    raw["traffic"].append({"name": "via-gateway", "caller": CHAT_API, "gateway": "contoso-apim",
                           "resource": "aoai-prod", "route": "/openai/deployments/gpt-4o/chat/completions",
                           "apim_subscription": "reporting-team"})
    az = local_azure_factory(raw)
    az.simulate(3)
    now = az.clock.now() + timedelta(seconds=1)
    reader = reader_for(az, appinsights_workspace_ids=(az.workspace_id,), apim_workspace_ids=(az.workspace_id,))
    result = by_name(review_readiness(reader, now=now)[0])
    [key] = result["aoai-prod"].key_callers
    seen = {(a.name, a.source): a.calls for a in key.apps}
    # chat-api (App Insights, 3 a tick), the key script itself, and the gateway's subscription: all seen meanwhile
    assert seen == {("chat-api", "appinsights"): 9, ("old-script", "appinsights"): 6,
                    ("reporting-team (subscription on contoso-apim)", "gateway"): 3}
    assert result["aoai-prod"].apps_unread == ""
    # foundry-hub's key caller (legacy-report) is its own host's: aoai-prod's apps are not linked to it
    [legacy] = result["foundry-hub"].key_callers
    assert {a.name for a in legacy.apps} == {"legacy-report", "batch-worker"}
    assert not az.calls.count(kind=WRITE, service="arm")


def test_no_app_source_configured_or_readable_is_said_not_reported_as_no_apps(reviewed):
    az = reviewed
    now = az.clock.now() + timedelta(seconds=1)
    unset = by_name(review_readiness(reader_for(az), now=now)[0])["aoai-prod"]
    assert unset.key_callers[0].apps == () and "TRIAGE_APPINSIGHTS_WORKSPACE_IDS" in unset.apps_unread
    unknown = reader_for(az, appinsights_workspace_ids=("00000000-0000-0000-0000-00000000dead",))
    unreadable = by_name(review_readiness(unknown, now=now)[0])["aoai-prod"]
    assert unreadable.key_callers[0].apps == () and "00000000-0000-0000-0000-00000000dead" in unreadable.apps_unread
    assert unreadable.verdict == unset.verdict == readiness.NOT_READY  # as before: the hint never decides


GRAPH = "resourceGraph.resources"


def _policy_view(found) -> dict:
    return {name: (r.verdict, sorted((p.name, p.scope.lower(), p.effect, p.enforced, p.exempt, p.blocks_rollback)
                                     for p in r.policies), r.could_not_check)
            for name, r in by_name(found).items()}


def test_resource_graph_reads_the_same_policies_in_one_query_per_account(reviewed):
    az = reviewed
    now = az.clock.now() + timedelta(seconds=1)
    arm, _ = review_readiness(reader_for(az), now=now)
    arm_policy_lists = az.calls.count(route="policyAssignments.list") + az.calls.count(route="policyExemptions.list")
    graph_reader = reader_for(az, resource_graph=True)
    graph, _ = review_readiness(graph_reader, now=now)
    assert _policy_view(graph) == _policy_view(arm)
    assert {p.name for p in by_name(graph)["aoai-prod"].policies} == {"no-keys", "configure-keys-off"}
    assert by_name(graph)["foundry-hub"].policies and graph_reader.graph_fallbacks == []
    assert az.calls.count(route=GRAPH) == 3  # one query per account, for assignments and exemptions both
    assert arm_policy_lists == 6  # the ARM path: two lists per account
    assert az.calls.count(route="policyAssignments.list") + az.calls.count(route="policyExemptions.list") == 6
    assert not az.calls.count(kind=WRITE, service="arm")


def test_resource_graph_denied_falls_back_to_the_arm_policy_client(reviewed):
    az = reviewed
    now = az.clock.now() + timedelta(seconds=1)
    arm, _ = review_readiness(reader_for(az), now=now)
    az.faults.add("arm", route=GRAPH, status=403, times=None)
    graph_reader = reader_for(az, resource_graph=True)
    graph, _ = review_readiness(graph_reader, now=now)
    assert _policy_view(graph) == _policy_view(arm)
    assert len(graph_reader.graph_fallbacks) == 3 and all("403" in f for f in graph_reader.graph_fallbacks)


def test_the_resource_graph_path_says_what_it_cannot_show(reviewed):
    """Resource Graph leaves out what the identity cannot read, with no 403 to report: the readiness says so (a
    reason that does not block), where the ARM reads and the fallback to them say nothing of the kind."""
    az = reviewed
    now = az.clock.now() + timedelta(seconds=1)

    def caveats(found) -> dict:
        return {name: [r.text for r in item.reasons if "Resource Graph" in r.text]
                for name, item in by_name(found).items()}

    graph = caveats(review_readiness(reader_for(az, resource_graph=True), now=now)[0])
    assert all(len(texts) == 1 and "not listed" in texts[0] for texts in graph.values()), graph
    assert all(r.rule == readiness.POLICY and not r.blocking
               for item in review_readiness(reader_for(az, resource_graph=True), now=now)[0]
               for r in item.reasons if "Resource Graph" in r.text)
    assert all(texts == [] for texts in caveats(review_readiness(reader_for(az), now=now)[0]).values())
    az.faults.add("arm", route=GRAPH, status=403, times=None)
    fallen_back = caveats(review_readiness(reader_for(az, resource_graph=True), now=now)[0])
    assert all(texts == [] for texts in fallen_back.values())
