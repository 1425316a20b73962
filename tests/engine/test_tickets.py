"""Tickets end to end (GitHub tracker stand-in): one ticket per problem, kept when the tracker is down, updated on
recurrence without double counting, and left alone in steady state."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core import incidents as inc
from shared.engine import approvals
from tests.support.engine import service_world
from tests.support.trackers import visible_text

pytestmark = pytest.mark.slow  # every test runs a service world on the local Azure stand-in

ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"
OVERLAP_MINUTES = 10  # TRIAGE_LOOKBACK_OVERLAP_MINUTES default


@pytest.mark.parametrize(("status", "times"), [(503, 1), (429, 4)], ids=["tracker-down", "rate-limited"])
def test_tracker_failure_keeps_the_ticket_pending_and_the_next_cycle_opens_exactly_one(tmp_path, status, times):
    with service_world(tmp_path, mode="recommend", allowlist=[{"object_id": ORDERS}], sinks="github") as world:
        world.failing_caller(ORDERS)
        world.run_traffic(3)
        # 503 on the create (never retried: the tracker may have applied it); 429 on every attempt of the look-up
        # (retried three times after Retry-After, then given up).
        if status == 503:
            world.trackers.faults.add("github", status=503, times=times, method="POST", retry_after=None)
        else:
            world.trackers.faults.add("github", status=429, times=times, retry_after=0.01)

        first = world.scan()
        assert first.actions == {"recommend": 1}
        pending = world.incident_of(ORDERS)
        assert pending.status == inc.RECOMMENDED and pending.ticket_pending and pending.ticket_refs == {}
        assert world.github_issues() == []

        world.run_traffic(5)
        retried = world.scan()
        done = world.incident_of(ORDERS)
        assert not done.ticket_pending and set(done.ticket_refs) == {"github"}
        [issue] = world.github_issues()
        assert issue.is_open and "az role assignment create" in issue.body

        for _ in range(2):
            world.run_traffic(5)
            world.scan()
        assert len(world.github_issues()) == 1
        assert world.github_issue_creates() == (2 if status == 503 else 1)  # the refused create, then the real one
        [opened] = [a for a in world.rt.store.list_audit(done.id) if a.detail.startswith("ticket opened")]
        assert opened.correlation_id == retried.correlation_id and opened.actor == "service"


@pytest.mark.parametrize("minutes_later", [5, OVERLAP_MINUTES + 5], ids=["failures-re-read", "no-failures-left"])
def test_a_failed_close_is_retried_as_a_close_and_never_reopens_the_ticket(tmp_path, minutes_later):
    with service_world(tmp_path, mode="recommend", allowlist=[{"object_id": ORDERS}], propagation_seconds=120,
                       sinks="github") as world:
        world.failing_caller(ORDERS)
        world.run_traffic(2)
        world.scan()
        incident = world.incident_of(ORDERS)
        approvals.approve(world.rt, incident.id, "alice@contoso.example")
        world.run_traffic(4)  # past the window: the calls succeed
        # The close starts with its comment: a 503 there is not retried within the call.
        world.trackers.faults.add("github", route="/comments", status=503, method="POST", retry_after=None)

        assert world.scan().verifications == {"resolved": 1}
        resolved = world.incident_of(ORDERS)
        assert resolved.status == inc.RESOLVED and resolved.ticket_pending
        [issue] = world.github_issues()
        assert issue.is_open and issue.comments == ()

        # The caller now only succeeds; the next cycle finishes the close.
        world.run_traffic(minutes_later)
        world.scan()
        closed = world.incident_of(ORDERS)
        assert closed.status == inc.RESOLVED and not closed.ticket_pending
        [issue] = world.github_issues()
        assert not issue.is_open and len(issue.comments) == 1 and "Verified" in issue.comments[0]
        assert world.github_issue_creates() == 1
        # Nothing reopened it on the way.
        assert not [r for r in world.github_requests() if r.method == "PATCH" and (r.json() or {}).get("state") ==
                    "open"]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(gaps=st.lists(st.integers(min_value=1, max_value=25), min_size=2, max_size=5),
       per_tick=st.integers(min_value=1, max_value=3))
def test_repeated_scans_keep_one_incident_and_one_ticket_and_count_every_failure_once(gaps, per_tick):
    with tempfile.TemporaryDirectory() as tmp, service_world(
            Path(tmp), mode="recommend", allowlist=[{"object_id": ORDERS}], sinks="github") as world:
        world.failing_caller(ORDERS, per_tick=per_tick)
        failed = 0
        for gap in gaps:
            # Scans `gap` minutes apart; each re-reads the last 10 minutes before its watermark.
            failed += world.run_traffic(gap)
            world.scan()
            incident = world.incident_of(ORDERS)
            assert incident.count == failed
        assert len(world.rt.store.list_incidents()) == 1
        assert world.github_issue_creates() == 1 and len(world.github_issues()) == 1
        # Recurrence comments are throttled to one per TRIAGE_TICKET_COMMENT_INTERVAL_MINUTES (60).
        [issue] = world.github_issues()
        assert len(issue.comments) <= 1 + sum(gaps) // 60


def test_steady_state_makes_no_ticket_calls_and_no_azure_calls(tmp_path):
    with service_world(tmp_path, mode="recommend", allowlist=[{"object_id": ORDERS}], sinks="github") as world:
        world.failing_caller(ORDERS)
        world.run_traffic(4)
        world.scan()
        world.run_traffic(5)
        world.scan()
        world.az.clear_traffic()  # the caller stops failing
        settled = world.incident_of(ORDERS)
        tracker_calls = len(world.github_requests())
        arm_writes = world.arm_calls("PUT") + world.arm_calls("DELETE")

        # Scans whose window still overlaps the old failures: nothing new, so no write and no ticket call.
        world.advance(5 * 60)
        world.scan()
        assert world.incident_of(ORDERS).etag == settled.etag
        assert len(world.github_requests()) == tracker_calls

        # Once the window has moved past them, a scan touches neither Azure nor the tracker.
        world.advance(OVERLAP_MINUTES * 60)
        world.scan()
        arm_calls = world.arm_calls()
        for _ in range(3):
            world.advance(5 * 60)
            report = world.scan()
            assert report.signals == 0
        assert world.arm_calls() == arm_calls
        assert world.arm_calls("PUT") + world.arm_calls("DELETE") == arm_writes == 0
        assert len(world.github_requests()) == tracker_calls
        assert world.incident_of(ORDERS).etag == settled.etag


def test_an_issue_a_person_closed_as_not_planned_stays_closed_and_the_incident_says_who(tmp_path):
    with service_world(tmp_path, mode="recommend", allowlist=[{"object_id": ORDERS}], sinks="github") as world:
        world.failing_caller(ORDERS)
        world.run_traffic(3)
        world.scan()
        [issue] = world.github_issues()
        world.trackers.close_by_person("github", issue.ref, "dana-ops", "not_planned")

        for _ in range(3):  # fifteen minutes of recurrences: one comment (throttled), never reopened
            world.run_traffic(5)
            world.scan()
        [issue] = world.github_issues()
        assert not issue.is_open and world.github_issue_creates() == 1
        [comment] = issue.comments
        assert "Not reopened because dana-ops closed it as not_planned" in visible_text("github", comment)
        declined = [a for a in world.incident_of(ORDERS).actions if a.kind == "declined-by"]
        assert len(declined) == 1 and "closed by dana-ops as not_planned" in declined[0].detail
