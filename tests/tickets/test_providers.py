"""The four tracker sinks over HTTPS against the stand-ins: dedupe, recurrence, escalation, resolve, reopen."""

from __future__ import annotations

import json
import re
from dataclasses import replace

import pytest

from shared.tickets.marker import MANAGED_LABEL, marker_for
from tests.support.trackers import (
    TRACKERS,
    html_text,
    make_content,
    new_sink,
    render_github_markdown,
    tickets_for,
    visible_text,
)


@pytest.mark.parametrize("tracker", TRACKERS)
def test_a_new_sink_with_no_memory_finds_the_existing_ticket(standins, tracker):
    content = make_content()
    first = new_sink(standins, tracker).open_or_update(content)
    # A restart, another instance, lost state: a brand-new sink object, same problem.
    again = new_sink(standins, tracker).open_or_update(replace(content, count=7))
    assert first.created and not again.created
    assert again.ref == first.ref
    (ticket,) = tickets_for(standins, tracker, content)
    assert marker_for(content.fingerprint) in ticket.markers


@pytest.mark.parametrize("tracker", TRACKERS)
def test_the_ticket_says_everything_needed_to_act(standins, tracker):
    content = make_content(principal_name="orders-api-prod")
    new_sink(standins, tracker).open_or_update(content)
    (ticket,) = tickets_for(standins, tracker, content)
    assert "missing_data_role" in ticket.title and "orders-api-prod" in ticket.title
    assert content.resource_id.rsplit("/", 1)[-1] in ticket.title
    body = visible_text(tracker, ticket.body)
    for expected in ("Caller holds no data-plane role", content.principal_id, content.resource_id,
                     "PermissionDenied", "az role assignment create", "recommend", "POST /api/incidents",
                     content.incident_id, content.fingerprint, "2026-03-01T10:04:00+00:00",
                     "role assignments at the account: none"):
        assert expected in body, expected


@pytest.mark.parametrize("tracker", TRACKERS)
def test_recurrence_rewrites_counts_and_comments_only_when_asked(standins, tracker):
    content = make_content(count=3)
    sink = new_sink(standins, tracker)
    sink.open_or_update(content)
    sink.open_or_update(replace(content, count=41, last_seen="2026-03-01T11:30:00+00:00"))
    (ticket,) = tickets_for(standins, tracker, content)
    body = visible_text(tracker, ticket.body)
    assert "41" in body and "2026-03-01T11:30:00+00:00" in body
    assert ticket.comments == ()
    sink.open_or_update(replace(content, count=42), comment="Still failing: 1 more failure; 42 in total.")
    (ticket,) = tickets_for(standins, tracker, content)
    assert len(ticket.comments) == 1 and "42 in total" in visible_text(tracker, ticket.comments[0])


@pytest.mark.parametrize("tracker", TRACKERS)
def test_escalation_raises_priority(standins, tracker):
    content = make_content()
    sink = new_sink(standins, tracker)
    sink.open_or_update(content)
    (ticket,) = tickets_for(standins, tracker, content)
    assert not ticket.high_priority
    sink.open_or_update(replace(content, escalated=True))
    (ticket,) = tickets_for(standins, tracker, content)
    assert ticket.high_priority
    assert "Escalated" in visible_text(tracker, ticket.body)


@pytest.mark.parametrize("tracker", TRACKERS)
def test_resolve_closes_with_the_comment_once(standins, tracker):
    content = make_content()
    sink = new_sink(standins, tracker)
    opened = sink.open_or_update(content)
    text = "Resolved: assigned Cognitive Services OpenAI User. Verified at 2026-03-01T10:20:00+00:00."
    resolved = sink.resolve(content, comment=text)
    assert resolved is not None and resolved.ref == opened.ref
    (ticket,) = tickets_for(standins, tracker, content)
    assert not ticket.is_open
    assert any("Verified at 2026-03-01T10:20:00+00:00" in visible_text(tracker, c) for c in ticket.comments)
    # Resolving again (a retried run) changes nothing and adds no second comment.
    assert new_sink(standins, tracker).resolve(content, comment=text).ref == opened.ref
    (again,) = tickets_for(standins, tracker, content)
    assert again.comments == ticket.comments


@pytest.mark.parametrize("tracker", TRACKERS)
def test_resolve_without_a_ticket_returns_none(standins, tracker):
    assert new_sink(standins, tracker).resolve(make_content(), comment="fixed") is None


