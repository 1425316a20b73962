"""An API Management gateway in front of an account, over the local stand-in: the failing principal is the
gateway's managed identity (read from the API Management resource), never the gateway's caller; in enforce mode
the allowlisted gateway identity gets the least-privilege role on the account, and the fix is verified."""

from __future__ import annotations

import pytest

from shared.core import incidents as inc
from shared.core.roles import COGNITIVE_SERVICES_OPENAI_USER
from tests.support.engine import service_world

pytestmark = pytest.mark.slow  # every test runs a service world on the local Azure stand-in

WORKSPACE = "7e000000-0000-4000-8000-0000000000f1"
GATEWAY_OID = "7e000000-0000-4000-8000-0000000000a1"  # the gateway's system-assigned identity
CLIENT = "7e000000-0000-4000-8000-00000000c11e"  # an app calling the gateway
WINDOW = 120
GATEWAY_ONLY = {"TRIAGE_WORKSPACE_IDS": "", "TRIAGE_APIM_WORKSPACE_IDS": WORKSPACE}
BOTH_SOURCES = {"TRIAGE_WORKSPACE_IDS": WORKSPACE, "TRIAGE_APIM_WORKSPACE_IDS": WORKSPACE}


def test_a_gateway_failure_is_diagnosed_against_the_gateways_identity(tmp_path):
    with service_world(tmp_path, mode="recommend", scenario={"workspace_id": WORKSPACE}, **GATEWAY_ONLY) as world:
        account = world.failing_gateway("contoso-apim", GATEWAY_OID, caller=CLIENT)
        world.run_traffic(3)
        report = world.scan()

        assert report.signals == 1 and report.rejected == 0
        assert list(report.windows) == [f"apim:{WORKSPACE}"]
        incident = world.incident_of(GATEWAY_OID)
        assert incident.resource_id.lower() == account.lower() and incident.count == 6
        assert incident.cause == "missing_data_role"
        assert incident.diagnosis.role_id == COGNITIVE_SERVICES_OPENAI_USER.guid
        assert incident.diagnosis.scope.lower() == account.lower()
        assert [i for i in world.rt.store.list_incidents() if i.principal_id == CLIENT] == []
        assert world.arm_calls("PUT") == 0


def test_enforce_grants_the_allowlisted_gateway_identity_and_verifies_through_the_gateway_logs(tmp_path):
    # The diagnostic setting logs backend bodies, so the gateway's own rows carry the backend's error text.
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": GATEWAY_OID}], propagation_seconds=WINDOW,
                       scenario={"workspace_id": WORKSPACE}, **GATEWAY_ONLY) as world:
        account = world.failing_gateway("contoso-apim", GATEWAY_OID, caller=CLIENT, log_backend_body=True)
        world.run_traffic(3)

        assert world.scan().actions == {"assign": 1}
        [assignment] = world.role_assignments_of(GATEWAY_OID)
        assert assignment.role_guid == COGNITIVE_SERVICES_OPENAI_USER.guid
        assert assignment.scope.lower() == account.lower()
        assert world.role_assignments_of(CLIENT) == []
        assert world.incident_of(GATEWAY_OID).status == inc.VERIFYING

        world.run_traffic(2)  # still propagating: the gateway keeps failing
        world.scan()
        assert world.run_traffic(2) == 0
        assert world.scan().verifications == {"resolved": 1}
        resolved = world.incident_of(GATEWAY_OID)
        assert resolved.status == inc.RESOLVED and world.arm_calls("PUT") == 1
        [verification] = [a for a in world.rt.store.list_audit(resolved.id) if a.kind == "verification"]
        assert verification.inputs["failures"] == 0 and verification.inputs["successes"] > 0


def test_gateway_and_account_logs_of_the_same_failure_make_one_incident_and_one_grant(tmp_path):
    # Real Azure writes both: the gateway's row, and the account's own row with the gateway's identity as caller.
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": GATEWAY_OID}], propagation_seconds=WINDOW,
                       scenario={"workspace_id": WORKSPACE}, **BOTH_SOURCES) as world:
        account = world.failing_gateway("contoso-apim", GATEWAY_OID, caller=CLIENT)
        failed = world.run_traffic(3)

        first = world.scan()
        # Both sources saw the same failures: the gateway's group joins the account's row, counted once.
        assert set(first.windows) == {f"logs:{WORKSPACE}", f"apim:{WORKSPACE}"}
        assert {read["state"] for read in first.sources.values()} == {"ok"}
        assert first.signals == 1 and world.incident_of(GATEWAY_OID).count == failed == 6
        assert first.actions.get("assign") == 1
        [assignment] = world.role_assignments_of(GATEWAY_OID)
        assert assignment.scope.lower() == account.lower()

        world.run_traffic(4)  # two minutes propagating, then two of successes, seen by both sources
        assert world.scan().verifications == {"resolved": 1}
        assert world.incident_of(GATEWAY_OID).status == inc.RESOLVED
        assert world.arm_calls("PUT") == 1
