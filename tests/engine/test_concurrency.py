"""Two service instances on one store: the etag-conditional claim lets exactly one of them grant or ticket.

The instances run `run_scan` (or approve) at the same moment in threads, against the real SQLite store, the ARM
and Log Analytics stand-ins and the GitHub tracker stand-in.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from shared.core import incidents as inc
from shared.core.incidents import Action
from shared.engine import approvals
from tests.engine.common import run_together
from tests.support.engine import service_world

pytestmark = pytest.mark.slow  # every test runs a service world on the local Azure stand-in

ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"
BATCH = "0d3c5e7a-1b2c-4d5e-8f90-a1b2c3d4e5f6"  # not allowlisted: ticketed


@pytest.mark.parametrize("round_no", range(2))
def test_two_instances_scanning_the_same_failures_grant_once_and_ticket_once(tmp_path, round_no):
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}], sinks="github") as world:
        world.failing_caller(ORDERS)
        world.failing_caller(BATCH)
        world.run_traffic(3)
        # A slow ARM write keeps the winner busy while the other instance merges the same failures into the
        # incident it claimed: the grant's result must still be recorded.
        world.az.faults.add("arm", route=r"roleAssignments\.put", method="PUT", delay=0.3, times=None)
        other = world.another_runtime()

        reports = run_together(lambda: world.scan(), lambda: world.scan(other))

        assert not [r for r in reports if isinstance(r, Exception)], reports
        assert world.arm_calls("PUT") == 1
        assert len(world.role_assignments_of(ORDERS)) == 1
        assert world.github_issue_creates() == 1
        [issue] = world.github_issues()
        assert BATCH in issue.body

        granted = world.incident_of(ORDERS)
        assert granted.status == inc.VERIFYING and granted.assignment_id and granted.verify_due
        assert world.rt.store.count_grants_since(world.clock.now() - timedelta(days=1)) == 1
        grant_actions = [a for a in world.rt.store.list_audit(granted.id) if a.kind == "action"]
        assert len(grant_actions) == 1
        ticketed = world.incident_of(BATCH)
        assert ticketed.status == inc.TICKETED and set(ticketed.ticket_refs) == {"github"}
        assert not ticketed.ticket_pending

        # Both keep scanning: still one grant and one ticket.
        world.run_traffic(2)
        reports = run_together(lambda: world.scan(), lambda: world.scan(other))
        assert not [r for r in reports if isinstance(r, Exception)], reports
        assert world.arm_calls("PUT") == 1
        assert world.github_issue_creates() == 1 and len(world.github_issues()) == 1


def test_two_engineers_approving_at_once_grant_once(tmp_path):
    with service_world(tmp_path, mode="recommend", allowlist=[{"object_id": ORDERS}], sinks="github") as world:
        world.failing_caller(ORDERS)
        world.run_traffic(2)
        world.scan()
        incident = world.incident_of(ORDERS)
        assert incident.status == inc.RECOMMENDED
        other = world.another_runtime()

        results = run_together(lambda: approvals.approve(world.rt, incident.id, "alice@contoso.example"),
                               lambda: approvals.approve(other, incident.id, "bob@contoso.example"))

        granted = [r for r in results if isinstance(r, approvals.ActionResult)]
        refused = [r for r in results if isinstance(r, approvals.ActionRefused)]
        assert len(granted) == 1 and len(refused) == 1, results
        assert world.arm_calls("PUT") == 1
        after = world.incident_of(ORDERS)
        assert after.status == inc.VERIFYING and after.approved_by in ("alice@contoso.example", "bob@contoso.example")
        [grant] = [a for a in world.rt.store.list_audit(incident.id) if a.kind == "action" and "role assignment" in
                   a.detail]
        assert grant.actor == after.approved_by


def test_a_grant_claimed_by_an_instance_that_died_is_taken_over_once_stale(tmp_path):
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}]) as world:
        world.failing_caller(ORDERS)
        world.run_traffic(2)
        # ARM keeps answering 503: the grant is deferred and the incident goes back to diagnosed.
        world.az.faults.add("arm", route=r"roleAssignments\.put", method="PUT", status=503, retry_after=0.01,
                            times=None)
        assert world.scan().actions == {"assign": 1}
        deferred = world.incident_of(ORDERS)
        assert deferred.status == inc.DIAGNOSED and deferred.actions[-1].kind == "grant-retry-later"
        world.az.faults.clear()
        puts_so_far = world.arm_calls("PUT")

        # Another instance claims the grant (exactly the record _grant writes first) and dies before calling ARM.
        now = world.clock.now()
        claim = replace(deferred, status=inc.ASSIGNED, assignment_id=None, updated_at=now).with_action(
            Action(now, "grant-claimed", "Cognitive Services OpenAI User at the account", "service"))
        world.rt.store.put_incident(claim, expected_etag=deferred.etag)

        world.run_traffic(1)
        world.scan()  # a fresh claim is respected: its owner may still be at work
        assert world.arm_calls("PUT") == puts_so_far
        assert world.incident_of(ORDERS).status == inc.ASSIGNED

        world.run_traffic(2)
        world.scan()  # the claim is older than two minutes: taken over
        assert world.arm_calls("PUT") == puts_so_far + 1
        taken_over = world.incident_of(ORDERS)
        assert taken_over.status == inc.VERIFYING and taken_over.assignment_id
        assert len(world.role_assignments_of(ORDERS)) == 1
