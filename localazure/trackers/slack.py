"""A Slack stand-in: the Web API methods the Slack sink calls (auth.test, chat.postMessage, chat.update, thread
replies) and an incoming webhook, both checking Block Kit as Slack documents it.

Web API (https://api.slack.com/web): POST https://slack.com/api/<method> with `Authorization: Bearer <token>` and a
JSON body; errors are HTTP 200 with `{"ok": false, "error": "<code>"}`, a rate limit is HTTP 429 with Retry-After
and `ratelimited` (https://api.slack.com/apis/rate-limits). Tokens: chat.postMessage takes bot (xoxb-) and user
(xoxp-) tokens with chat:write (https://api.slack.com/scopes/chat:write); an app-level token (xapp-) is for
apps.connections.open only and answers `not_allowed_token_type`. This stand-in knows one bot token; any other
token is `invalid_auth`, none is `not_authed`, a revoked one `token_revoked`. A channel the bot was not invited to
answers `not_in_channel`, an unknown one `channel_not_found` (https://api.slack.com/methods/chat.postMessage#errors);
chat.update of an unknown ts answers `message_not_found` (https://api.slack.com/methods/chat.update#errors).

Incoming webhook (https://api.slack.com/messaging/webhooks): POST JSON to the secret URL; `ok` (text/plain) or an
error string with its status (https://api.slack.com/changelog/2016-05-17-changes-to-errors-for-incoming-webhooks):
400 invalid_payload / invalid_blocks, 403 action_prohibited, 404 channel_not_found, 410 channel_is_archived.

Block Kit has no official JSON schema: `block_problems` is written from the Block Kit reference
(https://api.slack.com/reference/block-kit/blocks, /block-elements, /composition-objects) for the blocks and
elements it knows, and refuses any other type or property, as Slack answers `invalid_blocks` for what it cannot
match. Scenario switches: `ratelimit(times, retry_after)`, `revoke()`, `delete(channel, ts)`, `archive()` and
`prohibit()` (webhook), `member` (the bot is in the channel).
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass, field
from typing import Any

from localazure.frontdoor import bearer_token
from localazure.https import Request, Response
from localazure.trackers.base import TicketView, TrackerCredentials, TrackerRoute, TrackerService, read, write

API_PREFIX = "/api/"
WEBHOOK_PREFIX = "/services/"

LIMITS = {"blocks": 50, "header": 150, "section_text": 3000, "fields": 10, "field": 2000, "actions": 25,
          "context": 10, "button_text": 75, "url": 3000, "value": 2000, "id": 255, "text": 40000}
_TEXT_KEYS = {"plain_text": {"type", "text", "emoji"}, "mrkdwn": {"type", "text", "verbatim"}}
_BLOCK_KEYS = {
    "header": {"type", "text", "block_id"},
    "section": {"type", "text", "fields", "accessory", "block_id", "expand"},
    "divider": {"type", "block_id"},
    "actions": {"type", "elements", "block_id"},
    "context": {"type", "elements", "block_id"},
}
_BUTTON_KEYS = {"type", "text", "action_id", "url", "value", "style", "confirm", "accessibility_label"}


def _length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _text_object(obj: Any, where: str, limit: int, *, plain_only: bool = False) -> list[str]:
    if not isinstance(obj, dict) or obj.get("type") not in _TEXT_KEYS:
        return [f"{where}: must be a text object (plain_text or mrkdwn)"]
    if plain_only and obj["type"] != "plain_text":
        return [f"{where}: must be plain_text"]
    problems = [f"{where}: unknown property {k}" for k in sorted(set(obj) - _TEXT_KEYS[obj["type"]])]
    text = obj.get("text")
    if not isinstance(text, str) or not text:
        problems.append(f"{where}.text: must be a non-empty string")
    elif _length(text) > limit:
        problems.append(f"{where}.text: must be at most {limit} characters")
    for flag in ("emoji", "verbatim"):
        if flag in obj and not isinstance(obj[flag], bool):
            problems.append(f"{where}.{flag}: must be a boolean")
    return problems


def _button(element: Any, where: str) -> list[str]:
    if not isinstance(element, dict) or element.get("type") != "button":
        return [f"{where}: only buttons are known to this stand-in"]
    problems = [f"{where}: unknown property {k}" for k in sorted(set(element) - _BUTTON_KEYS)]
    problems += _text_object(element.get("text"), f"{where}.text", LIMITS["button_text"], plain_only=True)
    url = element.get("url")
    if url is not None and (not isinstance(url, str) or not url or _length(url) > LIMITS["url"]):
        problems.append(f"{where}.url: must be a string of at most {LIMITS['url']} characters")
    for key, limit in (("action_id", LIMITS["id"]), ("value", LIMITS["value"])):
        if key in element and (not isinstance(element[key], str) or _length(element[key]) > limit):
            problems.append(f"{where}.{key}: must be a string of at most {limit} characters")
    if "style" in element and element["style"] not in ("primary", "danger"):
        problems.append(f"{where}.style: must be primary or danger")
    return problems


def _block(block: Any, where: str) -> list[str]:
    if not isinstance(block, dict) or block.get("type") not in _BLOCK_KEYS:
        return [f"{where}: unknown block type"]
    kind = block["type"]
    problems = [f"{where}: unknown property {k}" for k in sorted(set(block) - _BLOCK_KEYS[kind])]
    if "block_id" in block and (not isinstance(block["block_id"], str) or _length(block["block_id"]) > LIMITS["id"]):
        problems.append(f"{where}.block_id: must be a string of at most {LIMITS['id']} characters")
    if kind == "header":
        problems += _text_object(block.get("text"), f"{where}.text", LIMITS["header"], plain_only=True)
    elif kind == "section":
        if "text" not in block and "fields" not in block:
            problems.append(f"{where}: must have text or fields")
        if "text" in block:
            problems += _text_object(block["text"], f"{where}.text", LIMITS["section_text"])
        if "fields" in block:
            fields = block["fields"]
            if not isinstance(fields, list) or not 1 <= len(fields) <= LIMITS["fields"]:
                problems.append(f"{where}.fields: must have 1 to {LIMITS['fields']} items")
            else:
                for n, item in enumerate(fields):
                    problems += _text_object(item, f"{where}.fields[{n}]", LIMITS["field"])
        if "accessory" in block:
            problems += _button(block["accessory"], f"{where}.accessory")
    elif kind == "actions":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= LIMITS["actions"]:
            problems.append(f"{where}.elements: must have 1 to {LIMITS['actions']} items")
        else:
            for n, element in enumerate(elements):
                problems += _button(element, f"{where}.elements[{n}]")
            ids = [e.get("action_id") for e in elements if isinstance(e, dict) and e.get("action_id")]
            if len(ids) != len(set(ids)):
                problems.append(f"{where}.elements: action_id must be unique")
    elif kind == "context":
        elements = block.get("elements")
        if not isinstance(elements, list) or not 1 <= len(elements) <= LIMITS["context"]:
            problems.append(f"{where}.elements: must have 1 to {LIMITS['context']} items")
        else:
            for n, element in enumerate(elements):
                problems += _text_object(element, f"{where}.elements[{n}]", LIMITS["section_text"])
    return problems


def block_problems(blocks: Any) -> list[str]:
    """What Slack would refuse in `blocks` (empty: valid), as far as the Block Kit reference says."""
    if not isinstance(blocks, list):
        return ["blocks: must be an array"]
    if len(blocks) > LIMITS["blocks"]:
        return [f"blocks: must have at most {LIMITS['blocks']} items"]
    problems: list[str] = []
    for n, block in enumerate(blocks):
        problems += _block(block, f"blocks[{n}]")
    ids = [b.get("block_id") for b in blocks if isinstance(b, dict) and b.get("block_id")]
    if len(ids) != len(set(ids)):
        problems.append("blocks: block_id must be unique in a message")
    return problems


def message_problems(payload: Any) -> tuple[str, list[str]] | None:
    """(error code, details) for a message body Slack would refuse, None when it is fine."""
    if not isinstance(payload, dict):
        return "invalid_payload", ["the body is not a JSON object"]
    text, blocks = payload.get("text"), payload.get("blocks")
    if blocks is None and not (isinstance(text, str) and text):
        return "no_text", []
    if text is not None and (not isinstance(text, str) or _length(text) > LIMITS["text"]):
        return "msg_too_long", []
    if blocks is not None:
        problems = block_problems(blocks)
        if problems:
            return "invalid_blocks", problems
    return None


@dataclass
class SlackMessage:
    ts: str
    text: str
    blocks: list[dict[str, Any]]
    via: str  # "bot" or "webhook"
    thread_ts: str | None = None
    edits: int = 0
    replies: list[SlackMessage] = field(default_factory=list)


class SlackStandIn(TrackerService):
    name = "slack"
    retry_after_statuses = (429,)

    def __init__(self, creds: TrackerCredentials):
        super().__init__(creds)
        self.channel = creds.slack_channel
        self.member = True  # the bot was invited to the channel
        self.messages: dict[str, list[SlackMessage]] = {self.channel: []}  # channel -> top-level messages
        self.revoked = False
        self.archived = False
        self.prohibited = False
        self._ratelimit: list[float] = []  # Retry-After of each of the next calls to be refused
        self._clock = 1_760_000_000

    def fault_body(self, status: int) -> Any:
        return {"ok": False, "error": "ratelimited" if status == 429 else "internal_error"}

    @property
    def webhook_path(self) -> str:
        return WEBHOOK_PREFIX + self.creds.slack_webhook_path

    # ---- switches ----

    def ratelimit(self, times: int = 1, retry_after: float = 1.0) -> None:
        self._ratelimit += [retry_after] * times

    def revoke(self) -> None:
        self.revoked = True

    def archive(self) -> None:
        self.archived = True

    def prohibit(self) -> None:
        self.prohibited = True

    def delete(self, channel: str, ts: str) -> None:
        self.messages[channel] = [m for m in self.messages.get(channel, []) if m.ts != ts]

    # ---- routing ----

    def authenticate(self, request: Request) -> Response | None:
        return None  # per route: the Web API reads the token, a webhook's URL is its credential

    def dispatch(self, request: Request) -> TrackerRoute:
        if request.method != "POST":
            return read("notFound", lambda r: Response(404, b"", {"Content-Type": "text/plain"}))
        if request.path == self.webhook_path:
            return write("webhook.post", self._webhook)
        if request.path.startswith(WEBHOOK_PREFIX):  # a wrong or removed webhook URL
            return write("webhook.post", lambda r: self._plain(404, "no_service"))
        method = request.path[len(API_PREFIX):] if request.path.startswith(API_PREFIX) else ""
        handlers = {"auth.test": (read, self._auth_test), "chat.postMessage": (write, self._post_message),
                    "chat.update": (write, self._update)}
        if method not in handlers:
            return read("unknownMethod", lambda r: Response.json({"ok": False, "error": "unknown_method"}))
        kind, handler = handlers[method]
        return kind(method, self._web_api(handler))

    @staticmethod
    def _plain(status: int, text: str, headers: dict[str, str] | None = None) -> Response:
        return Response(status, text.encode("utf-8"), {"Content-Type": "text/plain; charset=utf-8", **(headers or {})})

    def _limited(self) -> float | None:
        return self._ratelimit.pop(0) if self._ratelimit else None

    def _web_api(self, handler: Any) -> Any:
        def serve(request: Request) -> Response:
            wait = self._limited()
            if wait is not None:
                return Response.json({"ok": False, "error": "ratelimited"}, 429, {"Retry-After": f"{wait:g}"})
            token = bearer_token(request)
            if token is None:
                return self._error("not_authed")
            if token.startswith("xapp-"):
                return self._error("not_allowed_token_type")
            if token != self.creds.slack_bot_token:
                return self._error("invalid_auth")
            if self.revoked:
                return self._error("token_revoked")
            try:
                payload = json.loads(request.body.decode("utf-8")) if request.body else {}
            except (UnicodeDecodeError, ValueError):
                return self._error("invalid_json")
            if not isinstance(payload, dict):
                return self._error("invalid_json")
            return handler(payload)

        return serve

    @staticmethod
    def _error(code: str, details: list[str] | None = None) -> Response:
        body: dict[str, Any] = {"ok": False, "error": code}
        if details:
            body["response_metadata"] = {"messages": [f"[ERROR] {d}" for d in details]}
        return Response.json(body)

    def _next_ts(self) -> str:
        self._clock += 1
        return f"{self._clock}.{secrets.randbelow(10**6):06d}"

    def _channel(self, payload: dict[str, Any]) -> Response | list[SlackMessage]:
        channel = payload.get("channel")
        if channel not in self.messages:
            return self._error("channel_not_found")
        if not self.member:
            return self._error("not_in_channel")
        if self.archived:
            return self._error("is_archived")
        return self.messages[channel]

    # ---- Web API methods ----

    def _auth_test(self, payload: dict[str, Any]) -> Response:
        return Response.json({"ok": True, "url": "https://contoso.slack.com/", "team": "Contoso", "user": "triage",
                              "team_id": "T0STANDIN", "user_id": "U0STANDIN", "bot_id": "B0STANDIN"})

    def _post_message(self, payload: dict[str, Any]) -> Response:
        found = self._channel(payload)
        if isinstance(found, Response):
            return found
        problem = message_problems(payload)
        if problem:
            return self._error(*problem)
        message = SlackMessage(self._next_ts(), payload.get("text") or "", payload.get("blocks") or [], "bot",
                               payload.get("thread_ts"))
        if message.thread_ts:
            parent = next((m for m in found if m.ts == message.thread_ts), None)
            if parent is None:  # Slack posts to the channel instead; the sink never threads under an unknown ts
                return self._error("thread_not_found")
            parent.replies.append(message)
        else:
            found.append(message)
        return Response.json({"ok": True, "channel": payload["channel"], "ts": message.ts,
                              "message": {"type": "message", "text": message.text, "ts": message.ts}})

    def _update(self, payload: dict[str, Any]) -> Response:
        found = self._channel(payload)
        if isinstance(found, Response):
            return found
        parent = next((m for m in found if m.ts == payload.get("ts")), None)
        if parent is None:
            return self._error("message_not_found")
        problem = message_problems(payload)
        if problem:
            return self._error(*problem)
        parent.text = payload.get("text") or parent.text
        if "blocks" in payload:
            parent.blocks = payload["blocks"]
        parent.edits += 1
        return Response.json({"ok": True, "channel": payload["channel"], "ts": parent.ts, "text": parent.text})

    # ---- the incoming webhook ----

    def _webhook(self, request: Request) -> Response:
        wait = self._limited()
        if wait is not None:
            return self._plain(429, "rate_limited", {"Retry-After": f"{wait:g}"})
        if self.prohibited:
            return self._plain(403, "action_prohibited")
        if self.archived:
            return self._plain(410, "channel_is_archived")
        try:
            payload = json.loads(request.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return self._plain(400, "invalid_payload")
        problem = message_problems(payload)
        if problem:
            code = problem[0] if problem[0] == "invalid_blocks" else "invalid_payload"
            return self._plain(400, code)
        self.messages[self.channel].append(SlackMessage(self._next_ts(), payload.get("text") or "",
                                                        payload.get("blocks") or [], "webhook"))
        return self._plain(200, "ok")

    # ---- views ----

    def channel_messages(self, channel: str | None = None) -> list[SlackMessage]:
        return list(self.messages.get(channel or self.channel, []))

    def views(self) -> list[TicketView]:
        out = []
        for message in self.channel_messages():
            header = next((b["text"]["text"] for b in message.blocks if b.get("type") == "header"), message.text)
            out.append(TicketView(ref=f"{self.channel}:{message.ts}", title=header,
                                  body=json.dumps(message.blocks), is_open=not header.startswith("Resolved"),
                                  markers=(), high_priority=header.startswith("Escalated"),
                                  comments=tuple(r.text for r in message.replies),
                                  raw={"via": message.via, "edits": message.edits}))
        return out
