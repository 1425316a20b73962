"""Verifications that are due: did the failures stop once the role had time to propagate?

A source that cannot be read defers the check (counted as `deferred`): a count with a source missing could resolve
or escalate on half the traffic. A source without its table counts no traffic.
"""

from __future__ import annotations

import logging
from datetime import datetime

from shared.core.breaker import after_verification
from shared.core.incidents import Incident
from shared.core.records import ConflictError
from shared.core.sources import error_text
from shared.core.verification import (
    apply_verification,
    check_since,
    escalation_text,
    evaluate,
    resolution_text,
    unverified_text,
)
from shared.engine import ticketing
from shared.engine.checkpoints import checkpoint
from shared.engine.runtime import Runtime
from shared.engine.telemetry import VERIFICATIONS, traced
from shared.engine.ticketing import TicketUpdate
from shared.engine.unit_of_work import RunState, change_breaker, put_incident_audited

log = logging.getLogger("triage")


@traced("verify")
def run_verifications(rt: Runtime, run: RunState) -> dict[str, int]:
    now = rt.clock()
    counts: dict[str, int] = {}
    for incident in rt.store.due_verifications(now):
        since = check_since(incident, rt.window, rt.lag) or (incident.last_grant_at or incident.first_seen) + rt.window
        try:
            failures, successes = _traffic(rt, incident, since, now)
        except Exception as exc:  # noqa: BLE001 - one unreadable source defers this check, it stops nothing else
            log.warning("verification of %s deferred: %s", incident.id, error_text(exc),
                        extra={"incident_id": incident.id})
            counts["deferred"] = counts.get("deferred", 0) + 1
            continue
        deadline = incident.verify_deadline or now
        outcome = evaluate(failures, successes, now=now, deadline=deadline, cause=incident.cause)
        updated = apply_verification(incident, outcome, now, failures=failures, successes=successes)
        audit = []
        if outcome != "keep_checking":
            updated = ticketing.claim(rt, updated, needed=bool(incident.ticket_refs) or outcome == "escalated")
            # Written with the outcome it records: a crash between the two can leave no gap.
            audit = [rt.audit_record(
                "verification", f"{outcome}: {failures} failure(s), {successes} success(es) since "
                f"{since.isoformat()}", incident_id=incident.id, correlation_id=run.correlation_id,
                inputs={"failures": failures, "successes": successes, "since": since.isoformat()})]
        try:
            saved = put_incident_audited(rt, updated, incident.etag, audit)
        except ConflictError:
            continue  # another instance verified it first
        counts[outcome] = counts.get(outcome, 0) + 1
        if outcome == "keep_checking":
            continue
        checkpoint("verification-recorded")
        _record_breaker(rt, run, incident, outcome)
        if outcome == "resolved":
            text = resolution_text(incident, successes) + f" Verified {now.isoformat()}."
            ticketing.send(rt, run, saved, TicketUpdate(text, resolve=True))
            rt.publish("aoai.triage.verification.resolved", {"incident_id": incident.id,
                                                              "principal_id": incident.principal_id,
                                                              "resource_id": incident.resource_id})
        elif outcome == "closed_unverified":
            ticketing.send(rt, run, saved, TicketUpdate(unverified_text(incident), resolve=True))
        elif outcome == "escalated":
            ticketing.send(rt, run, saved, TicketUpdate(escalation_text(incident, failures, successes),
                                                        escalated=True))
            rt.publish("aoai.triage.incident.escalated", {"incident_id": incident.id, "failures": failures,
                                                           "cause": incident.cause})
    for outcome, n in counts.items():
        rt.telemetry.count(VERIFICATIONS, n, outcome=outcome)
    return counts


def _traffic(rt: Runtime, incident: Incident, since: datetime, now: datetime) -> tuple[int, int]:
    """(failures, successes) of the incident's caller on its resource since `since`, over every source."""
    failures = successes = 0
    for source in rt.sources:
        activity = source.activity(incident.principal_id, incident.resource_id, since, now)
        failures += activity.failures
        successes += activity.successes
    return failures, successes


def _record_breaker(rt: Runtime, run: RunState, incident: Incident, outcome: str) -> None:
    """Only grants made by this service count toward the circuit breaker."""
    if incident.last_grant_at is None or outcome not in ("resolved", "escalated"):
        return
    changed = change_breaker(rt, lambda state: after_verification(state, outcome, rt.settings.breaker_threshold,
                                                                  rt.clock()))
    if changed is None:
        return
    before, after = changed
    if after.open and not before.open:
        run.breaker_open = True
        rt.audit("breaker", f"circuit breaker opened after {after.consecutive_failures} failed grants",
                 incident_id=incident.id, correlation_id=run.correlation_id)
