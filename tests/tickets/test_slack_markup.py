"""Slack Block Kit from hostile input: with the same attack strategies as the other markups, every field of the
content hostile, the blocks stay valid (the stand-in's Block Kit check), within Slack's limits, and nothing from
input becomes a mention, a link, a date token, formatting or a quote; buttons carry only safe URLs.

A model of Slack's mrkdwn parsing (Formatting text for app surfaces): special parsing starts at a raw `<` and
entities start at `&`; `*`, `_`, `~` format only at a word boundary, `` ` `` anywhere; `&gt;` at a line start is a
quote. Our own markup is the bold `*Label*` lines, code blocks and `<safe-url|docs>` links, removed before the check.
"""

from __future__ import annotations

import html
import json
import re

from hypothesis import given, settings
from hypothesis import strategies as st

from localazure.trackers.slack import block_problems
from shared.tickets.markup.slack_blocks import (
    LIMIT_HEADER,
    MESSAGE_TEXT_BUDGET,
    code_block,
    escape_mrkdwn,
    escape_plain_text,
    incident_message,
    message_text_size,
    reply_message,
    slack_len,
    text_objects,
)
from shared.tickets.sanitize import ZWSP, defang_links, fold_line, is_safe_url
from tests.support.trackers import make_content
from tests.tickets.test_markup import HOSTILE

FAST = settings(max_examples=120, deadline=None)
LOOKALIKES = {"\u2217": "*", "\u02cd": "_", "\u223c": "~", "\u02cb": "`"}
SAFE_URL = st.sampled_from(["https://triage.example/api/incidents/inc-1/approve?x=1&y=2",
                            "https://portal.azure.com/#blade/Microsoft_OperationsManagementSuite_Workspace/Logs"])
URL_OR_HOSTILE = st.one_of(st.none(), SAFE_URL, HOSTILE, st.just("javascript:alert(1)"),
                           st.just("https://evil.example/a|b>c"))
# Our bold lines (escaped input never starts a line with `*`: it is a boundary there) and our doc links.
OURS = re.compile(r"(?m)^\*[^\n]*\*$|<https://[^|<> ]+\|docs>")
ENTITY = re.compile(r"&(amp|lt|gt);")
BOUNDARY_FORMAT = re.compile(r"`|(?<![^\W_])[*_~]|[*_~](?![^\W_])")


def _inert(text: str) -> None:
    """No special parsing from input can happen in this mrkdwn text (our own markup removed first)."""
    code = re.findall(r"```\n(.*?)\n```", text, flags=re.S)
    for inner in code:  # verbatim but for what would close the block or start special parsing
        assert "`" not in inner and "<" not in inner and ">" not in inner and "&" not in ENTITY.sub("", inner)
    rest = OURS.sub("", re.sub(r"```\n.*?\n```", "", text, flags=re.S))
    assert "<" not in rest and ">" not in rest, rest
    assert "&" not in ENTITY.sub("", rest), rest
    assert not BOUNDARY_FORMAT.search(rest), rest
    assert not re.search(r"(?m)^&gt;", rest), rest
    assert not re.search(r"[@#]\w", rest), rest  # a sign before a name is broken
    assert "://" not in rest and "www." not in rest.lower(), rest  # nothing to autolink


@FAST
@given(HOSTILE)
def test_escaped_mrkdwn_is_inert_and_reads_as_the_text(raw):
    escaped = escape_mrkdwn(raw)
    _inert(escaped)
    assert not re.search(r"[@#](?=\w)", escaped)
    back = html.unescape(escaped).replace(ZWSP, "")
    for lookalike, ch in LOOKALIKES.items():
        back = back.replace(lookalike, ch)
    expected = defang_links(fold_line(raw)).replace(ZWSP, "")
    for lookalike, ch in LOOKALIKES.items():
        expected = expected.replace(lookalike, ch)
    assert back == expected


