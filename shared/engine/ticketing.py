"""The one ticket step every caller uses to open, update or resolve tickets: claim, call the sinks, record.

The claim is `ticket_pending=True`, written by the caller together with whatever else it records (one store write,
not two); `send` then calls every sink and records the references and whether anything is still pending. A crash
or a tracker outage leaves the claim in place, and a later run (`retry_pending_tickets`, or the incident's next
failure) redoes the operation; sinks find their ticket again by its fingerprint marker, so nothing is duplicated.

The ticket budget: at most TRIAGE_MAX_TICKETS_PER_RUN new tickets per run and sink, and none on a sink whose tracker
answered with its rate limit until the wait it asked for has passed. A new ticket that does not fit waits on its
incident (`ticket_queued`, with `ticket_pending`), and the end-of-scan drain opens the queue by severity then count
(`content.queue_order`); while a sink has a backlog, new incidents join the queue rather than jump it. When more wait
than the budget allows (a storm), the drain opens one ticket per cause and account listing every incident
(`ticket_groups`), and the members' later updates and resolutions go to that ticket. Updates and comments of
existing tickets are not budgeted (they keep the comment throttle). See docs/tickets.md.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Any
from weakref import WeakKeyDictionary

from shared.core.incidents import Action, Incident
from shared.core.ports import TicketSink
from shared.core.records import AuditRecord, ConflictError
from shared.core.status import IncidentStatus
from shared.core.ticket_model import (
    TicketAuthError,
    TicketContent,
    TicketDecision,
    TicketError,
    TicketRateLimited,
    TicketRef,
)
from shared.core.triage import STALE_CLAIM
from shared.engine.checkpoints import checkpoint
from shared.engine.runtime import Runtime
from shared.engine.telemetry import TICKET_ERRORS, traced
from shared.engine.unit_of_work import (
    RunState,
    put_incident,
    put_incident_audited,
    update_incident,
    update_incident_audited,
)
from shared.tickets.content import (
    MAX_GROUP_MEMBERS,
    approve_hint,
    group_content,
    group_key,
    group_member,
    last_action_text,
    queue_order,
    ticket_content,
)

log = logging.getLogger("triage")

SINK_STATE_KEY = "ticket-sink:"  # + sink name: {"until": ISO time or None, "queued": backlog}
GROUP_RECORD_KEY = "ticket-group:"  # + sink name + ":" + group id: the grouped ticket and its members
DRAIN_LEASE_KEY = "ticket-drain"  # one drain at a time: two would open the same group twice
DRAIN_LEASE = timedelta(minutes=10)
DECLINED_ACTION = "declined-by"  # a person closed the ticket as won't fix: the recurrence did not reopen it
# The longest wait a rate-limit answer is believed (GitHub's windows are an hour at most): a garbled reset header
# must not silence a sink for good.
MAX_RATE_LIMIT_WAIT = timedelta(hours=24)
_VALUE_ATTEMPTS = 5


@dataclass(frozen=True)
class TicketUpdate:
    """What to tell the trackers: the action text, an optional comment, and whether it closes the ticket."""

    action: str
    comment: str | None = None
    escalated: bool = False
    resolve: bool = False


@dataclass
class _SinkState:
    """One sink's budget state in this run: read from the store once, then kept on the RunState."""

    until: datetime | None = None  # the tracker's rate limit: no new ticket before this
    backlog: int = 0  # incidents waiting for a new ticket on this sink, as the last drain left them
    stopped: bool = False  # a rate-limit answer this run: no more new tickets on it this run
    storm: bool = False  # this run's drain groups the queue: no single new ticket on it


def claim(rt: Runtime, incident: Incident, *, needed: bool = True) -> Incident:
    """The incident marked as waiting for a ticket operation (when there are sinks and one is needed). A ticket
    no longer needed (resolved before any was opened) leaves the queue too."""
    return replace(incident, ticket_pending=bool(rt.sinks) and needed,
                   ticket_queued=incident.ticket_queued if needed else ())


# ---- the budget --------------------------------------------------------------------------------------------------


# Deliveries share each sink's stored state (the tracker's rate-limit end, the backlog) as they share the run-level
# facts (RunState.facts_shared_for): read once per window by whichever delivery needs it first, not once each. This
# process's own writes of a sink's state drop the shared copy; another instance's are seen within the window.
_shared_sink_values: WeakKeyDictionary[Any, dict[str, tuple[datetime, dict[str, Any]]]] = WeakKeyDictionary()
_shared_sink_read = threading.Lock()


