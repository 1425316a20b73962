"""Adaptive Cards for Microsoft Teams, posted through a Workflows webhook (shared/tickets/teams.py). Pure: plain
data in, a JSON-ready dict out.

Version 1.4. Teams renders up to 1.5 (https://learn.microsoft.com/microsoft-copilot-studio/guidance/
adaptive-cards-overview: "Teams is also limited to version 1.5"), but the Workflows flow bot refuses cards that
declare 1.5 ("Teams Webhooks through their Workflows reject anything over adaptive card 1.4",
https://github.com/Skitionek/notify-microsoft-teams/issues/107; the same change in
https://github.com/atc0005/go-teams-notify/pull/265), so 1.4 is the highest version that is documented for Teams
and accepted on this path. Everything used here exists since 1.2 (RichTextBlock, TextRun, fontType).

What Teams interprets in text, and how hostile text is kept inert:

- TextBlock text and Fact title/value are Markdown (a CommonMark subset: bold, italic, lists, links;
  https://learn.microsoft.com/adaptive-cards/authoring-cards/text-features and
  https://learn.microsoft.com/microsoftteams/platform/task-modules-and-cards/cards/cards-format). Text from logs
  is therefore never put in a TextBlock: prose and literals go in RichTextBlock TextRuns, which "do not support
  markdown" (text-features page). Fact values (a FactSet is the readable way to show the key facts) are
  CommonMark-escaped (`escape_card_markdown`).
- TextBlock and TextRun text may carry `{{DATE(...)}}` / `{{TIME(...)}}` functions (text-features page): every
  `{` from the input is followed by a zero-width space, so no function can form.
- Mentions need `<at>...</at>` plus `msteams.entities`; cards here never carry entities, and `<`/`@` in input are
  broken with a zero-width space anyway. `scheme://` and `www.` are broken the same way (sanitize.defang_links)
  so clients that autolink plain URLs do not.
- Links exist only as Action.OpenUrl buttons to URLs that pass sanitize.is_safe_url.

Size: the Teams connector's "Post card in a chat or channel" fails with "Request Entity too large" above about
28 KB (https://learn.microsoft.com/connectors/teams/#known-issues-and-limitations-with-actions); Teams counts a
bot message's size in UTF-16 (https://learn.microsoft.com/microsoftteams/platform/bots/how-to/
format-your-bot-messages). `webhook_payload` measures the whole payload that way and drops evidence first, then
the sample error and steps, then shortens the rest, until it fits.
"""

from __future__ import annotations

import json
import re
from typing import Any

from shared.tickets.base import TicketContent
from shared.tickets.document import (
    LIMIT_ACTION,
    LIMIT_COMMAND,
    LIMIT_COMMENT,
    LIMIT_EVIDENCE_LINE,
    LIMIT_ID,
    LIMIT_NAME,
    LIMIT_SAMPLE,
    LIMIT_STEP,
    LIMIT_SUMMARY,
    MAX_EVIDENCE_LINES,
    MAX_STEPS,
    ticket_title,
)
from shared.tickets.markup import json_tree
from shared.tickets.sanitize import ZWSP, clean_line, clean_text, defang_links, fold_line, is_safe_url

CARD_VERSION = "1.4"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
CARD_SCHEMA = "http://adaptivecards.io/schemas/adaptive-card.json"
MAX_MESSAGE_BYTES = 28_000  # "about 28 KB", counted in UTF-16 (see the module docstring)
MAX_ACTIONS = 5  # Teams shows a handful of buttons; the rest would fold into an overflow menu
_SPACES = re.compile(r"[ \t]{2,}")
_SCHEME_COLON = re.compile(r"(?<=[A-Za-z]):")  # `mailto:`, `tel:`, `sip:`: what autolinks without `//`
# Anywhere in a line: what opens or closes emphasis, code, a link or image (`(` only matters after `]`, `!` only
# before `[`), HTML or an autolink, an entity. At the start only: a heading, quote or list marker.
_MARKDOWN_ACTIVE = frozenset("\\`*_{}[]<>&~")
_LINE_START = re.compile(r"^(?:[-+#>=|]|\d+(?=[.)]))")


