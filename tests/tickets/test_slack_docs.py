"""docs/tickets.md shows the Slack message the current code builds, and that sample is one Slack would take."""

from __future__ import annotations

import json
import re

from localazure.trackers.slack import block_problems
from shared.tickets.slack_sample import BEGIN, END, render_slack_sample
from tests.support.paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "tickets.md"


def test_the_slack_sample_in_the_docs_is_current():
    text = DOC.read_text(encoding="utf-8")
    generated = text[text.index(BEGIN) + len(BEGIN): text.index(END)].strip()
    assert generated == render_slack_sample().strip(), "run: python -m shared.tickets.slack_sample docs/tickets.md"
    assert text.index(BEGIN) > text.index("## Slack")


def test_the_sample_messages_are_valid_block_kit_with_the_three_buttons():
    post, reply, _hostile = (json.loads(m) for m in re.findall(r"```json\n(.*?)\n```", render_slack_sample(), re.S))
    assert not block_problems(post["blocks"]) and not block_problems(reply["blocks"])
    (actions,) = [b for b in post["blocks"] if b["type"] == "actions"]
    assert [e["text"]["text"] for e in actions["elements"]] == ["Approve", "Suppress 24 h", "Open in Log Analytics"]
    assert reply["thread_ts"] and "<img" not in _hostile
