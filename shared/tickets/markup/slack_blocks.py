"""Slack messages in Block Kit (pure): the incident message, its thread replies and follow-ups.

Escaping. Slack's "Formatting text for app surfaces" (https://api.slack.com/reference/surfaces/formatting#escaping)
names `&`, `<` and `>` as its control characters, to be sent as `&amp;`, `&lt;`, `&gt;`; with them escaped, input
cannot open a link (`<url|text>`), a mention (`<@U…>`, `<!channel>`, `<!subteam^…>`) or a date token. mrkdwn has no
escape for its formatting characters (`*bold*`, `_italic_`, `~strike~`, `` `code` ``), so in prose from input they
become look-alikes (∗ ˍ ∼ ˋ) wherever they could open or close formatting (inside a word, as in
`missing_data_role`, they stay), and a line never starts with a quote marker (`&gt;` gets a zero-width space before
it). Every mrkdwn text object is `verbatim: true` (text object reference,
https://api.slack.com/reference/block-kit/composition-objects#text: no auto-linked URLs, channel names or parsed
mentions), `scheme://` and `www.` are broken as in the other markups, and
`@` / `#` before a word get a zero-width space. plain_text objects (header, buttons) have `emoji: false` and the
three control characters escaped too. Code blocks keep text verbatim except that backticks become ˋ, since three
of them would close the block (the command still reads the same; a shell never needs them here).

Limits (Block Kit reference, https://api.slack.com/reference/block-kit/blocks): 50 blocks a message; header text
150 characters (plain_text only); section text 3000, up to 10 fields of 2000 each; actions up to 25 elements;
context up to 10 elements; button text 75, url 3000; block_id and action_id 255. The whole message is kept under
`MESSAGE_TEXT_BUDGET` characters of text: chat.postMessage answers `msg_blocks_too_long` well before 50 full
sections (reported around 13,000 characters, https://github.com/slackapi/bolt-js/issues/2509; undocumented).
Lengths are counted in UTF-16 code units, which is never less than what Slack counts.
"""

from __future__ import annotations

import re
from typing import Any

from shared.tickets.base import TicketContent
from shared.tickets.markup import json_tree
from shared.tickets.sanitize import ZWSP, clean_line, clean_text, defang_links, fold_line, is_safe_url, truncate

MAX_BLOCKS = 50
LIMIT_HEADER = 150
LIMIT_SECTION = 3000
LIMIT_FIELD = 2000
MAX_FIELDS = 10
LIMIT_BUTTON_TEXT = 75
LIMIT_URL = 3000
LIMIT_BLOCK_ID = 255
MAX_CONTEXT_ELEMENTS = 10
MESSAGE_TEXT_BUDGET = 12000
LIMIT_FALLBACK = 300  # the top-level `text`: what notifications show

# Each part's share of the budget (they add up to less than MESSAGE_TEXT_BUDGET).
_SUMMARY = 800
_FIELD = 250
_FIX = 1800
_STEPS = 1200
_EVIDENCE = 1800
_ACTION = 800
_COMMAND = 1200
_CONTEXT = 300
_REPLY = 2500
MAX_EVIDENCE_ITEMS = 12

_LOOKALIKES = {"*": "\u2217", "_": "\u02cd", "~": "\u223c", "`": "\u02cb"}
# A formatting character can open or close formatting only next to a non-word character (or an end):
# `missing_data_role` stays as it is, `_x_` and `*x*` do not.
_FORMATTING = re.compile(r"`|(?<![^\W_])[*_~]|[*_~](?![^\W_])")
_MENTION_LIKE = re.compile(r"([@#])(?=\w)")
_QUOTE_START = re.compile(r"(?m)^(&gt;)")


def slack_len(text: str) -> int:
    """Length in UTF-16 code units (what JavaScript's `length` says; never less than Slack's count)."""
    return len(text.encode("utf-16-le", "surrogatepass")) // 2


