"""The Slack sink: one Block Kit message per incident, through the Web API (a bot token) or an incoming webhook.

Bot mode (TRIAGE_SLACK_BOT_TOKEN + TRIAGE_SLACK_CHANNEL). The first open posts the message with chat.postMessage,
whose answer carries the message's `ts` (https://api.slack.com/methods/chat.postMessage); the sink's reference is
`<channel>:<ts>`, which the engine keeps on the incident and hands back in `content.refs`. Later opens update that
message in place with chat.update (counts, last seen, status; https://api.slack.com/methods/chat.update); a comment
(the engine throttles them, TRIAGE_TICKET_COMMENT_INTERVAL_MINUTES), the escalation and the resolution are replies
in its thread (chat.postMessage with `thread_ts`). A parent that is gone (`message_not_found`) is posted afresh.
The Web API answers HTTP 200 with `{"ok": false, "error": "..."}` for its errors; a rate limit is HTTP 429 with
Retry-After and `ratelimited` (https://api.slack.com/apis/rate-limits), handled like every tracker's rate limit.

Webhook mode (TRIAGE_SLACK_WEBHOOK_URL, no bot token). An incoming webhook answers `ok` (text/plain) and returns no
`ts`, so it can neither update nor thread (https://api.slack.com/messaging/webhooks): the first open posts the
message, later calls post a short follow-up only with a comment, on the escalation and on the resolution; counts
and last seen are not refreshed. Its errors are text/plain bodies with HTTP statuses
(https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks). The URL is the credential:
it is redacted from errors and from the HTTP log.

The reference gains `:escalated` once the escalation reply is posted, so it is posted once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.tickets.base import TicketAuthError, TicketContent, TicketError, TicketRef
from shared.tickets.http import HttpOptions, HttpResult, TrackerClient, redact_in_http_logs, secret_forms
from shared.tickets.markup.slack_blocks import incident_message, reply_message
from shared.tickets.sanitize import clean_line, redact

log = logging.getLogger("triage.tickets")
NAME = "slack"
ESCALATED = "escalated"
WEBHOOK_REF = "webhook"
# Web API error codes (https://api.slack.com/methods/chat.postMessage#errors and the common errors every method
# lists): the token is refused, or the bot cannot post where it is told to.
AUTH_ERRORS = frozenset({"invalid_auth", "not_authed", "account_inactive", "token_revoked", "token_expired",
                         "not_allowed_token_type", "missing_scope", "no_permission", "ekm_access_denied"})
CHANNEL_ERRORS = frozenset({"not_in_channel", "channel_not_found", "is_archived", "restricted_action"})
# Incoming webhook answers (the changelog above, and "Handling errors" in the webhooks guide).
WEBHOOK_AUTH = {403: "action_prohibited", 404: "channel_not_found", 410: "channel_is_archived"}


@dataclass(frozen=True)
class SlackRef:
    """A parsed sink reference: `<channel>:<ts>` (bot) or `webhook:<incident id>`, `:escalated` once replied."""

    channel: str
    ts: str
    escalated: bool = False

    @classmethod
    def parse(cls, value: str | None) -> SlackRef | None:
        parts = (value or "").split(":")
        if len(parts) < 2 or not parts[0] or not parts[1]:
            return None
        return cls(parts[0], parts[1], len(parts) > 2 and parts[2] == ESCALATED)

    def __str__(self) -> str:
        return f"{self.channel}:{self.ts}" + (f":{ESCALATED}" if self.escalated else "")


def _body(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class SlackApiError(TicketError):
    """An `ok: false` answer; `code` is Slack's error string."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


