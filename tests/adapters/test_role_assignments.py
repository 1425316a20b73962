"""Role assignments through the real AuthorizationManagementClient against the local stand-in: deterministic
names, ARM error mapping (409/400/403/others), throttling, paging, groups, and delete-only-our-own."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from azure.core.pipeline.transport import RequestsTransport
from hypothesis import given
from hypothesis import strategies as st

from localazure import FakeCredential
from shared.adapters.azure import AzureClients
from shared.adapters.role_assignments import DESCRIPTION_MARKER, RoleAssignmentError, assignment_name
from shared.core import roles
from shared.settings import Settings

SP = "6b000000-0000-4000-8000-000000000001"
USER = "6b000000-0000-4000-8000-000000000002"
GROUP = "6b000000-0000-4000-8000-000000000003"
OPENAI_USER = roles.COGNITIVE_SERVICES_OPENAI_USER.guid
FOUNDRY_USER = roles.FOUNDRY_USER.guid

# The service's own identity may assign only the data roles, and only to service principals (the ABAC
# condition of docs/adapters.md, as the stand-in models it).
RESTRICTED = {"settings": {"own_identity": {"allowed_roles": [OPENAI_USER, FOUNDRY_USER,
                                                              roles.COGNITIVE_SERVICES_USER.guid],
                                            "allowed_principal_types": ["ServicePrincipal"]}}}


def make_clients(az, client_options=None):
    settings = Settings(arm_endpoint=az.arm_url, logs_endpoint=az.logs_url, ca_bundle=az.ca_path,
                        subscription_id=az.subscription_id)
    options = {"retry_backoff_factor": 0.01, **(client_options or {})}
    return AzureClients.from_settings(settings, FakeCredential(), client_options=options)


@pytest.fixture
def az(local_azure_factory):
    az = local_azure_factory(RESTRICTED)
    az.add_principal(SP, type="ServicePrincipal")
    az.add_principal(USER, type="User", groups=[GROUP])
    az.add_principal(GROUP, type="Group")
    return az


@pytest.fixture
def sleeps(monkeypatch):
    waits: list[float] = []
    monkeypatch.setattr(RequestsTransport, "sleep", lambda self, seconds: waits.append(seconds))
    return waits


def grant(clients, scope, principal=SP, principal_type="ServicePrincipal", role=OPENAI_USER, incident="inc-1"):
    return clients.roles.create(scope=scope, principal_id=principal, principal_type=principal_type,
                                role_guid=role, incident_id=incident)


def test_create_uses_a_deterministic_name_the_principal_type_and_a_marked_description(az):
    account = az.add_account("acct-a")
    outcome = grant(make_clients(az), account, incident="inc-42")
    assert outcome.status == "created"
    assert outcome.assignment_id.endswith("/" + assignment_name(account, SP, OPENAI_USER))
    assert outcome.created_on == az.clock.now()
    (stored,) = [a for a in az.assignments() if a.principal_id == SP]
    assert (stored.role_guid, stored.principal_type) == (OPENAI_USER, "ServicePrincipal")
    assert stored.description == f"{DESCRIPTION_MARKER} for incident inc-42"


def test_repeating_a_grant_is_idempotent(az):
    account = az.add_account("acct-a")
    clients = make_clients(az)
    first = grant(clients, account)
    again = grant(clients, account.upper())  # same grant, scope in another case
    assert again.status in ("created", "exists") and again.assignment_id.lower() == first.assignment_id.lower()
    assert len([a for a in az.assignments() if a.principal_id == SP]) == 1


def test_an_existing_assignment_made_by_someone_else_counts_as_success(az):
    account = az.add_account("acct-a")
    existing = az.add_assignment(SP, OPENAI_USER, account, created_ago_seconds=120)
    outcome = grant(make_clients(az), account)
    assert outcome.status == "exists"
    assert outcome.assignment_id == existing
    assert outcome.created_on == az.clock.now() - timedelta(seconds=120)
    assert az.calls.count(service="arm", route="roleAssignments.put", status=409) == 1


def test_principal_not_found_means_retry_later_until_replication_finishes(az):
    account = az.add_account("acct-a")
    fresh = "6b000000-0000-4000-8000-0000000000f1"
    az.add_principal(fresh, replicating_until=az.clock.now() + timedelta(minutes=2))
    clients = make_clients(az)
    outcome = grant(clients, account, principal=fresh)
    assert outcome.status == "retry_later" and "PrincipalNotFound" in outcome.message
    az.clock.advance(180)
    assert grant(clients, account, principal=fresh).status == "created"


def test_authorization_failed_is_an_operator_facing_refusal_naming_scope_and_role(az):
    account = az.add_account("acct-a")
    outcome = grant(make_clients(az), account, principal=USER, principal_type="User", role=FOUNDRY_USER)
    assert outcome.status == "forbidden"
    assert account in outcome.message and "Foundry User" in outcome.message and FOUNDRY_USER in outcome.message
    assert "ABAC" in outcome.message and "AuthorizationFailed" in outcome.message
    assert not [a for a in az.assignments() if a.principal_id == USER]


def test_a_wrong_principal_type_fails_with_the_arm_code(local_azure_factory):
    az = local_azure_factory(None)
    az.add_principal(SP, type="ServicePrincipal")
    account = az.add_account("acct-a")
    outcome = grant(make_clients(az), account, principal_type="User")
    assert outcome.status == "failed" and outcome.message.startswith("UnmatchedPrincipalType:")


def test_throttled_puts_are_retried_honouring_retry_after(az, sleeps):
    account = az.add_account("acct-a")
    az.faults.add(service="arm", route="roleAssignments.put", status=429, retry_after=4, times=2)
    assert grant(make_clients(az), account).status == "created"
    assert sleeps.count(4) == 2
    assert az.calls.count(service="arm", route="roleAssignments.put") == 3


def test_exhausted_retries_on_create_mean_retry_later(az, sleeps):
    account = az.add_account("acct-a")
    az.faults.add(service="arm", route="roleAssignments.put", status=503, retry_after=1, times=None)
    outcome = grant(make_clients(az, {"retry_total": 2}), account)
    assert outcome.status == "retry_later" and "503" in outcome.message
    assert not az.assignments() or all(a.principal_id != SP for a in az.assignments())


def test_delete_own_removes_only_assignments_this_service_created(az):
    account = az.add_account("acct-a")
    clients = make_clients(az)
    ours = grant(clients, account).assignment_id
    foreign = az.add_assignment(SP, FOUNDRY_USER, account, description="made by hand")
    assert clients.roles.delete_own(foreign) is False
    assert clients.roles.delete_own(ours) is True
    remaining = {a.id for a in az.assignments()}
    assert foreign in remaining and ours not in remaining
    assert clients.roles.delete_own(ours) is False  # already gone


def test_list_includes_group_held_assignments_marked_as_such(az):
    account = az.add_account("acct-a", projects=["p1", "p2"])
    az.add_assignment(USER, OPENAI_USER, account)
    az.add_assignment(GROUP, FOUNDRY_USER, az.project_id("acct-a", "p1"))
    az.add_assignment(SP, OPENAI_USER, account)  # someone else's
    listed = make_clients(az).roles.list_for(USER, account)
    got = {(a.role_definition_id, a.via_group, a.principal_id) for a in listed}
    assert got == {(OPENAI_USER, False, USER), (FOUNDRY_USER, True, GROUP)}


def test_list_falls_back_to_direct_assignments_when_assigned_to_is_refused(az):
    account = az.add_account("acct-a")
    az.add_assignment(USER, OPENAI_USER, account)
    az.add_assignment(GROUP, FOUNDRY_USER, account)
    az.faults.add(service="arm", route="roleAssignments.list", status=400, times=1)  # e.g. a scope refusing it
    listed = make_clients(az).roles.list_for(USER, account)
    assert [(a.role_definition_id, a.via_group) for a in listed] == [(OPENAI_USER, False)]


def test_list_follows_next_links(local_azure_factory):
    az = local_azure_factory(None, page_size=2)
    az.add_principal(SP)
    accounts = [az.add_account(f"acct-{i}") for i in range(5)]
    for account in accounts:
        az.add_assignment(SP, OPENAI_USER, account)
    az.add_assignment(SP, FOUNDRY_USER, f"/subscriptions/{az.subscription_id}")
    listed = make_clients(az).roles.list_for(SP, accounts[0])
    # At the account: its own assignment, plus the subscription-level one it inherits.
    assert {a.role_definition_id for a in listed} == {OPENAI_USER, FOUNDRY_USER} and len(listed) == 2
    everything = make_clients(az).roles.list_for(SP, f"/subscriptions/{az.subscription_id}")
    assert len(everything) == 6
    assert az.calls.count(service="arm", route="roleAssignments.list") == 1 + 3


def test_role_definitions_are_fetched_once_per_run(az):
    clients = make_clients(az)
    first = clients.roles.definitions(az.subscription_id)
    again = clients.roles.definitions(az.subscription_id)
    assert first is again and first[OPENAI_USER].name == "Cognitive Services OpenAI User"
    assert any("OpenAI" in a for a in first[OPENAI_USER].data_actions)
    assert az.calls.count(service="arm", route="roleDefinitions.list") == 1
    clients.new_run()
    clients.roles.definitions(az.subscription_id)
    assert az.calls.count(service="arm", route="roleDefinitions.list") == 2


@given(st.sampled_from(["/subscriptions/s/resourceGroups/rg", "/subscriptions/S/resourcegroups/RG/"]),
       st.sampled_from([SP, SP.upper()]), st.sampled_from([OPENAI_USER, FOUNDRY_USER]))
def test_assignment_names_are_stable_across_case_and_distinct_per_role(scope, principal, role):
    name = assignment_name(scope, principal, role)
    assert uuid.UUID(name).version == 5
    assert name == assignment_name(scope.lower().rstrip("/"), principal.lower(), role.upper())
    other_role = FOUNDRY_USER if role == OPENAI_USER else OPENAI_USER
    assert name != assignment_name(scope, principal, other_role)


def test_a_refused_rollback_raises_a_clear_error(local_azure_factory):
    az = local_azure_factory({"settings": {"own_identity": {"can_delete": False}}})
    az.add_principal(SP)
    account = az.add_account("acct-a")
    clients = make_clients(az)
    ours = grant(clients, account).assignment_id
    with pytest.raises(RoleAssignmentError, match="AuthorizationFailed") as caught:
        clients.roles.delete_own(ours)
    assert ours in str(caught.value)
    assert ours in {a.id for a in az.assignments()}


# ---- recognising the service's own grant after a crash (issue 13) ---------------------------------------------


def test_a_grant_whose_result_was_lost_is_found_by_its_name_or_its_description(az):
    account = az.add_account("acct-a")
    clients = make_clients(az)
    assert clients.roles.find_own(scope=account, principal_id=SP, role_guid=OPENAI_USER, incident_id="inc-7") is None
    made = grant(clients, account, incident="inc-7")  # the instance died before recording this

    by_name = clients.roles.find_own(scope=account, principal_id=SP, role_guid=OPENAI_USER, incident_id="inc-7")
    assert by_name is not None and by_name.assignment_id == made.assignment_id
    # The role the incident names now differs (a later failure replaced its diagnosis): found by description.
    by_marker = clients.roles.find_own(scope=account, principal_id=SP, role_guid=None, incident_id="inc-7")
    assert by_marker is not None and by_marker.assignment_id == made.assignment_id
    assert clients.roles.find_own(scope=account, principal_id=SP, role_guid=None, incident_id="inc-8") is None


def test_re_granting_an_assignment_the_service_made_is_its_own_not_someone_elses(az):
    account = az.add_account("acct-a")
    clients = make_clients(az)
    first = grant(clients, account, incident="inc-7")
    again = grant(clients, account, incident="inc-7")
    assert again.status == "created" and again.assignment_id.lower() == first.assignment_id.lower()
    assert clients.roles.delete_own(again.assignment_id)  # revocable
