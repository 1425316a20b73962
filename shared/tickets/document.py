"""What a ticket says, as a small tracker-neutral document; shared/tickets/markup/ renders it per tracker.

Every string in a document is untrusted as far as renderers care: they escape all of it. Here it is only
cleaned (valid Unicode, no control characters) and bounded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from shared.tickets.base import TicketContent
from shared.tickets.sanitize import ZWSP, clean_line, clean_text, is_safe_url

LIMIT_SUMMARY = 2000
LIMIT_NAME = 256
LIMIT_ID = 600
LIMIT_SAMPLE = 2000
LIMIT_EVIDENCE_LINE = 400
MAX_EVIDENCE_LINES = 40
LIMIT_COMMAND = 2000
MAX_STEPS = 20
LIMIT_STEP = 600
LIMIT_ACTION = 1000
LIMIT_COMMENT = 4000


@dataclass(frozen=True)
class Text:
    """Prose: rendered as text, never as markup."""

    value: str


@dataclass(frozen=True)
class Code:
    """A literal (an id, a value) shown verbatim in monospace."""

    value: str


@dataclass(frozen=True)
class Strong:
    value: str


@dataclass(frozen=True)
class Link:
    label: str
    url: str  # only is_safe_url() URLs are ever made into Link


Inline = Text | Code | Strong | Link


@dataclass(frozen=True)
class Heading:
    value: str


@dataclass(frozen=True)
class Paragraph:
    parts: tuple[Inline, ...]


@dataclass(frozen=True)
class Items:
    items: tuple[tuple[Inline, ...], ...]
    ordered: bool = False


@dataclass(frozen=True)
class CodeBlock:
    value: str
    language: str | None = None


Block = Heading | Paragraph | Items | CodeBlock


_MENTION_LIKE = re.compile(r"([@#])(?=\w)")


def ticket_title(content: TicketContent, limit: int) -> str:
    """One plain line. Titles are not markup, but some trackers link `@name` / `#123` in them: a zero-width space
    after the sign keeps a display name from logs or Graph from pinging anyone."""
    title = clean_line(content.title, limit) or clean_line(content.cause, limit)
    return _MENTION_LIKE.sub(r"\1" + ZWSP, title)[:limit]


def _link_or_text(label: str, url: str | None) -> Inline:
    return Link(label, url) if url and is_safe_url(url) else Text(clean_line(url or "", LIMIT_ID))


def _principal(content: TicketContent) -> tuple[Inline, ...]:
    parts: list[Inline] = [Strong("Principal: ")]
    name = clean_line(content.principal_name, LIMIT_NAME)
    if name:
        parts += [Text(name), Text(" — ")]
    if content.principal_id:
        parts.append(Code(clean_line(content.principal_id, LIMIT_ID)))
    else:
        parts.append(Text("key callers (no Entra identity)"))
    kind = clean_line(content.principal_type, LIMIT_NAME)
    if kind:
        parts.append(Text(f" ({kind})"))
    return tuple(parts)


def ticket_document(content: TicketContent, marker: str) -> tuple[Block, ...]:
    blocks: list[Block] = []
    if content.escalated:
        blocks.append(Paragraph((Strong("Escalated: "), Text("the automatic fix did not hold; a person must act."))))
    blocks.append(Paragraph((Strong("Cause: "), Text(clean_line(content.cause_title, LIMIT_NAME) + " "),
                             Code(clean_line(content.cause, LIMIT_NAME)))))
    blocks.append(Paragraph((Text(clean_line(content.summary, LIMIT_SUMMARY)),)))
    blocks.append(Heading("Who and where"))
    blocks.append(Items((
        _principal(content),
        (Strong("Resource: "), Code(clean_line(content.resource_id, LIMIT_ID))),
        (Strong("Failures: "), Text(f"{int(content.count)}, first seen {clean_line(content.first_seen, 64)}, "
                                    f"last seen {clean_line(content.last_seen, 64)}")),
    )))
    if content.sample_error:
        blocks += [Heading("Sample error"), CodeBlock(clean_text(content.sample_error, LIMIT_SAMPLE))]
    evidence = [clean_line(line, LIMIT_EVIDENCE_LINE) for line in content.evidence[:MAX_EVIDENCE_LINES]]
    if len(content.evidence) > MAX_EVIDENCE_LINES:
        evidence.append(f"… {len(content.evidence) - MAX_EVIDENCE_LINES} more lines")
    if evidence:
        blocks += [Heading("Evidence"), Items(tuple((Text(line),) for line in evidence if line))]
    blocks.append(Heading("Fix"))
    if content.fix_command:
        blocks.append(CodeBlock(clean_text(content.fix_command, LIMIT_COMMAND).strip("\n"), "sh"))
    steps: list[tuple[Inline, ...]] = []
    for text, url in content.fix_steps[:MAX_STEPS]:
        step: tuple[Inline, ...] = (Text(clean_line(text, LIMIT_STEP)),)
        if url:
            step += (Text(" — "), _link_or_text("documentation", url))
        steps.append(step)
    if steps:
        blocks.append(Items(tuple(steps), ordered=True))
    if not content.fix_command and not steps:
        blocks.append(Paragraph((Text("No automatic fix is known; see the evidence above."),)))
    blocks.append(Heading("What the service does"))
    blocks.append(Paragraph((Strong("Mode: "), Code(clean_line(content.mode, 32)), Text(". "),
                             Text(clean_line(content.action, LIMIT_ACTION)))))
    if content.approve_hint:
        blocks += [Heading("How to approve"), Paragraph((Text(clean_line(content.approve_hint, LIMIT_ACTION)),))]
    if content.rollback_command:
        blocks += [Heading("How to roll back"),
                   CodeBlock(clean_text(content.rollback_command, LIMIT_COMMAND).strip("\n"), "sh")]
    if content.logs_url and is_safe_url(content.logs_url):
        blocks.append(Paragraph((Strong("Failing requests: "), Link("open in Log Analytics", content.logs_url))))
    blocks.append(Heading("References"))
    links = tuple((_link_or_text(url, url),) for url in dict.fromkeys(content.doc_links) if url)
    if links:
        blocks.append(Items(links))
    blocks.append(Paragraph((Strong("Incident: "), Code(clean_line(content.incident_id, 64)),
                             Text(" · marker "), Code(marker))))
    blocks.append(Paragraph((Strong("Fingerprint: "), Code(clean_line(content.fingerprint, LIMIT_ID)))))
    blocks.append(Paragraph((Text("Maintained by aoai-auth-triage: it rewrites this description when the problem "
                                  "recurs. Add notes as comments."),)))
    return tuple(blocks)


def comment_document(text: str) -> tuple[Block, ...]:
    """A caller's comment: paragraphs split on blank lines, each rendered as prose."""
    cleaned = clean_text(text, LIMIT_COMMENT)
    paragraphs = [" ".join(chunk.split()) for chunk in cleaned.split("\n\n")]
    return tuple(Paragraph((Text(p),)) for p in paragraphs if p)
