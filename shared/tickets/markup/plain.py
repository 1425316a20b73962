"""Plain text (ServiceNow description, work notes and close notes).

ServiceNow shows these fields as text, with two exceptions in journal fields that we neutralise: `[code]…[/code]`
is rendered as HTML (glide.ui.security.allow_codetag), and `@[sys_id:name]` is a mention that notifies. A
zero-width space after the `[` / `@` keeps the text readable and inert.
"""

from __future__ import annotations

import re

from shared.tickets.document import Block, Code, CodeBlock, Heading, Inline, Items, Link, Paragraph, Strong, Text
from shared.tickets.sanitize import ZWSP, clean_line, clean_text, defang_links, fold_line

_CODE_TAG = re.compile(r"\[(/?code)", re.IGNORECASE)
_MENTION = re.compile(r"@\[")


def neutralize_plain(text: str) -> str:
    """Multi-line text, inert in ServiceNow journal and text fields."""
    return _MENTION.sub("@" + ZWSP + "[", _CODE_TAG.sub("[" + ZWSP + r"\1", clean_text(text)))


def escape_plain(text: str) -> str:
    """One line of prose."""
    return neutralize_plain(defang_links(fold_line(text)))


def _inline(part: Inline) -> str:
    if isinstance(part, Text | Strong):
        return escape_plain(part.value)
    if isinstance(part, Code):
        return neutralize_plain(clean_line(part.value))
    if isinstance(part, Link):
        return neutralize_plain(clean_line(part.url))
    return ""


def _line(parts: tuple[Inline, ...]) -> str:
    return "".join(_inline(p) for p in parts)


def render_plain(blocks: tuple[Block, ...]) -> str:
    chunks: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            title = escape_plain(block.value)
            chunks.append(f"{title}\n{'-' * len(title)}")
        elif isinstance(block, Paragraph):
            chunks.append(_line(block.parts))
        elif isinstance(block, Items):
            chunks.append("\n".join(
                (f"{n}. " if block.ordered else "- ") + _line(item) for n, item in enumerate(block.items, 1)
            ))
        elif isinstance(block, CodeBlock):
            chunks.append("\n".join("    " + line for line in neutralize_plain(block.value).split("\n")))
    return "\n\n".join(c for c in chunks if c) + "\n"
