"""Evidence through the real ARM clients (authorization, cognitiveservices) against the local stand-in: one
call per distinct (principal, account) and per account, bounded concurrency, per-run caches, and failures that
leave evidence empty instead of failing the run."""

from __future__ import annotations

import threading
from dataclasses import replace

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import RequestsTransport

from localazure import FakeCredential
from shared.adapters.azure import AzureClients
from shared.core import roles
from shared.settings import Settings

P1 = "7c000000-0000-4000-8000-000000000001"
P2 = "7c000000-0000-4000-8000-000000000002"
GROUP = "7c000000-0000-4000-8000-000000000009"
OPENAI_USER = roles.COGNITIVE_SERVICES_OPENAI_USER.guid
FOUNDRY_USER = roles.FOUNDRY_USER.guid
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"


def make_clients(az, client_options=None, credential=None, **settings):
    base = Settings(arm_endpoint=az.arm_url, logs_endpoint=az.logs_url, ca_bundle=az.ca_path,
                    subscription_id=az.subscription_id, evidence_concurrency=4)
    options = {"retry_backoff_factor": 0.01, **(client_options or {})}
    return AzureClients.from_settings(replace(base, **settings), credential or FakeCredential(),
                                      client_options=options)


@pytest.fixture
def az(local_azure_factory):
    az = local_azure_factory(None)
    az.add_principal(P1, type="ServicePrincipal")
    az.add_principal(P2, type="User", groups=[GROUP])
    az.add_principal(GROUP, type="Group")
    return az


def test_one_list_per_principal_and_one_get_per_account(az):
    a = az.add_account("acct-a", projects=["p1", "p2"])
    b = az.add_account("acct-b", kind="AIServices")
    az.add_assignment(P1, CONTRIBUTOR, a)
    az.add_assignment(P2, OPENAI_USER, b)
    pairs = {(P1, a), (P1, a + "/projects/p1"), (P1, b), (P2, b), (None, a), (None, b)}
    clients = make_clients(az)
    evidence = clients.evidence.gather_evidence(pairs)

    assert set(evidence) == pairs
    # One subscription-level list per principal covers every account; one GET per account.
    assert az.calls.count(service="arm", route="roleAssignments.list") == 2
    assert az.calls.count(service="arm", route="accounts.get") == 2
    assert az.calls.count(service="arm") == 4  # no role-definition list: every role is a known built-in
    assert clients.calls.count(service="arm") == 4
    assert [x.role_definition_id for x in evidence[(P1, a)].assignments] == [CONTRIBUTOR]
    assert evidence[(P1, b)].assignments == ()
    assert [x.role_definition_id for x in evidence[(P2, b)].assignments] == [OPENAI_USER]
    assert evidence[(None, a)].assignments is None  # key callers: nothing to look up
    assert evidence[(P1, a)].principal_type == "ServicePrincipal"
    assert evidence[(P1, b)].principal_type == "ServicePrincipal"  # known from its assignment elsewhere

    clients.evidence.gather_evidence(pairs)  # same run: served from the caches
    assert clients.evidence.assignments_for(P2, b)[0].role_definition_id == OPENAI_USER
    assert az.calls.count(service="arm") == 4
    clients.new_run()
    clients.evidence.gather_evidence({(P1, a)})
    assert az.calls.count(service="arm") == 6


