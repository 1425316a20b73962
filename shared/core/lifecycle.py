"""Pure incident transitions: open or merge a failure, record a decision, a grant, or a wait for propagation.

Each function returns a new Incident; the engine persists it with a conditional write.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from shared.core import incidents as inc
from shared.core.allowlist import normalize_object_id
from shared.core.approval import ApprovalTerms, binding_mismatch, terms_for
from shared.core.incidents import Action, Incident
from shared.core.model import Diagnosis, FailureSignal
from shared.core.policy import Decision
from shared.core.status import STATUS_FOR_ACTION, DecisionAction, GrantStatus
from shared.core.verification import verification_deadline, verification_due

SAMPLE_ERROR_LIMIT = 2000
UNKNOWN_RESOURCE = "/unknown-resource"
GRANT_STATUSES = (GrantStatus.CREATED, GrantStatus.EXISTS)

def _append(incident: Incident, action: Action) -> Incident:
    """Add an action unless it repeats the last one (re-deciding every scan must not grow the record)."""
    if incident.actions:
        last = incident.actions[-1]
        if (last.kind, last.detail, last.actor) == (action.kind, action.detail, action.actor):
            return incident
    return incident.with_action(action)


def _sample(message: str | None) -> str | None:
    return message[:SAMPLE_ERROR_LIMIT] if message else None


def _seen(signal: FailureSignal, now: datetime) -> tuple[datetime, datetime]:
    first = signal.first_seen or signal.last_seen or now
    last = signal.last_seen or signal.first_seen or now
    return min(first, last), max(first, last)


def _new_rows(existing: Incident, signal: FailureSignal) -> int:
    """Rows of the signal not counted before. Rows in the re-read overlap may have been counted by the previous
    scan; they can have been only if the incident had already seen a failure at or after the signal's first."""
    count = max(0, signal.count)
    overlap = min(count, max(0, signal.overlap_count))
    # No first_seen: whether the overlap was counted is unknown; assume it was (under-count, never double count).
    may_have_counted = signal.first_seen is None or existing.last_seen >= signal.first_seen
    return count - overlap if may_have_counted else count


def open_or_update(
    existing: Incident | None, signal: FailureSignal, diagnosis: Diagnosis, now: datetime,
    *, fingerprint: str | None = None,
) -> Incident:
    """Create the incident for this failure, or merge the failure into it (reopening it if it was closed).
    `fingerprint` is the signal's, when the caller computed it already."""
    fp = fingerprint or inc.fingerprint(signal.object_id, signal.resource_id, diagnosis.cause,
                                        inc.keyed_scope(signal, diagnosis))
    first, last = _seen(signal, now)
    if existing is None:
        created = Incident(
            id=inc.incident_id(fp),
            fingerprint=fp,
            principal_id=normalize_object_id(signal.object_id),
            resource_id=signal.resource_id.strip() if signal.resource_id else UNKNOWN_RESOURCE,
            cause=diagnosis.cause,
            status=inc.DIAGNOSED,
            first_seen=first,
            last_seen=last,
            count=max(0, signal.count),
            principal_type=signal.principal_type,
            diagnosis=diagnosis,
            sample_error=_sample(signal.message),
            updated_at=now,
        )
        return created.with_action(Action(now, "diagnosed", f"{diagnosis.cause}: {diagnosis.summary}"))
    if existing.fingerprint != fp:
        raise ValueError(f"failure belongs to incident {fp!r}, not {existing.fingerprint!r}")
    merged = replace(
        existing,
        count=existing.count + _new_rows(existing, signal),
        first_seen=min(existing.first_seen, first),
        last_seen=max(existing.last_seen, last),
        cause=diagnosis.cause,
        diagnosis=diagnosis,
        principal_type=signal.principal_type or existing.principal_type,
        sample_error=_sample(signal.message) or existing.sample_error,
        updated_at=now,
    )
    if existing.cause != diagnosis.cause:
        merged = merged.with_action(Action(now, "cause-changed", f"{existing.cause} -> {diagnosis.cause}"))
    # Only a failure after the close reopens: late-ingested rows from before it are history, not a recurrence.
    if existing.status in inc.CLOSED_STATUSES and (existing.closed_at is None or last > existing.closed_at):
        merged = replace(
            merged,
            status=inc.DIAGNOSED,
            closed_at=None,
            verify_due=None,
            verify_deadline=None,
            approval_handle=None,
            approval_expires_at=None,
            approved_by=None,
            approval_terms=None,
        ).with_action(Action(now, "reopened", f"failing again after {existing.status}: {diagnosis.cause}"))
    return merged


def approval_valid(incident: Incident, now: datetime) -> bool:
    """An approval handle exists for this recommendation and has not expired."""
    return (
        incident.status == inc.RECOMMENDED
        and incident.approval_handle is not None
        and incident.approval_expires_at is not None
        and now < incident.approval_expires_at
    )


def offered_terms(incident: Incident, decision: Decision) -> ApprovalTerms | None:
    """What a recommendation of `decision` on the incident's diagnosis offers for approval."""
    terms = terms_for(incident.diagnosis, incident.principal_id)
    if terms is None or terms.role_id != decision.role_id or terms.scope != decision.scope:
        return None  # the policy names the diagnosis's role and scope; anything else is not approvable
    return terms


def approval_lapse(incident: Incident) -> str | None:
    """Why the incident's open recommendation no longer offers what it showed (a later failure changed the
    diagnosis): None when it still does, or there is none."""
    if incident.approval_terms is None or incident.status != inc.RECOMMENDED or incident.diagnosis is None:
        return None
    return binding_mismatch(incident.approval_terms, incident.diagnosis, incident.principal_id)


