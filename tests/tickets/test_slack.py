"""The Slack sink over HTTPS against the Slack stand-in, built by the factory as the service builds it: bot mode
(one message per incident, updated in place, replies in its thread) and incoming-webhook mode (one message, then
follow-ups only), Slack's error answers, and secrets kept out of errors and logs."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from localazure.trackers.slack import block_problems
from shared.settings import SettingsError, load_settings
from shared.tickets.base import TicketAuthError, TicketError, TicketRef
from shared.tickets.http import HttpOptions
from shared.tickets.slack import SlackBotSink, SlackWebhookSink
from tests.support.trackers import CREDENTIALS, FAST, make_content, new_sink

WEBHOOK = {"TRIAGE_SLACK_BOT_TOKEN": ""}  # no bot token: the incoming webhook
# No retries of a rate limit: its answer is what the test looks at.
NO_RETRY = HttpOptions(retry_total=0, retry_backoff_factor=0.001, retry_backoff_max=1, max_retry_after=2,
                       timeout=20, connection_timeout=5, read_timeout=10)


@pytest.fixture
def slack(standins):
    app = standins.app("slack")
    with app.lock:
        for channel in app.messages:
            app.messages[channel] = []
        app.member, app.revoked, app.archived, app.prohibited = True, False, False, False
        app._ratelimit.clear()
    return app


def _with_ref(content, ref: TicketRef | str, **changes):
    """The content as the engine builds it next time: the sink's reference handed back in `refs`."""
    value = ref.ref if isinstance(ref, TicketRef) else ref
    return replace(content, refs=(("github", "42"), ("slack", value)), **changes)


def _field(message, label: str) -> str:
    fields = next(b["fields"] for b in message.blocks if b["type"] == "section" and "fields" in b)
    return next(f["text"].split("\n", 1)[1] for f in fields if f["text"].startswith(f"*{label}*"))


def _calls(standins, route: str) -> int:
    return standins.calls.count(service="slack", route=route)


# ---- bot mode ----


def test_the_factory_builds_the_bot_with_a_token_and_the_webhook_without(standins):
    assert isinstance(new_sink(standins, "slack"), SlackBotSink)
    assert isinstance(new_sink(standins, "slack", **WEBHOOK), SlackWebhookSink)


def test_one_message_per_incident_updated_in_place(standins, slack):
    sink = new_sink(standins, "slack")
    content = make_content()
    first = sink.open_or_update(content)
    assert first.created and first.url is None  # the engine keeps ref (not a URL) and gives it back
    channel, ts = first.ref.split(":")
    assert channel == CREDENTIALS.slack_channel
    posts = _calls(standins, "chat.postMessage")
    again = sink.open_or_update(_with_ref(content, first, count=40, last_seen="2026-03-01T11:00:00+00:00"))
    assert again.ref == first.ref and not again.created
    assert _calls(standins, "chat.postMessage") == posts  # no second message, no reply without a comment
    (message,) = slack.channel_messages()
    assert message.ts == ts and message.edits == 1 and not message.replies
    assert _field(message, "Failures") == "40" and _field(message, "Last seen") == "2026-03-01T11:00:00+00:00"
    assert _field(message, "Status") == "Open"
    assert not block_problems(message.blocks)


def test_a_throttled_comment_is_a_thread_reply_and_the_escalation_is_replied_once(standins, slack):
    sink = new_sink(standins, "slack")
    content = make_content()
    ref = sink.open_or_update(content)
    sink.open_or_update(_with_ref(content, ref, count=9), comment="6 more failures since the last note")
    escalated = sink.open_or_update(_with_ref(content, ref, escalated=True, action="Escalated: the grant did "
                                              "not stop the failures."))
    assert escalated.ref == ref.ref + ":escalated"
    again = sink.open_or_update(_with_ref(content, escalated, escalated=True, count=12))
    assert again.ref == escalated.ref
    (message,) = slack.channel_messages()
    assert [r.text.split(":")[0] for r in message.replies] == ["Update", "Escalated"]
    assert all(r.thread_ts == message.ts for r in message.replies)
    assert "6 more failures" in str(message.replies[0].blocks)
    assert _field(message, "Status") == "Escalated" and message.edits == 3


def test_resolve_updates_the_message_and_replies_in_its_thread(standins, slack):
    sink = new_sink(standins, "slack")
    content = make_content(approve_url="https://triage.example/api/incidents/x/approve")
    ref = sink.open_or_update(content)
    resolved = sink.resolve(_with_ref(content, ref), comment="Verified: no failures for 30 minutes.")
    assert resolved is not None and resolved.ref == ref.ref
    (message,) = slack.channel_messages()
    assert message.blocks[0]["text"]["text"].startswith("Resolved: ")
    assert _field(message, "Status") == "Resolved"
    assert not any(b["type"] == "actions" for b in message.blocks)  # nothing left to approve
    assert [r.text.split(":")[0] for r in message.replies] == ["Resolved"]
    assert "Verified" in str(message.replies[0].blocks)


