"""Escaping for every markup, checked with real parsers: a CommonMark/GFM renderer (markdown-it-py) for GitHub,
Python's HTML parser for Azure DevOps, the ADF tree for Jira, and the two ServiceNow journal constructs."""

from __future__ import annotations

import html
import json
import re
from dataclasses import replace
from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.tickets.document import Code, CodeBlock, Paragraph, Text, ticket_document
from shared.tickets.markup.adf import adf_plain_text, render_adf
from shared.tickets.markup.html import escape_html, render_html
from shared.tickets.markup.markdown import code_block, code_span, escape_markdown, render_markdown
from shared.tickets.markup.plain import escape_plain, neutralize_plain, render_plain
from shared.tickets.sanitize import ZWSP, clean_line, clean_text, defang_links, fold_line, truncate
from tests.support.trackers import html_text, make_content, render_github_markdown

# Text built from the pieces attacks are made of, plus arbitrary Unicode (surrogates and controls included).
ATTACK_PIECES = st.sampled_from([
    "@org/team", "@octocat", "#1", "GH-12", "[x](https://evil.example)", "![i](https://evil.example/a.png)",
    "<img src=x onerror=alert(1)>", "<script>", "</p>", "<!--", "-->", "https://evil.example/a?b=c",
    "www.evil.example", "mailto:a@evil.example", "a@evil.example", "`", "```", "~~~", "**", "__", "*", "_",
    "# ", "> ", "- ", "1. ", "|", "---", "\\", "&amp;", "&lt;", "&#64;", "[~accountid:123]", "{noformat}",
    "[code]<b>x</b>[/code]", "[CODE]", "@[6816f79cc0a8016401c5a33be04be441:System Administrator]",
    "\n", "\r\n", "\t", "\x00", "\x1b[31m", "\u202e", "\ud800", "\u2028", " ", "a", "é", "😀",
])
HOSTILE = st.lists(st.one_of(ATTACK_PIECES, st.text(max_size=8)), max_size=14).map("".join)
FAST = settings(max_examples=150, deadline=None)

MENTION = re.compile(r"@[A-Za-z0-9]")
TAG = re.compile(r"<(/?)([a-zA-Z][a-zA-Z0-9]*)")


def _tags(rendered: str) -> set[str]:
    return {m.group(2).lower() for m in TAG.finditer(rendered)}


def _outside_code(rendered: str) -> str:
    return re.sub(r"<code[^>]*>.*?</code>", "", rendered, flags=re.S)


def _norm(text: str) -> str:
    return " ".join(text.replace(ZWSP, "").split())


# ---- sanitize ----


@FAST
@given(st.one_of(st.text(), st.binary().map(lambda b: b.decode("utf-8", "surrogateescape"))))
def test_clean_text_always_encodes_and_shows_no_control_or_bidi_characters(raw):
    cleaned = clean_text(raw)
    cleaned.encode("utf-8")  # no lone surrogates
    assert not any(ord(c) < 0x20 and c not in "\n\t" for c in cleaned)
    assert not any(0x7F <= ord(c) <= 0x9F or 0x202A <= ord(c) <= 0x202E or 0x2066 <= ord(c) <= 0x2069
                   for c in cleaned)
    assert clean_text(cleaned) == cleaned  # idempotent


@FAST
@given(st.text(), st.integers(min_value=1, max_value=300))
def test_truncate_bounds_length_and_says_so(text, limit):
    cut = truncate(text, limit)
    assert len(cut) <= limit
    assert cut == text if len(text) <= limit else (limit <= 60 or "truncated" in cut)


def test_bytes_that_are_not_utf8_become_replacement_characters():
    assert clean_text(b"ok \xff\xfe done") == "ok \ufffd\ufffd done"
    assert clean_text("esc \x1b[31m red") == "esc \u241b[31m red"


# ---- GitHub Markdown ----


@FAST
@given(HOSTILE)
def test_escaped_markdown_renders_as_exactly_the_text_and_nothing_else(raw):
    rendered = render_github_markdown(escape_markdown(raw))
    assert _tags(rendered) <= {"p"}  # no link, image, html, emphasis, heading, list, code, table
    shown = html_text(rendered)
    assert _norm(shown) == _norm(defang_links(fold_line(raw)))
    assert not MENTION.search(shown)  # GitHub mentions need @ directly followed by a name
    assert "www." not in shown.lower() and "://" not in shown  # nothing GitHub would autolink


@FAST
@given(HOSTILE)
def test_code_span_holds_any_text_verbatim(raw):
    span = code_span(raw)
    value = clean_line(raw)
    if not value:
        assert span == ""
        return
    match = re.fullmatch(r"<p><code>(.*)</code></p>\n", render_github_markdown(span), re.S)
    assert match and html.unescape(match[1]) == value