def _stored_sink_value(rt: Runtime, run: RunState, name: str) -> dict[str, Any]:
    window = run.facts_shared_for
    if window is None:
        value, _ = rt.store.get_value(SINK_STATE_KEY + name)
        return value or {}
    with _shared_sink_read:
        known = _shared_sink_values.setdefault(rt.store, {}).get(name)
        if known is not None and timedelta(0) <= run.now - known[0] <= window:
            return known[1]
        value, _ = rt.store.get_value(SINK_STATE_KEY + name)
        _shared_sink_values[rt.store][name] = (run.now, value or {})
        return value or {}


def _forget_shared_sink_value(rt: Runtime, key: str) -> None:
    if key.startswith(SINK_STATE_KEY):
        with _shared_sink_read:
            _shared_sink_values.get(rt.store, {}).pop(key[len(SINK_STATE_KEY):], None)


def _sink_state(rt: Runtime, run: RunState, name: str) -> _SinkState:
    state = run.ticket_sinks.get(name)
    if state is None:
        value = _stored_sink_value(rt, run, name)
        until = value.get("until")
        state = _SinkState(until=datetime.fromisoformat(until) if until else None,
                           backlog=int(value.get("queued") or 0))
        run.ticket_sinks[name] = state
    return state


def budgeted(sink: TicketSink) -> bool:
    """Whether new tickets on this sink count against the budget: not for a sink that creates nothing in a
    tracker (the log sink says `budgeted = False`)."""
    return bool(getattr(sink, "budgeted", True))


def rate_limited(rt: Runtime, run: RunState, name: str) -> bool:
    """The tracker behind sink `name` asked to wait, and the wait has not passed (or it answered so this run)."""
    state = _sink_state(rt, run, name)
    return state.stopped or (state.until is not None and rt.clock() < state.until)


def may_open(rt: Runtime, run: RunState, name: str) -> bool:
    """A new ticket on sink `name` fits this run's budget and the tracker's last rate-limit answer."""
    return not rate_limited(rt, run, name) and run.tickets_opened.get(name, 0) < rt.settings.max_tickets_per_run


def queued_when_new(rt: Runtime, run: RunState, ahead: int = 0) -> tuple[str, ...]:
    """The sinks a new incident's first ticket would wait on if `send` ran once the `ahead` new tickets before it
    (created with it, sent just before it) had taken their slots: every sink, when none of them could be called (each
    is budgeted, and its budget is spent, its tracker asked to wait, a backlog waits before it or its queue is
    grouped); else none, and `send` decides. Within a run budgets only tighten, so a create may record it."""
    for sink in rt.sinks:
        state = _sink_state(rt, run, sink.name)
        spent = rate_limited(rt, run, sink.name) or (
            run.tickets_opened.get(sink.name, 0) + ahead >= rt.settings.max_tickets_per_run)
        if not budgeted(sink) or not (state.backlog > 0 or state.storm or spent):
            return ()
    return tuple(sink.name for sink in rt.sinks)


def _take_slot(run: RunState, name: str) -> None:
    run.tickets_opened[name] = run.tickets_opened.get(name, 0) + 1


def _rate_limited(rt: Runtime, run: RunState, name: str, exc: TicketRateLimited) -> None:
    """Stop new tickets on the sink for this run, and record until when the tracker asked to wait."""
    state = _sink_state(rt, run, name)
    rt.telemetry.count(TICKET_ERRORS, sink=name, kind="rate_limited")
    wait = min(max(0.0, exc.retry_after or 0.0), MAX_RATE_LIMIT_WAIT.total_seconds())
    until = rt.clock() + timedelta(seconds=wait)
    if not state.stopped:
        log.warning("ticket sink %s is rate-limited; new tickets wait until %s: %s", name, until.isoformat(), exc,
                    extra={"sink": name})
    state.stopped = True
    if state.until is not None and state.until >= until:
        return
    state.until = until
    _change_value(rt, SINK_STATE_KEY + name, lambda v: v if v.get("until") and datetime.fromisoformat(
        v["until"]) >= until else {**v, "until": until.isoformat()})


