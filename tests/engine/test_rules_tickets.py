"""Ticket sinks that fail: the incident keeps its decision and a pending ticket, the next cycle finishes it without
duplicates, a failed close is retried as a close, and rejected credentials are reported once per sink per run."""

from __future__ import annotations

import logging

import pytest

from shared.core import incidents as inc
from shared.engine.approvals import approve
from shared.engine.scan import run_scan
from shared.tickets.base import TicketAuthError, TicketError
from tests.engine.common import ALICE, BILLING, ORDERS, incident_of
from tests.support.fakes import RecordingSink


@pytest.mark.parametrize("times", [1, 3])
def test_a_failed_ticket_stays_pending_and_the_next_cycle_opens_exactly_one(make_runtime, traffic, store, sink,
                                                                            times):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    traffic(3, failing=[ORDERS])
    sink.fail_next(TicketError("tracker: 503"), times=times)

    first = run_scan(rt)
    assert first.actions == {"recommend": 1}
    pending = incident_of(store, ORDERS)
    assert pending.status == inc.RECOMMENDED and pending.ticket_pending and pending.ticket_refs == {}
    assert sink.tickets == {}

    retried = None
    for _ in range(times):  # each cycle retries once
        traffic(5, failing=[ORDERS])
        retried = run_scan(rt)
    done = incident_of(store, ORDERS)
    assert not done.ticket_pending and set(done.ticket_refs) == {sink.name}
    [ticket] = sink.tickets.values()
    assert ticket.is_open and "az role assignment create" in ticket.content.fix_command

    for _ in range(2):
        traffic(5, failing=[ORDERS])
        run_scan(rt)
    assert len(sink.tickets) == 1 and sink.created() == 1
    [opened] = [a for a in store.list_audit(done.id) if a.detail.startswith("ticket opened")]
    assert opened.correlation_id == retried.correlation_id and opened.actor == "service"


def test_a_pending_ticket_is_retried_even_when_no_failure_brings_its_incident_back(make_runtime, traffic, store, sink,
                                                                                   clock):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS], TRIAGE_LOOKBACK_OVERLAP_MINUTES="0")
    traffic(3, failing=[ORDERS])
    sink.fail_next()
    run_scan(rt)
    assert incident_of(store, ORDERS).ticket_pending

    clock.advance(minutes=30)  # the caller stopped failing: the next read has nothing
    assert run_scan(rt).signals == 0
    done = incident_of(store, ORDERS)
    assert not done.ticket_pending and sink.created() == 1


@pytest.mark.parametrize("minutes_later", [5, 15], ids=["failures-re-read", "no-failures-left"])
def test_a_failed_close_is_retried_as_a_close_and_never_reopens_the_ticket(make_runtime, traffic, store, sink,
                                                                           minutes_later):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    approve(rt, incident_of(store, ORDERS).id, ALICE)
    traffic(4, succeeding=[ORDERS])
    sink.fail_next(op="resolve")

    assert run_scan(rt).verifications == {"resolved": 1}
    resolved = incident_of(store, ORDERS)
    assert resolved.status == inc.RESOLVED and resolved.ticket_pending
    [ticket] = sink.tickets.values()
    assert ticket.is_open and ticket.comments == []

    traffic(minutes_later, succeeding=[ORDERS])
    run_scan(rt)
    closed = incident_of(store, ORDERS)
    assert closed.status == inc.RESOLVED and not closed.ticket_pending
    assert not ticket.is_open and len(ticket.comments) == 1 and "Verified" in ticket.comments[0]
    assert sink.created() == 1
    assert [c.result for c in sink.calls if c.result == "reopened"] == []


def test_rejected_credentials_are_reported_once_per_sink_per_run(make_runtime, traffic, store, sink, caplog):
    healthy = RecordingSink("healthy")
    rt = make_runtime(mode="recommend", allowlist=[ORDERS, BILLING], sinks=[sink, healthy])
    sink.fail_always(TicketAuthError("tracker: 401 Bad credentials"))
    traffic(3, failing=[ORDERS, BILLING])
    caplog.set_level(logging.ERROR, logger="triage")

    run_scan(rt)

    def reported() -> int:
        return sum(1 for r in caplog.records if "rejected its credentials" in r.getMessage())

    assert reported() == 1
    assert len([c for c in sink.calls if c.result == "failed"]) == 2  # both incidents tried it
    for oid in (ORDERS, BILLING):
        incident = incident_of(store, oid)
        assert incident.ticket_pending and set(incident.ticket_refs) == {"healthy"}
    assert healthy.created() == 2

    traffic(5, failing=[ORDERS, BILLING])
    run_scan(rt)
    assert reported() == 2  # one more for the new run
    assert healthy.created() == 2  # retries update the healthy sink's tickets, never duplicate them

    sink.fail_always(None)
    traffic(5, failing=[ORDERS, BILLING])
    run_scan(rt)
    for oid in (ORDERS, BILLING):
        incident = incident_of(store, oid)
        assert not incident.ticket_pending and set(incident.ticket_refs) == {sink.name, "healthy"}
    assert sink.created() == 2 and healthy.created() == 2


def test_a_recurrence_comment_is_added_at_most_once_per_interval(make_runtime, traffic, store, sink):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS], TRIAGE_TICKET_COMMENT_INTERVAL_MINUTES="60")
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    [ticket] = sink.tickets.values()
    for _ in range(6):  # half an hour of scans five minutes apart
        traffic(5, failing=[ORDERS])
        run_scan(rt)
    assert len(ticket.comments) == 1 and ticket.comments[0].startswith("Still failing")
    traffic(35, failing=[ORDERS])
    run_scan(rt)
    assert len(ticket.comments) == 2
