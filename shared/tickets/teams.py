"""The Teams sink: an Adaptive Card per incident, posted to a channel through a Workflows webhook (the Teams
Workflows template "Post to a channel when a webhook request is received").

What the webhook can and cannot do decides what this sink does. The webhook answers 202 Accepted with an empty
body as soon as the flow is triggered (https://github.com/atc0005/go-teams-notify/pull/265); the card is posted
afterwards by the flow, so the answer carries no message id, and a card Teams refuses only shows as a failed run
in the flow's history ("The specified Teams flowbot adaptive card request is missing or invalid",
https://github.com/ffind-dev/pve-ups/issues/4). Nothing can later update, thread or delete the message. So "one
message per incident, updated rather than repeated" becomes:

- the first `open_or_update` of an incident (no `teams` reference in `content.refs`) posts the full card;
- later calls post nothing, unless the engine gives a comment (recurrence comments are throttled by
  TRIAGE_TICKET_COMMENT_INTERVAL_MINUTES), the incident escalates (`content.escalated`, set only on that call) or
  it resolves: then a short follow-up card naming the incident;
- the reference is the incident id.

The webhook URL is the credential: its `sig` query parameter signs it (a Logic Apps shared access signature).
It is registered as a secret with the HTTP client, so no error message carries it, and the HTTP log policy shows
only allow-listed query parameters (not `sig`). urllib3 logs each request line, query included, at DEBUG: a filter
on its logger removes the URL's secret forms from those records.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import parse_qsl, quote, quote_plus, urlsplit

from shared.tickets.base import TicketContent, TicketRef
from shared.tickets.http import HttpOptions, TrackerClient, redact_in_http_logs, secret_forms
from shared.tickets.markup.adaptive_card import body_bytes, follow_up_payload, incident_payload

log = logging.getLogger("triage.tickets")
SETTING = "TRIAGE_TEAMS_WEBHOOK_URL"


def _url_secrets(url: str) -> tuple[str, ...]:
    """The URL in every form an error or log line could show it: whole, its query, and each signature value
    (raw and percent-encoded)."""
    parts = urlsplit(url)
    values = [v for k, v in parse_qsl(parts.query, keep_blank_values=True) if k.lower() in ("sig", "code")]
    forms = [url, parts.query, *values, *(quote(v, safe="") for v in values), *(quote_plus(v) for v in values)]
    return secret_forms(*forms)


class TeamsSink:
    name = "teams"
    # Reviews are planning work for trackers, and a chat sink cannot find a review's message again (reviews keep no
    # per-sink reference): each scheduled run would post every account's review anew (review_tickets.py).
    takes_reviews = False

    def __init__(self, *, url: str, options: HttpOptions):
        if not url:
            raise ValueError(f"{SETTING} is required for the teams sink")
        parts = urlsplit(url)
        if parts.scheme != "https" or not parts.netloc:
            raise ValueError(f"{SETTING} must be an https:// URL")
        self._path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        secrets = _url_secrets(url)
        redact_in_http_logs(secrets)
        self._http = TrackerClient(sink=self.name, base_url=f"{parts.scheme}://{parts.netloc}", options=options,
                                   secrets=secrets, credential_hint=SETTING)

    def _post(self, payload: dict[str, Any], what: str, content: TicketContent, *, created: bool = False
              ) -> TicketRef:
        # Not retried on 5xx within the call: the flow may have been triggered, and a second trigger is a second
        # card. A rate limit (429) is retried by TrackerClient; any other failure is retried next cycle.
        self._http.request("POST", self._path, content=body_bytes(payload), idempotent=False,
                           headers={"Content-Type": "application/json"})
        log.info("teams sink: posted the %s card for %s", what, content.incident_id)
        return TicketRef(self.name, content.incident_id, created=created)

    def open_or_update(self, content: TicketContent, *, comment: str | None = None) -> TicketRef:
        if content.ref_for(self.name) is None:
            return self._post(incident_payload(content), "incident", content, created=True)
        if comment or content.escalated:  # escalation: the engine's action text says why
            return self._post(follow_up_payload(content, comment or content.action), "follow-up", content)
        return TicketRef(self.name, content.ref_for(self.name) or content.incident_id)  # nothing new to say

    def resolve(self, content: TicketContent, *, comment: str) -> TicketRef | None:
        return self._post(follow_up_payload(content, comment, resolved=True), "resolved", content)

    def close(self) -> None:
        self._http.close()