def inert(text: str) -> str:
    """Text for a TextRun (no Markdown there): no date/time function, autolink, mention or e-mail link can form.
    Only zero-width spaces are added, so it reads (and copies, minus those) the same."""
    out = _SCHEME_COLON.sub(":" + ZWSP, defang_links(text))
    return out.replace("{", "{" + ZWSP).replace("<", "<" + ZWSP).replace("@", "@" + ZWSP)


def escape_card_markdown(text: str) -> str:
    """One line, inert in Teams card Markdown (Fact titles and values): CommonMark backslash escapes before every
    character that can start or end emphasis, a link, code, HTML, an entity or a list, plus what `inert` does."""
    folded = _SCHEME_COLON.sub(":" + ZWSP, defang_links(_SPACES.sub(" ", fold_line(text)).strip()))
    out: list[str] = []
    start = _LINE_START.match(folded)
    if start:  # `1. x` is a list, `- x` a bullet, `# x` a heading: escape what makes it one
        marker = start.group(0)
        out.append(marker + "\\" if marker[0].isdigit() else "\\" + marker)
        folded = folded[len(marker):]
        if marker[0].isdigit():
            out.append(folded[0])
            folded = folded[1:]
    for ch in folded:
        if ch in _MARKDOWN_ACTIVE:
            out.append("\\" + ch)
            if ch in "{<":
                out.append(ZWSP)
        elif ch == "@":
            out.append("@" + ZWSP)
        else:
            out.append(ch)
    return "".join(out)


_FUNCTION = re.compile(r"\{(?=\{\s*(?i:date|time)\s*\()")
_AT_TAG = re.compile(r"<(?=/?at\b)", re.IGNORECASE)


def literal(text: str) -> str:
    """A command, shown verbatim so it can be copied (URLs, JSON braces and all): only a date/time function or an
    `<at>` tag is broken, with a zero-width space."""
    return _AT_TAG.sub("<" + ZWSP, _FUNCTION.sub("{" + ZWSP, text))


def _run(text: str, **style: Any) -> dict[str, Any]:
    return {"type": "TextRun", "text": inert(text), **style}


def _own(text: str, **style: Any) -> dict[str, Any]:
    """A TextRun of this module's own words (a label, a heading): no input in it, nothing to break."""
    return {"type": "TextRun", "text": text, **style}


def rich(text: str, *, spacing: str | None = None, own: bool = False, **style: Any) -> dict[str, Any]:
    """A RichTextBlock of one TextRun: hostile text shown as text (`own`: this module's words)."""
    block: dict[str, Any] = {"type": "RichTextBlock", "inlines": [(_own if own else _run)(text, **style)]}
    if spacing:
        block["spacing"] = spacing
    return block


def command(text: str) -> dict[str, Any]:
    """A command in monospace, verbatim but for `literal`."""
    return {"type": "TextRun", "text": literal(text), "fontType": "Monospace"}


def labelled(label: str, text: str, *, monospace: bool = False) -> dict[str, Any]:
    """`label` in bold, then `text` (a command, in monospace, when `monospace`)."""
    value = command(text) if monospace else _run(text)
    return {"type": "RichTextBlock", "inlines": [_own(label + " ", weight="Bolder"), value]}


def heading(text: str) -> dict[str, Any]:
    return rich(text, spacing="Medium", own=True, weight="Bolder")


def _fact(title: str, value: str) -> dict[str, str]:
    return {"title": escape_card_markdown(title), "value": escape_card_markdown(value) or "—"}


def account_name(resource_id: str) -> str:
    return resource_id.rstrip("/").rsplit("/", 1)[-1] or resource_id


def _open_url(title: str, url: str | None) -> dict[str, str] | None:
    return {"type": "Action.OpenUrl", "title": title, "url": url} if url and is_safe_url(url) else None


def card_actions(content: TicketContent, *, resolved: bool = False) -> list[dict[str, str]]:
    """Buttons: approve (when an approval is pending), suppress for 24 h, Log Analytics, the first doc link."""
    wanted = [] if resolved else [("Approve", content.approve_url), ("Suppress 24 h", content.suppress_url)]
    wanted.append(("Open in Log Analytics", content.logs_url))
    if not resolved:
        wanted += [("Documentation", url) for url in [u for u in content.doc_links if is_safe_url(u)][:1]]
    actions = [a for a in (_open_url(title, url) for title, url in wanted) if a is not None]
    return actions[:MAX_ACTIONS]