def test_a_deleted_parent_is_posted_afresh(standins, slack):
    sink = new_sink(standins, "slack")
    content = make_content()
    ref = sink.open_or_update(content)
    slack.delete(CREDENTIALS.slack_channel, ref.ref.split(":")[1])
    fresh = sink.open_or_update(_with_ref(content, ref, count=5), comment="recurring")
    assert fresh.created and fresh.ref != ref.ref
    (message,) = slack.channel_messages()
    assert f"{CREDENTIALS.slack_channel}:{message.ts}" == fresh.ref and _field(message, "Failures") == "5"
    closed = sink.resolve(_with_ref(content, fresh), comment="done")
    assert closed is not None and closed.ref == fresh.ref
    slack.delete(CREDENTIALS.slack_channel, message.ts)
    alone = sink.resolve(_with_ref(content, fresh), comment="done")  # nothing to thread under: said on its own
    assert alone is not None and alone.ref != fresh.ref
    assert "done" in str(slack.channel_messages()[0].blocks)


def test_a_reference_to_another_channel_starts_a_message_in_this_one(standins, slack):
    sink = new_sink(standins, "slack")
    moved = sink.open_or_update(_with_ref(make_content(), "C0OLDCHANNEL:1700000000.000100"))
    assert moved.created and moved.ref.startswith(CREDENTIALS.slack_channel + ":")


@pytest.mark.parametrize(("overrides", "switch", "expected"), [
    ({"TRIAGE_SLACK_BOT_TOKEN": "xoxb-wrong-token"}, None, "invalid_auth"),
    ({}, "revoke", "token_revoked"),
    ({}, "leave", "not_in_channel"),
    ({"TRIAGE_SLACK_CHANNEL": "C0NOSUCHCHAN"}, None, "channel_not_found"),
])
def test_refused_credentials_and_channels_are_the_operator_error(standins, slack, overrides, switch, expected):
    if switch == "revoke":
        slack.revoke()
    elif switch == "leave":
        slack.member = False
    sink = new_sink(standins, "slack", **overrides)
    with pytest.raises(TicketAuthError, match=expected) as raised:
        sink.open_or_update(make_content())
    hint = "TRIAGE_SLACK_CHANNEL" if "channel" in expected else "TRIAGE_SLACK_BOT_TOKEN"
    assert hint in str(raised.value)
    assert not slack.channel_messages()


def test_the_probe_checks_the_token_and_posts_nothing(standins, slack):
    assert "token accepted" in new_sink(standins, "slack").probe()
    assert _calls(standins, "auth.test") and not slack.channel_messages()
    with pytest.raises(TicketAuthError, match="invalid_auth"):
        new_sink(standins, "slack", TRIAGE_SLACK_BOT_TOKEN="xoxb-wrong").probe()


def test_blocks_slack_would_refuse_are_a_ticket_error(standins, slack, monkeypatch):
    import shared.tickets.slack as module

    monkeypatch.setattr(module, "incident_message", lambda content, **kw: {
        "text": "x", "blocks": [{"type": "header", "text": {"type": "mrkdwn", "text": "*no*"}}]})
    with pytest.raises(TicketError, match="invalid_blocks") as raised:
        new_sink(standins, "slack").open_or_update(make_content())
    assert not isinstance(raised.value, TicketAuthError)
    with pytest.raises(TicketError, match="invalid_blocks"):
        new_sink(standins, "slack", **WEBHOOK).open_or_update(make_content())


def test_a_rate_limit_is_retried_then_reported_with_the_wait(standins, slack):
    from shared.core.ticket_model import TicketRateLimited

    slack.ratelimit(times=1, retry_after=0.01)
    assert new_sink(standins, "slack").open_or_update(make_content()).created  # retried after Retry-After
    slack.ratelimit(times=1, retry_after=30)
    with pytest.raises(TicketRateLimited) as raised:
        new_sink(standins, "slack", options=NO_RETRY).open_or_update(make_content())
    assert raised.value.retry_after == 30
    slack.ratelimit(times=1, retry_after=30)
    with pytest.raises(TicketRateLimited):
        new_sink(standins, "slack", options=NO_RETRY, **WEBHOOK).open_or_update(make_content())


# ---- incoming webhook mode ----


