"""The ticket budget: at most TRIAGE_MAX_TICKETS_PER_RUN new tickets per run and sink, the rest queued on their
incidents (durable, settled for the repeat scan, so no ARM read), opened on later runs by severity then count,
grouped per cause and account in a storm; a tracker's rate limit stops new tickets until its reset."""

from __future__ import annotations

import uuid
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.core import incidents as inc
from shared.core.model import FailureSignal
from shared.core.ticket_model import TicketRateLimited
from shared.core.triage import settled
from shared.engine import ticketing
from shared.engine.approvals import approve
from shared.engine.scan import run_scan
from shared.engine.unit_of_work import RunState
from shared.tickets.content import queue_order, ticket_severity
from tests.engine.common import ALICE, incident_of

CALLERS = [str(uuid.UUID(int=0x5EED0000_0000_4000_8000_000000000000 + n)) for n in range(1, 8)]


def _queued(store) -> list[inc.Incident]:
    return [i for i in store.list_incidents() if i.ticket_queued]


def test_a_first_scan_opens_at_most_the_budget_and_queues_the_rest_durably(make_runtime, traffic, store, sink):
    rt = make_runtime(mode="recommend", allowlist=CALLERS[:5], TRIAGE_MAX_TICKETS_PER_RUN="2")
    traffic(3, failing=CALLERS[:5])

    report = run_scan(rt)
    assert report.actions == {"recommend": 5}
    assert sink.created() == 2
    queued = _queued(store)
    assert len(queued) == 3
    assert all(i.ticket_pending and i.ticket_queued == (sink.name,) and i.ticket_refs == {} for i in queued)
    assert all(i.status == inc.RECOMMENDED for i in queued)  # the decision is made; only the ticket waits


def test_the_repeat_scan_reads_no_evidence_for_queued_incidents_and_a_new_instance_drains_the_queue(
        make_runtime, traffic, store, sink, evidence, clock):
    rt = make_runtime(mode="recommend", allowlist=CALLERS[:4], TRIAGE_MAX_TICKETS_PER_RUN="2")
    traffic(3, failing=CALLERS[:4])
    run_scan(rt)
    assert len(_queued(store)) == 2

    clock.advance(minutes=3)  # no new failures: the re-read overlap holds only rows already counted
    evidence.gather_calls.clear()
    restarted = make_runtime(mode="recommend", allowlist=CALLERS[:4], TRIAGE_MAX_TICKETS_PER_RUN="2")
    run_scan(restarted)
    assert evidence.gather_calls == []  # waiting for a ticket is settled: no ARM read
    assert _queued(store) == []
    assert sink.created() == 4 and len(sink.tickets) == 4  # 2 waiting <= budget 2: one ticket each
    assert all(not i.ticket_pending and set(i.ticket_refs) == {sink.name} for i in store.list_incidents())


def _grouped_storm(make_runtime, traffic, store, sink, clock):
    """Seven failing callers against a budget of 2: five wait, and the next run opens one group ticket for them.
    Returns (the runtime, the incidents that waited, the group ticket)."""
    rt = make_runtime(mode="recommend", allowlist=CALLERS, TRIAGE_MAX_TICKETS_PER_RUN="2")
    traffic(3, failing=CALLERS)
    run_scan(rt)
    waiting = _queued(store)
    clock.advance(minutes=3)
    run_scan(rt)
    [group] = [t for t in sink.tickets.values() if t.incident_id.startswith("grp-")]
    return rt, waiting, group


def test_a_storm_opens_one_ticket_per_cause_and_account_listing_every_fingerprint(make_runtime, traffic, store,
                                                                                  sink, clock, evidence):
    rt = make_runtime(mode="recommend", allowlist=CALLERS, TRIAGE_MAX_TICKETS_PER_RUN="2")
    traffic(3, failing=CALLERS)
    run_scan(rt)
    waiting = _queued(store)
    assert len(waiting) == 5 and sink.created() == 2

    clock.advance(minutes=3)
    evidence.gather_calls.clear()
    run_scan(rt)
    assert evidence.gather_calls == []
    assert sink.created() == 3  # 5 waited for a budget of 2: one group ticket for them all
    [group] = [t for t in sink.tickets.values() if t.incident_id.startswith("grp-")]
    for incident in waiting:
        assert incident.fingerprint in "\n".join(group.content.evidence)
    members = [store.get_incident(i.id) for i in waiting]
    assert all(m.ticket_groups == {sink.name: group.incident_id} and not m.ticket_pending and not m.ticket_queued
               for m in members)
    assert {m.ticket_refs[sink.name] for m in members} == {sink._url(group)}  # what later updates target


