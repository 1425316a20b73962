"""The one ticket step every caller uses to open, update or resolve tickets: claim, call the sinks, record.

The claim is `ticket_pending=True`, written by the caller together with whatever else it records (one store write,
not two); `send` then calls every sink and records the references and whether anything is still pending. A crash
or a tracker outage leaves the claim in place, and a later run (`retry_pending_tickets`, or the incident's next
failure) redoes the operation; sinks find their ticket again by its fingerprint marker, so nothing is duplicated.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, replace

from shared.core.incidents import Incident
from shared.core.ports import TicketSink
from shared.core.records import ConflictError
from shared.core.status import IncidentStatus
from shared.core.ticket_model import TicketAuthError, TicketError, TicketRef
from shared.core.triage import STALE_CLAIM
from shared.engine.checkpoints import checkpoint
from shared.engine.runtime import Runtime
from shared.engine.telemetry import TICKET_ERRORS, traced
from shared.engine.unit_of_work import RunState, put_incident, update_incident, update_incident_audited
from shared.tickets.content import approve_hint, last_action_text, ticket_content

log = logging.getLogger("triage")


@dataclass(frozen=True)
class TicketUpdate:
    """What to tell the trackers: the action text, an optional comment, and whether it closes the ticket."""

    action: str
    comment: str | None = None
    escalated: bool = False
    resolve: bool = False


def claim(rt: Runtime, incident: Incident, *, needed: bool = True) -> Incident:
    """The incident marked as waiting for a ticket operation (when there are sinks and one is needed)."""
    return replace(incident, ticket_pending=bool(rt.sinks) and needed)


@traced("ticket")
def send(rt: Runtime, run: RunState, incident: Incident, update: TicketUpdate) -> Incident:
    """Call every sink for `incident` (already claimed by the caller's write) and record the outcome."""
    if not rt.sinks or (update.resolve and not incident.ticket_refs):
        return incident
    content = ticket_content(
        incident, mode=rt.settings.mode, action=update.action,
        approve_hint=approve_hint(incident) if incident.status == IncidentStatus.RECOMMENDED and not update.resolve
        else None,
        escalated=update.escalated,
    )
    if update.resolve:
        comment = update.comment or update.action
        refs, pending = _call_sinks(rt, run, incident, lambda sink: sink.resolve(content, comment=comment))
        return update_incident(rt, incident.id, lambda cur: replace(cur, ticket_pending=pending)) or incident
    had_ticket = bool(incident.ticket_refs)
    refs, pending = _call_sinks(rt, run, incident,
                                lambda sink: sink.open_or_update(content, comment=update.comment))
    now = rt.clock()
    opened = bool(refs) and not had_ticket
    # The "ticket opened" record is written with the references it reports (one transaction, not two writes).
    audit = [rt.audit_record("action", "ticket opened: " + ", ".join(f"{k}={v}" for k, v in refs.items()),
                             incident_id=incident.id, correlation_id=run.correlation_id)] if opened else []
    def recorded(cur: Incident) -> Incident:
        return replace(cur, ticket_refs=refs, ticket_pending=pending,
                       last_comment_at=now if update.comment else cur.last_comment_at)

    result = update_incident_audited(rt, incident.id, recorded, audit) if audit else \
        update_incident(rt, incident.id, recorded)
    if opened:
        rt.publish("aoai.triage.ticket.opened", {"incident_id": incident.id, "tickets": refs,
                                                 "cause": incident.cause})
    return result or incident


def _call_sinks(rt: Runtime, run: RunState, incident: Incident,
                call: Callable[[TicketSink], TicketRef | None]) -> tuple[dict[str, str], bool]:
    refs = dict(incident.ticket_refs)
    pending = False
    checkpoint("ticket-claimed")
    for sink in rt.sinks:
        try:
            ref = call(sink)
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
    checkpoint("ticket-sent")
    return refs, pending


def redo(rt: Runtime, run: RunState, incident: Incident) -> Incident:
    """Redo the ticket operation that failed. A closed incident's failed operation was the close: redoing it as an
    update would reopen the ticket the verification had just resolved."""
    if not incident.is_open and not incident.ticket_refs:  # no ticket was ever opened: nothing left to close
        return update_incident(rt, incident.id, lambda cur: replace(cur, ticket_pending=False)) or incident
    if not incident.is_open:
        closing = next((a.detail for a in reversed(incident.actions) if a.kind in ("resolved", "closed-unverified")),
                       last_action_text(incident))
        return send(rt, run, incident, TicketUpdate(closing, resolve=True))
    return send(rt, run, incident, TicketUpdate(last_action_text(incident),
                                                escalated=incident.status == IncidentStatus.ESCALATED))


def retry_pending_tickets(rt: Runtime, run: RunState, handled: set[str]) -> int:
    """Retry stale "ticket pending" incidents this run did not see; without it, a failed ticket operation was
    retried only when new failures came in, so a resolved incident whose close failed kept its ticket open."""
    if not rt.sinks:
        return 0
    now = rt.clock()
    retried = 0
    for incident in rt.store.list_ticket_pending():
        if not incident.ticket_pending or incident.id in handled:
            continue
        if incident.updated_at is not None and now - incident.updated_at <= STALE_CLAIM:
            continue  # another instance may be at it right now
        try:
            claimed = put_incident(rt, incident, incident.etag)  # the conditional write is the claim
        except ConflictError:
            continue
        redo(rt, run, claimed)
        retried += 1
    return retried