@FAST
@given(HOSTILE)
def test_code_block_holds_any_text_verbatim(raw):
    rendered = render_github_markdown(code_block(raw, "sh"))
    match = re.fullmatch(r'<pre><code class="language-sh">(.*)</code></pre>\n', rendered, re.S)
    assert match, rendered
    assert html.unescape(match[1]) == clean_text(raw).rstrip("\n") + "\n"


def _hostile_content(raw: str):
    return make_content(
        summary=raw, principal_name=raw, principal_type=raw, resource_id="/subscriptions/x/" + raw,
        sample_error=raw, evidence=(raw, raw), fix_command=raw, fix_steps=((raw, "https://learn.microsoft.com/x"),
                                                                          (raw, "javascript:alert(1)")),
        action=raw, approve_hint=raw, doc_links=("https://learn.microsoft.com/x", "https://evil.example/)(<x>"),
        cause_title=raw,
    )


@settings(max_examples=60, deadline=None)
@given(HOSTILE)
def test_a_whole_github_ticket_with_hostile_fields_has_only_our_links_and_no_mentions(raw):
    rendered = render_github_markdown(render_markdown(ticket_document(_hostile_content(raw), "triage-0123456789ab")))
    assert _tags(rendered) <= {"p", "h3", "ul", "ol", "li", "strong", "code", "pre", "a"}
    assert set(re.findall(r'href="([^"]*)"', rendered)) <= {"https://learn.microsoft.com/x"}
    assert not MENTION.search(html_text(_outside_code(rendered)))


# ---- Azure DevOps HTML ----


@FAST
@given(HOSTILE)
def test_escaped_html_has_no_markup_characters_and_round_trips(raw):
    escaped = escape_html(raw)
    assert not set(escaped) & set("<>\"'")
    assert html.unescape(escaped) == defang_links(fold_line(raw))


class _Tags(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[str, list]] = []

    def handle_starttag(self, tag, attrs):
        self.seen.append((tag, attrs))


@settings(max_examples=60, deadline=None)
@given(HOSTILE)
def test_a_whole_azure_devops_ticket_with_hostile_fields_has_only_our_tags(raw):
    parser = _Tags()
    parser.feed(render_html(ticket_document(_hostile_content(raw), "triage-0123456789ab")))
    assert {tag for tag, _ in parser.seen} <= {"p", "h3", "ul", "ol", "li", "b", "code", "pre", "a"}
    attributes = [(tag, attrs) for tag, attrs in parser.seen if attrs]
    assert all(tag == "a" and attrs == [("href", "https://learn.microsoft.com/x")] for tag, attrs in attributes)


# ---- Jira ADF ----


def _nodes(node):
    yield node
    for child in node.get("content", []):
        yield from _nodes(child)


@FAST
@given(HOSTILE)
def test_adf_keeps_hostile_prose_as_plain_text_nodes(raw):
    doc = render_adf((Paragraph((Text(raw),)),))
    nodes = list(_nodes(doc))
    texts = [n for n in nodes if n["type"] == "text"]
    assert all(n["text"] and "marks" not in n for n in texts)  # Jira rejects empty text nodes
    assert adf_plain_text(doc) == defang_links(fold_line(raw))
    json.dumps(doc).encode("utf-8")


@settings(max_examples=60, deadline=None)
@given(HOSTILE)
def test_a_whole_jira_ticket_with_hostile_fields_has_only_our_nodes_and_links(raw):
    doc = render_adf(ticket_document(_hostile_content(raw), "triage-0123456789ab"))
    nodes = list(_nodes(doc))
    assert {n["type"] for n in nodes} <= {"doc", "paragraph", "heading", "bulletList", "orderedList", "listItem",
                                          "codeBlock", "text"}
    marks = [m for n in nodes for m in n.get("marks", [])]
    assert {m["type"] for m in marks} <= {"strong", "code", "link"}
    assert {m["attrs"]["href"] for m in marks if m["type"] == "link"} <= {"https://learn.microsoft.com/x"}
    assert all(n.get("text") for n in nodes if n["type"] == "text")


# ---- ServiceNow plain text ----


@FAST
@given(HOSTILE)
def test_plain_text_cannot_open_a_code_tag_or_a_mention(raw):
    for out in (neutralize_plain(raw), escape_plain(raw), render_plain((CodeBlock(raw), Paragraph((Code(raw),))))):
        assert "[code]" not in out.lower() and "[/code]" not in out.lower()
        assert "@[" not in out
    assert neutralize_plain(raw).replace(ZWSP, "") == clean_text(raw)  # readable: only zero-width spaces added


def test_documents_are_bounded_whatever_the_input_size():
    huge = "A" * 200_000
    content = replace(make_content(), sample_error=huge, summary=huge, evidence=(huge,) * 500, principal_name=huge)
    body = render_markdown(ticket_document(content, "triage-0123456789ab"))
    assert len(body) < 65_536  # GitHub's body limit
    assert "truncated: 200000 characters in all" in body
    assert "460 more lines" in body