def test_without_subscription_read_it_lists_per_account(az):
    a, b = az.add_account("acct-a"), az.add_account("acct-b")
    az.add_assignment(P1, OPENAI_USER, b)
    subscription_list = f"^/subscriptions/{az.subscription_id}/providers/Microsoft.Authorization/roleAssignments$"
    az.faults.add(service="arm", route=subscription_list, status=403, times=None)
    az.faults.add(service="arm", route="acct-a/providers/Microsoft.Authorization", status=500, times=None)
    clients = make_clients(az, {"retry_total": 1})
    evidence = clients.evidence.gather_evidence({(P1, a), (P1, b), (P2, b)})
    assert evidence[(P1, a)].assignments is None  # that look-up failed: not looked up
    assert evidence[(P1, a)].resource is not None and evidence[(P1, a)].resource.kind == "OpenAI"
    assert [x.role_definition_id for x in evidence[(P1, b)].assignments] == [OPENAI_USER]
    assert evidence[(P2, b)].assignments == ()
    assert len(clients.evidence.errors) == 1 and "acct-a" in clients.evidence.errors[0]
    assert "InternalServerError" in clients.evidence.errors[0] or "500" in clients.evidence.errors[0]
    # Per principal: one refused subscription-level try at most, then the accounts.
    refused = az.calls.count(service="arm", route="roleAssignments.list", status=403)
    assert 1 <= refused <= 2
    assert az.calls.count(service="arm", route="roleAssignments.list", status=200) == 2  # (P1,b) and (P2,b)


def test_assignments_are_kept_where_they_apply(az):
    account = az.add_account("acct-a", projects=["p1", "p2"])
    az.add_assignment(P2, OPENAI_USER, f"/subscriptions/{az.subscription_id}")  # inherited from above
    az.add_assignment(P2, FOUNDRY_USER, az.project_id("acct-a", "p1"))
    az.add_assignment(GROUP, FOUNDRY_USER, az.project_id("acct-a", "p2"))
    project1 = account + "/projects/p1"
    evidence = make_clients(az).evidence.gather_evidence({(P2, account), (P2, project1)})
    at_account = {(x.role_definition_id, x.scope.rsplit("/", 1)[-1], x.via_group)
                  for x in evidence[(P2, account)].assignments}
    assert at_account == {(OPENAI_USER, az.subscription_id, False), (FOUNDRY_USER, "p1", False),
                          (FOUNDRY_USER, "p2", True)}
    at_project1 = {(x.role_definition_id, x.scope.rsplit("/", 1)[-1]) for x in evidence[(P2, project1)].assignments}
    assert at_project1 == {(OPENAI_USER, az.subscription_id), (FOUNDRY_USER, "p1")}  # not the sibling project
    assert az.calls.count(service="arm", route="roleAssignments.list") == 1


def test_resource_evidence_carries_the_account_settings(az):
    network = f"/subscriptions/{az.subscription_id}/resourceGroups/rg/providers/Microsoft.Network"
    pe, subnet = f"{network}/privateEndpoints/pe1", f"{network}/virtualNetworks/v/subnets/s"
    account = az.add_account("foundry", kind="AIServices", disable_local_auth=True, public_network_access="Disabled",
                             default_action="Deny", projects=["research"], ip_rules=["203.0.113.0/24"],
                             virtual_network_rules=[subnet], private_endpoints=[pe], custom_subdomain="foundry-x")
    resource = make_clients(az).evidence.resource(account)
    assert resource.resource_id == account.lower()
    assert (resource.kind, resource.custom_subdomain, resource.disable_local_auth) == ("AIServices", "foundry-x", True)
    assert (resource.public_network_access, resource.network_default_action) == ("Disabled", "Deny")
    assert resource.ip_rules == ("203.0.113.0/24",) and resource.virtual_network_rules == (subnet,)
    assert resource.private_endpoints == 1
    assert resource.projects == (account.lower() + "/projects/research",)
    assert resource.endpoint and "foundry-x" in resource.endpoint
    assert az.calls.count(service="arm", route="projects.list") == 0


def test_a_missing_account_gives_no_resource_evidence(az):
    ghost = f"/subscriptions/{az.subscription_id}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/x"
    az.add_account("acct-a")  # the resource group exists; the account does not
    evidence = make_clients(az).evidence.gather_evidence({(None, ghost)})
    assert evidence[(None, ghost)].resource is None


