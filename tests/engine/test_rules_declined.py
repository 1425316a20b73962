"""People's decisions (issue 17, item 5): when an incident recurs after a person closed its ticket as won't fix, the
ticket is not reopened; the recurrence is recorded on the incident (`declined-by`: who and how) and commented on
the closed ticket at most once per TRIAGE_TICKET_COMMENT_INTERVAL_MINUTES. Closed as completed: reopened as before."""

from __future__ import annotations

import json

from shared.engine import ticketing
from shared.engine.queries import incident_detail
from shared.engine.scan import run_scan
from shared.engine.unit_of_work import RunState
from tests.engine.common import ORDERS, incident_of


def _declined_actions(incident):
    return [a for a in incident.actions if a.kind == ticketing.DECLINED_ACTION]


def _ticket_closed_by_person(make_runtime, traffic, store, sink, how: str, *, declined: bool, **settings: str):
    """A recommendation's ticket, then closed by dana.ops as `how`. Returns (the runtime, the incident)."""
    rt = make_runtime(mode="recommend", allowlist=[ORDERS], **settings)
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    incident = incident_of(store, ORDERS)
    sink.close_by_person(incident.id, "dana.ops", how, declined=declined)
    return rt, incident


def test_a_declined_ticket_is_not_reopened_and_the_recurrence_is_commented_once_per_interval(make_runtime, traffic,
                                                                                           store, sink):
    rt, incident = _ticket_closed_by_person(make_runtime, traffic, store, sink, "not_planned", declined=True,
                                            TRIAGE_TICKET_COMMENT_INTERVAL_MINUTES="60")
    [ticket] = sink.tickets.values()

    for _ in range(6):  # half an hour of scans five minutes apart
        traffic(5, failing=[ORDERS])
        run_scan(rt)

    assert not ticket.is_open
    assert [c.result for c in sink.calls if c.result in ("reopened", "created")] == ["created"]
    [comment] = ticket.comments
    assert comment.startswith("Still failing") and "Not reopened because dana.ops closed it as not_planned" in comment
    incident = incident_of(store, ORDERS)
    [recorded] = _declined_actions(incident)
    assert "closed by dana.ops as not_planned" in recorded.detail and "Still failing" in recorded.detail
    assert incident.is_open and not incident.ticket_pending

    traffic(35, failing=[ORDERS])  # past the interval: one more comment, one more record
    run_scan(rt)
    assert len(ticket.comments) == 2 and not ticket.is_open
    assert len(_declined_actions(incident_of(store, ORDERS))) == 2


def test_the_incident_shows_who_declined_its_ticket_and_how(make_runtime, traffic, store, sink):
    rt, incident = _ticket_closed_by_person(make_runtime, traffic, store, sink, "Won't Do", declined=True)
    traffic(5, failing=[ORDERS])
    run_scan(rt)
    shown = json.loads(json.dumps(incident_detail(rt, incident.id)))  # what `incidents show` and the API return
    [action] = [a for a in shown["actions"] if a["kind"] == "declined-by"]
    assert "dana.ops" in action["detail"] and "Won't Do" in action["detail"] and "not reopened" in action["detail"]


def test_updates_without_a_comment_record_the_decision_once(make_runtime, traffic, store, sink):
    rt, incident = _ticket_closed_by_person(make_runtime, traffic, store, sink, "Removed (Obsolete)", declined=True)
    run = RunState.begin(rt, "test")
    for _ in range(3):
        current = incident_of(store, ORDERS)
        ticketing.send(rt, run, current, ticketing.TicketUpdate("an action changed"))
    assert len(_declined_actions(incident_of(store, ORDERS))) == 1
    assert sink.ticket_of(incident.id).comments == []


def test_a_ticket_closed_as_completed_is_reopened_on_recurrence(make_runtime, traffic, store, sink):
    rt, incident = _ticket_closed_by_person(make_runtime, traffic, store, sink, "completed", declined=False)
    traffic(5, failing=[ORDERS])
    run_scan(rt)
    assert sink.ticket_of(incident.id).is_open
    assert "reopened" in [c.result for c in sink.calls]
    assert _declined_actions(incident_of(store, ORDERS)) == []
