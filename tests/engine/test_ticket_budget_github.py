"""The ticket budget against the GitHub stand-in with its documented limits: a secondary-limit 403 with
Retry-After stops new issues for the run (queued, not failed: the scan reports no error), the wait is kept for
the next runs, and once it has passed the queue opens exactly one issue per incident."""

from __future__ import annotations

import uuid

import pytest

from localazure.trackers.github import GitHubRateLimits
from shared.engine import ticketing
from tests.support.engine import service_world

pytestmark = pytest.mark.slow  # a service world on the local Azure stand-in and the tracker stand-ins

CALLERS = [str(uuid.UUID(int=0xB0D6E7_0000_4000_8000_000000000000 + n)) for n in range(1, 5)]


def test_a_secondary_rate_limit_queues_new_issues_until_its_retry_after_has_passed(tmp_path):
    with service_world(tmp_path, mode="recommend", allowlist=[{"object_id": c} for c in CALLERS], sinks="github",
                       TRIAGE_MAX_TICKETS_PER_RUN="10") as world:
        world.trackers.app("github").set_limits(GitHubRateLimits(content_per_minute=2))
        for caller in CALLERS:
            world.failing_caller(caller)
        world.run_traffic(3)

        first = world.scan()
        assert first.actions == {"recommend": 4} and first.evidence_errors == []
        assert len(world.github_issues()) == 2
        queued = [i for i in world.rt.store.list_incidents() if i.ticket_queued]
        assert len(queued) == 2 and all(i.ticket_queued == ("github",) for i in queued)
        until, _ = world.rt.store.get_value(ticketing.SINK_STATE_KEY + "github")
        assert until is not None and until["until"] > world.clock.now().isoformat()
        refused = world.github_issue_creates()
        assert refused == 3  # two created, the third refused with Retry-After; the fourth never sent

        # No new failures (recurrence comments are content-creating requests too): the queued incidents are
        # settled, and only the drain writes to GitHub.
        world.clock.advance(5 * 60)
        world.trackers.clock.advance(61)  # the tracker's minute has passed too
        world.scan()
        assert len(world.github_issues()) == 4
        assert all(not i.ticket_queued and not i.ticket_pending and i.ticket_refs
                   for i in world.rt.store.list_incidents())
        assert world.github_issue_creates() == refused + 2