def test_a_failed_look_up_leaves_that_evidence_empty_and_is_reported(az):
    a = az.add_account("acct-a")
    az.faults.add(service="arm", route="roleAssignments.list", status=500, times=None)
    clients = make_clients(az, {"retry_total": 1})
    evidence = clients.evidence.gather_evidence({(P1, a), (None, a)})
    assert evidence[(P1, a)].assignments is None
    assert evidence[(P1, a)].resource is not None and evidence[(None, a)].resource is not None
    assert len(clients.evidence.errors) == 1 and P1 in clients.evidence.errors[0]
    # The pair says what failed (its whole message), and the key caller's, which needed no assignments, is whole.
    assert evidence[(P1, a)].failed == tuple(clients.evidence.errors) == clients.evidence.failures()
    assert not evidence[(P1, a)].complete and evidence[(None, a)].complete
    assert "\n" not in clients.evidence.errors[0] and "InternalServerError" in clients.evidence.errors[0]
    with pytest.raises(HttpResponseError):  # a single look-up outside the batch says why
        clients.evidence.assignments_for(P2, a)


def test_an_unreadable_account_degrades_every_pair_on_it_and_a_new_run_forgets_it(az):
    a = az.add_account("acct-a")
    az.faults.add(service="arm", route="accounts.get", status=503, retry_after=0.01, times=None)
    clients = make_clients(az, {"retry_total": 1})
    evidence = clients.evidence.gather_evidence({(P1, a), (None, a)})
    assert all(e.resource is None and len(e.failed) == 1 and "acct-a" in e.failed[0] for e in evidence.values())
    az.faults.clear()
    clients.new_run()
    assert clients.evidence.failures() == ()
    assert all(e.complete for e in clients.evidence.gather_evidence({(P1, a), (None, a)}).values())


