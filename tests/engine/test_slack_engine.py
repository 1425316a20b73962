"""The Slack sink behind the engine: a scan of a failing caller posts one Block Kit message, and the incident keeps
the sink's `<channel>:<ts>` reference (what the engine hands back in content.refs to update that message)."""

from __future__ import annotations

import pytest

from localazure.trackers.slack import block_problems
from tests.support.engine import service_world

pytestmark = pytest.mark.slow  # a service world on the local Azure stand-in

ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"


def test_a_scan_posts_one_slack_message_and_keeps_its_reference(tmp_path):
    with service_world(tmp_path, mode="recommend", sinks="slack") as world:
        world.failing_caller(ORDERS)
        world.run_traffic(3)
        world.scan()
        incident = world.incident_of(ORDERS)
        slack = world.trackers.app("slack")
        (message,) = slack.channel_messages()
        assert incident.ticket_refs["slack"] == f"{slack.channel}:{message.ts}"
        assert not block_problems(message.blocks)
        assert message.blocks[0]["text"]["text"].startswith("[missing_data_role]")
        text = str(message.blocks)
        assert "az role assignment create" in text and incident.id in text
