"""Blast-radius caps and the circuit breaker end to end: refused grants are ticketed naming the rule, and the
refusal lifts when its cause does (a new run, a new day, an operator's reset)."""

from __future__ import annotations

import pytest

from shared.core import incidents as inc
from shared.engine import approvals
from shared.engine.unit_of_work import BREAKER_KEY
from tests.support.engine import service_world

pytestmark = pytest.mark.slow  # every test runs a service world on the local Azure stand-in

ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"
BILLING = "7f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"
SEARCH = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
OPERATOR = "oncall@contoso.example"


def allowlist(*object_ids: str) -> list[dict[str, str]]:
    return [{"object_id": oid} for oid in object_ids]


def refusals(world, incident_id: str) -> list[list[str]]:
    return [a.inputs["refusals"] for a in world.rt.store.list_audit(incident_id) if a.kind == "refusal"]


def split_by_status(world, *object_ids: str) -> dict[str, list]:
    found: dict[str, list] = {}
    for oid in object_ids:
        incident = world.incident_of(oid)
        found.setdefault(incident.status, []).append(incident)
    return found


@pytest.mark.parametrize("cap", [0, 1])
def test_the_run_cap_tickets_further_grants_and_the_next_run_makes_them(tmp_path, cap):
    with service_world(tmp_path, mode="enforce", allowlist=allowlist(ORDERS, BILLING), sinks="github",
                       TRIAGE_MAX_GRANTS_PER_RUN=str(cap)) as world:
        world.failing_caller(ORDERS)
        world.failing_caller(BILLING)
        world.run_traffic(3)
        report = world.scan()
        assert report.grants == cap == world.arm_calls("PUT")
        ticketed = split_by_status(world, ORDERS, BILLING)[inc.TICKETED]
        assert len(ticketed) == 2 - cap
        for incident in ticketed:
            assert refusals(world, incident.id) == [["run_cap"]]
        assert len(world.github_issues()) == 2 - cap
        assert "run_cap" in world.github_issues()[0].body.replace("\\", "")

        world.run_traffic(5)
        world.scan()
        # A run cap is per run: with a cap of 1 the other grant comes in the next run; a cap of 0 never grants.
        assert world.arm_calls("PUT") == (2 if cap else 0)
        assert len(world.github_issues()) == 2 - cap


def test_the_daily_cap_holds_for_24_hours(tmp_path):
    with service_world(tmp_path, mode="enforce", allowlist=allowlist(ORDERS, BILLING), sinks="github",
                       TRIAGE_MAX_GRANTS_PER_DAY="1") as world:
        world.failing_caller(ORDERS)
        world.failing_caller(BILLING)
        world.run_traffic(3)
        world.scan()
        assert world.arm_calls("PUT") == 1
        [refused] = split_by_status(world, ORDERS, BILLING)[inc.TICKETED]
        assert refusals(world, refused.id) == [["daily_cap"]]

        for _ in range(3):  # the same day: still refused, still one ticket, no rewrite of it
            world.run_traffic(5)
            world.scan()
        assert world.arm_calls("PUT") == 1
        assert world.incident_of(refused.principal_id).status == inc.TICKETED
        assert world.github_issue_creates() == 1 and len(world.github_issues()) == 1

        world.advance(24 * 3600)
        world.run_traffic(2)
        world.scan()
        assert world.arm_calls("PUT") == 2
        assert world.incident_of(refused.principal_id).status == inc.VERIFYING


def test_the_breaker_opens_after_grants_escalate_and_only_an_operator_closes_it(tmp_path):
    with service_world(tmp_path, mode="enforce", allowlist=allowlist(ORDERS, BILLING, SEARCH), sinks="github",
                       propagation_seconds=120, TRIAGE_BREAKER_THRESHOLD="2") as world:
        world.failing_caller(ORDERS)
        world.failing_caller(BILLING)
        world.run_traffic(3)
        world.scan()
        assert world.arm_calls("PUT") == 2
        # Both grants are undone behind the service's back: both callers keep failing past the window.
        for oid in (ORDERS, BILLING):
            assignment_id = world.incident_of(oid).assignment_id
            world.az.state.remove_assignment(assignment_id.rsplit("/", 1)[-1])
        world.run_traffic(4)
        report = world.scan()
        assert report.verifications == {"escalated": 2}
        breaker, _ = world.rt.store.get_value(BREAKER_KEY)
        assert breaker["open"] is True and breaker["consecutive_failures"] == 2
        [opened] = [a for a in world.rt.store.list_audit() if a.kind == "breaker"]
        assert opened.correlation_id == report.correlation_id and opened.actor == "service"

        # A new role-fixable failure is ticketed with the breaker's refusal, scan after scan.
        world.failing_caller(SEARCH)
        for _ in range(2):
            world.run_traffic(3)
            world.scan()
        blocked = world.incident_of(SEARCH)
        assert blocked.status == inc.TICKETED
        assert refusals(world, blocked.id) == [["circuit_breaker"]]
        assert world.arm_calls("PUT") == 2
        assert len(world.github_issues()) == 3  # two escalations and the refused grant

        approvals.reset_breaker(world.rt, OPERATOR)
        breaker, _ = world.rt.store.get_value(BREAKER_KEY)
        assert breaker["open"] is False and breaker["reset_by"] == OPERATOR
        [reset] = [a for a in world.rt.store.list_audit() if a.kind == "breaker" and a.actor == OPERATOR]
        assert reset.correlation_id

        world.run_traffic(3)
        world.scan()
        # The refused grant is made now; the escalated incidents are not granted again.
        assert world.arm_calls("PUT") == 3
        assert world.incident_of(SEARCH).status == inc.VERIFYING
        assert {world.incident_of(oid).status for oid in (ORDERS, BILLING)} == {inc.ESCALATED}
