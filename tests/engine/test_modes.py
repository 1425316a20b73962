"""Modes and on-call actions end to end: observe, recommend, approve, revoke and suppress, with the audit trail."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.core import incidents as inc
from shared.core.roles import COGNITIVE_SERVICES_OPENAI_USER
from shared.engine import approvals
from tests.support.engine import service_world

pytestmark = pytest.mark.slow  # every test runs a service world on the local Azure stand-in

ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"
ALICE = "alice@contoso.example"


def readable(markdown: str) -> str:
    """GitHub Markdown as a reader sees it: escapes and the zero-width spaces after @/# removed."""
    return markdown.replace("\\", "").replace("\u200b", "")


def test_observe_diagnoses_only_no_ticket_no_write(tmp_path):
    with service_world(tmp_path, mode="observe", allowlist=[{"object_id": ORDERS}], sinks="github") as world:
        world.failing_caller(ORDERS)
        for _ in range(2):
            world.run_traffic(5)
            assert world.scan().actions == {"observe": 1}
        incident = world.incident_of(ORDERS)
        assert incident.status == inc.DIAGNOSED and incident.cause == "missing_data_role"
        assert world.github_requests() == []
        assert world.arm_calls("PUT") == world.arm_calls("DELETE") == 0
        [decision] = world.rt.store.list_audit(incident.id)
        assert decision.inputs["mode"] == "observe" and decision.inputs["refusals"] == ["mode"]


def test_recommend_tickets_the_exact_fix_and_how_to_approve_without_writing(tmp_path):
    with service_world(tmp_path, mode="recommend", allowlist=[{"object_id": ORDERS}], sinks="github") as world:
        account = world.failing_caller(ORDERS)
        world.run_traffic(3)
        report = world.scan()
        assert report.actions == {"recommend": 1}
        incident = world.incident_of(ORDERS)
        assert incident.status == inc.RECOMMENDED and incident.approval_handle == incident.id
        assert world.arm_calls("PUT") == 0

        [issue] = world.github_issues()
        body = readable(issue.body)
        command = (f"az role assignment create --assignee-object-id {ORDERS} --assignee-principal-type "
                   f"ServicePrincipal --role {COGNITIVE_SERVICES_OPENAI_USER.guid} --scope {account}")
        assert command.lower() in body.lower()
        assert f"approve {incident.id}" in body
        [refusal] = [a for a in world.rt.store.list_audit(incident.id) if a.kind == "refusal"]
        assert refusal.inputs["refusals"] == ["mode"] and refusal.correlation_id == report.correlation_id


def test_approval_grants_once_and_records_the_approver(tmp_path):
    with service_world(tmp_path, mode="recommend", allowlist=[{"object_id": ORDERS}], sinks="github") as world:
        world.failing_caller(ORDERS)
        world.run_traffic(3)
        world.scan()
        incident = world.incident_of(ORDERS)

        result = approvals.approve(world.rt, incident.id, ALICE)
        assert result.status == inc.VERIFYING
        assert world.arm_calls("PUT") == 1
        granted = world.incident_of(ORDERS)
        assert granted.approved_by == ALICE and granted.assignment_id and granted.approval_handle is None
        [assignment] = world.role_assignments_of(ORDERS)
        assert assignment.role_guid == COGNITIVE_SERVICES_OPENAI_USER.guid

        by_alice = [a for a in world.rt.store.list_audit(incident.id) if a.actor == ALICE]
        assert [a.kind for a in by_alice] == ["approval", "action"]
        assert len({a.correlation_id for a in by_alice}) == 1
        assert by_alice[1].inputs["outcome"] == "created"

        with pytest.raises(approvals.ActionRefused, match="not recommended"):
            approvals.approve(world.rt, incident.id, "bob@contoso.example")
        assert world.arm_calls("PUT") == 1