class SlackBotSink:
    """Bot mode: chat.postMessage, chat.update and thread replies with a bot token (xoxb-)."""

    name = NAME
    # Reviews are planning work for trackers, and a chat sink cannot find a review's message again (reviews keep no
    # per-sink reference): each scheduled run would post every account's review anew (review_tickets.py).
    takes_reviews = False

    def __init__(self, *, api_url: str, token: str, channel: str, options: HttpOptions):
        if not token or not channel:
            raise ValueError("TRIAGE_SLACK_BOT_TOKEN and TRIAGE_SLACK_CHANNEL are required for the Slack bot")
        self._channel = channel
        header = f"Bearer {token}"
        self._secrets = secret_forms(token, headers=(header,))
        redact_in_http_logs(self._secrets)
        self._http = TrackerClient(sink=self.name, base_url=api_url, options=options, secrets=self._secrets,
                                   credential_hint="TRIAGE_SLACK_BOT_TOKEN", authorization=lambda: header)

    # ---- the Web API ----

    def _call(self, method: str, payload: dict[str, Any], *, idempotent: bool) -> dict[str, Any]:
        result = self._http.request("POST", f"/{method}", content=_body(payload), idempotent=idempotent,
                                    headers={"Content-Type": "application/json; charset=utf-8"})
        answer = result.json()
        if not isinstance(answer, dict):
            raise TicketError(self._message(f"{method}: not a Web API answer (HTTP {result.status})"))
        if answer.get("ok") is True:
            return answer
        code = clean_line(answer.get("error") or "unknown_error", 80)
        detail = self._detail(answer)
        if code in AUTH_ERRORS:
            raise TicketAuthError(self._message(f"credentials rejected ({method}: {code}{detail}); check "
                                                "TRIAGE_SLACK_BOT_TOKEN (a bot token, xoxb-, with chat:write)"))
        if code in CHANNEL_ERRORS:
            raise TicketAuthError(self._message(f"cannot post to the channel ({method}: {code}); check "
                                                "TRIAGE_SLACK_CHANNEL (a channel id) and invite the app to it"))
        raise SlackApiError(self._message(f"request rejected ({method}: {code}{detail})"), code)

    @staticmethod
    def _detail(answer: dict[str, Any]) -> str:
        messages = (answer.get("response_metadata") or {}).get("messages") or answer.get("errors") or []
        text = clean_line("; ".join(str(m) for m in messages[:3]), 300) if isinstance(messages, list) else ""
        return f": {text}" if text else ""

    def _message(self, text: str) -> str:
        return redact(f"{self.name} sink: {text}", self._secrets)

    def _post(self, message: dict[str, Any], thread_ts: str | None = None) -> str:
        payload = {"channel": self._channel, **message, "unfurl_links": False, "unfurl_media": False}
        if thread_ts:
            payload["thread_ts"] = thread_ts
        # Not retried on 5xx: the message may have been posted (a rate-limit answer posted nothing and is retried).
        answer = self._call("chat.postMessage", payload, idempotent=False)
        ts = answer.get("ts")
        if not isinstance(ts, str) or not ts:
            raise TicketError(self._message("chat.postMessage answered without a ts"))
        return ts

    def _update(self, ref: SlackRef, message: dict[str, Any]) -> bool:
        """Update the parent in place; False when it no longer exists."""
        try:
            self._call("chat.update", {"channel": ref.channel, "ts": ref.ts, **message}, idempotent=True)
        except SlackApiError as exc:
            if exc.code == "message_not_found":
                return False
            raise
        return True

    def probe(self) -> str:
        """A read-only look-up (the self-check): auth.test checks the token and posts nothing."""
        self._call("auth.test", {}, idempotent=True)
        return f"token accepted; posting to channel {self._channel}"

    # ---- TicketSink ----

    def _existing(self, content: TicketContent) -> SlackRef | None:
        ref = SlackRef.parse(content.ref_for(self.name))
        return ref if ref is not None and ref.channel == self._channel else None  # another channel: start afresh

    def open_or_update(self, content: TicketContent, *, comment: str | None = None) -> TicketRef:
        ref = self._existing(content)
        message = incident_message(content)
        if ref is None or not self._update(ref, message):
            ts = self._post(message)
            log.info("slack sink: posted the message for %s", content.incident_id)
            return TicketRef(self.name, str(SlackRef(self._channel, ts, content.escalated)), created=True)
        if comment:
            self._post(reply_message(content, "Update", comment), thread_ts=ref.ts)
        if content.escalated and not ref.escalated:
            self._post(reply_message(content, "Escalated", content.action), thread_ts=ref.ts)
            ref = SlackRef(ref.channel, ref.ts, True)
        return TicketRef(self.name, str(ref))

    def resolve(self, content: TicketContent, *, comment: str) -> TicketRef | None:
        ref = self._existing(content)
        if ref is not None and self._update(ref, incident_message(content, resolved=True)):
            self._post(reply_message(content, "Resolved", comment), thread_ts=ref.ts)
            return TicketRef(self.name, str(ref))
        # No message to thread under (never posted here, or deleted): the resolution is said on its own.
        ts = self._post(reply_message(content, "Resolved", comment, follow_up=True))
        return TicketRef(self.name, str(SlackRef(self._channel, ts, ref.escalated if ref else False)))


