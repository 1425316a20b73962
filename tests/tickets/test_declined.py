"""People's decisions (issue 17, item 5): a ticket a person closed as won't fix is not reopened on recurrence; the
comment says who closed it and how; a ticket closed as completed is still reopened. Real sinks over HTTPS against
the tracker stand-ins, closed the way a person closes them there."""

from __future__ import annotations

import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.ticket_model import TicketDecision
from shared.tickets.azuredevops import AzureDevOpsSink
from shared.tickets.decision import declined_comment
from shared.tickets.document import comment_document
from shared.tickets.markup.html import render_html
from shared.tickets.markup.markdown import render_markdown
from tests.support.trackers import (
    FAST,
    html_text,
    make_content,
    new_sink,
    render_github_markdown,
    settings_for,
    tickets_for,
    visible_text,
)

# (tracker, a declining reason, the state a person leaves it in) as each tracker records it.
DECLINED = [
    ("github", "not_planned", None),
    ("github", "duplicate", None),
    ("azuredevops", "Obsolete", None),
    ("servicenow", "Not Solved (Too Costly)", "6"),
    ("servicenow", "Duplicate", "7"),
    ("jira", "Won't Do", None),
]
COMPLETED = [
    ("github", "completed", None),
    ("azuredevops", "Moved to state Closed", None),
    ("servicenow", "Solution provided", "6"),
    ("jira", "Done", None),
]
STILL_FAILING = "Still failing: 4 more failures; 7 in total."
HOSTILE_NAME = "<img src=x onerror=alert(1)> [x](https://evil.example) @channel"


@pytest.mark.parametrize("tracker,reason,state", DECLINED)
def test_a_ticket_declined_by_a_person_stays_closed_and_the_comment_says_who_and_how(standins, tracker, reason,
                                                                                   state):
    content = make_content()
    opened = new_sink(standins, tracker).open_or_update(content)
    standins.close_by_person(tracker, opened.ref, "dana.ops", reason, state)

    back = new_sink(standins, tracker).open_or_update(replace(content, count=7), comment=STILL_FAILING)

    assert back.ref == opened.ref and not back.reopened and not back.created
    assert back.decision is not None and back.decision.declined
    assert back.decision.closed_by == "dana.ops" and reason in back.decision.how
    (ticket,) = tickets_for(standins, tracker, content)  # no successor ticket either
    assert not ticket.is_open
    if (tracker, state) == ("servicenow", "7"):
        assert ticket.comments == ()  # a Closed incident is read-only for the integration user
        return
    (comment,) = [visible_text(tracker, c) for c in ticket.comments]
    assert "7 in total" in comment and "Not reopened because dana.ops closed it as" in comment and reason in comment


@pytest.mark.parametrize("tracker,reason,state", DECLINED)
def test_an_update_without_a_comment_leaves_a_declined_ticket_untouched(standins, tracker, reason, state):
    content = make_content()
    opened = new_sink(standins, tracker).open_or_update(content)
    standins.close_by_person(tracker, opened.ref, "dana.ops", reason, state)
    (before,) = tickets_for(standins, tracker, content)

    back = new_sink(standins, tracker).open_or_update(replace(content, count=99, escalated=True))

    assert back.decision is not None and not back.reopened
    (after,) = tickets_for(standins, tracker, content)
    assert after.body == before.body and after.comments == before.comments and not after.is_open


@pytest.mark.parametrize("tracker,reason,state", COMPLETED)
def test_a_ticket_a_person_closed_as_completed_is_reopened(standins, tracker, reason, state):
    content = make_content()
    opened = new_sink(standins, tracker).open_or_update(content)
    standins.close_by_person(tracker, opened.ref, "dana.ops", reason, state)

    back = new_sink(standins, tracker).open_or_update(replace(content, count=7), comment=STILL_FAILING)

    assert back.reopened and back.decision is None
    assert [t.is_open for t in tickets_for(standins, tracker, content)][-1] is True


@pytest.mark.parametrize("tracker,setting,reason", [
    ("azuredevops", "TRIAGE_DECLINED_REASONS", "Not our problem"),
    ("servicenow", "TRIAGE_DECLINED_CLOSE_CODES", "Vendor issue"),
    ("jira", "TRIAGE_DECLINED_RESOLUTIONS", "Out of scope"),
])
def test_the_declining_reasons_are_configurable(standins, tracker, setting, reason):
    content = make_content()
    opened = new_sink(standins, tracker).open_or_update(content)
    standins.close_by_person(tracker, opened.ref, "dana.ops", reason, "6" if tracker == "servicenow" else None)
    # Not in the defaults: reopened.
    assert new_sink(standins, tracker).open_or_update(content).reopened
    standins.close_by_person(tracker, opened.ref, "dana.ops", reason, "6" if tracker == "servicenow" else None)
    back = new_sink(standins, tracker, **{setting: f"Duplicate, {reason.upper()} "}).open_or_update(content)
    assert not back.reopened and back.decision is not None and reason in back.decision.how


def test_azure_devops_removed_state_is_always_a_decision(standins):
    content = make_content()
    s = settings_for(standins, "azuredevops")

    def task_sink(reasons: tuple[str, ...]) -> AzureDevOpsSink:  # the Task type has a Removed state
        return AzureDevOpsSink(org_url=s.ado_org_url, project=s.ado_project, pat=s.ado_pat,
                               options=replace(FAST, connection_verify=s.ca_bundle), work_item_type="Task",
                               declined_reasons=reasons)

    opened = task_sink(s.declined_reasons).open_or_update(content)
    standins.close_by_person("azuredevops", opened.ref, "dana.ops", "Removed from the backlog", "Removed")
    back = task_sink(()).open_or_update(content)
    assert back.decision is not None and back.decision.how.startswith("Removed") and not back.reopened


@pytest.mark.parametrize("tracker,reason,state", [d for d in DECLINED if d[2] != "7"])
def test_hostile_names_in_the_decision_stay_text(standins, tracker, reason, state):
    """Who closed it comes from the tracker: the comment shows it as text, never as markup, a link or a mention."""
    content = make_content()
    opened = new_sink(standins, tracker).open_or_update(content)
    standins.close_by_person(tracker, opened.ref, HOSTILE_NAME, reason, state)
    new_sink(standins, tracker).open_or_update(content, comment=STILL_FAILING)
    (ticket,) = tickets_for(standins, tracker, content)
    (raw,) = ticket.comments
    if tracker == "github":
        rendered = render_github_markdown(raw)
        assert "<img" not in rendered and "href" not in rendered
        assert not re.search(r"@[A-Za-z0-9]", html_text(rendered))
    elif tracker == "azuredevops":
        assert "<img" not in raw and "<a" not in raw
    shown = visible_text(tracker, raw)
    assert "onerror=alert(1)" in shown  # still there to read, as text


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40), st.text(max_size=40))
def test_the_declined_comment_renders_as_one_paragraph_of_text_in_every_markup(who, how):
    text = declined_comment(STILL_FAILING, TicketDecision(closed_by=who or None, how=how, declined=True))
    markdown = render_github_markdown(render_markdown(comment_document(text)))
    assert set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", markdown)) <= {"p", "br"}
    assert set(re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", render_html(comment_document(text)))) <= {"p", "br"}
    assert "7 in total" in html_text(markdown)