def _change_value(rt: Runtime, key: str, change: Callable[[dict[str, Any]], dict[str, Any]]) -> dict[str, Any] | None:
    """Read-modify-write of a named value; None when it kept losing races (the next run writes it again)."""
    _forget_shared_sink_value(rt, key)
    for _ in range(_VALUE_ATTEMPTS):
        value, etag = rt.store.get_value(key)
        new = change(dict(value or {}))
        if value is not None and new == value:
            return new
        try:
            rt.store.put_value(key, new, etag)
            _forget_shared_sink_value(rt, key)  # a delivery that shared the old copy since reads it again
            return new
        except ConflictError:
            continue
    log.warning("ticket state %s kept changing under concurrent writers; left for the next run", key)
    return None


# ---- one ticket operation ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeferredRecord:
    """A ticket operation's outcome, left by `send` for the caller to write with others (`write_deferred`)."""

    incident: Incident  # as the claim wrote it (its etag)
    change: Callable[[Incident], Incident]
    audit: tuple[AuditRecord, ...]
    opened: dict[str, Any] | None  # the ticket-opened event, published once the record is written


@traced("ticket")
def send(rt: Runtime, run: RunState, incident: Incident, update: TicketUpdate, *, drain: bool = False,
         deferred: list[DeferredRecord] | None = None) -> Incident:
    """Call every sink for `incident` (already claimed by the caller's write) and record the outcome. A sink with
    no ticket yet gets a new one only within the budget, and outside the drain only when nothing waits before it;
    otherwise the incident joins that sink's queue. With `deferred`, an outcome to record is appended there instead
    (the caller writes it with `write_deferred`, before anything else touches the incident) and the incident as it
    will be recorded is returned."""
    if not rt.sinks:
        return incident
    if update.resolve and not incident.ticket_refs:  # nothing was opened: nothing to close, nor to open any more
        if not incident.ticket_queued and not incident.ticket_pending:
            return incident
        return update_incident(rt, incident.id, lambda cur: replace(cur, ticket_pending=False, ticket_queued=())) \
            or incident
    content = ticket_content(
        incident, mode=rt.settings.mode, action=update.action,
        approve_hint=approve_hint(incident, base_url=rt.settings.public_base_url)
        if incident.status == IncidentStatus.RECOMMENDED and not update.resolve else None,
        escalated=update.escalated, base_url=rt.settings.public_base_url,
        workspace_resource_id=rt.settings.log_analytics_workspace_resource_id,
        action_links=bool(rt.settings.chat_approvers),
    )
    queued = set(incident.ticket_queued)
    calls: list[tuple[TicketSink, Callable[[TicketSink], TicketRef | None], bool]] = []
    for sink in rt.sinks:
        name = sink.name
        if name in incident.ticket_refs:
            if name in incident.ticket_groups:
                calls.append((sink, _group_call(rt, incident, update, name), False))
            elif update.resolve:
                calls.append((sink, lambda s: s.resolve(content, comment=update.comment or update.action), False))
            else:
                calls.append((sink, lambda s: s.open_or_update(content, comment=update.comment), False))
        elif update.resolve:
            queued.discard(name)
        elif not budgeted(sink):
            queued.discard(name)
            calls.append((sink, lambda s: s.open_or_update(content, comment=update.comment), True))
        elif (not drain and (name in queued or _sink_state(rt, run, name).backlog > 0)) \
                or _sink_state(rt, run, name).storm or not may_open(rt, run, name):
            queued.add(name)
        else:
            _take_slot(run, name)
            queued.discard(name)
            calls.append((sink, lambda s: s.open_or_update(content, comment=update.comment), True))
    waiting = tuple(s.name for s in rt.sinks if s.name in queued)  # a sink no longer configured waits for nothing
    if not calls and waiting == incident.ticket_queued and incident.ticket_pending == bool(waiting):
        return incident  # nothing to call and nothing new to record (a queued incident's recurrence)
    refs, pending, waiting, declined = _call_sinks(rt, run, incident, calls, waiting)
    pending = pending or bool(waiting)
    if update.resolve:
        return _record(rt, incident, lambda cur: replace(cur, ticket_pending=pending, ticket_queued=waiting))
    had_ticket = bool(incident.ticket_refs)
    now = rt.clock()
    opened = bool(refs) and not had_ticket
    # The "ticket opened" record is written with the references it reports (one transaction, not two writes).
    audit = [rt.audit_record("action", "ticket opened: " + ", ".join(f"{k}={v}" for k, v in refs.items()),
                             incident_id=incident.id, correlation_id=run.correlation_id)] if opened else []

    def outcome(cur: Incident) -> Incident:
        recorded = replace(cur, ticket_refs=refs, ticket_pending=pending, ticket_queued=waiting,
                           last_comment_at=now if update.comment and calls else cur.last_comment_at)
        for name, (ref, decision) in declined.items():
            recorded = with_declined(recorded, name, ref, decision, update.comment, now)
        return recorded

    event = {"incident_id": incident.id, "tickets": refs, "cause": incident.cause} if opened else None
    if deferred is not None and incident.etag is not None:
        deferred.append(DeferredRecord(incident, outcome, tuple(audit), event))
        return outcome(incident)
    result = _record(rt, incident, outcome, audit)
    if event is not None:
        rt.publish("aoai.triage.ticket.opened", event)
    return result or incident


