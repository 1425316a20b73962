"""Chat sinks behind the engine, over recurrences: one Slack message per incident, updated in place with throttled
thread replies (bot mode), and one Teams card per incident with follow-ups only for a throttled comment, escalation
or resolution. The engine hands each sink its stored reference back (content.refs), which is what makes this so."""

from __future__ import annotations

import pytest

from localazure.trackers.slack import block_problems
from tests.support.engine import service_world

pytestmark = pytest.mark.slow  # a service world on the local Azure stand-in

ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"


def _recurring(world, scans: int) -> None:
    world.failing_caller(ORDERS, display_name="orders-api")
    for _ in range(scans):
        world.run_traffic(3)
        world.scan()


def test_a_recurring_failure_updates_its_one_slack_message_instead_of_posting_another(tmp_path):
    with service_world(tmp_path, mode="recommend", sinks="slack") as world:
        _recurring(world, 3)
        slack = world.trackers.app("slack")
        (message,) = slack.channel_messages()
        assert not block_problems(message.blocks)
        # The first recurrence is commented (one update in place, one thread reply); the third scan falls inside
        # the comment interval, so the message is left as it is: the same throttle as ticket comments.
        assert (message.edits, len(message.replies)) == (1, 1)
        assert message.replies[0].text.startswith("Update:")
        assert world.incident_of(ORDERS).ticket_refs["slack"] == f"{slack.channel}:{message.ts}"


def test_a_recurrence_after_the_comment_interval_is_one_thread_reply(tmp_path):
    with service_world(tmp_path, mode="recommend", sinks="slack", TRIAGE_TICKET_COMMENT_INTERVAL_MINUTES="0") as world:
        _recurring(world, 3)
        (message,) = world.trackers.app("slack").channel_messages()
        assert len(message.replies) == 2  # the second and third scans each commented once


def test_a_recurring_failure_posts_one_teams_card_and_follow_ups_only_when_a_comment_is_due(tmp_path):
    with service_world(tmp_path, mode="recommend", sinks="teams") as world:
        _recurring(world, 3)
        runs = world.trackers.app("teams").runs
        # The card, then one follow-up for the first recurrence; the third scan is inside the comment interval.
        assert len(runs) == 2 and all(run.succeeded for run in runs)
    with service_world(tmp_path / "b", mode="recommend", sinks="teams",
                       TRIAGE_TICKET_COMMENT_INTERVAL_MINUTES="0") as world:
        _recurring(world, 3)
        runs = world.trackers.app("teams").runs
        assert len(runs) == 3 and all(run.succeeded for run in runs)
        assert len(str(runs[1].card)) < len(str(runs[0].card))  # a short follow-up, not the card again
