"""End to end over the local stand-in: assign → still failing while the role propagates → resolved; assign →
still failing after the window → escalated; a recent assignment → wait, no second grant.

The propagation window is compressed to two minutes (the stand-in applies the same delay), and the service and
the stand-in share one frozen clock, so nothing sleeps.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.core import incidents as inc
from shared.core.roles import COGNITIVE_SERVICES_OPENAI_USER
from shared.engine.unit_of_work import BREAKER_KEY
from tests.support.engine import service_world

pytestmark = pytest.mark.slow  # every test runs a service world on the local Azure stand-in

ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"
WINDOW = 120  # seconds; the ingestion lag is 60 s (fixture), so a check is due 3 minutes after the role


def test_grant_keeps_failing_while_it_propagates_then_resolves(tmp_path):
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}], propagation_seconds=WINDOW,
                       sinks="github") as world:
        account = world.failing_caller(ORDERS)
        world.run_traffic(3)

        first = world.scan()
        assert first.actions == {"assign": 1}
        granted = world.incident_of(ORDERS)
        assert granted.status == inc.VERIFYING and granted.assignment_id
        [assignment] = world.role_assignments_of(ORDERS)
        assert assignment.role_guid == COGNITIVE_SERVICES_OPENAI_USER.guid
        assert assignment.scope.lower() == account.lower()
        assert granted.assignment_id.lower() == assignment.id.lower()

        # The role is in place but not yet effective: the caller keeps failing, and the check is not due yet.
        assert world.run_traffic(2) == 4
        assert world.scan().verifications == {}
        assert world.incident_of(ORDERS).status == inc.VERIFYING

        # Past the window the calls succeed; the check counts only traffic from the effective time on.
        assert world.run_traffic(2) == 0
        last = world.scan()
        assert last.verifications == {"resolved": 1}
        resolved = world.incident_of(ORDERS)
        assert resolved.status == inc.RESOLVED and resolved.closed_at is not None
        # Failures re-read from the propagation window do not rewrite the cause that was verified.
        assert resolved.cause == "missing_data_role" and resolved.diagnosis.role_id
        assert "cause-changed" not in [a.kind for a in resolved.actions]
        assert world.arm_calls("PUT") == 1
        assert world.github_issue_creates() == 0  # a grant that worked needs no ticket

        audit = world.rt.store.list_audit(granted.id)
        decided = [a for a in audit if a.correlation_id == first.correlation_id]
        assert [a.kind for a in decided] == ["decision", "action"]
        assert all(a.actor == "service" for a in audit)
        assert decided[1].inputs["outcome"] == "created"
        assert decided[1].inputs["assignment_id"].lower() == assignment.id.lower()
        [verification] = [a for a in audit if a.kind == "verification"]
        assert verification.correlation_id == last.correlation_id
        assert verification.inputs["failures"] == 0 and verification.inputs["successes"] > 0


def test_grant_still_failing_after_the_window_escalates_once(tmp_path):
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}], propagation_seconds=WINDOW,
                       sinks="github") as world:
        world.failing_caller(ORDERS)
        world.run_traffic(3)
        world.scan()
        granted = world.incident_of(ORDERS)
        # Someone removes the new assignment behind the service's back: the failures go on past the window.
        assert world.az.state.remove_assignment(granted.assignment_id.rsplit("/", 1)[-1]) is not None

        world.run_traffic(4)
        report = world.scan()
        assert report.verifications == {"escalated": 1}
        escalated = world.incident_of(ORDERS)
        assert escalated.status == inc.ESCALATED
        [issue] = world.github_issues()
        assert issue.is_open and issue.high_priority
        assert "Escalated" in issue.body

        # Later scans over the continuing failures neither grant again nor open a second ticket.
        for _ in range(3):
            world.run_traffic(5)
            world.scan()
        assert world.arm_calls("PUT") == 1
        assert world.github_issue_creates() == 1 and len(world.github_issues()) == 1
        assert world.incident_of(ORDERS).status == inc.ESCALATED

        [verification] = [a for a in world.rt.store.list_audit(granted.id) if a.kind == "verification"]
        assert verification.correlation_id == report.correlation_id
        assert verification.inputs["failures"] > 0
        breaker, _ = world.rt.store.get_value(BREAKER_KEY)
        assert breaker["consecutive_failures"] == 1 and breaker["open"] is False


def test_recent_assignment_waits_for_propagation_without_a_second_grant(tmp_path):
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}], propagation_seconds=WINDOW,
                       sinks="github") as world:
        account = world.failing_caller(ORDERS)
        # Assigned by hand 30 s ago: still propagating, so the caller fails for another 90 s.
        world.az.add_assignment(ORDERS, COGNITIVE_SERVICES_OPENAI_USER.guid, account, created_ago_seconds=30)
        assert world.run_traffic(1) == 2

        first = world.scan()
        assert first.actions == {"wait": 1}
        waiting = world.incident_of(ORDERS)
        assert waiting.cause == "propagation_pending"
        assert waiting.status == inc.VERIFYING and waiting.assignment_id is None and waiting.verify_due
        assert world.arm_calls("PUT") == 0

        world.run_traffic(1)  # still failing, check not due yet
        world.scan()
        assert world.arm_calls("PUT") == 0

        assert world.run_traffic(2) == 0
        assert world.scan().verifications == {"resolved": 1}
        assert world.incident_of(ORDERS).status == inc.RESOLVED
        assert world.arm_calls("PUT") == 0
        assert len(world.role_assignments_of(ORDERS)) == 1
        # Someone else's assignment says nothing about the service's own grants: the breaker is untouched.
        assert world.rt.store.get_value(BREAKER_KEY) == (None, None)
        assert world.github_issue_creates() == 0


def test_a_role_assigned_by_hand_after_a_recommendation_is_verified_and_the_ticket_closed(tmp_path):
    with service_world(tmp_path, mode="recommend", allowlist=[{"object_id": ORDERS}], propagation_seconds=WINDOW,
                       sinks="github") as world:
        account = world.failing_caller(ORDERS)
        world.run_traffic(2)
        world.scan()
        assert world.incident_of(ORDERS).status == inc.RECOMMENDED
        # An engineer runs the fix command from the ticket. The caller fails for two more minutes, then succeeds.
        world.az.add_assignment(ORDERS, COGNITIVE_SERVICES_OPENAI_USER.guid, account, created_ago_seconds=0)
        assert world.run_traffic(5) == 4

        # The failures the scan reads all happened while the role propagated: that is what it must conclude
        # (not "role present, still denied"), and the check that follows closes the incident and its ticket.
        report = world.scan()
        assert report.actions == {"wait": 1}
        assert report.verifications == {"resolved": 1}
        incident = world.incident_of(ORDERS)
        assert incident.status == inc.RESOLVED
        [issue] = world.github_issues()
        assert not issue.is_open
        assert world.arm_calls("PUT") == 0


def test_managed_identity_holding_the_role_only_through_a_group_gets_a_direct_grant_a_ticket_and_a_day(tmp_path):
    mi, group = "6a0c0f00-0000-4000-8000-0000000000a1", "6a0c0f00-0000-4000-8000-0000000000b1"
    # The allowlist declares the identity a service principal: with no direct assignment, nothing else says so.
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": mi}], propagation_seconds=WINDOW,
                       sinks="github") as world:
        world.az.add_principal(group, type="Group")
        world.az.add_principal(mi, type="ServicePrincipal", managed_identity=True)
        world.failing_caller(mi)
        world.az.add_assignment(group, COGNITIVE_SERVICES_OPENAI_USER.guid, "account:aoai", created_ago_seconds=86400)
        world.az.add_group_member(mi, group)  # joined just now: its token cache won't see it for ~24 h
        world.run_traffic(2)
        world.scan()

        incident = world.incident_of(mi)
        assert incident.cause == "group_membership_cache"
        assert incident.status == inc.VERIFYING
        direct = [a for a in world.role_assignments_of(mi) if a.principal_id == mi]
        assert len(direct) == 1 and direct[0].role_guid == COGNITIVE_SERVICES_OPENAI_USER.guid
        assert incident.verify_deadline - incident.last_grant_at >= timedelta(hours=24)
        (issue,) = world.github_issues()
        assert "group" in issue.body.lower()

        world.run_traffic(WINDOW // 60 + 3)  # the direct role takes effect; the caller succeeds
        world.scan()
        assert world.incident_of(mi).status == inc.RESOLVED
        (issue,) = world.github_issues()
        assert not issue.is_open