def declined_text(sink: str, ref: str, decision: TicketDecision) -> str:
    """Who closed the ticket and how, as the incident's `declined-by` action says it (its stable first part)."""
    when = f" at {decision.at}" if decision.at else ""
    return f"{sink} ticket {ref} closed by {decision.closed_by or 'someone'} as {decision.how}{when}; not reopened"


def with_declined(incident: Incident, sink: str, ref: str, decision: TicketDecision, comment: str | None,
                  now: datetime) -> Incident:
    """The incident with the person's decision recorded: once when first seen, then once per recurrence comment
    (which the comment throttle already spaces out), never on every update."""
    text = declined_text(sink, ref, decision)
    seen = any(a.kind == DECLINED_ACTION and a.detail.startswith(text) for a in incident.actions)
    if seen and not comment:
        return incident
    detail = f"{text}; recurrence: {comment}" if comment else text
    return incident.with_action(Action(at=now, kind=DECLINED_ACTION, detail=detail))


def write_deferred(rt: Runtime, records: Sequence[DeferredRecord]) -> None:
    """Write the outcomes `send` left, together (`Store.replace_incidents`, each at its claim's etag); one whose
    incident changed since is recorded the usual way (read-modify-write). Then their ticket-opened events."""
    if not records:
        return
    now = rt.clock()
    written = rt.store.replace_incidents([
        (replace(record.change(record.incident), updated_at=now), record.incident.etag or "", record.audit)
        for record in records])
    for record, saved in zip(records, written, strict=True):
        if saved is None:
            if record.audit:
                update_incident_audited(rt, record.incident.id, record.change, record.audit)
            else:
                update_incident(rt, record.incident.id, record.change)
        if record.opened is not None:
            rt.publish("aoai.triage.ticket.opened", record.opened)


def _record(rt: Runtime, incident: Incident, change: Callable[[Incident], Incident],
            audit: Sequence[AuditRecord] = ()) -> Incident:
    """Record the outcome, with `audit` in the same transaction: one conditional write at the etag the caller's
    claim returned (no read; a first scan queues thousands), or read-modify-write when another writer got there in
    between."""
    if incident.etag is not None:
        try:
            if audit:
                return put_incident_audited(rt, change(incident), incident.etag, audit)
            return put_incident(rt, change(incident), incident.etag)
        except ConflictError:
            pass
    if audit:
        return update_incident_audited(rt, incident.id, change, audit) or incident
    return update_incident(rt, incident.id, change) or incident


