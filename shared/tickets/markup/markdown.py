"""GitHub-flavoured Markdown (GitHub Issues).

Prose: every ASCII punctuation character is backslash-escaped (no emphasis, links, images, HTML, headings,
tables, code), a zero-width space follows `@` and `#` (GitHub links mentions and issue references after
rendering, so a backslash alone would not stop `@org/team`), and `scheme://` / `www.` are broken the same way
so GitHub does not autolink them. Literals go in code spans or fenced blocks whose fence is longer than any
backtick run inside, so nothing in them is interpreted (GitHub skips mentions in code).
"""

from __future__ import annotations

import re
import string

from shared.tickets.document import Block, Code, CodeBlock, Heading, Inline, Items, Link, Paragraph, Strong, Text
from shared.tickets.sanitize import ZWSP, clean_line, clean_text, defang_links, fold_line, is_safe_url

_PUNCTUATION = frozenset(string.punctuation)
_BACKTICKS = re.compile(r"`+")
_SPACES = re.compile(r"\s{2,}")


def escape_markdown(text: str, *, defang: bool = True) -> str:
    """One line of prose, inert in GitHub Markdown. (`defang=False` only for the label of a link we made.)"""
    out: list[str] = []
    # Runs of spaces collapse: four at the start of a line would open an indented code block.
    folded = _SPACES.sub(" ", fold_line(text))
    for ch in defang_links(folded) if defang else folded:
        if ch in _PUNCTUATION:
            out.append("\\" + ch)
            if ch in "@#":
                out.append(ZWSP)
        else:
            out.append(ch)
    return "".join(out)


def _longest_backtick_run(text: str) -> int:
    return max((len(m) for m in _BACKTICKS.findall(text)), default=0)


def code_span(text: str) -> str:
    """A one-line literal. CommonMark strips one space each side, so the padding keeps the text exact."""
    value = clean_line(text)
    if not value:
        return ""
    fence = "`" * (_longest_backtick_run(value) + 1)
    return f"{fence} {value} {fence}"


def code_block(text: str, language: str | None = None) -> str:
    value = clean_text(text).rstrip("\n")
    fence = "`" * max(3, _longest_backtick_run(value) + 1)
    info = language if language and language.isalnum() else ""
    return f"{fence}{info}\n{value}\n{fence}"


def _inline(part: Inline) -> str:
    if isinstance(part, Text):
        return escape_markdown(part.value)
    if isinstance(part, Strong):
        # Emphasis markers must hug the text, so edge spaces go outside them.
        label = part.value.strip()
        lead, trail = part.value[: len(part.value) - len(part.value.lstrip())], part.value[len(part.value.rstrip()):]
        return f"{fold_line(lead)}**{escape_markdown(label)}**{fold_line(trail)}" if label else ""
    if isinstance(part, Code):
        return code_span(part.value)
    if isinstance(part, Link) and is_safe_url(part.url):
        return f"[{escape_markdown(part.label, defang=False)}](<{part.url}>)"
    return escape_markdown(getattr(part, "label", ""))


def _line(parts: tuple[Inline, ...]) -> str:
    return "".join(_inline(p) for p in parts)


def render_markdown(blocks: tuple[Block, ...]) -> str:
    chunks: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            chunks.append("### " + escape_markdown(block.value))
        elif isinstance(block, Paragraph):
            chunks.append(_line(block.parts))
        elif isinstance(block, Items):
            chunks.append("\n".join(
                (f"{n}. " if block.ordered else "- ") + _line(item) for n, item in enumerate(block.items, 1)
            ))
        elif isinstance(block, CodeBlock):
            chunks.append(code_block(block.value, block.language))
    return "\n\n".join(c for c in chunks if c) + "\n"