def test_throttled_look_ups_are_retried(az, monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(RequestsTransport, "sleep", lambda self, seconds: waits.append(seconds))
    a = az.add_account("acct-a")
    az.add_assignment(P1, OPENAI_USER, a)
    az.faults.add(service="arm", route="accounts.get", status=429, retry_after=3, times=1)
    evidence = make_clients(az).evidence.gather_evidence({(P1, a)})
    assert evidence[(P1, a)].resource is not None and waits == [3]


class _InFlight(RequestsTransport):
    """Observes how many ARM requests are on the wire at once (does not change them). A transport, not a policy: one
    policy instance handed to several pipelines (the account look-ups have their own) is linked into the last one
    built, so a request of another pipeline would leave its own at that policy and skip its authentication."""

    def __init__(self, ca_path: str):
        super().__init__(connection_verify=ca_path)
        self.now = self.peak = 0
        self._lock = threading.Lock()

    def send(self, request, **kwargs):
        with self._lock:
            self.now += 1
            self.peak = max(self.peak, self.now)
        try:
            return super().send(request, **kwargs)
        finally:
            with self._lock:
                self.now -= 1


def test_look_ups_run_concurrently_within_the_configured_bound(az):
    accounts = [az.add_account(f"acct-{i}") for i in range(6)]
    az.faults.add(service="arm", status=None, delay=0.15, times=None)
    in_flight = _InFlight(az.ca_path)
    clients = make_clients(az, {"transport": in_flight}, evidence_concurrency=3)
    evidence = clients.evidence.gather_evidence({(P1, a) for a in accounts})
    assert len(evidence) == 6 and all(e.resource is not None for e in evidence.values())
    assert 2 <= in_flight.peak <= 3


def test_unknown_roles_trigger_one_role_definition_list_per_run(az, monkeypatch):
    a = az.add_account("acct-a")
    az.add_assignment(P1, CONTRIBUTOR, a)
    az.add_assignment(P2, CONTRIBUTOR, a)
    # The stand-in serves built-in roles only; pretend the core does not know Contributor to exercise the path.
    monkeypatch.delitem(roles.BY_GUID, CONTRIBUTOR)
    clients = make_clients(az)
    clients.evidence.gather_evidence({(P1, a), (P2, a)})
    assert az.calls.count(service="arm", route="roleDefinitions.list") == 1
    definitions = clients.evidence.role_definitions(az.subscription_id)
    assert definitions[CONTRIBUTOR].name == "Contributor"
    assert az.calls.count(service="arm", route="roleDefinitions.list") == 1


def test_custom_roles_are_read_through_arm_and_judged_by_their_data_actions(az):
    from shared.core.diagnose import diagnose
    from shared.core.model import FailureSignal

    a = az.add_account("acct-a")
    chat_only = az.add_custom_role("Chat only", data_actions=[
        "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action"])
    agents_only = az.add_custom_role("Agents only", data_actions=[
        "Microsoft.CognitiveServices/accounts/AIServices/agents/*"])
    az.add_assignment(P1, chat_only, a, created_ago_seconds=86400)
    az.add_assignment(P2, agents_only, a, created_ago_seconds=86400)
    clients = make_clients(az)
    evidence = clients.evidence.gather_evidence({(P1, a), (P2, a)})

    assert az.calls.count(service="arm", route="roleDefinitions.list") == 1
    got = evidence[(P1, a)]
    assert got.complete and [d.name for d in got.role_definitions] == ["Chat only"]
    assert got.role_definitions[0].custom is True
    chat = FailureSignal(status=401, object_id=P1, auth="entra", resource_id=a,
                         endpoint="https://acct-a.openai.azure.com/openai/deployments/d/chat/completions")
    # The custom role grants the chat call: the role is there, so this is not a missing role.
    assert diagnose(chat, got).cause == "role_present_still_denied"
    other = diagnose(replace(chat, object_id=P2), evidence[(P2, a)])
    assert other.cause == "wrong_role_for_surface" and other.role_id == OPENAI_USER


def test_an_unreadable_role_definition_leaves_the_evidence_incomplete(az, monkeypatch):
    from shared.core.diagnose import diagnose
    from shared.core.model import FailureSignal

    a = az.add_account("acct-a")
    gone = az.add_custom_role("Soon deleted", data_actions=["Microsoft.CognitiveServices/*"])
    az.add_assignment(P1, gone, a, created_ago_seconds=86400)
    with az.state.lock:
        del az.state.custom_roles[gone]  # the assignment outlives its definition
    clients = make_clients(az)
    got = clients.evidence.gather_evidence({(P1, a)})[(P1, a)]

    assert az.calls.count(service="arm", route="roleDefinitions.get") == 1  # read by id once the list lacked it
    assert not got.complete and gone in got.failed[0] and got.role_definitions == ()
    diagnosis = diagnose(FailureSignal(status=401, object_id=P1, auth="entra", resource_id=a,
                                       endpoint="https://acct-a.openai.azure.com/openai/deployments/d/chat"), got)
    assert diagnosis.confidence != "high" and any("could not be read" in line for line in diagnosis.evidence)
    assert gone in " ".join(clients.evidence.failures())


def test_hosts_map_back_to_their_account(az):
    a = az.add_account("acct-a", kind="AIServices", custom_subdomain="contoso-ai")
    evidence = make_clients(az).evidence
    assert evidence.resource_for_host("CONTOSO-AI.services.ai.azure.com") == a.lower()
    assert evidence.resource_for_host("contoso-ai.openai.azure.com") == a.lower()
    assert evidence.resource_for_host("elsewhere.openai.azure.com") is None
    assert "contoso-ai.openai.azure.com" in evidence.hosts_for(a)
    assert az.calls.count(service="arm", route="accounts.list") == 1


def test_sovereign_cloud_scopes_and_audiences_are_requested(az):
    credential = FakeCredential()
    a = az.add_account("acct-a")
    clients = make_clients(az, credential=credential, arm_scope="https://management.usgovcloudapi.net/.default",
                           logs_audience="https://api.loganalytics.us", workspace_ids=(az.workspace_id,))
    clients.evidence.gather_evidence({(P1, a)})
    clients.sources[0].activity(P1, a, az.clock.now(), az.clock.now())
    requested = {scope for scopes in credential.scopes_requested for scope in scopes}
    assert requested == {"https://management.usgovcloudapi.net/.default", "https://api.loganalytics.us/.default"}
