"""Jira wiki markup (Jira Data Center) escaping, with the hostile-input strategies of the other markups
(tests/tickets/test_markup.py) plus wiki markup's own constructs. There is no Jira renderer to run here, so the
checks model what it parses: a backslash before one of its special characters is that character; everything
else that is special is markup. The properties: prose has no unescaped special character, no line break
(`\\\\`), no emoticon, no bare link and no block marker; a whole ticket has only the constructs this service
writes (h3., lists, *strong*, {{monospace}}, [label|checked url], {noformat}); sizes stay bounded."""

from __future__ import annotations

import re
from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.tickets.document import Code, CodeBlock, Paragraph, Strong, Text, ticket_document
from shared.tickets.jira import WIKI_LIMIT, bounded_wiki, wiki_description
from shared.tickets.markup.wiki import escape_wiki, monospace, noformat_block, render_wiki
from shared.tickets.sanitize import ZWSP, clean_line, clean_text, fold_line
from tests.support.trackers import make_content
from tests.tickets.test_markup import ATTACK_PIECES, FAST, _hostile_content

WIKI_PIECES = st.sampled_from([
    "{code}", "{code:java}", "{noformat}", "{NOFORMAT}", "{noformat:title=x}", "[link|https://evil.example]",
    "[https://evil.example]", "[~admin]", "[~accountid:5b10ac8d82e05b22cc7d4ef5]", "*bold*", "_italic_",
    "-strike-", "+ins+", "^sup^", "~sub~", "??cite??", "{{mono}}", "bq. ", "h1. ", "H2. ", "h6.", "|a|b|",
    "||h||", "!image.png!", "!https://evil.example/x.png|thumbnail!", "(/)", "(x)", "(!)", "(i)", "(on)", "(*)",
    ":)", ";)", ":D", ":P", "(y)", "{color:red}", "{color}", "{panel}", "{quote}", "{anchor:x}", "{toc}", "#",
    "----", "--", "---", "\\\\", "\\", "\\{", "\\*", "@admin", "mailto:x@evil.example", "file:///etc/passwd",
    "ftp://evil.example", "{{", "}}", "{", "}", "&#123;", "\n* ", "\n# ", "\nh1. ", "\n----\n",
])
WIKI_HOSTILE = st.lists(st.one_of(ATTACK_PIECES, WIKI_PIECES, st.text(max_size=8)), max_size=14).map("".join)
# The characters Jira's renderer reads as markup and unescapes after a backslash (its
# BackslashEscapeRendererComponent), written out here rather than taken from the module under test.
SPECIAL = frozenset("-#*_+?^~|%{}[]()!@")
_SPECIAL_CLASS = re.escape("".join(sorted(SPECIAL)))
_LINK = re.compile(r"\[((?:\\.|[^\\\[\]|])*)\|(https://[^\]\s|]*)\]")
_MONO = re.compile(r"(?<!\\)\{\{((?:\\.|[^\\{}])*)\}\}")
_STRONG = re.compile(r"(?<![\\\w])\*((?:\\.|[^\\*])+)\*")


def _active(text: str) -> str:
    """The characters Jira would read as markup: `text` with every backslash escape of a special character
    removed (what is left over is parsed)."""
    return re.sub(r"\\[" + _SPECIAL_CLASS + "]", "", text)


def _unescape(text: str) -> str:
    return re.sub(r"\\([" + _SPECIAL_CLASS + "])", r"\1", text).replace(ZWSP, "")


def _assert_inert(text: str) -> None:
    """Prose as Jira reads it: nothing in it is markup."""
    active = _active(text)
    assert not set(active) & SPECIAL, active  # no formatting, macro, link, mention, image, table, icon, dash
    assert not re.search(r"\\(?!" + ZWSP + ")", active)  # a backslash never escapes nor breaks the line
    assert not re.search(r"[:;](?!" + ZWSP + ")", active)  # no :) ;) :D emoticon, no mailto:/file: link
    assert "://" not in active and not re.search(r"(?i)www\.", active)  # no bare link
    assert not re.search(r"(?i)(h[1-6]|bq)\.", active)  # no heading or quote marker