def test_the_webhook_posts_once_then_follow_ups_only_for_comments_escalation_and_resolution(standins, slack):
    sink = new_sink(standins, "slack", **WEBHOOK)
    content = make_content()
    ref = sink.open_or_update(content)
    assert ref.created and ref.ref == f"webhook:{content.incident_id}"
    before = _calls(standins, "webhook.post")
    assert sink.open_or_update(_with_ref(content, ref, count=30)).ref == ref.ref
    assert _calls(standins, "webhook.post") == before  # nothing to say: no message (a webhook cannot update)
    sink.open_or_update(_with_ref(content, ref, count=31), comment="28 more failures")
    escalated = sink.open_or_update(_with_ref(content, ref, escalated=True))
    sink.open_or_update(_with_ref(content, escalated, escalated=True))  # already said
    sink.resolve(_with_ref(content, escalated), comment="Verified.")
    messages = slack.channel_messages()
    assert [m.via for m in messages] == ["webhook"] * 4
    assert [m.text.split(":")[0] for m in messages[1:]] == ["Update", "Escalated", "Resolved"]
    assert all(content.incident_id in str(m.blocks) for m in messages)  # a follow-up names its incident
    assert all(not block_problems(m.blocks) for m in messages)


@pytest.mark.parametrize(("switch", "expected"), [("prohibit", "action_prohibited"),
                                                  ("archive", "channel_is_archived"),
                                                  ("wrong_url", "no_service")])
def test_webhook_refusals_are_the_operator_error(standins, slack, switch, expected):
    overrides = dict(WEBHOOK)
    if switch == "wrong_url":
        overrides["TRIAGE_SLACK_WEBHOOK_URL"] = standins.slack_webhook_url + "x"
    else:
        getattr(slack, switch)()
    with pytest.raises(TicketAuthError, match=expected) as raised:
        new_sink(standins, "slack", **overrides).open_or_update(make_content())
    assert "TRIAGE_SLACK_WEBHOOK_URL" in str(raised.value)


def test_secrets_never_reach_errors_or_logs(standins, slack, caplog):
    caplog.set_level(logging.DEBUG)
    errors: list[str] = []
    content = make_content()
    for overrides in ({}, WEBHOOK):
        sink = new_sink(standins, "slack", **overrides)
        ref = sink.open_or_update(content)
        sink.open_or_update(_with_ref(content, ref), comment="again")
    slack.archive()
    wrong_hook = standins.slack_webhook_url.replace("LEAKCANARY", "LEAKCANARX")
    for overrides in ({}, WEBHOOK, {**WEBHOOK, "TRIAGE_SLACK_WEBHOOK_URL": wrong_hook},
                      {"TRIAGE_SLACK_BOT_TOKEN": "xoxb-LEAKCANARY-other-token"}):
        with pytest.raises(TicketError) as raised:
            new_sink(standins, "slack", **overrides).open_or_update(content)
        errors.append(str(raised.value))
    standins.faults.add("slack", status=500, times=10, method="POST")
    for overrides in ({}, WEBHOOK):
        with pytest.raises(TicketError) as raised:
            new_sink(standins, "slack", options=FAST, **overrides).open_or_update(content)
        errors.append(str(raised.value))
    text = "\n".join(errors) + "\n" + caplog.text
    assert caplog.text  # the HTTP log was on
    assert "LEAKCANARY" not in text and "LEAKCANARX" not in text


# ---- settings ----


def test_settings_need_a_bot_token_and_channel_or_a_webhook_url():
    base = {"TRIAGE_TICKET_SINKS": "slack"}
    with pytest.raises(SettingsError, match="TRIAGE_SLACK_BOT_TOKEN"):
        load_settings(base)
    with pytest.raises(SettingsError, match="TRIAGE_SLACK_CHANNEL"):
        load_settings(base | {"TRIAGE_SLACK_BOT_TOKEN": "xoxb-1-2-abc"})
    assert load_settings(base | {"TRIAGE_SLACK_BOT_TOKEN": "xoxb-1-2-abc", "TRIAGE_SLACK_CHANNEL": "C0123456789"})
    assert load_settings(base | {"TRIAGE_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T1/B2/x"})
    for token in ("xoxp-user-token-secret", "xapp-1-app-level-secret"):
        with pytest.raises(SettingsError, match="bot token") as raised:
            load_settings(base | {"TRIAGE_SLACK_BOT_TOKEN": token, "TRIAGE_SLACK_CHANNEL": "C0123456789"})
        assert "secret" not in str(raised.value)
    with pytest.raises(SettingsError, match="channel id"):
        load_settings(base | {"TRIAGE_SLACK_BOT_TOKEN": "xoxb-1", "TRIAGE_SLACK_CHANNEL": "#alerts"})
    redacted = load_settings(base | {"TRIAGE_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x"}).redacted()
    assert redacted["TRIAGE_SLACK_WEBHOOK_URL"] == "<set>" and redacted["TRIAGE_SLACK_BOT_TOKEN"] == "<empty>"