def _card(body: list[dict[str, Any]], actions: list[dict[str, str]]) -> dict[str, Any]:
    card: dict[str, Any] = {"type": "AdaptiveCard", "$schema": CARD_SCHEMA, "version": CARD_VERSION, "body": body}
    if actions:
        card["actions"] = actions
    return card


def _facts(content: TicketContent) -> dict[str, Any]:
    name = clean_line(content.principal_name, LIMIT_NAME)
    principal = name or clean_line(content.principal_id, LIMIT_ID) or "key callers (no Entra identity)"
    facts = [_fact("Principal", principal)]
    if name and content.principal_id:
        facts.append(_fact("Object id", clean_line(content.principal_id, LIMIT_ID)))
    facts += [
        _fact("Account", clean_line(account_name(content.resource_id), LIMIT_NAME)),
        _fact("Failures", str(int(content.count))),
        _fact("First seen", clean_line(content.first_seen, 64)),
        _fact("Last seen", clean_line(content.last_seen, 64)),
        _fact("Mode", clean_line(content.mode, 32)),
    ]
    if content.owner:
        facts.append(_fact("Owner", clean_line(content.owner, LIMIT_NAME)))
    facts.append(_fact("Incident", clean_line(content.incident_id, 64)))
    return {"type": "FactSet", "facts": facts}


# How much of each part a card keeps, from the full card down to the smallest (tried in order until one fits).
_LEVELS: tuple[dict[str, int], ...] = (
    {"evidence": MAX_EVIDENCE_LINES, "sample": LIMIT_SAMPLE, "steps": MAX_STEPS, "scale": 1},
    {"evidence": 0, "sample": LIMIT_SAMPLE, "steps": MAX_STEPS, "scale": 1},
    {"evidence": 0, "sample": 0, "steps": 0, "scale": 1},
    {"evidence": 0, "sample": 0, "steps": 0, "scale": 4},
    {"evidence": 0, "sample": 0, "steps": 0, "scale": 16},
)


