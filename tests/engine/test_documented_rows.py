"""The main lifecycles on the stand-in's documented-shape rows (no error text, no request path), both ways for what
Azure does not document: whether rejected requests are logged at all, and the apiName of the Foundry routes.

- Rows logged (the default): an allowlisted service principal with only Contributor, and one with no role, are
  granted the least-privilege role from the evidence alone, and verified.
- Rejections not logged: the same callers are seen only through their apps' client-side records, which name them
  by configuration; each ends in a ticket whose approval grants, and the grant is verified.
- Foundry /models calls: an apiName that names the surface decides; OpenAI-looking names decide nothing on an
  AIServices account (a ticket that says what would decide), until a client-side record gives the URL.
"""

from __future__ import annotations

import pytest

from localazure import LogShape
from shared.core import incidents as inc
from shared.core.roles import COGNITIVE_SERVICES_OPENAI_USER, COGNITIVE_SERVICES_USER
from shared.engine.approvals import approve
from tests.support.engine import service_world

pytestmark = pytest.mark.slow  # every test runs a service world on the local Azure stand-in

ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"  # no role at all
BILLING = "7f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"  # Contributor only
CALLERS = {ORDERS: "orders-api", BILLING: "billing-api"}
WINDOW = 120
ONCALL = "oncall@contoso.example"
MODELS = "/models/chat/completions"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"


def two_failing_callers(world, *, apps: bool) -> str:
    account = world.failing_caller(ORDERS, app=CALLERS[ORDERS] if apps else None)
    world.failing_caller(BILLING, app=CALLERS[BILLING] if apps else None)
    world.az.add_assignment(BILLING, "Contributor", "rg:rg", created_ago_seconds=86400 * 30)
    return account


def granted_and_verified(world, account: str) -> None:
    for oid in CALLERS:
        [granted] = [a for a in world.role_assignments_of(oid) if a.role_guid != CONTRIBUTOR]
        assert (granted.role_guid, granted.scope.lower()) == (COGNITIVE_SERVICES_OPENAI_USER.guid, account.lower())
    assert world.run_traffic(2) == 8  # still propagating: the check is not due
    assert world.scan().verifications == {}
    assert world.run_traffic(2) == 0
    assert world.scan().verifications == {"resolved": 2}
    assert {world.incident_of(oid).status for oid in CALLERS} == {inc.RESOLVED}


@pytest.mark.parametrize("apps", [False, True], ids=["server rows only", "with client records"])
@pytest.mark.parametrize("names", ["surface", "openai"])
def test_logged_rejections_are_granted_from_the_evidence_and_verified(tmp_path, apps, names):
    shape = LogShape(foundry_api_names=names)
    with service_world(tmp_path, allowlist=[{"object_id": oid} for oid in CALLERS], propagation_seconds=WINDOW,
                       log_shape=shape, apps={v: k for k, v in CALLERS.items()} if apps else None) as world:
        account = two_failing_callers(world, apps=apps)
        world.run_traffic(3)

        report = world.scan()
        assert report.actions == {"assign": 2}
        assert report.signals == 2  # the client records joined the rows that confirm their callers
        causes = {oid: world.incident_of(oid).cause for oid in CALLERS}
        assert causes == {ORDERS: "missing_data_role", BILLING: "control_plane_role_only"}
        assert {world.incident_of(oid).diagnosis.confidence for oid in CALLERS} == {"high"}
        granted_and_verified(world, account)
        assert world.arm_calls("PUT") == 2


def test_unlogged_rejections_are_seen_through_client_records_ticketed_and_granted_on_approval(tmp_path):
    with service_world(tmp_path, allowlist=[{"object_id": oid} for oid in CALLERS], propagation_seconds=WINDOW,
                       log_shape=LogShape(rejections_logged=False), apps={v: k for k, v in CALLERS.items()},
                       sinks="github") as world:
        account = two_failing_callers(world, apps=True)
        world.run_traffic(3)
        assert world.az.query('AzureDiagnostics | where ResultSignature == "401"').rows == []

        report = world.scan()
        assert report.actions == {"recommend": 2} and world.arm_calls("PUT") == 0
        issues = world.github_issues()
        assert len(issues) == 2 and all("telemetry" in issue.body and "approve" in issue.body for issue in issues)
        for oid in CALLERS:
            incident = world.incident_of(oid)
            assert incident.status == inc.RECOMMENDED
            assert approve(world.rt, incident.id, ONCALL).status == inc.VERIFYING
        assert world.arm_calls("PUT") == 2
        granted_and_verified(world, account)
        assert all(not issue.is_open for issue in world.github_issues())


def test_without_client_records_unlogged_rejections_are_not_seen_at_all(tmp_path):
    with service_world(tmp_path, allowlist=[{"object_id": ORDERS}], log_shape=LogShape(rejections_logged=False)) \
            as world:
        world.failing_caller(ORDERS)
        world.run_traffic(3)
        assert world.scan().signals == 0


@pytest.mark.parametrize(("names", "apps", "action"), [
    ("surface", False, "assign"),  # "Azure AI Model Inference API" names the surface
    ("openai", False, "ticket"),  # the row cannot tell /models from /openai on an AIServices account
    ("openai", True, "assign"),  # the client-side record's URL decides
])
def test_a_models_call_with_an_openai_role_on_a_foundry_account(tmp_path, names, apps, action):
    with service_world(tmp_path, allowlist=[{"object_id": ORDERS}], propagation_seconds=WINDOW,
                       log_shape=LogShape(foundry_api_names=names), apps={"phi": ORDERS} if apps else None) as world:
        world.az.add_account("hub", kind="AIServices", deployments=["Phi-4"])
        world.az.add_assignment(ORDERS, COGNITIVE_SERVICES_OPENAI_USER.guid, "account:hub", created_ago_seconds=86400)
        world.failing_caller(ORDERS, account="hub", route=MODELS, deployment="Phi-4", app="phi" if apps else None)
        world.run_traffic(3)

        assert world.scan().actions == {action: 1}
        incident = world.incident_of(ORDERS)
        assert incident.cause == ("wrong_role_for_surface" if action == "assign" else "role_present_still_denied")
        if action == "assign":
            assert [a.role_guid for a in world.role_assignments_of(ORDERS)].count(COGNITIVE_SERVICES_USER.guid) == 1
            assert world.run_traffic(2) > 0 and world.run_traffic(2) == 0
            assert world.scan().verifications == {"resolved": 1}
        else:
            assert incident.diagnosis.confidence == "medium"
            assert any("request URL" in line for line in incident.diagnosis.evidence)
