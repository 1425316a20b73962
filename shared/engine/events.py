"""Event Grid and alert-webhook handling: dedupe by event id, then dispatch the parsed command.

Malformed events are recorded and acknowledged (returning normally), so Event Grid never redelivers a poison event
for 24 hours. Transient failures (the store is down) raise, so Event Grid retries them.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shared.core import incidents as inc
from shared.core import roles
from shared.core.allowlist import normalize_object_id
from shared.core.events import (
    AlertScan,
    Envelope,
    FailureReport,
    Malformed,
    RoleAssignmentChange,
    Unknown,
    classify_event,
)
from shared.core.incidents import Action
from shared.core.lifecycle import start_waiting
from shared.core.ports import evidence_key
from shared.core.resource_ids import applies_at, normalize_scope
from shared.engine import ticketing
from shared.engine.alerts import handle_alert
from shared.engine.deliveries import handle_once
from shared.engine.inputs import alert_key, envelope_of
from shared.engine.rejections import EventOutcome, reject
from shared.engine.runtime import Runtime, new_correlation_id
from shared.engine.signals import handle_signal
from shared.engine.ticketing import TicketUpdate
from shared.engine.unit_of_work import DELIVERY_FACTS_MAX_AGE, RunState, update_incident
from shared.tickets.content import assignment_deleted_text

log = logging.getLogger("triage")


def handle_event(rt: Runtime, envelope: Envelope | Malformed, raw: Any = None) -> EventOutcome:
    if isinstance(envelope, Malformed):
        raw_id = raw.get("id") if isinstance(raw, dict) else None
        return reject(rt, raw_id if isinstance(raw_id, str) else "", envelope.reason, raw)
    now = rt.clock()
    parsed = classify_event(envelope, now=now)
    if isinstance(parsed, Malformed):
        return reject(rt, envelope.id, parsed.reason, raw if raw is not None else envelope.data)
    if isinstance(parsed, Unknown):
        log.info("event %s of unhandled type %s acknowledged", envelope.id, parsed.type)
        return EventOutcome(envelope.id, "unknown", parsed.type)
    key = _dedupe_key(envelope, parsed)
    # Claimed, handled, then marked done (engine/deliveries.py): a failure releases it for Event Grid's retry, a
    # killed handler's lease expires, and a redelivery during handling is retried later, never dropped.
    handled, detail = handle_once(rt, key, lambda: _dispatch(rt, envelope, parsed))
    if not handled:
        return EventOutcome(envelope.id, "duplicate")
    not_relevant = isinstance(parsed, AlertScan) and bool(parsed.not_relevant)
    return EventOutcome(envelope.id, "not_relevant" if not_relevant else "processed", detail or "")


def _dedupe_key(envelope: Envelope, parsed: Any) -> str:
    """The event id, except for an alert: a forwarder may send the Fired and the Resolved notification of one alert
    under one event id, so its key adds the monitor condition and the fired time (inputs.alert_key)."""
    return alert_key(parsed, envelope.id) if isinstance(parsed, AlertScan) else envelope.id


# Events in a burst share evidence this long (role writes invalidate it at once).
EVENT_EVIDENCE_MAX_AGE = timedelta(seconds=60)

def handle_event_safely(rt: Runtime, event: Any) -> EventOutcome:
    """The Event Grid function's body: transient failures raise (Event Grid retries); anything else is recorded
    and acknowledged, so one poison event is never redelivered for 24 hours."""
    envelope = envelope_of(event)
    try:
        return handle_event(rt, envelope, raw=event if isinstance(event, dict) else None)
    except Exception as exc:  # noqa: BLE001 - see docstring
        # Not only store errors: a Log Analytics or ARM outage during an alert or role-assignment event used to be
        # acknowledged as a rejection, so the event was lost instead of retried.
        if rt.transient(exc):
            raise
        log.exception("event processing failed; acknowledged to avoid redelivery")
        event_id = envelope.id if isinstance(envelope, Envelope) else ""
        return reject(rt, event_id, f"internal error while processing: {type(exc).__name__}",
                      envelope.data if isinstance(envelope, Envelope) else None)


def _dispatch(rt: Runtime, envelope: Envelope, parsed: Any) -> str:
    correlation_id = new_correlation_id()
    if isinstance(parsed, AlertScan):
        return handle_alert(rt, parsed, correlation_id)
    if isinstance(parsed, FailureReport):
        signal = parsed.signal
        pair = evidence_key(signal.object_id, signal.resource_id)
        rt.refresh_evidence(EVENT_EVIDENCE_MAX_AGE)
        evidence = rt.evidence.gather_evidence({pair}).get(pair) if signal.object_id else None
        run = RunState.begin(rt, correlation_id, shared_for=DELIVERY_FACTS_MAX_AGE)
        incident = handle_signal(rt, run, signal, evidence, witness=trusted_topic(rt, envelope))
        return f"{incident.id} {incident.status}"
    if isinstance(parsed, RoleAssignmentChange):
        return _role_assignment_changed(rt, parsed, correlation_id)
    return "ignored"


def trusted_topic(rt: Runtime, envelope: Envelope) -> str | None:
    """The witness a failure event carries: its Event Grid topic, when the operator listed it as trusted. Only the
    Event Grid schema's `topic` counts (Event Grid sets it); a CloudEvent's `source` is the publisher's word."""
    topic = normalize_scope(envelope.topic) if envelope.topic.strip() else ""
    trusted = {normalize_scope(t) for t in rt.settings.trusted_event_topics if t.strip()}
    return f"event from trusted topic {envelope.topic}" if topic and topic in trusted else None


