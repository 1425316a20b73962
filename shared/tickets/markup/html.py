"""HTML (Azure DevOps work item Description and discussion).

Every character from the document is HTML-escaped (`& < > " '`), so no tag, attribute or entity can come from
input; prose also gets `scheme://` / `www.` broken by a zero-width space so nothing becomes clickable. The only
tags are the ones written here, and the only href values are checked https URLs.
"""

from __future__ import annotations

import html

from shared.tickets.document import Block, Code, CodeBlock, Heading, Inline, Items, Link, Paragraph, Strong, Text
from shared.tickets.sanitize import clean_line, clean_text, defang_links, fold_line, is_safe_url


def escape_html(text: str) -> str:
    """One line of prose, inert in HTML."""
    return html.escape(defang_links(fold_line(text)), quote=True)


def _inline(part: Inline) -> str:
    if isinstance(part, Text):
        return escape_html(part.value)
    if isinstance(part, Strong):
        return f"<b>{escape_html(part.value)}</b>" if part.value.strip() else ""
    if isinstance(part, Code):
        value = clean_line(part.value)
        return f"<code>{html.escape(value, quote=True)}</code>" if value else ""
    if isinstance(part, Link) and is_safe_url(part.url):
        label = html.escape(fold_line(part.label), quote=True)
        return f'<a href="{html.escape(part.url, quote=True)}">{label}</a>'
    return escape_html(getattr(part, "label", ""))


def _line(parts: tuple[Inline, ...]) -> str:
    return "".join(_inline(p) for p in parts)


def render_html(blocks: tuple[Block, ...]) -> str:
    chunks: list[str] = []
    for block in blocks:
        if isinstance(block, Heading):
            chunks.append(f"<h3>{escape_html(block.value)}</h3>")
        elif isinstance(block, Paragraph):
            chunks.append(f"<p>{_line(block.parts)}</p>")
        elif isinstance(block, Items):
            tag = "ol" if block.ordered else "ul"
            items = "".join(f"<li>{_line(item)}</li>" for item in block.items)
            chunks.append(f"<{tag}>{items}</{tag}>")
        elif isinstance(block, CodeBlock):
            chunks.append(f"<pre><code>{html.escape(clean_text(block.value), quote=True)}</code></pre>")
    return "\n".join(chunks)