def incident_card(content: TicketContent, *, level: int = 0) -> dict[str, Any]:
    """The full card for an incident's first message."""
    keep = _LEVELS[level]
    scale = keep["scale"]

    def bound(text: str | None, limit: int) -> str:
        return clean_line(text, max(64, limit // scale))

    def block_text(text: str | None, limit: int) -> str:
        return clean_text(text, max(64, limit // scale)).strip("\n")

    body: list[dict[str, Any]] = []
    if content.escalated:
        body.append(rich("Escalated: the automatic fix did not hold; a person must act.", own=True, weight="Bolder",
                         color="Attention"))
    body.append(rich(ticket_title(content, LIMIT_NAME), size="Large", weight="Bolder"))
    body.append(labelled("Cause:", bound(content.cause_title, LIMIT_NAME) + " (" + bound(content.cause, LIMIT_NAME)
                         + ")"))
    body.append(rich(bound(content.summary, LIMIT_SUMMARY)))
    body.append(_facts(content))
    if content.sample_error and keep["sample"]:
        body += [heading("Sample error"), rich(block_text(content.sample_error, keep["sample"]),
                                               fontType="Monospace")]
    if keep["evidence"]:
        lines = [clean_line(line, LIMIT_EVIDENCE_LINE) for line in content.evidence[: keep["evidence"]]]
        if len(content.evidence) > keep["evidence"]:
            lines.append(f"… {len(content.evidence) - keep['evidence']} more lines")
        lines = [line for line in lines if line]
        if lines:
            body.append(heading("Evidence"))
            body += [rich("• " + line, spacing="None") for line in lines]
    body.append(heading("Fix"))
    if content.fix_command:
        body.append({"type": "RichTextBlock", "inlines": [command(block_text(content.fix_command, LIMIT_COMMAND))]})
    steps = content.fix_steps[: keep["steps"]]
    body += [rich(f"{n}. " + bound(text, LIMIT_STEP), spacing="None") for n, (text, _url) in enumerate(steps, 1)]
    if not content.fix_command and not steps:
        body.append(rich("No automatic fix is known; see the evidence.", own=True))
    body.append(labelled("What the service does:", bound(content.action, LIMIT_ACTION)))
    for label, text in (("Approve with:", content.approve_command), ("Suppress with:", content.suppress_command),
                        ("Roll back with:", content.rollback_command)):
        if text:
            body.append(labelled(label, block_text(text, LIMIT_COMMAND), monospace=True))
    if content.approve_hint and not content.approve_command:
        body.append(labelled("How to approve:", bound(content.approve_hint, LIMIT_ACTION)))
    return _card(body, card_actions(content))


def follow_up_card(content: TicketContent, text: str, *, resolved: bool = False, scale: int = 1) -> dict[str, Any]:
    """A short card naming the incident: a recurrence comment, an escalation or the resolution."""
    status = "Resolved" if resolved else ("Escalated" if content.escalated else "Update")
    style: dict[str, Any] = {"size": "Medium", "weight": "Bolder"}
    if resolved or content.escalated:
        style["color"] = "Good" if resolved else "Attention"
    body: list[dict[str, Any]] = [
        {"type": "RichTextBlock", "inlines": [_own(f"{status}: ", **style),
                                              _run(ticket_title(content, LIMIT_NAME), **style)]},
        rich(clean_text(text, max(64, LIMIT_COMMENT // scale)).strip("\n") or status),
        {"type": "FactSet", "facts": [_fact("Incident", clean_line(content.incident_id, 64)),
                                      _fact("Failures", str(int(content.count))),
                                      _fact("Last seen", clean_line(content.last_seen, 64))]},
    ]
    return _card(body, card_actions(content, resolved=resolved))


def envelope(card: dict[str, Any]) -> dict[str, Any]:
    """The message the Workflows trigger reads: the card as the first attachment
    (https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using)."""
    return {"type": "message",
            "attachments": [{"contentType": CARD_CONTENT_TYPE, "contentUrl": None, "content": card}]}


def message_size(payload: dict[str, Any]) -> int:
    """The payload's size as Teams counts it: UTF-16 bytes of its JSON."""
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-16-le"))


def incident_payload(content: TicketContent) -> dict[str, Any]:
    """The first message: the fullest card that fits in MAX_MESSAGE_BYTES."""
    for level in range(len(_LEVELS)):
        payload = envelope(incident_card(content, level=level))
        if message_size(payload) <= MAX_MESSAGE_BYTES:
            return payload
    return payload  # the smallest level: bounded fields, within the limit by construction (tests check it)


def follow_up_payload(content: TicketContent, text: str, *, resolved: bool = False) -> dict[str, Any]:
    for scale in (1, 4, 16):
        payload = envelope(follow_up_card(content, text, resolved=resolved, scale=scale))
        if message_size(payload) <= MAX_MESSAGE_BYTES:
            return payload
    return payload


def body_bytes(payload: dict[str, Any]) -> bytes:
    """The bytes sent: compact ASCII JSON (non-ASCII as \\u escapes, so no encoding is in doubt)."""
    return json.dumps(payload, ensure_ascii=True, separators=(",", ":")).encode("ascii")


def card_texts(card: dict[str, Any]) -> list[tuple[str, str]]:
    """Every (kind, text) a card shows: kind is `run` (TextRun, no Markdown), `code` (a monospace TextRun: commands
    verbatim), `markdown` (Fact, TextBlock) or `action` (a button title). For tests."""
    found: list[tuple[str, str]] = []
    for node in json_tree.objects(card):
        kind = node.get("type")
        if kind == "TextRun":
            found.append(("code" if node.get("fontType") == "Monospace" else "run", node.get("text", "")))
        elif kind == "TextBlock":
            found.append(("markdown", node.get("text", "")))
        elif kind == "Action.OpenUrl":
            found.append(("action", node.get("title", "")))
        elif "title" in node and "value" in node and kind is None:
            found.extend((("markdown", node["title"]), ("markdown", node["value"])))
    return found


__all__ = [
    "CARD_CONTENT_TYPE", "CARD_VERSION", "MAX_MESSAGE_BYTES", "account_name", "body_bytes", "card_actions",
    "card_texts", "envelope", "escape_card_markdown", "follow_up_payload", "incident_card", "incident_payload",
    "inert", "message_size",
]
