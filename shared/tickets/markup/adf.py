"""Atlassian Document Format (Jira Cloud REST v3 description and comments).

ADF is JSON: text lives in `text` nodes and is never parsed as markup, so wiki syntax, HTML and `[~mentions]`
in input stay text; mentions, links and cards exist only as nodes and marks this module writes (links only for
checked https URLs). Prose still gets `scheme://` / `www.` broken by a zero-width space so nothing in it turns
into a link or smart card. Empty text nodes are invalid in ADF and are left out.
"""

from __future__ import annotations

from typing import Any

from shared.tickets.document import Block, Code, CodeBlock, Heading, Inline, Items, Link, Paragraph, Strong, Text
from shared.tickets.sanitize import clean_line, clean_text, defang_links, fold_line, is_safe_url

Node = dict[str, Any]


def adf_text(text: str, marks: list[Node] | None = None) -> list[Node]:
    """Zero or one text node carrying `text` literally."""
    if not text:
        return []
    node: Node = {"type": "text", "text": text}
    if marks:
        node["marks"] = marks
    return [node]


def _inline(part: Inline) -> list[Node]:
    if isinstance(part, Text):
        return adf_text(defang_links(fold_line(part.value)))
    if isinstance(part, Strong):
        return adf_text(fold_line(part.value), [{"type": "strong"}])
    if isinstance(part, Code):
        return adf_text(clean_line(part.value), [{"type": "code"}])
    if isinstance(part, Link) and is_safe_url(part.url):
        return adf_text(clean_line(part.label) or part.url, [{"type": "link", "attrs": {"href": part.url}}])
    return adf_text(defang_links(fold_line(getattr(part, "label", ""))))


def _paragraph(parts: tuple[Inline, ...]) -> Node:
    content = [node for part in parts for node in _inline(part)]
    return {"type": "paragraph", "content": content}


def render_adf(blocks: tuple[Block, ...]) -> Node:
    content: list[Node] = []
    for block in blocks:
        if isinstance(block, Heading):
            content.append({"type": "heading", "attrs": {"level": 3},
                            "content": adf_text(defang_links(clean_line(block.value)))})
        elif isinstance(block, Paragraph):
            content.append(_paragraph(block.parts))
        elif isinstance(block, Items):
            kind = "orderedList" if block.ordered else "bulletList"
            items = [{"type": "listItem", "content": [_paragraph(item)]} for item in block.items]
            if items:
                content.append({"type": kind, "content": items})
        elif isinstance(block, CodeBlock):
            node: Node = {"type": "codeBlock", "content": adf_text(clean_text(block.value))}
            if block.language:
                node["attrs"] = {"language": "bash" if block.language == "sh" else block.language}
            content.append(node)
    return {"type": "doc", "version": 1, "content": content}


def adf_plain_text(doc: Node) -> str:
    """The text a reader sees (for logs and tests)."""
    if doc.get("type") == "text":
        return str(doc.get("text", ""))
    parts = [adf_plain_text(child) for child in doc.get("content", [])]
    joiner = "\n" if doc.get("type") in ("doc", "bulletList", "orderedList") else ""
    return joiner.join(parts)