def test_a_group_ticket_closes_when_its_last_member_resolves_and_reopens_on_recurrence(make_runtime, traffic, store,
                                                                                       sink, clock):
    rt, waiting, group = _grouped_storm(make_runtime, traffic, store, sink, clock)

    run = RunState.begin(rt, "test")
    for n, member in enumerate(waiting):
        current = store.get_incident(member.id)
        closed = store.put_incident(replace(current, status=inc.RESOLVED, closed_at=clock.now()), current.etag)
        ticketing.send(rt, run, closed, ticketing.TicketUpdate("fixed by hand", resolve=True))
        assert group.is_open == (n < len(waiting) - 1)  # open while any member is
        assert group.comments[-1].startswith(f"{member.id} resolved")

    reopened = store.get_incident(waiting[0].id)
    reopened = store.put_incident(replace(reopened, status=inc.TICKETED, closed_at=None), reopened.etag)
    ticketing.send(rt, run, reopened, ticketing.TicketUpdate("failing again", comment="it came back"))
    assert group.is_open and group.comments[-1] == f"{waiting[0].id}: it came back"
    assert sum(1 for t in sink.tickets.values() if t.incident_id.startswith("grp-")) == 1


def test_a_group_tickets_updates_carry_its_reference_so_a_chat_sink_threads_under_one_message(
        make_runtime, traffic, store, sink, clock):
    rt, waiting, group = _grouped_storm(make_runtime, traffic, store, sink, clock)
    member = store.get_incident(waiting[0].id)
    ticketing.send(rt, RunState.begin(rt, "test"), member, ticketing.TicketUpdate("still failing", comment="again"))
    assert group.comments[-1] == f"{member.id}: again"
    assert group.content.refs == ((sink.name, sink._url(group)),)  # what a chat sink updates instead of reposting


def test_a_queued_incident_that_resolves_leaves_the_queue_without_a_ticket(make_runtime, traffic, store, sink, clock,
                                                                           evidence):
    rt = make_runtime(mode="recommend", allowlist=CALLERS[:2], TRIAGE_MAX_TICKETS_PER_RUN="1")
    traffic(3, failing=CALLERS[:2])
    run_scan(rt)
    [queued] = _queued(store)
    closed = store.put_incident(replace(queued, status=inc.RESOLVED, closed_at=clock.now()), queued.etag)
    assert closed.ticket_queued  # resolved by a path that knew nothing of the queue

    clock.advance(minutes=3)
    run_scan(rt)
    after = store.get_incident(queued.id)
    assert not after.ticket_queued and not after.ticket_pending and after.ticket_refs == {}
    assert sink.created() == 1


def test_a_queued_incident_whose_cause_changed_gets_a_ticket_with_the_cause_it_has_then(make_runtime, traffic,
                                                                                      store, sink, clock):
    rt = make_runtime(mode="recommend", allowlist=CALLERS[:2], TRIAGE_MAX_TICKETS_PER_RUN="1")
    traffic(3, failing=CALLERS[:2])
    run_scan(rt)
    [queued] = _queued(store)
    changed = "control_plane_role_only"  # the same family: the same incident, re-diagnosed while it waited
    assert changed != queued.cause
    store.put_incident(replace(queued, cause=changed, diagnosis=replace(queued.diagnosis, cause=changed)),
                       queued.etag)

    clock.advance(minutes=3)
    run_scan(rt)
    [ticket] = [t for t in sink.tickets.values() if t.incident_id == queued.id]
    assert ticket.content.cause == changed
    assert store.get_incident(queued.id).ticket_refs


def test_a_rate_limited_create_is_queued_not_failed_and_no_new_ticket_opens_before_the_reset(
        make_runtime, traffic, store, sink, clock):
    rt = make_runtime(mode="recommend", allowlist=CALLERS[:3], TRIAGE_MAX_TICKETS_PER_RUN="10")
    sink.fail_next(TicketRateLimited("tracker: 403 secondary rate limit", retry_after=600))
    traffic(3, failing=CALLERS[:3])
    report = run_scan(rt)
    assert report.actions == {"recommend": 3}
    assert sink.created() == 0 and len(_queued(store)) == 3  # the first answer stopped new tickets for the run
    value, _ = store.get_value(ticketing.SINK_STATE_KEY + sink.name)
    assert value["until"] == (clock.now() + timedelta(seconds=600)).isoformat()

    clock.advance(minutes=5)  # before the reset: nothing is sent
    run_scan(rt)
    assert sink.created() == 0 and len(_queued(store)) == 3

    clock.advance(minutes=6)
    run_scan(rt)
    assert sink.created() == 3 and _queued(store) == []


def test_severity_orders_the_queue_then_count():
    def incident(status: str, count: int, cause: str = "missing_data_plane_role") -> inc.Incident:
        at = datetime(2025, 6, 1, tzinfo=UTC)
        return inc.Incident(id=f"inc-{status}-{count}", fingerprint="f", principal_id=None, resource_id="/r",
                            cause=cause, status=status, first_seen=at, last_seen=at, count=count)

    queue = [incident(inc.TICKETED, 50), incident(inc.RECOMMENDED, 3), incident(inc.ESCALATED, 1),
             incident(inc.RECOMMENDED, 9), incident(inc.TICKETED, 99, cause="unknown")]
    ordered = sorted(queue, key=queue_order)
    assert [i.id for i in ordered] == ["inc-escalated-1", "inc-recommended-9", "inc-recommended-3",
                                      "inc-ticketed-50", "inc-ticketed-99"]
    assert [ticket_severity(i) for i in ordered] == [3, 2, 2, 1, 0]


