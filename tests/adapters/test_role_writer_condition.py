"""The generated ABAC condition on the service's own identity, as the azd template deploys it: Role Based Access
Control Administrator on each account with `python -m shared abac-condition`'s text. Through the real SDK against
the stand-in, the three data roles are granted and revoked; Owner, Contributor, a user and another account are
refused with 403."""

from __future__ import annotations

import uuid

import pytest

from localazure import FakeCredential
from shared.adapters.azure import AzureClients
from shared.adapters.role_assignments import RoleAssignmentError, description_for
from shared.core import roles
from shared.core.abac import policy_condition
from shared.settings import Settings

OWN = "6c000000-0000-4000-8000-0000000000a1"
SP = "6c000000-0000-4000-8000-000000000001"
USER = "6c000000-0000-4000-8000-000000000002"
RBAC_ADMIN = roles.lookup("Role Based Access Control Administrator").guid
OWNER = roles.lookup("Owner").guid
CONTRIBUTOR = roles.lookup("Contributor").guid


@pytest.fixture
def az(local_azure_factory):
    az = local_azure_factory({"settings": {"own_identity": {"principal_id": OWN, "use_assignments": True}}})
    az.add_principal(OWN, type="ServicePrincipal")
    az.add_principal(SP, type="ServicePrincipal")
    az.add_principal(USER, type="User")
    for name in ("remediated", "elsewhere"):
        az.add_account(name)
    az.add_assignment(OWN, RBAC_ADMIN, az.account_id("remediated"), condition=policy_condition())
    return az


def clients_for(az):
    settings = Settings(arm_endpoint=az.arm_url, logs_endpoint=az.logs_url, ca_bundle=az.ca_path,
                        subscription_id=az.subscription_id)
    return AzureClients.from_settings(settings, FakeCredential(), client_options={"retry_backoff_factor": 0.01})


def grant(clients, scope, role, principal=SP, principal_type="ServicePrincipal"):
    return clients.roles.create(scope=scope, principal_id=principal, principal_type=principal_type, role_guid=role,
                                incident_id=f"inc-{uuid.uuid4().hex[:8]}")


def test_the_three_data_roles_are_granted_and_revoked(az):
    clients = clients_for(az)
    account = az.account_id("remediated")
    for role in sorted(roles.GRANTABLE):
        outcome = grant(clients, account, role)
        assert outcome.status == "created", outcome.message
        assert clients.roles.delete_own(outcome.assignment_id) is True  # delete: judged on @Resource


@pytest.mark.parametrize("role", [OWNER, CONTRIBUTOR], ids=["Owner", "Contributor"])
def test_owner_and_contributor_are_refused_with_403(az, role):
    outcome = grant(clients_for(az), az.account_id("remediated"), role)
    assert outcome.status == "forbidden"
    assert "AuthorizationFailed" in outcome.message and "ABAC" in outcome.message
    assert not [a for a in az.assignments() if a.role_guid == role and a.principal_id == SP]


def test_a_user_another_account_and_a_foreign_delete_are_refused(az):
    clients = clients_for(az)
    openai_user = roles.COGNITIVE_SERVICES_OPENAI_USER.guid
    assert grant(clients, az.account_id("remediated"), openai_user, USER, "User").status == "forbidden"
    # Conditions cannot test the scope: the role writer is per account, and another account is out of reach.
    assert grant(clients, az.account_id("elsewhere"), openai_user).status == "forbidden"
    marked_owner = az.add_assignment(SP, OWNER, az.account_id("remediated"), description=description_for("inc-x"))
    with pytest.raises(RoleAssignmentError):
        clients.roles.delete_own(marked_owner)