class SlackWebhookSink:
    """Webhook mode: an incoming webhook posts new messages only (no update, no thread)."""

    name = NAME
    # Reviews are planning work for trackers, and a chat sink cannot find a review's message again (reviews keep no
    # per-sink reference): each scheduled run would post every account's review anew (review_tickets.py).
    takes_reviews = False

    def __init__(self, *, url: str, options: HttpOptions):
        if not url:
            raise ValueError("TRIAGE_SLACK_WEBHOOK_URL is required for the Slack webhook")
        parts = urlsplit(url)
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        last = parts.path.rstrip("/").rsplit("/", 1)[-1]  # Slack's: /services/T…/B…/<secret>
        self._secrets = secret_forms(url, self._path, *([last] if len(last) >= 8 else []))
        redact_in_http_logs(self._secrets)
        self._http = TrackerClient(sink=self.name, base_url=f"{parts.scheme}://{parts.netloc}", options=options,
                                   secrets=self._secrets, credential_hint="TRIAGE_SLACK_WEBHOOK_URL")

    def _send(self, message: dict[str, Any]) -> None:
        payload = {**message, "unfurl_links": False, "unfurl_media": False}
        result = self._http.request("POST", self._path, content=_body(payload), idempotent=False,
                                    headers={"Content-Type": "application/json; charset=utf-8"},
                                    allow=(400, 403, 404, 410))
        if result.status == 200:
            return
        raise self._error(result)

    def _error(self, result: HttpResult) -> TicketError:
        code = clean_line(result.body.decode("utf-8", "replace"), 80) or f"HTTP {result.status}"
        text = f"{self.name} sink: incoming webhook answered HTTP {result.status} {code}"
        if result.status in WEBHOOK_AUTH:
            return TicketAuthError(redact(f"{text}; check TRIAGE_SLACK_WEBHOOK_URL (the webhook's channel and "
                                          "the workspace's restrictions on it)", self._secrets))
        return TicketError(redact(f"{text} (the message was refused)", self._secrets))

    def open_or_update(self, content: TicketContent, *, comment: str | None = None) -> TicketRef:
        ref = SlackRef.parse(content.ref_for(self.name))
        if ref is None:
            self._send(incident_message(content))
            log.info("slack sink: posted the message for %s through the incoming webhook", content.incident_id)
            return TicketRef(self.name, str(SlackRef(WEBHOOK_REF, content.incident_id, content.escalated)),
                             created=True)
        # Nothing to update in place: only what a reader must hear becomes a follow-up message.
        if comment:
            self._send(reply_message(content, "Update", comment, follow_up=True))
        if content.escalated and not ref.escalated:
            self._send(reply_message(content, "Escalated", content.action, follow_up=True))
            ref = SlackRef(ref.channel, ref.ts, True)
        return TicketRef(self.name, str(ref))

    def resolve(self, content: TicketContent, *, comment: str) -> TicketRef | None:
        ref = SlackRef.parse(content.ref_for(self.name)) or SlackRef(WEBHOOK_REF, content.incident_id)
        self._send(reply_message(content, "Resolved", comment, follow_up=True))
        return TicketRef(self.name, str(ref))


def slack_sink(*, api_url: str, bot_token: str, channel: str, webhook_url: str,
               options: HttpOptions) -> SlackBotSink | SlackWebhookSink:
    """The bot when a bot token is set, else the incoming webhook."""
    if bot_token:
        return SlackBotSink(api_url=api_url, token=bot_token, channel=channel, options=options)
    return SlackWebhookSink(url=webhook_url, options=options)
