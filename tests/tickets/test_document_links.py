"""Tracker tickets carry the chat messages' rollback command and Log Analytics link too (docs/tickets.md): the
rollback as a shell block, the link only when it is a safe https URL."""

from __future__ import annotations

from dataclasses import replace

from shared.tickets.document import CodeBlock, Heading, Link, Paragraph, ticket_document
from shared.tickets.markup.markdown import render_markdown
from tests.support.trackers import make_content

LOGS = "https://portal.azure.com/#blade/Microsoft_OMS_Portal/LogsBlade/resourceId/%2Fsubscriptions%2Fx/q/H4sI"
ROLLBACK = "python -m shared revoke inc-1 --by '<you>'\naz role assignment delete --ids /subscriptions/x/ra/1"


def _links(blocks) -> list[str]:
    return [part.url for block in blocks if isinstance(block, Paragraph) for part in block.parts
            if isinstance(part, Link)]


def test_the_rollback_command_and_the_logs_link_are_in_the_ticket():
    blocks = ticket_document(replace(make_content(), rollback_command=ROLLBACK, logs_url=LOGS), "m")
    headings = [b.value for b in blocks if isinstance(b, Heading)]
    assert "How to roll back" in headings
    assert any(isinstance(b, CodeBlock) and "az role assignment delete" in b.value for b in blocks)
    assert LOGS in _links(blocks)
    assert f"(<{LOGS}>)" in render_markdown(blocks)


def test_without_them_the_ticket_has_neither():
    blocks = ticket_document(make_content(), "m")
    assert "How to roll back" not in [b.value for b in blocks if isinstance(b, Heading)]
    assert not any("Log Analytics" in str(b) for b in blocks)


def test_an_unsafe_logs_link_is_never_a_link():
    for url in ("javascript:alert(1)", "http://portal.azure.com/x", "https://evil.example/\u202e"):
        blocks = ticket_document(replace(make_content(), logs_url=url), "m")
        assert url not in _links(blocks)
