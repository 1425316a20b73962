"""Jira wiki markup (Jira Data Center / Server REST v2 description and comments).

Notation: https://jira.atlassian.com/secure/WikiRendererHelpAction.jspa?section=all ("Text formatting notation")
and https://confluence.atlassian.com/doc/confluence-wiki-markup-251003035.html. Jira's renderer takes a
backslash before any of `- # * _ + ? ^ ~ | % { } [ ] ( ) ! @` as that character itself (its
BackslashEscapeRendererComponent), so prose has every one of them escaped: no *bold*, _italic_, -strike-, +ins+,
^sup^, ~sub~, ??cite??, {{monospace}}, {code}/{noformat}/{color}/{quote} or any {macro}, [link|url], [~mention],
!image!, |table| cell, (/) (x) (!) (i) ... icon, `--` / `---` dash, or line-start list, heading or rule marker can
come from input. What escaping cannot reach gets a zero-width space: after every `:` and `;` (emoticons such as
`:)` `;)` `:D`, and `mailto:`/`file:` style links), after a backslash (so `\\` never becomes a line break nor
escapes what follows), inside `h1.`..`h6.` and `bq.` (block markers at a line's start), and in `scheme://` / `www.`
(the renderer links bare URLs). Code blocks are `{noformat}` (nothing inside is parsed) with any `{noformat` in
the text broken the same way; monospace spans are `{{...}}` over escaped text (Jira still parses markup inside
them). The only links are `[label|url]` for checked https URLs; nothing here writes a mention.
"""

from __future__ import annotations

import re

from shared.tickets.document import Block, Code, CodeBlock, Heading, Inline, Items, Link, Paragraph, Strong, Text
from shared.tickets.sanitize import ZWSP, clean_line, clean_text, defang_links, fold_line, is_safe_url

# The characters Jira's renderer unescapes after a backslash.
SPECIAL = frozenset("-#*_+?^~|%{}[]()!@")
_BLOCK_MARKER = re.compile(r"(?i)(h[1-6]|bq)\.")
_NOFORMAT = re.compile(r"(?i)\{(noformat)")
_SPACES = re.compile(r"[ \t]{2,}")


def escape_wiki(text: str, *, defang: bool = True) -> str:
    """One line of prose, inert in Jira wiki markup. (`defang=False` only for the label of a link we made.)"""
    folded = _SPACES.sub(" ", fold_line(text))
    value = defang_links(folded) if defang else folded
    value = _BLOCK_MARKER.sub(lambda m: m[1] + ZWSP + ".", value)
    out: list[str] = []
    for ch in value:
        if ch in SPECIAL:
            out.append("\\" + ch)
        elif ch == "\\":
            out.append("\\" + ZWSP)
        elif ch in ":;":
            out.append(ch + ZWSP)
        else:
            out.append(ch)
    return "".join(out)


def monospace(text: str) -> str:
    """A one-line literal in {{monospace}}, escaped (Jira parses markup inside it)."""
    value = escape_wiki(clean_line(text), defang=True)
    return "{{" + value + "}}" if value else ""


def noformat_block(text: str) -> str:
    """A preformatted block: nothing inside {noformat} is parsed but its own end tag, which the text cannot hold."""
    value = _NOFORMAT.sub("{" + ZWSP + r"\1", clean_text(text).rstrip("\n"))
    return "{noformat}\n" + value + "\n{noformat}"


def _inline(part: Inline) -> str:
    if isinstance(part, Text):
        return escape_wiki(part.value)
    if isinstance(part, Strong):
        # Strong markers must hug the text, so edge spaces go outside them.
        label = fold_line(part.value).strip()
        lead = " " if part.value[:1].isspace() else ""
        trail = " " if part.value[-1:].isspace() else ""
        return f"{lead}*{escape_wiki(label)}*{trail}" if label else ""
    if isinstance(part, Code):
        return monospace(part.value)
    if isinstance(part, Link) and is_safe_url(part.url):
        label = escape_wiki(clean_line(part.label) or part.url, defang=False)
        return f"[{label}|{part.url}]"
    return escape_wiki(getattr(part, "label", ""))


def _line(parts: tuple[Inline, ...]) -> str:
    return "".join(_inline(p) for p in parts).strip()


def render_wiki(blocks: tuple[Block, ...]) -> str:
    chunks: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            title = escape_wiki(block.value).strip()
            if title:
                chunks.append("h3. " + title)
        elif isinstance(block, Paragraph):
            chunks.append(_line(block.parts))
        elif isinstance(block, Items):
            marker = "# " if block.ordered else "* "
            lines = [marker + line for line in (_line(item) for item in block.items) if line]
            chunks.append("\n".join(lines))
        elif isinstance(block, CodeBlock):
            chunks.append(noformat_block(block.value))
    return "\n\n".join(c for c in chunks if c) + "\n"


def wiki_plain_text(markup: str) -> str:
    """What a reader sees of markup written by `render_wiki` (for tests and logs): escapes and our own markers
    undone, zero-width spaces kept."""
    lines = []
    in_block = False
    for line in markup.split("\n"):
        if line == "{noformat}":
            in_block = not in_block
            continue
        if in_block:
            lines.append(line)
            continue
        line = re.sub(r"^(h3\. |\* |# )", "", line)
        line = re.sub(r"\[((?:\\.|[^\\|\]])*)\|https://[^\]]*\]", r"\1", line)
        line = re.sub(r"(?<!\\)\{\{|(?<!\\)\}\}", "", line)
        line = re.sub(r"(?<![\\])\*", "", line)
        lines.append(re.sub(r"\\(.)", r"\1", line))
    return "\n".join(lines)
