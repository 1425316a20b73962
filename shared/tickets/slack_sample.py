"""The Slack sample in docs/tickets.md, rendered by the Slack sink's own builder from the shared sample content.

    python -m shared.tickets.slack_sample docs/tickets.md   # rewrites the section between the markers in place
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path

from shared.tickets.base import TicketContent
from shared.tickets.markup.slack_blocks import escape_mrkdwn, incident_message, reply_message
from shared.tickets.samples import HOSTILE, fence, replace_section, sample_content

BEGIN = "<!-- slack-sample:start -->"
END = "<!-- slack-sample:end -->"
CHANNEL = "C0123456789"
_BASE = "https://func-aoai-triage.azurewebsites.net/api/incidents"
_WORKSPACE = ("/subscriptions/8a1c2d3e-4f50-4a6b-9c7d-1e2f3a4b5c6d/resourceGroups/rg-monitor/providers/"
              "Microsoft.OperationalInsights/workspaces/law-prod")


def slack_sample_content() -> TicketContent:
    """The shared sample with the links and commands chat messages offer (as the engine fills them)."""
    content = sample_content()
    return replace(
        content,
        approve_url=f"{_BASE}/{content.incident_id}/approve",
        approve_command=(f"az rest --method post --url {_BASE}/{content.incident_id}/approve "
                         "--resource api://aoai-triage --body '{\"handle\": \"<approval handle>\"}'"),
        suppress_url=f"{_BASE}/{content.incident_id}/suppress?hours=24",
        logs_url=f"https://portal.azure.com/#@contoso.onmicrosoft.com/resource{_WORKSPACE}/logs",
    )


def render_slack_sample() -> str:
    content = slack_sample_content()
    post = {"channel": CHANNEL, **incident_message(content), "unfurl_links": False, "unfurl_media": False}
    reply = {"channel": CHANNEL, **reply_message(content, "Update", "12 more failures since 09:41 UTC."),
             "thread_ts": "1772443445.000100", "unfurl_links": False, "unfurl_media": False}
    parts = [
        "The first open: `chat.postMessage` (the same body, without `channel`, goes to an incoming webhook). Later "
        "opens send it again as `chat.update` with `ts`.",
        fence(json.dumps(post, indent=1, ensure_ascii=False), "json"),
        "A throttled comment: a reply in the message's thread (`thread_ts`); an incoming webhook posts it as a "
        "follow-up that names the incident instead.",
        fence(json.dumps(reply, indent=1, ensure_ascii=False), "json"),
        f"The hostile string `{HOSTILE}` as mrkdwn:",
        fence(json.dumps(escape_mrkdwn(HOSTILE), ensure_ascii=False), "json"),
    ]
    return "\n\n".join(parts)


def update_docs(path: Path) -> bool:
    """Rewrite the Slack sample section of `path`; True if it changed."""
    return replace_section(path, BEGIN, END, render_slack_sample())


if __name__ == "__main__":
    update_docs(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/tickets.md"))
