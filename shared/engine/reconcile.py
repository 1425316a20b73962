"""The sweep at the end of a scan for grants a crash left undecided (as ticketing.retry_pending_tickets does for
tickets), so a grant claim never waits for its caller's next failure to be finished:

A grant claim older than STALE_CLAIM without its result means the claiming instance died before or after ARM's
write. The assignment is looked up by the grant's deterministic name. Found: it is recorded as the service's own
(audited with the record, counted in the caps, verified, revocable). Not found: the claim lapses and the incident
is decided again on fresh evidence (an engineer's still-valid approval still counts). While ARM cannot be read
the claim stays, and the next sweep comes back to it.

Every change is a conditional write at the etag read, so two instances sweeping at once act once.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from datetime import datetime, timedelta

from shared.core import incidents as inc
from shared.core.incidents import Action, Incident
from shared.core.lifecycle import record_grant
from shared.core.model import Evidence, FailureSignal
from shared.core.policy import Decision, PolicyContext, decide
from shared.core.ports import evidence_key
from shared.core.records import ConflictError
from shared.core.sources import error_text
from shared.core.status import GrantStatus
from shared.core.triage import claim_was_approved, grant_claimed_at, stale_grant_claim, verify_horizon
from shared.engine.grants import secure_grant
from shared.engine.runtime import Runtime
from shared.engine.signals import act, find_server_witness, policy_context
from shared.engine.unit_of_work import RunState, put_incident_audited

# How long a stale claim's own witnessed decision still counts as the witness when it is decided again.
CLAIM_WITNESS_AGE = timedelta(hours=1)

log = logging.getLogger("triage")


def reconcile(rt: Runtime, run: RunState) -> dict[str, int]:
    """Every stale grant claim, whether this run's signals touched it or not (only this sweep takes claims over);
    counts of what was done, by outcome: adopted, lapsed, deferred."""
    counts: dict[str, int] = {}
    now = rt.clock()
    for incident in rt.store.list_incidents(inc.ASSIGNED):
        if stale_grant_claim(incident, now):
            _count(counts, _stale_claim(rt, run, incident, now))
    return counts


def _count(counts: dict[str, int], outcome: str | None) -> None:
    if outcome:
        counts[outcome] = counts.get(outcome, 0) + 1


def _stale_claim(rt: Runtime, run: RunState, incident: Incident, now: datetime) -> str | None:
    # The grant's target as its diagnosis names it; a failure merged since may have replaced the diagnosis, so
    # the assignment is also recognised by its description, which names this incident.
    diagnosis = incident.diagnosis
    scope = (diagnosis.scope if diagnosis else None) or incident.resource_id
    try:
        found = rt.roles.find_own(scope=scope, principal_id=inc.principal_key(incident.principal_id),
                                  role_guid=diagnosis.role_id if diagnosis else None,
                                  incident_id=incident.id) if incident.principal_id else None
    except Exception as exc:  # noqa: BLE001 - unreadable now: the next sweep tries again
        log.warning("stale grant claim of %s not reconciled: %s", incident.id, error_text(exc))
        return "deferred"
    if found is not None:
        return _adopt(rt, run, incident, found.assignment_id, found.created_on or now, now)
    return _lapse(rt, run, incident, now)


def _adopt(rt: Runtime, run: RunState, incident: Incident, assignment_id: str | None, created_on: datetime,
           now: datetime) -> str | None:
    """The dead instance's ARM write happened: record it as this service's own grant."""
    actor = claim_was_approved(incident, now) or "service"
    horizon = verify_horizon(incident.cause, rt.max_verify)
    adopted = record_grant(incident, GrantStatus.CREATED, assignment_id, created_on, now, rt.window, rt.lag, horizon)
    audit = rt.audit_record(
        "action", f"role assignment reconciled: {assignment_id} was made by this service for this incident, whose "
        "instance stopped before recording it", incident_id=incident.id, correlation_id=run.correlation_id,
        actor=actor, inputs={"assignment_id": assignment_id, "outcome": "reconciled"})
    try:
        put_incident_audited(rt, adopted, incident.etag, [audit])
    except ConflictError:
        return None  # another instance reconciled it, or the claim's owner came back
    rt.store.record_grant(incident.id, now)  # counted in the caps like any grant
    rt.publish("aoai.triage.assignment.created", {
        "incident_id": incident.id, "principal_id": incident.principal_id, "resource_id": incident.resource_id,
        "role": incident.diagnosis.role_name if incident.diagnosis else None,
        "role_id": incident.diagnosis.role_id if incident.diagnosis else None,
        "scope": incident.diagnosis.scope if incident.diagnosis else None, "assignment_id": assignment_id,
        "actor": actor,
    })
    return "adopted"


def _lapse(rt: Runtime, run: RunState, incident: Incident, now: datetime) -> str | None:
    """No assignment was made: the claim lapses and the incident is decided again, on fresh evidence."""
    approver = claim_was_approved(incident, now)
    lapsed = replace(incident, status=inc.RECOMMENDED if approver else inc.DIAGNOSED).with_action(
        Action(now, "grant-claim-lapsed", "no assignment was made for the stale grant claim; decided again"))
    evidence = _evidence(rt, incident)
    if evidence is not None and not evidence.complete:
        return "deferred"  # decided once evidence is readable: the claim stays, the next sweep comes back
    return _decide_again(rt, run, lapsed, incident.etag, evidence, approver, "lapsed")


def _evidence(rt: Runtime, incident: Incident) -> Evidence | None:
    if not incident.principal_id:
        return None
    rt.refresh_evidence()
    pair = evidence_key(incident.principal_id, incident.resource_id)
    return rt.evidence.gather_evidence({pair}).get(pair)


def _decide_again(rt: Runtime, run: RunState, incident: Incident, etag: str | None, evidence: Evidence | None,
                  approver: str | None, outcome: str) -> str | None:
    if incident.diagnosis is None:
        return None
    diagnosis = incident.diagnosis
    # An approved claim is decided again on exactly the terms that were approved, and reserves its own slot.
    terms = incident.approval_terms if approver is not None else None
    now = rt.clock()
    # The claim was decided on a witnessed failure; deciding again asks the server-side sources once more.
    witness = None if terms is not None else find_server_witness(rt, FailureSignal(
        status=401, object_id=incident.principal_id, resource_id=incident.resource_id,
        first_seen=incident.last_seen), now)
    claimed_at = grant_claimed_at(incident)
    if witness is None and terms is None and claimed_at is not None and now - claimed_at <= CLAIM_WITNESS_AGE:
        # The service wrote the claim only after a witnessed decision (a server row or a trusted topic), moments ago.
        witness = f"the grant claim of {claimed_at.isoformat()}"
    context = policy_context(run, incident, evidence, now, approved_terms=terms, witness=witness)

    def decide_with(ctx: PolicyContext) -> Decision:
        return decide(diagnosis, incident.principal_id, rt.policy, ctx)

    decision, reservation = secure_grant(rt, run, incident.id, decide_with(context), context, decide_with)
    try:
        act(rt, run, incident, decision, etag=etag, evidence=evidence, actor=approver or "service",
            reservation=reservation)
    except ConflictError:
        return None  # another instance got there first (grant() gave the slot back)
    rt.audit("refusal" if decision.refusals else "decision", f"{outcome}: {decision.action}: {incident.cause}",
             incident_id=incident.id, correlation_id=run.correlation_id, actor=approver or "service",
             inputs={"refusals": list(decision.rules), "role_id": decision.role_id, "scope": decision.scope,
                     "mode": rt.settings.mode, "sweep": outcome})
    return outcome