@pytest.mark.parametrize("tracker", ("github", "azuredevops", "jira", "servicenow"))
def test_recurrence_after_resolution_reopens_the_same_ticket(standins, tracker):
    content = make_content()
    sink = new_sink(standins, tracker)
    opened = sink.open_or_update(content)
    sink.resolve(content, comment="Resolved: role assigned.")
    back = new_sink(standins, tracker).open_or_update(replace(content, count=9))
    assert back.reopened and not back.created and back.ref == opened.ref
    (ticket,) = tickets_for(standins, tracker, content)
    assert ticket.is_open and "9" in visible_text(tracker, ticket.body)


@pytest.mark.parametrize("tracker,closed_state", [("github", "closed"), ("azuredevops", "Closed"),
                                                  ("jira", "Done"), ("servicenow", "6")])
def test_a_ticket_closed_by_a_person_is_reopened_when_the_problem_is_still_there(standins, tracker, closed_state):
    content = make_content()
    sink = new_sink(standins, tracker)
    opened = sink.open_or_update(content)
    standins.set_state(tracker, opened.ref, closed_state)
    back = sink.open_or_update(content)
    assert back.reopened and back.ref == opened.ref
    assert [t.is_open for t in tickets_for(standins, tracker, content)] == [True]


def test_servicenow_closed_incident_is_followed_by_a_new_one_that_names_it(standins):
    content = make_content()
    sink = new_sink(standins, "servicenow")
    old = sink.open_or_update(content)
    standins.set_state("servicenow", old.ref, "7")  # Closed: read-only for the integration user
    successor = sink.open_or_update(content)
    assert successor.created and successor.reopened and successor.ref != old.ref
    tickets = tickets_for(standins, "servicenow", content)
    assert [t.is_open for t in tickets] == [False, True]
    assert f"Recurrence of {old.ref}" in visible_text("servicenow", tickets[1].body)
    # And from then on the open successor is the one updated.
    assert sink.open_or_update(content).ref == successor.ref


def test_jira_without_a_reopen_transition_opens_a_successor_that_names_the_old_issue(standins):
    content = make_content()
    sink = new_sink(standins, "jira")
    old = sink.open_or_update(content)
    sink.resolve(content, comment="Resolved.")
    standins.app("jira").reopen_allowed = False
    try:
        successor = sink.open_or_update(content)
    finally:
        standins.app("jira").reopen_allowed = True
    assert successor.created and successor.ref != old.ref
    tickets = tickets_for(standins, "jira", content)
    assert [t.is_open for t in tickets] == [False, True]
    assert f"Recurrence of {old.ref}" in visible_text("jira", tickets[1].body)


def test_github_without_push_access_still_finds_its_issue_by_the_body_marker(standins):
    # GitHub silently drops labels on create for tokens without push access; the marker label never lands.
    standins.app("github").push_access = False
    try:
        content = make_content()
        first = new_sink(standins, "github").open_or_update(content)
        again = new_sink(standins, "github").open_or_update(content)
    finally:
        standins.app("github").push_access = True
    assert first.created and not again.created and again.ref == first.ref
    matching = [t for t in standins.tickets("github") if content.incident_id in t.body]
    assert len(matching) == 1


def test_github_body_search_ignores_issues_that_merely_quote_the_marker(standins):
    victim = make_content()
    # Another incident's sample error quotes the victim's marker line, as crafted log text could.
    quoting = make_content(sample_error=f"<!-- {MANAGED_LABEL}:{marker_for(victim.fingerprint)} -->")
    standins.app("github").push_access = False
    try:
        new_sink(standins, "github").open_or_update(quoting)
        created = new_sink(standins, "github").open_or_update(victim)
    finally:
        standins.app("github").push_access = True
    assert created.created


def test_github_keeps_labels_people_added(standins):
    content = make_content()
    sink = new_sink(standins, "github")
    opened = sink.open_or_update(content)
    issue = standins.app("github").issues[int(opened.ref)]
    issue["labels"].append({"id": 1, "name": "team:payments", "color": "ededed", "default": False})
    sink.open_or_update(replace(content, escalated=True))
    (ticket,) = tickets_for(standins, "github", content)
    assert {"team:payments", "priority:high", MANAGED_LABEL} <= set(ticket.markers)