def _call_sinks(rt: Runtime, run: RunState, incident: Incident,
                calls: list[tuple[TicketSink, Callable[[TicketSink], TicketRef | None], bool]],
                waiting: tuple[str, ...]
                ) -> tuple[dict[str, str], bool, tuple[str, ...], dict[str, tuple[str, TicketDecision]]]:
    """Each call is (sink, what to call, whether it may create a ticket). A rate-limited new ticket goes back to the
    queue (not an error); every other failure leaves the operation pending for the next run. Also returns, per
    sink, a ticket a person declined that was left closed: (its reference, the decision)."""
    refs = dict(incident.ticket_refs)
    declined: dict[str, tuple[str, TicketDecision]] = {}
    pending = False
    queued = list(waiting)
    checkpoint("ticket-claimed")
    for sink, call, new in calls:
        try:
            ref = call(sink)
        except TicketRateLimited as exc:
            _rate_limited(rt, run, sink.name, exc)
            if new:
                queued.append(sink.name)
            else:
                pending = True
        except TicketAuthError as exc:
            pending = True
            rt.telemetry.count(TICKET_ERRORS, sink=sink.name, kind="auth")
            if sink.name not in run.ticket_auth_errors:  # one operator error per sink per run, not per incident
                run.ticket_auth_errors.add(sink.name)
                log.error("ticket sink %s rejected its credentials: %s", sink.name, exc, extra={"sink": sink.name})
        except TicketError as exc:
            pending = True
            rt.telemetry.count(TICKET_ERRORS, sink=sink.name, kind="error")
            log.warning("ticket sink %s failed for %s, will retry next run: %s", sink.name, incident.id, exc,
                        extra={"sink": sink.name, "incident_id": incident.id})
        else:
            if ref is not None:
                refs[sink.name] = ref.url or ref.ref
                if ref.decision is not None and ref.decision.declined:
                    declined[sink.name] = (ref.ref, ref.decision)
    checkpoint("ticket-sent")
    return refs, pending, tuple(s.name for s in rt.sinks if s.name in queued), declined


def redo(rt: Runtime, run: RunState, incident: Incident, *, drain: bool = False) -> Incident:
    """Redo the ticket operation that failed. A closed incident's failed operation was the close: redoing it as an
    update would reopen the ticket the verification had just resolved."""
    if not incident.is_open and not incident.ticket_refs:  # no ticket was ever opened: nothing left to close
        return update_incident(rt, incident.id, lambda cur: replace(cur, ticket_pending=False, ticket_queued=())) \
            or incident
    if not incident.is_open:
        closing = next((a.detail for a in reversed(incident.actions) if a.kind in ("resolved", "closed-unverified")),
                       last_action_text(incident))
        return send(rt, run, incident, TicketUpdate(closing, resolve=True), drain=drain)
    return send(rt, run, incident, TicketUpdate(last_action_text(incident),
                                                escalated=incident.status == IncidentStatus.ESCALATED), drain=drain)


def retry_pending_tickets(rt: Runtime, run: RunState, handled: set[str]) -> int:
    """Retry stale "ticket pending" incidents this run did not see; without it, a failed ticket operation was
    retried only when new failures came in, so a resolved incident whose close failed kept its ticket open. Then
    drain the queue of new tickets, whether or not this run saw the incidents (a queued incident is settled, so the
    scan skips it)."""
    if not rt.sinks:
        return 0
    now = rt.clock()
    retried = 0
    queue: list[Incident] = []
    for incident in rt.store.list_ticket_pending():
        if not incident.ticket_pending:
            continue
        if incident.ticket_queued:
            queue.append(incident)
            continue
        if incident.id in handled:
            continue
        if incident.updated_at is not None and now - incident.updated_at <= STALE_CLAIM:
            continue  # another instance may be at it right now
        try:
            claimed = put_incident(rt, incident, incident.etag)  # the conditional write is the claim
        except ConflictError:
            continue
        redo(rt, run, claimed)
        retried += 1
    return retried + drain_ticket_queue(rt, run, queue)


# ---- the queue ---------------------------------------------------------------------------------------------------