@FAST
@given(WIKI_HOSTILE)
def test_escaped_wiki_prose_is_inert_and_reads_as_the_text(raw):
    escaped = escape_wiki(raw)
    assert "\n" not in escaped
    _assert_inert(escaped)
    expected = " ".join(fold_line(raw).replace(ZWSP, "").split())
    assert " ".join(_unescape(escaped).split()) == expected  # the reader sees the text, nothing lost


@FAST
@given(WIKI_HOSTILE)
def test_monospace_holds_escaped_text_only(raw):
    span = monospace(raw)
    if not clean_line(raw):
        assert span == ""
        return
    match = re.fullmatch(r"\{\{(.*)\}\}", span, re.S)
    assert match
    _assert_inert(match[1])
    assert not _MONO.search(match[1])  # the span cannot be closed early


@FAST
@given(WIKI_HOSTILE)
def test_noformat_block_cannot_be_closed_by_its_text(raw):
    block = noformat_block(raw)
    assert block.startswith("{noformat}\n") and block.endswith("\n{noformat}")
    inner = block[len("{noformat}\n"): -len("\n{noformat}")]
    assert "{noformat" not in inner.lower()
    assert inner.replace(ZWSP, "") == clean_text(raw).rstrip("\n").replace(ZWSP, "")


def _constructs(rendered: str) -> tuple[list[str], set[str]]:
    """Each line of a rendered ticket with this service's own constructs taken out (what remains must be inert
    prose), and the link targets."""
    lines: list[str] = []
    urls: set[str] = set()
    in_block = False
    for line in rendered.split("\n"):
        if line == "{noformat}":
            in_block = not in_block
            continue
        if in_block:
            assert "{noformat" not in line.lower()
            continue
        line = re.sub(r"^(h3\. |\* |# )", "", line)

        def link(match: re.Match[str]) -> str:
            urls.add(match[2])
            return match[1]

        line = _LINK.sub(link, line)
        line = _MONO.sub(r"\1", line)
        line = _STRONG.sub(r"\1", line)
        lines.append(line)
    assert not in_block, "every {noformat} block is closed"
    return lines, urls


@settings(max_examples=60, deadline=None)
@given(WIKI_HOSTILE)
def test_a_whole_jira_datacenter_ticket_with_hostile_fields_has_only_our_constructs_and_links(raw):
    rendered = render_wiki(ticket_document(_hostile_content(raw), "triage-0123456789ab"))
    lines, urls = _constructs(rendered)
    for line in lines:
        _assert_inert(line.lstrip())
    assert urls <= {"https://learn.microsoft.com/x"}


@FAST
@given(WIKI_HOSTILE)
def test_strong_and_code_parts_with_hostile_text_stay_inside_their_markers(raw):
    rendered = render_wiki((Paragraph((Strong(raw), Text(raw), Code(raw))), CodeBlock(raw)))
    lines, urls = _constructs(rendered)
    assert urls == set()
    for line in lines:
        _assert_inert(line.lstrip())


def test_the_wiki_constructs_of_jira_s_notation_help_are_all_escaped():
    for construct in ("*bold*", "_em_", "??cite??", "-del-", "+ins+", "^sup^", "~sub~", "{{mono}}", "bq. quote",
                      "{quote}q{quote}", "{color:red}x{color}", "h1. Title", "[title|https://evil.example]",
                      "[~someone]", "!x.png!", "|a|b|", "(/)", ":)", "----", "{code:xml}<x/>{code}",
                      "{noformat}x{noformat}", "{panel:title=x}y{panel}", "# one", "* one", "- one"):
        _assert_inert(escape_wiki(construct))


def test_a_datacenter_description_is_bounded_whatever_the_input_size():
    huge = "A*" * 100_000
    content = replace(make_content(), sample_error=huge, summary=huge, evidence=(huge,) * 500, principal_name=huge)
    body = wiki_description(content)
    assert len(body) <= WIKI_LIMIT  # Jira's text field limit
    assert "truncated" in body
    for escaped in (escape_wiki("*" * WIKI_LIMIT), "x" + escape_wiki("*" * WIKI_LIMIT)):
        cut = bounded_wiki(escaped)
        assert len(cut) <= WIKI_LIMIT and cut.endswith("\n… [description truncated]\n")
        assert not cut[: cut.index("\n… [description truncated]")].endswith("\\")  # no escape cut in two