@FAST
@given(HOSTILE)
def test_a_code_block_holds_the_text_and_cannot_be_closed_from_inside(raw):
    block = code_block(raw)
    inner = block[4:-4]
    assert block.startswith("```\n") and block.endswith("\n```") and "`" not in inner
    assert "<" not in inner and ">" not in inner and "&" not in ENTITY.sub("", inner)


@FAST
@given(HOSTILE)
def test_plain_text_has_the_control_characters_escaped(raw):
    escaped = escape_plain_text(raw)
    assert "<" not in escaped and ">" not in escaped and "&" not in ENTITY.sub("", escaped)
    assert "\n" not in escaped


def _hostile_content(raw: str, urls: list[str | None], n: int):
    return make_content(
        cause=raw, cause_title=raw, summary=raw * 3, principal_id=raw, principal_type=raw, principal_name=raw,
        resource_id="/subscriptions/x/accounts/" + raw, count=n, first_seen=raw, last_seen=raw, sample_error=raw,
        evidence=(raw,) * (n % 30), fix_command=raw * 4, fix_steps=((raw, urls[0]),) * (n % 25),
        action=raw, mode=raw, approve_hint=raw, escalated=n % 2 == 0, approve_url=urls[1],
        approve_command=raw * 2, suppress_url=urls[2], suppress_command=raw, rollback_command=raw,
        logs_url=urls[3], owner=raw, incident_id=raw or "inc",
    )


def _check_message(message: dict) -> None:
    blocks = message["blocks"]
    assert not block_problems(blocks), block_problems(blocks)
    assert message_text_size(message) <= MESSAGE_TEXT_BUDGET
    assert slack_len(json.dumps(blocks, ensure_ascii=False)) < 40000
    for obj in text_objects(blocks):
        if obj["type"] == "mrkdwn":
            assert obj["verbatim"] is True
            _inert(obj["text"])
        else:
            assert obj["emoji"] is False and "<" not in obj["text"] and ">" not in obj["text"]
    _inert(message["text"])
    header = blocks[0]
    assert header["type"] != "header" or slack_len(header["text"]["text"]) <= LIMIT_HEADER
    for block in blocks:
        for element in block.get("elements", []):
            if element.get("type") == "button":
                assert is_safe_url(element["url"]), element


@FAST
@given(HOSTILE, st.lists(URL_OR_HOSTILE, min_size=4, max_size=4), st.integers(min_value=0, max_value=10**6),
       st.booleans())
def test_a_whole_message_from_hostile_fields_is_valid_bounded_and_inert(raw, urls, n, resolved):
    content = _hostile_content(raw, urls, n)
    _check_message(incident_message(content, resolved=resolved))
    for follow_up in (False, True):
        _check_message(reply_message(content, "Update", raw * 50, follow_up=follow_up))


def test_huge_fields_are_cut_to_the_limits_and_say_so():
    huge = "A&<>*_~`" * 5000
    content = _hostile_content(huge, ["https://triage.example/a"] * 4, 24)
    message = incident_message(content)
    _check_message(message)
    assert "truncated" in json.dumps(message)
    assert [b["type"] for b in message["blocks"]].count("actions") == 1


def test_only_safe_urls_become_buttons_and_links():
    content = make_content(approve_url="https://triage.example/api/incidents/i/approve",
                           suppress_url="javascript:alert(1)", logs_url="https://evil.example/<x>",
                           fix_steps=(("Read this.", "https://learn.microsoft.com/a?b=1&c=2"),
                                      ("Not this.", "https://evil.example/a|b")))
    message = incident_message(content)
    (actions,) = [b for b in message["blocks"] if b["type"] == "actions"]
    assert [(e["text"]["text"], e.get("style")) for e in actions["elements"]] == [("Approve", "primary")]
    steps = next(t["text"] for t in text_objects(message["blocks"]) if t["text"].startswith("*Steps*"))
    assert "<https://learn.microsoft.com/a?b=1&amp;c=2|docs>" in steps and "evil" not in steps