def drain_ticket_queue(rt: Runtime, run: RunState, queue: list[Incident]) -> int:
    """Open queued new tickets within the budget, most severe and most frequent first: one per incident, or, for a
    sink where more wait than the budget allows, one per cause and account. Returns the incidents handled."""
    backlog_known = any(_sink_state(rt, run, s.name).backlog for s in rt.sinks)
    if not queue and not backlog_known:
        return 0
    if not _take_lease(rt, run):
        return 0
    try:
        queue = sorted(queue, key=queue_order)
        handled: set[str] = set()
        for sink in rt.sinks:
            name = sink.name
            waiting = [i for i in queue if name in i.ticket_queued and i.is_open]
            if not budgeted(sink):
                continue  # queued before the sink was exempt: opened one by one below
            left = rt.settings.max_tickets_per_run - run.tickets_opened.get(name, 0) if may_open(rt, run, name) else 0
            if len(waiting) > left:
                _sink_state(rt, run, name).storm = True
                handled |= _open_groups(rt, run, sink, waiting)
        for incident in queue:
            if incident.id in handled:
                continue
            if incident.is_open and not any(_opens_now(rt, run, s) for s in incident.ticket_queued):
                continue  # nothing it waits for can open this run: no write
            current = rt.store.get_incident(incident.id)
            if current is None or not current.ticket_queued:
                continue
            try:
                claimed = put_incident(rt, current, current.etag)
            except ConflictError:
                continue
            after = redo(rt, run, claimed, drain=True)
            if after.ticket_queued != current.ticket_queued:
                handled.add(incident.id)
        for sink in rt.sinks:
            backlog = sum(1 for i in queue if sink.name in i.ticket_queued and i.id not in handled)
            if backlog != _sink_state(rt, run, sink.name).backlog:
                _sink_state(rt, run, sink.name).backlog = backlog
                _save_backlog(rt, sink.name, backlog)
        return len(handled)
    finally:
        _release_lease(rt, run)


def _opens_now(rt: Runtime, run: RunState, name: str) -> bool:
    sink = next((s for s in rt.sinks if s.name == name), None)
    if sink is None:
        return True  # a sink no longer configured: the redo drops it from the queue
    return not budgeted(sink) or (may_open(rt, run, name) and not _sink_state(rt, run, name).storm)


def _save_backlog(rt: Runtime, name: str, backlog: int) -> None:
    _change_value(rt, SINK_STATE_KEY + name, lambda value: {**value, "queued": backlog})


def _take_lease(rt: Runtime, run: RunState) -> bool:
    now = rt.clock()
    value, etag = rt.store.get_value(DRAIN_LEASE_KEY)
    if value and value.get("holder") != run.correlation_id and datetime.fromisoformat(value["until"]) > now:
        return False  # another instance drains right now
    try:
        rt.store.put_value(DRAIN_LEASE_KEY, {"holder": run.correlation_id, "until": (now + DRAIN_LEASE).isoformat()},
                           etag)
    except ConflictError:
        return False
    return True


def _release_lease(rt: Runtime, run: RunState) -> None:
    value, etag = rt.store.get_value(DRAIN_LEASE_KEY)
    if value and value.get("holder") == run.correlation_id:
        try:
            rt.store.put_value(DRAIN_LEASE_KEY, {"holder": run.correlation_id, "until": rt.clock().isoformat()}, etag)
        except ConflictError:
            pass  # taken over after expiry: theirs now


# ---- storm groups ------------------------------------------------------------------------------------------------


def group_identity(key: str, part: int) -> tuple[str, str]:
    """(group id, fingerprint) of part `part` of the group `key`: deterministic, so the tracker's marker look-up
    finds the group's ticket again after a crash."""
    fingerprint = f"group|{key}|{part}"
    return "grp-" + hashlib.sha256(fingerprint.encode("utf-8")).hexdigest()[:16], fingerprint


def _record_key(sink: str, group_id: str) -> str:
    return f"{GROUP_RECORD_KEY}{sink}:{group_id}"


def _open_groups(rt: Runtime, run: RunState, sink: TicketSink, waiting: list[Incident]) -> set[str]:
    """Put the waiting incidents (in queue order) into group tickets, filling open parts first; a group without a
    ticket yet takes a slot of the budget. Stops at the budget or the tracker's rate limit."""
    if rate_limited(rt, run, sink.name):
        return set()  # not even an update of a group's ticket: a rate-limited tracker is left alone
    by_key: dict[str, list[Incident]] = {}
    for incident in waiting:
        by_key.setdefault(group_key(incident), []).append(incident)
    # The queue's order, for groups: the most severe member, then the group's failures together.
    ordered = sorted(by_key.items(), key=lambda item: (queue_order(item[1][0])[0], -sum(i.count for i in item[1])))
    placed: set[str] = set()
    for key, members in ordered:
        part = 0
        while members:
            group_id, fingerprint = group_identity(key, part)
            record, _ = rt.store.get_value(_record_key(sink.name, group_id))
            room = MAX_GROUP_MEMBERS - len((record or {}).get("members") or {})
            if room <= 0:
                part += 1
                continue
            is_new = not (record or {}).get("ref")
            if is_new and not may_open(rt, run, sink.name):
                return placed
            chunk, members = members[:room], members[room:]
            if not _open_group(rt, run, sink, group_id, fingerprint, chunk, is_new):
                return placed
            placed.update(i.id for i in chunk)
            part += 1
    return placed