def _role_assignment_changed(rt: Runtime, change: RoleAssignmentChange, correlation_id: str) -> str:
    """The event is a hint: what the service records comes from ARM, read again now. A delete event for an
    assignment ARM still has (forged, or out of order) changes nothing, so the service never forgets a live grant."""
    rt.invalidate_evidence()  # someone changed a role: cached assignments are stale
    assignment_id = change.assignment_id.lower()
    now = rt.clock()
    if change.deleted:
        for incident in rt.store.incidents_with_assignment(assignment_id):
            if incident.assignment_id and incident.assignment_id.lower() == assignment_id:
                if rt.roles.get(change.assignment_id) is not None:
                    rt.audit("event-ignored", f"role-assignment delete event by {change.actor} for "
                             f"{change.assignment_id}, which ARM still has: nothing changed",
                             incident_id=incident.id, correlation_id=correlation_id, actor=change.actor,
                             inputs={"assignment_id": change.assignment_id})
                    return f"{incident.id}: deleted assignment still exists in ARM, event ignored"
                rt.audit("action", f"assignment created by this service was deleted by {change.actor}",
                         incident_id=incident.id, correlation_id=correlation_id, actor=change.actor,
                         inputs={"assignment_id": change.assignment_id})
                updated = update_incident(rt, incident.id, lambda cur: ticketing.claim(rt, replace(
                    cur, status=inc.TICKETED, assignment_id=None, verify_due=None,
                )).with_action(Action(now, "assignment-deleted", change.actor, change.actor)))
                run = RunState.begin(rt, correlation_id)
                ticketing.send(rt, run, updated or incident, TicketUpdate(
                    assignment_deleted_text(change.assignment_id, change.actor)))
                return f"{incident.id}: own assignment deleted"
        return "deleted assignment not created by this service"
    assignment = rt.roles.get(change.assignment_id)
    if assignment is None:
        return "assignment not readable (already deleted?)"
    for incident in rt.store.open_incidents_of_principal(assignment.principal_id or ""):
        if not incident.is_open or incident.family != "rbac" or not incident.principal_id:
            continue
        if normalize_object_id(incident.principal_id) != normalize_object_id(assignment.principal_id):
            continue
        # The incident's target: the project its decision is about, or the failing account.
        target = (incident.diagnosis.scope if incident.diagnosis else None) or incident.resource_id
        if not applies_at(assignment.scope, target):
            continue
        if incident.status not in (inc.RECOMMENDED, inc.TICKETED, inc.DIAGNOSED, inc.ESCALATED):
            continue
        if not _covers(assignment.role_definition_id, incident):
            rt.audit("action", f"role assignment written by {change.actor} does not grant the data access this "
                     "incident needs; still open", incident_id=incident.id, correlation_id=correlation_id,
                     actor=change.actor, inputs={"assignment_id": change.assignment_id,
                                                 "role_id": roles.guid_of(assignment.role_definition_id)})
            continue
        created = assignment.created_on or now
        noted = Action(now, "assigned-externally", f"{change.assignment_id} by {change.actor}", change.actor)

        def wait_for_it(cur: inc.Incident, created: datetime = created, noted: Action = noted) -> inc.Incident:
            return start_waiting(cur.with_action(noted), created, now, rt.window, rt.lag, rt.max_verify)

        updated = update_incident(rt, incident.id, wait_for_it)
        rt.audit("action", f"matching role assignment written by {change.actor}; verifying after propagation",
                 incident_id=incident.id, correlation_id=correlation_id, actor=change.actor,
                 inputs={"assignment_id": change.assignment_id})
        return f"{incident.id}: {updated.status if updated else 'updated'}"
    return "no open incident matches this assignment"


def _covers(role_definition_id: str, incident: inc.Incident) -> bool:
    """Only a role whose data actions cover the incident's endpoint surface can fix it (Reader or Owner cannot)."""
    role = roles.BY_GUID.get(roles.guid_of(role_definition_id))
    if role is None:
        return True  # a custom role: its data actions are unknown here, so let verification judge it
    surface = incident.diagnosis.surface if incident.diagnosis else None
    return bool(role.data_surfaces) and (surface is None or surface in role.data_surfaces)