def test_a_ticket_awaited_alone_is_settled_and_any_other_pending_operation_is_not():
    at = datetime(2025, 6, 1, tzinfo=UTC)
    base = inc.Incident(id="inc-1", fingerprint="f", principal_id=None, resource_id="/r", cause="x",
                        status=inc.TICKETED, first_seen=at, last_seen=at, count=3)
    signal = FailureSignal(status=403, count=3, last_seen=at)
    assert settled(replace(base, ticket_pending=True, ticket_queued=("github",)), signal, at)
    assert not settled(replace(base, ticket_pending=True), signal, at)
    assert settled(base, signal, at)


def test_approving_a_queued_recommendation_still_works(make_runtime, traffic, store, sink):
    rt = make_runtime(mode="recommend", allowlist=CALLERS[:2], TRIAGE_MAX_TICKETS_PER_RUN="1")
    traffic(3, failing=CALLERS[:2])
    run_scan(rt)
    [queued] = _queued(store)
    approve(rt, queued.id, ALICE)
    assert incident_of(store, queued.principal_id).status in (inc.ASSIGNED, inc.VERIFYING)


def test_the_log_sink_is_not_budgeted(make_runtime, traffic, store, sink):
    from shared.tickets.log_sink import LogSink

    rt = make_runtime(mode="recommend", allowlist=CALLERS[:4], sinks=[LogSink(), sink], TRIAGE_MAX_TICKETS_PER_RUN="1")
    traffic(3, failing=CALLERS[:4])
    run_scan(rt)
    incidents = store.list_incidents()
    assert all("log" in i.ticket_refs for i in incidents)
    assert sink.created() == 1 and {i.ticket_queued for i in incidents} == {(), (sink.name,)}


def test_while_a_backlog_waits_a_new_incident_joins_the_queue_instead_of_jumping_it(make_runtime, traffic, store,
                                                                                   sink, clock):
    rt = make_runtime(mode="recommend", allowlist=CALLERS, TRIAGE_MAX_TICKETS_PER_RUN="2")
    traffic(3, failing=CALLERS[:6])
    run_scan(rt)  # 2 opened, 4 queued; the drain had nothing left: a backlog of 4
    clock.advance(minutes=3)
    traffic(1, failing=[CALLERS[6]])
    run_scan(rt)
    newcomer = incident_of(store, CALLERS[6])
    # it went through the queue: in a storm it is grouped with the others of its cause and account
    assert newcomer.ticket_groups or newcomer.ticket_queued
    assert sink.created() <= 2 + 2


def test_a_garbled_rate_limit_wait_silences_a_sink_for_a_day_at_most(make_runtime, traffic, store, sink, clock):
    rt = make_runtime(mode="recommend", allowlist=CALLERS[:1])
    sink.fail_next(TicketRateLimited("tracker: reset in milliseconds?", retry_after=1.7e12))
    traffic(3, failing=CALLERS[:1])
    run_scan(rt)
    value, _ = store.get_value(ticketing.SINK_STATE_KEY + sink.name)
    assert value["until"] == (clock.now() + ticketing.MAX_RATE_LIMIT_WAIT).isoformat()


def test_deliveries_share_a_sinks_stored_state_and_see_this_instances_rate_limit_at_once(make_runtime, store, sink,
                                                                                         clock):
    """A burst of deliveries reads a sink's stored state (rate-limit end, backlog) once per window of shared facts,
    as they share the budget snapshot; a rate limit this instance records is seen by the next delivery at once."""
    rt = make_runtime(mode="recommend")
    key = ticketing.SINK_STATE_KEY + sink.name
    reads: list[str] = []
    read = store.get_value

    def counted(name: str):
        reads.append(name)
        return read(name)

    store.get_value = counted
    window = timedelta(seconds=5)
    first = RunState.begin(rt, "delivery-1", shared_for=window)
    assert not ticketing.rate_limited(rt, first, sink.name)
    second = RunState.begin(rt, "delivery-2", shared_for=window)
    assert not ticketing.rate_limited(rt, second, sink.name)
    assert reads.count(key) == 1
    ticketing._rate_limited(rt, second, sink.name, TicketRateLimited("tracker: 429", retry_after=600))  # noqa: SLF001
    third = RunState.begin(rt, "delivery-3", shared_for=window)
    assert ticketing.rate_limited(rt, third, sink.name)  # this instance's own answer: no window to wait out

    store.put_value(key, {}, store.get_value(key)[1])  # another instance cleared it: seen once the window passes
    clock.advance(seconds=6)
    later = RunState.begin(rt, "delivery-4", shared_for=window)
    assert not ticketing.rate_limited(rt, later, sink.name)
    timer = RunState.begin(rt, "scan")  # a run of its own reads the stored state itself
    before = reads.count(key)
    ticketing.rate_limited(rt, timer, sink.name)
    assert reads.count(key) == before + 1