def test_an_expired_approval_is_refused_and_the_next_scan_issues_a_fresh_one(tmp_path):
    with service_world(tmp_path, mode="recommend", allowlist=[{"object_id": ORDERS}],
                       TRIAGE_APPROVAL_TTL_HOURS="1") as world:
        world.failing_caller(ORDERS)
        world.run_traffic(3)
        world.scan()
        incident = world.incident_of(ORDERS)
        world.advance(61 * 60)

        with pytest.raises(approvals.ActionRefused, match="expired"):
            approvals.approve(world.rt, incident.id, ALICE)
        assert world.arm_calls("PUT") == 0

        world.run_traffic(2)  # still failing: a new recommendation with a new expiry
        world.scan()
        fresh = world.incident_of(ORDERS)
        assert fresh.status == inc.RECOMMENDED and fresh.approval_expires_at > world.clock.now()
        approvals.approve(world.rt, incident.id, ALICE)
        assert world.arm_calls("PUT") == 1


def test_revoke_deletes_the_services_own_assignment_and_it_is_not_granted_again(tmp_path):
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}]) as world:
        world.failing_caller(ORDERS)
        world.run_traffic(3)
        world.scan()
        incident = world.incident_of(ORDERS)
        assert len(world.role_assignments_of(ORDERS)) == 1

        approvals.revoke(world.rt, incident.id, ALICE)
        assert world.role_assignments_of(ORDERS) == []
        assert world.arm_calls("DELETE") == 1
        revoked = world.incident_of(ORDERS)
        assert revoked.status == inc.TICKETED and revoked.assignment_id is None
        [record] = [a for a in world.rt.store.list_audit(incident.id) if a.kind == "revoke"]
        assert record.actor == ALICE and record.inputs["assignment_id"] == incident.assignment_id

        # The caller fails again, well past the cool-down: a revoked grant is not silently made again.
        world.advance(2 * 3600)
        world.run_traffic(3)
        world.scan()
        assert world.arm_calls("PUT") == 1
        with pytest.raises(approvals.ActionRefused, match="no assignment"):
            approvals.revoke(world.rt, incident.id, ALICE)


def test_revoke_refuses_incidents_without_an_assignment_of_the_service(tmp_path):
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}], propagation_seconds=120) as world:
        account = world.failing_caller(ORDERS)
        world.az.add_assignment(ORDERS, COGNITIVE_SERVICES_OPENAI_USER.guid, account, created_ago_seconds=30)
        world.run_traffic(1)
        assert world.scan().actions == {"wait": 1}
        waiting = world.incident_of(ORDERS)

        with pytest.raises(approvals.ActionRefused, match="no assignment created by this service"):
            approvals.revoke(world.rt, waiting.id, ALICE)
        assert world.arm_calls("DELETE") == 0
        assert len(world.role_assignments_of(ORDERS)) == 1  # the engineer's own assignment is untouched


def test_revoke_refuses_an_assignment_that_no_longer_carries_the_services_marker(tmp_path):
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}]) as world:
        world.failing_caller(ORDERS)
        world.run_traffic(2)
        world.scan()
        incident = world.incident_of(ORDERS)
        [assignment] = world.role_assignments_of(ORDERS)
        assert assignment.description.startswith("Created by aoai-auth-triage")
        assignment.description = "Owned by the platform team"  # someone took it over

        with pytest.raises(approvals.ActionRefused, match="marker"):
            approvals.revoke(world.rt, incident.id, ALICE)
        assert world.arm_calls("DELETE") == 0
        assert len(world.role_assignments_of(ORDERS)) == 1


def test_a_suppressed_principal_gets_no_ticket_and_no_grant_until_the_suppression_ends(tmp_path):
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}], sinks="github") as world:
        world.failing_caller(ORDERS)
        approvals.suppress(world.rt, ORDERS.upper(), timedelta(minutes=30), "load test", ALICE)
        world.run_traffic(3)
        assert world.scan().actions == {"suppressed": 1}
        assert world.incident_of(ORDERS).status == inc.SUPPRESSED
        world.run_traffic(5)
        world.scan()
        assert world.arm_calls("PUT") == 0
        assert world.github_requests() == []
        [record] = [a for a in world.rt.store.list_audit() if a.kind == "suppress"]
        assert record.actor == ALICE and record.inputs["target"] == ORDERS

        world.run_traffic(25)  # the suppression has expired
        world.scan()
        assert world.arm_calls("PUT") == 1
        assert world.incident_of(ORDERS).status == inc.VERIFYING
