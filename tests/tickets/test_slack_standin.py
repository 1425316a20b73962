"""The Slack stand-in answers as Slack documents: token kinds, `ok: false` errors with HTTP 200, the incoming
webhook's text/plain answers, and the Block Kit check refusing what the reference does not allow."""

from __future__ import annotations

from dataclasses import replace

import pytest

from localazure.trackers.slack import block_problems, message_problems
from shared.tickets.http import TrackerClient
from tests.support.trackers import CREDENTIALS, FAST

TEXT = {"type": "plain_text", "text": "x"}


def _api(standins, token: str | None) -> TrackerClient:
    return TrackerClient(sink="probe", base_url=standins.slack_api_url,
                         options=replace(FAST, connection_verify=standins.ca_path), secrets=(), credential_hint="-",
                         authorization=(lambda: f"Bearer {token}") if token else None)


@pytest.mark.parametrize(("token", "error"), [
    (None, "not_authed"),
    ("xapp-1-A0-123-abc", "not_allowed_token_type"),
    ("xoxb-someone-else", "invalid_auth"),
    ("xoxp-a-user-token", "invalid_auth"),  # Slack takes user tokens with chat:write; this stand-in knows one bot
])
def test_the_web_api_refuses_tokens_with_http_200_and_ok_false(standins, token, error):
    result = _api(standins, token).request("POST", "/chat.postMessage", idempotent=False,
                                           json={"channel": CREDENTIALS.slack_channel, "text": "hi"})
    assert result.status == 200 and result.json() == {"ok": False, "error": error}


def test_the_web_api_posts_threads_and_updates(standins):
    api = _api(standins, CREDENTIALS.slack_bot_token)
    channel = CREDENTIALS.slack_channel
    posted = api.request("POST", "/chat.postMessage", idempotent=False, json={"channel": channel, "text": "a"}).json()
    assert posted["ok"] and posted["channel"] == channel and posted["ts"]
    reply = api.request("POST", "/chat.postMessage", idempotent=False,
                        json={"channel": channel, "text": "b", "thread_ts": posted["ts"]}).json()
    assert reply["ok"] and reply["ts"] != posted["ts"]
    updated = api.request("POST", "/chat.update", idempotent=True,
                          json={"channel": channel, "ts": posted["ts"], "text": "c"}).json()
    assert updated["ok"]
    missing = api.request("POST", "/chat.update", idempotent=True,
                          json={"channel": channel, "ts": "1.000001", "text": "c"}).json()
    assert missing == {"ok": False, "error": "message_not_found"}
    bad = api.request("POST", "/chat.postMessage", idempotent=False,
                      json={"channel": channel, "blocks": [{"type": "section"}]}).json()
    assert bad["error"] == "invalid_blocks" and bad["response_metadata"]["messages"]
    message = next(m for m in standins.app("slack").channel_messages() if m.ts == posted["ts"])
    assert message.text == "c" and message.edits == 1 and [r.text for r in message.replies] == ["b"]


def test_the_incoming_webhook_answers_text_plain(standins):
    hook = TrackerClient(sink="probe", base_url=standins.slack_api_url.rsplit("/api", 1)[0],
                         options=replace(FAST, connection_verify=standins.ca_path), secrets=(), credential_hint="-")
    path = "/services/" + CREDENTIALS.slack_webhook_path
    ok = hook.request("POST", path, json={"text": "hi"}, idempotent=False)
    assert (ok.status, ok.body, ok.headers["Content-Type"].split(";")[0]) == (200, b"ok", "text/plain")
    bad = hook.request("POST", path, json={"blocks": [{"type": "nope"}]}, idempotent=False, allow=(400,))
    assert (bad.status, bad.body) == (400, b"invalid_blocks")
    empty = hook.request("POST", path, json={}, idempotent=False, allow=(400,))
    assert (empty.status, empty.body) == (400, b"invalid_payload")
    gone = hook.request("POST", path + "x", json={"text": "hi"}, idempotent=False, allow=(404,))
    assert (gone.status, gone.body) == (404, b"no_service")


@pytest.mark.parametrize(("blocks", "problem"), [
    ([{"type": "header", "text": {"type": "mrkdwn", "text": "x"}}], "must be plain_text"),
    ([{"type": "header", "text": {**TEXT, "text": "x" * 151}}], "at most 150"),
    ([{"type": "section", "text": {"type": "mrkdwn", "text": "x" * 3001}}], "at most 3000"),
    ([{"type": "section", "fields": [TEXT] * 11}], "1 to 10"),
    ([{"type": "section", "fields": [{**TEXT, "text": "x" * 2001}]}], "at most 2000"),
    ([{"type": "section"}], "text or fields"),
    ([{"type": "section", "text": {**TEXT, "text": ""}}], "non-empty"),
    ([{"type": "section", "text": {"type": "plain_text", "text": "x", "verbatim": True}}], "unknown property"),
    ([{"type": "actions", "elements": []}], "1 to 25"),
    ([{"type": "actions", "elements": [{"type": "button", "text": {**TEXT, "text": "x" * 76}}]}], "at most 75"),
    ([{"type": "actions", "elements": [{"type": "button", "text": TEXT, "url": "u" * 3001}]}], "3000"),
    ([{"type": "actions", "elements": [{"type": "button", "text": TEXT, "style": "loud"}]}], "primary or danger"),
    ([{"type": "actions", "elements": [{"type": "button", "text": TEXT, "action_id": "a"}] * 2}], "unique"),
    ([{"type": "context", "elements": [TEXT] * 11}], "1 to 10"),
    ([{"type": "divider"}] * 51, "at most 50"),
    ([{"type": "video"}], "unknown block type"),
    ([{"type": "divider", "block_id": "a"}, {"type": "divider", "block_id": "a"}], "unique"),
])
def test_the_block_kit_check_refuses_what_the_reference_does_not_allow(blocks, problem):
    problems = block_problems(blocks)
    assert problems and any(problem in p for p in problems), problems


def test_a_message_needs_text_or_blocks_and_a_bounded_text():
    assert message_problems({}) == ("no_text", [])
    assert message_problems({"text": "x" * 40001}) == ("msg_too_long", [])
    assert message_problems({"text": "x", "blocks": [{"type": "divider"}]}) is None