def test_azure_devops_keeps_tags_people_added_and_uses_json_patch(standins):
    content = make_content()
    sink = new_sink(standins, "azuredevops")
    opened = sink.open_or_update(content)
    item = standins.app("azuredevops").items[int(opened.ref)]
    item["fields"]["System.Tags"] += "; team-payments"
    before = len(standins.received("azuredevops"))
    sink.open_or_update(content, comment="still failing")
    (ticket,) = tickets_for(standins, "azuredevops", content)
    assert "team-payments" in ticket.markers
    patch = [r for r in standins.received("azuredevops")[before:] if r.method == "PATCH"][0]
    assert patch.headers["content-type"].startswith("application/json-patch+json")
    assert any(op["path"] == "/fields/System.History" for op in patch.json())


HOSTILE = ("@org/team ping <img src=x onerror=alert(1)> [x](https://evil.example) www.evil.example "
           "[~accountid:5b10] [code]<script>x</script>[/code] @[6816f79cc0a8016401c5a33be04be441:admin] "
           "\x1b[31m\u202e\ud800 ```` ~~~ \n# heading\n    indented")


def _walk(node):
    yield node
    for child in node.get("content", []):
        yield from _walk(child)


def _allowed(tracker, stored):
    if tracker == "github":
        rendered = render_github_markdown(stored)
        tags = {m.lower() for m in re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", rendered)}
        assert tags <= {"p", "h3", "ul", "ol", "li", "strong", "code", "pre", "a"}
        assert set(re.findall(r'href="([^"]*)"', rendered)) <= {
            "https://learn.microsoft.com/azure/ai-foundry/openai/how-to/role-based-access-control"}
        outside_code = html_text(re.sub(r"<code[^>]*>.*?</code>", "", rendered, flags=re.S))
        assert not re.search(r"@[A-Za-z0-9]", outside_code)
    elif tracker == "azuredevops":
        tags = {m.lower() for m in re.findall(r"<([a-zA-Z][a-zA-Z0-9]*)", stored)}
        assert tags <= {"p", "h3", "ul", "ol", "li", "b", "code", "pre", "a"}
    elif tracker == "servicenow":
        assert "[code]" not in stored.lower() and "@[" not in stored
    assert "\x1b" not in stored and "\u202e" not in stored


@pytest.mark.parametrize("tracker", TRACKERS)
def test_hostile_fields_arrive_in_the_tracker_escaped_for_its_markup(standins, tracker):
    content = make_content(summary=HOSTILE, principal_name=HOSTILE, sample_error=HOSTILE, evidence=(HOSTILE,),
                           action=HOSTILE, approve_hint=HOSTILE)
    sink = new_sink(standins, tracker)
    sink.open_or_update(content, comment=HOSTILE)
    (ticket,) = tickets_for(standins, tracker, content)
    assert "\n" not in ticket.title and "\x1b" not in ticket.title and len(ticket.title) <= 256
    assert not re.search(r"@[A-Za-z0-9]", ticket.title)
    if tracker == "jira":  # ADF: structure, not escaping; check what the tracker stored
        stored = [standins.app("jira").issues[ticket.ref]["fields"]["description"],
                  *(c["body"] for c in standins.app("jira").comments[ticket.ref])]
        nodes = [n for doc in stored for n in _walk(doc)]
        assert {n["type"] for n in nodes} <= {"doc", "paragraph", "heading", "bulletList", "orderedList",
                                              "listItem", "codeBlock", "text"}
        hrefs = {m["attrs"]["href"] for n in nodes for m in n.get("marks", []) if m["type"] == "link"}
        assert hrefs == {"https://learn.microsoft.com/azure/ai-foundry/openai/how-to/role-based-access-control"}
    for stored in (ticket.body, *ticket.comments):
        _allowed(tracker, stored)
    assert "@org/team ping" in visible_text(tracker, ticket.body).replace("\u200b", "")


def test_azure_devops_skips_a_work_item_deleted_between_query_and_read(standins):
    content = make_content()
    sink = new_sink(standins, "azuredevops")
    first = sink.open_or_update(content)
    app = standins.app("azuredevops")
    with app.lock:
        deleted = app.items.pop(int(first.ref))
    try:
        # WIQL still lists it (the query index lags); the batch read omits it; a new item is made.
        original_wiql = app._wiql

        def stale_wiql(request):
            response = original_wiql(request)
            payload = json.loads(response.body)
            payload["workItems"].append({"id": deleted["id"], "url": deleted["url"]})
            return type(response).json(payload)

        app._wiql = stale_wiql
        second = sink.open_or_update(content)
    finally:
        app._wiql = original_wiql
    assert second.created and second.ref != first.ref