def _lapsed(incident: Incident, now: datetime, why: str) -> Incident:
    shown = incident.approval_terms
    detail = f"the approval of {shown.describe() if shown else 'the recommendation'} lapsed: {why}"
    return replace(incident, approval_handle=None, approval_expires_at=None, approval_terms=None).with_action(
        Action(now, "approval-lapsed", detail))


def apply_decision(incident: Incident, decision: Decision, now: datetime, approval_ttl: timedelta) -> Incident:
    """Record a policy decision: its status and an action. A recommendation gets an approval handle (the
    incident id) bound to the terms it offers (`approval_terms`) that expires after `approval_ttl`; a still-valid
    one offering the same terms is kept, not extended. One offering other terms lapses ("approval-lapsed": a new
    approval is needed), and so does an open one that any other decision replaces."""
    what = f"{decision.role_name} at {decision.scope}" if decision.role_id and decision.scope else ""
    had_valid = approval_valid(incident, now)
    if decision.action == DecisionAction.RECOMMEND:
        terms = offered_terms(incident, decision)
        if had_valid and terms is not None and incident.approval_terms == terms:
            return incident
        if had_valid:
            why = (binding_mismatch(incident.approval_terms, incident.diagnosis, incident.principal_id)
                   if incident.approval_terms and incident.diagnosis else None)
            incident = _lapsed(incident, now, why or "the recommendation changed")
        expires = now + approval_ttl
        updated = replace(incident, status=inc.RECOMMENDED, approval_handle=incident.id if terms else None,
                          approval_expires_at=expires if terms else None, approved_by=None, approval_terms=terms,
                          updated_at=now)
        shown = f"; diagnosis {terms.fingerprint}" if terms else "; nothing approvable (no role or scope)"
        return _append(updated, Action(now, "recommended", f"assign {what}{shown}; approval expires "
                                       f"{expires.isoformat()}", rules=decision.rules))
    if had_valid and decision.action not in (DecisionAction.ASSIGN, DecisionAction.RECOMMEND):
        incident = _lapsed(incident, now, f"the decision is now {decision.action}")
    # A wait is recorded here and takes effect in start_waiting, with the verification schedule.
    status = incident.status if decision.action == DecisionAction.WAIT else (
        STATUS_FOR_ACTION.get(decision.action, incident.status))
    # Any other decision withdraws an open recommendation; an assignment consumes it in record_grant.
    keep_handle = decision.action == DecisionAction.ASSIGN
    updated = replace(
        incident,
        status=status,
        approval_handle=incident.approval_handle if keep_handle else None,
        approval_expires_at=incident.approval_expires_at if keep_handle else None,
        approval_terms=incident.approval_terms if keep_handle else None,
        updated_at=now,
    )
    detail = {
        "assign": f"assign {what}",
        "wait": "a matching role assignment is still propagating; no new assignment",
        "observe": "observe mode: diagnosed only",
    }.get(decision.action, decision.explain())
    kind = {"assign": "assign-decided", "ticket": "ticketed", "wait": "waiting", "observe": "observed"}
    return _append(updated, Action(now, kind.get(decision.action, decision.action), detail, rules=decision.rules))


def record_grant(
    incident: Incident,
    outcome_status: str,
    assignment_id: str | None,
    created_on: datetime | None,
    now: datetime,
    window: timedelta,
    lag: timedelta,
    max_verify: timedelta,
) -> Incident:
    """The role is assigned ("created" by us, or it already "exists"): schedule verification after propagation.
    Only an assignment this service created carries an assignment id (it alone may be revoked)."""
    if outcome_status not in GRANT_STATUSES:
        raise ValueError(f"record_grant needs a successful outcome ({', '.join(GRANT_STATUSES)}), "
                         f"got {outcome_status!r}")
    created = created_on or now
    due = verification_due(created, window, lag)
    updated = replace(
        incident,
        status=inc.VERIFYING,
        assignment_id=assignment_id or incident.assignment_id,
        assignment_created_at=created,
        verify_due=due,
        verify_deadline=verification_deadline(created, due, max_verify, incident.cause),
        last_grant_at=now,
        approval_handle=None,  # an approval authorizes one grant
        approval_expires_at=None,
        approval_terms=None,
        updated_at=now,
    )
    diagnosis = incident.diagnosis
    role = (diagnosis.role_name if diagnosis else None) or "role"
    scope = (diagnosis.scope if diagnosis else None) or incident.resource_id
    verb = "assigned" if outcome_status == GrantStatus.CREATED else "assignment-exists"
    return updated.with_action(Action(now, verb, f"{role} at {scope}; verify at {due.isoformat()}"))


def start_waiting(
    incident: Incident,
    role_created_on: datetime | None,
    now: datetime,
    window: timedelta,
    lag: timedelta,
    max_verify: timedelta,
) -> Incident:
    """A matching assignment younger than the propagation window exists (propagation_pending): make no new
    assignment, verify once it has propagated."""
    created = role_created_on or now
    due = verification_due(created, window, lag)
    updated = replace(
        incident,
        status=inc.VERIFYING,
        assignment_created_at=created,
        verify_due=due,
        verify_deadline=verification_deadline(created, due, max_verify, incident.cause),
        updated_at=now,
    )
    detail = f"role assigned {created.isoformat()} is still propagating; verify at {due.isoformat()}"
    return _append(updated, Action(now, "waiting", detail))

