"""The sample Teams card in docs/tickets.md (between the teams-sample markers), from the card builder itself.

    python -m shared.tickets.teams_samples docs/tickets.md   # rewrites that section in place
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from shared.tickets.markup.adaptive_card import follow_up_payload, incident_payload, message_size
from shared.tickets.samples import fence, replace_section, sample_content

BEGIN = "<!-- teams-sample:start -->"
END = "<!-- teams-sample:end -->"
_HOST = "https://func-aoai-triage.azurewebsites.net"


def _content() -> Any:
    content = sample_content()
    act = f"{_HOST}/api/act/{content.incident_id}"
    return replace(
        content,
        approve_url=f"{act}/approve",
        approve_command=(f"az rest --method post --url {_HOST}/api/incidents/{content.incident_id}/approve "
                         "--headers \"x-functions-key=<function key>\" --body '{\"by\": \"<you>\", "
                         "\"fingerprint\": \"<f>\"}'"),
        suppress_url=f"{act}/suppress",
        logs_url=("https://portal.azure.com/#blade/Microsoft_OMS_Portal/LogsBlade/resourceId/%2Fsubscriptions%2F"
                  "8a1c2d3e-4f50-4a6b-9c7d-1e2f3a4b5c6d%2FresourceGroups%2Frg-ops%2Fproviders%2F"
                  "Microsoft.OperationalInsights%2Fworkspaces%2Flaw-ops"),
    )


def sample_card() -> dict[str, Any]:
    """The first message for the sample incident, as posted to the Workflows webhook."""
    return incident_payload(_content())


def sample_follow_up() -> dict[str, Any]:
    content = replace(_content(), refs=(("teams", sample_content().incident_id),))
    return follow_up_payload(content, "Recurred: 52 failures since the last update (was 37).")


def render_teams_sample() -> str:
    card, follow_up = sample_card(), sample_follow_up()
    return "\n\n".join([
        f"The first message ({message_size(card):,} of at most 28,000 bytes, counted in UTF-16):",
        fence(json.dumps(card, indent=1, ensure_ascii=False), "json"),
        "A follow-up (a throttled recurrence comment):",
        fence(json.dumps(follow_up, indent=1, ensure_ascii=False), "json"),
    ])


def update_docs(path: Path) -> bool:
    """Rewrite the Teams sample section of `path`; True if it changed."""
    return replace_section(path, BEGIN, END, render_teams_sample())


if __name__ == "__main__":
    update_docs(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/tickets.md"))