def _open_group(rt: Runtime, run: RunState, sink: TicketSink, group_id: str, fingerprint: str,
                chunk: list[Incident], is_new: bool) -> bool:
    """Open (or extend) one group ticket with `chunk` and record it on the group and on each member."""
    key = _record_key(sink.name, group_id)
    record = _change_value(rt, key, lambda v: {
        **v, "fingerprint": fingerprint, "cause": chunk[0].cause, "resource_id": chunk[0].resource_id,
        "members": {**(v.get("members") or {}), **{i.id: group_member(i) for i in chunk}},
    })
    if record is None:
        return False
    if is_new:
        _take_slot(run, sink.name)
    content = _with_group_ref(group_content(chunk[0], group_id, fingerprint, list(record["members"].values()),
                                            mode=rt.settings.mode), sink.name, record)
    try:
        ref = sink.open_or_update(content)
    except TicketRateLimited as exc:
        _rate_limited(rt, run, sink.name, exc)
        return False
    except TicketError as exc:
        rt.telemetry.count(TICKET_ERRORS, sink=sink.name, kind="auth" if isinstance(exc, TicketAuthError) else "error")
        log.warning("ticket sink %s failed for group %s, will retry next run: %s", sink.name, group_id, exc,
                    extra={"sink": sink.name})
        return False
    reference = ref.url or ref.ref
    _change_value(rt, key, lambda v: {**v, "ref": reference})
    for incident in chunk:
        def joined(cur: Incident) -> Incident:
            waiting = tuple(s for s in cur.ticket_queued if s != sink.name)
            return replace(cur, ticket_refs={**cur.ticket_refs, sink.name: reference},
                           ticket_groups={**cur.ticket_groups, sink.name: group_id},
                           ticket_queued=waiting, ticket_pending=bool(waiting))

        update_incident(rt, incident.id, joined)
        rt.audit("action", f"ticket opened: {sink.name}={reference} (grouped ticket {group_id}, "
                 f"{len(record['members'])} incidents)", incident_id=incident.id, correlation_id=run.correlation_id)
    rt.publish("aoai.triage.ticket.opened", {"incident_id": chunk[0].id, "incident_ids": [i.id for i in chunk],
                                             "tickets": {sink.name: reference}, "cause": chunk[0].cause,
                                             "group": group_id})
    return True


def _with_group_ref(content: TicketContent, sink: str, record: dict[str, Any]) -> TicketContent:
    """The group ticket's content with the sink's reference to it, as an incident's content carries its own: a
    sink that cannot look tickets up (chat) threads under its one group message instead of posting another."""
    return replace(content, refs=((sink, str(record["ref"])),)) if record.get("ref") else content


def _group_call(rt: Runtime, incident: Incident, update: TicketUpdate,
                name: str) -> Callable[[TicketSink], TicketRef | None]:
    """A grouped member's update goes to its group's ticket, as a comment naming the incident; its resolution closes
    the ticket only when it was the group's last open member."""

    def call(sink: TicketSink) -> TicketRef | None:
        group_id = incident.ticket_groups[name]
        key = _record_key(name, group_id)
        def with_member(value: dict[str, Any]) -> dict[str, Any]:
            return {**value, "members": {**(value.get("members") or {}), incident.id: group_member(incident)}}

        record = _change_value(rt, key, with_member)
        if record is None or not record.get("fingerprint"):
            raise TicketError(f"{name} sink: the record of group ticket {group_id} could not be read; retry next run")
        members = list(record["members"].values())
        content = _with_group_ref(group_content(incident, group_id, record["fingerprint"], members,
                                                mode=rt.settings.mode), name, record)
        if update.resolve:
            text = f"{incident.id} resolved: {update.comment or update.action}"
            if any(m.get("open") for m in members):
                return sink.open_or_update(content, comment=text)
            return sink.resolve(content, comment=text)
        # The group's body lists members, not their actions: what this one's operation says is its comment.
        return sink.open_or_update(content, comment=f"{incident.id}: {update.comment or update.action}")

    return call