def _entities(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def escape_plain_text(text: str) -> str:
    """One line for a plain_text object: the three control characters as entities."""
    return _entities(fold_line(text).strip())


def escape_mrkdwn(text: str, *, multiline: bool = False) -> str:
    """Prose from input, inert in mrkdwn: no link, mention, date token, formatting or quote comes out of it."""
    value = clean_text(text) if multiline else fold_line(text)
    value = _MENTION_LIKE.sub(r"\1" + ZWSP, _FORMATTING.sub(lambda m: _LOOKALIKES[m[0]], defang_links(value)))
    return _QUOTE_START.sub(ZWSP + r"\1", _entities(value))


def code_block(text: str) -> str:
    """A literal in a mrkdwn code block: verbatim but for backticks (ˋ) and the three escaped characters."""
    value = clean_text(text).strip("\n").replace("`", "\u02cb")
    return "```\n" + _entities(value) + "\n```"


def _fit(raw: str, limit: int, render: Any) -> str:
    """render(raw) cut so the rendered text is at most `limit` long: the cut is made in the raw text (an entity or
    a look-alike is never split) and says how long the original was."""
    out = render(raw)
    size = slack_len(raw) or 1
    while slack_len(out) > limit and size > 1:
        size = max(1, min(size - 1, size * limit // max(slack_len(out), 1) - 1))
        out = render(truncate(raw, size))
    return out if slack_len(out) <= limit else ""


def _mrkdwn(text: str) -> dict[str, Any]:
    return {"type": "mrkdwn", "text": text, "verbatim": True}


def _plain(text: str) -> dict[str, Any]:
    return {"type": "plain_text", "text": text, "emoji": False}


def _section(text: str) -> dict[str, Any]:
    return {"type": "section", "text": _mrkdwn(text)}


def _labelled(label: str, raw: str, limit: int, *, multiline: bool = False) -> str:
    """`*Label*` (ours) and the escaped value on the next line."""
    head = f"*{label}*\n"
    return head + _fit(raw, limit - len(head), lambda v: escape_mrkdwn(v, multiline=multiline))


def _labelled_code(label: str, raw: str, limit: int) -> str:
    head = f"*{label}*\n"
    return head + _fit(raw, limit - len(head), code_block)


def account_name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1] or resource_id


def status_text(content: TicketContent, resolved: bool) -> str:
    if resolved:
        return "Resolved"
    return "Escalated" if content.escalated else "Open"


def _fields(content: TicketContent, resolved: bool) -> list[dict[str, Any]]:
    principal = content.principal_name or content.principal_id or "key callers"
    if content.principal_type:
        principal = f"{principal} ({content.principal_type})"
    values = [
        ("Cause", f"{content.cause_title} ({content.cause})"),
        ("Principal", principal),
        ("Account", account_name(content.resource_id)),
        ("Failures", str(content.count)),
        ("First seen", content.first_seen),
        ("Last seen", content.last_seen),
        ("Mode", content.mode),
        ("Status", status_text(content, resolved)),
    ]
    if content.owner:
        values.append(("Owner", content.owner))
    return [_mrkdwn(_labelled(label, value, _FIELD)) for label, value in values[:MAX_FIELDS]]


def _steps(content: TicketContent) -> str | None:
    if not content.fix_steps:
        return None
    lines: list[str] = []
    used = len("*Steps*\n")
    for n, (text, url) in enumerate(content.fix_steps, 1):
        line = f"{n}. " + _fit(text, 400, escape_mrkdwn)
        if url and is_safe_url(url) and len(url) <= LIMIT_URL:
            # Our own link: a safe URL has no `|`, `<`, `>` or space; its `&` is sent as an entity, as Slack asks.
            line += f" (<{url.replace('&', '&amp;')}|docs>)"
        if used + len(line) + 1 > _STEPS:
            break
        lines.append(line)
        used += len(line) + 1
    return "*Steps*\n" + "\n".join(lines) if lines else None


def _evidence(content: TicketContent) -> str | None:
    items = [*content.evidence[:MAX_EVIDENCE_ITEMS]]
    if content.sample_error:
        items.append("Sample error: " + clean_line(content.sample_error, 600))
    if not items:
        return None
    lines: list[str] = []
    used = len("*Evidence*\n")
    for item in items:
        line = "• " + _fit(item, 400, escape_mrkdwn)
        if used + slack_len(line) + 1 > _EVIDENCE:
            lines.append(f"• … {len(items) - len(lines)} more not shown")
            break
        lines.append(line)
        used += slack_len(line) + 1
    return "*Evidence*\n" + "\n".join(lines)


def _button(label: str, url: str | None, action_id: str, *, primary: bool = False) -> dict[str, Any] | None:
    if not url or not is_safe_url(url) or len(url) > LIMIT_URL:
        return None
    button: dict[str, Any] = {"type": "button", "text": _plain(label), "url": url, "action_id": action_id}
    if primary:
        button["style"] = "primary"
    return button


def header_text(content: TicketContent, resolved: bool = False) -> str:
    prefix = "Resolved: " if resolved else ("Escalated: " if content.escalated else "")
    return _fit(prefix + content.title, LIMIT_HEADER, escape_plain_text)


def fallback_text(content: TicketContent, resolved: bool = False) -> str:
    """The top-level `text` (notifications, screen readers): escaped like any mrkdwn."""
    prefix = "Resolved: " if resolved else ("Escalated: " if content.escalated else "Azure OpenAI auth failure: ")
    return _fit(prefix + content.title, LIMIT_FALLBACK, escape_mrkdwn)


def incident_message(content: TicketContent, *, resolved: bool = False) -> dict[str, Any]:
    """The one message per incident: `{"text": ..., "blocks": [...]}` (posted, then updated in place)."""
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": _plain(header_text(content, resolved))},
        _section(_fit(content.summary, _SUMMARY, lambda v: escape_mrkdwn(v, multiline=True)) or "-"),
        {"type": "section", "fields": _fields(content, resolved)},
    ]
    if content.fix_command:
        blocks.append(_section(_labelled_code("Fix", content.fix_command, _FIX)))
    for part in (_steps(content), _evidence(content)):
        if part:
            blocks.append(_section(part))
    blocks.append(_section(_labelled("What the service did", content.action, _ACTION, multiline=True)))
    if not resolved:
        buttons = [b for b in (
            _button("Approve", content.approve_url, "approve", primary=True),
            _button("Suppress 24 h", content.suppress_url, "suppress"),
            _button("Open in Log Analytics", content.logs_url, "logs"),
        ) if b]
        if buttons:
            blocks.append({"type": "actions", "elements": buttons})
        if content.approve_command:
            blocks.append(_section(_labelled_code("Approve from a shell", content.approve_command, _COMMAND)))
        elif content.approve_hint:
            blocks.append(_section(_labelled("Approve", content.approve_hint, _ACTION)))
    if content.rollback_command:
        blocks.append(_section(_labelled_code("Roll back", content.rollback_command, _COMMAND)))
    blocks.append({"type": "context", "elements": [_mrkdwn(_context(content))]})
    return {"text": fallback_text(content, resolved), "blocks": blocks[:MAX_BLOCKS]}


def _context(content: TicketContent) -> str:
    return _fit(f"Incident {content.incident_id} · aoai-auth-triage", _CONTEXT, escape_mrkdwn)


def reply_message(content: TicketContent, kind: str, text: str, *, follow_up: bool = False) -> dict[str, Any]:
    """A thread reply (bot mode) or a follow-up message (incoming webhook): what changed, in one section. `kind` is
    ours ("Update", "Escalated", "Resolved"); `follow_up` names the incident, since it is not in a thread."""
    label = f"{kind}: {content.title}" if follow_up else kind
    head = "*" + _fit(label, 300, escape_mrkdwn) + "*\n"
    body = _fit(text, _REPLY, lambda v: escape_mrkdwn(v, multiline=True)) or "-"
    blocks: list[dict[str, Any]] = [_section(head + body),
                                    {"type": "context", "elements": [_mrkdwn(_context(content))]}]
    fallback = _fit(f"{kind}: {content.title}", LIMIT_FALLBACK, escape_mrkdwn)
    return {"text": fallback, "blocks": blocks}


def text_objects(blocks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every text object in `blocks` (for budgets and tests)."""
    return [node for node in json_tree.objects(blocks)
            if node.get("type") in ("plain_text", "mrkdwn") and isinstance(node.get("text"), str)]


def message_text_size(message: dict[str, Any]) -> int:
    return sum(slack_len(t["text"]) for t in text_objects(message.get("blocks", [])))
