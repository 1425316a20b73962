"""On-call actions: approve a recommendation, revoke a grant this service made, suppress, reset the breaker.

Every action re-checks policy (all rules but the mode for approvals) and is audited with the engineer's identity.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from shared.core import incidents as inc
from shared.core.allowlist import normalize_object_id
from shared.core.breaker import BreakerState, reset
from shared.core.incidents import Action
from shared.core.lifecycle import approval_valid
from shared.core.model import Diagnosis
from shared.core.policy import decide
from shared.core.ports import evidence_key
from shared.core.records import ConflictError, Suppression
from shared.core.resource_ids import normalize_scope
from shared.core.status import DecisionAction
from shared.core.triage import approval_obsolete
from shared.engine.runtime import Runtime, new_correlation_id
from shared.engine.signals import act, policy_context
from shared.engine.unit_of_work import RunState, change_breaker, update_incident_audited


class ActionRefused(Exception):
    """The request is understood but not allowed; the message says why (HTTP 409 / CLI exit 1)."""


class NotFound(Exception):
    pass


@dataclass(frozen=True)
class ActionResult:
    incident_id: str
    status: str
    detail: str
    refusals: tuple[dict[str, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"incident_id": self.incident_id, "status": self.status, "detail": self.detail,
                "refusals": list(self.refusals)}


def _incident_for_action(rt: Runtime, incident_id: str, actor: str, verb: str) -> inc.Incident:
    if not actor.strip():
        raise ActionRefused(f"the {verb} identity is required")
    incident = rt.store.get_incident(incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    return incident


def approve(rt: Runtime, incident_id: str, actor: str) -> ActionResult:
    """Grant a recommended assignment on an engineer's word, if every rule but the mode still allows it."""
    incident = _incident_for_action(rt, incident_id, actor, "approving")
    correlation_id = new_correlation_id()
    now = rt.clock()
    if incident.status != inc.RECOMMENDED:
        raise ActionRefused(f"incident {incident_id} is {incident.status}, not recommended: nothing to approve")
    if not approval_valid(incident, now):
        raise ActionRefused(f"the approval window of {incident_id} expired; wait for the next recommendation")

    # Re-decide from the recommended diagnosis and fresh evidence: the role may have been assigned by hand.
    rt.refresh_evidence()
    pair = evidence_key(incident.principal_id, incident.resource_id)
    evidence = rt.evidence.gather_evidence({pair}).get(pair) if incident.principal_id else None
    diagnosis = incident.diagnosis or Diagnosis.from_json({"cause": incident.cause})
    obsolete = approval_obsolete(diagnosis, evidence, incident.resource_id, now, rt.window)
    if obsolete is not None:
        cause, why = obsolete
        rt.audit("approval", f"approval by {actor} not applied: the cause is now {cause}",
                 incident_id=incident_id, correlation_id=correlation_id, actor=actor)
        raise ActionRefused(f"the live evidence now says {cause}: {why}")

    run = RunState.begin(rt, correlation_id)
    decision = decide(diagnosis, incident.principal_id, rt.policy,
                      policy_context(run, incident, evidence, now, approved=True))
    refusals = tuple({"rule": r.rule, "reason": r.reason} for r in decision.refusals)
    rt.audit("approval", f"approval by {actor}: {decision.action}", incident_id=incident_id,
             correlation_id=correlation_id, actor=actor,
             inputs={"refusals": [r["rule"] for r in refusals], "role_id": decision.role_id,
                     "scope": decision.scope})
    if decision.action != DecisionAction.ASSIGN:
        raise ActionRefused("policy refused the approved assignment: "
                            + "; ".join(f"[{r['rule']}] {r['reason']}" for r in refusals))
    approved = replace(incident, approved_by=actor).with_action(Action(now, "approved", "", actor))
    try:
        result = act(rt, run, approved, decision, etag=incident.etag, evidence=evidence, actor=actor)
    except ConflictError:
        raise ActionRefused(f"incident {incident_id} changed while approving; retry") from None
    return ActionResult(result.id, result.status, f"{decision.role_name} at {decision.scope}", refusals)


def revoke(rt: Runtime, incident_id: str, actor: str) -> ActionResult:
    """Remove an assignment this service created. Never touches anything it did not create."""
    incident = _incident_for_action(rt, incident_id, actor, "revoking")
    correlation_id = new_correlation_id()
    if not incident.assignment_id:
        raise ActionRefused(f"incident {incident_id} has no assignment created by this service")
    assignment_id = incident.assignment_id
    deleted = rt.roles.delete_own(assignment_id)
    # Not deleted and gone: a revoke that died after ARM's delete (or someone deleted it): record it as revoked,
    # so the incident does not keep an assignment that no longer exists.
    gone = not deleted and rt.roles.get(assignment_id) is None
    done = "deleted" if deleted else "already gone" if gone else "refused (not this service's)"
    record = rt.audit_record("revoke", f"revoke by {actor}: {done} {assignment_id}", incident_id=incident_id,
                             correlation_id=correlation_id, actor=actor, inputs={"assignment_id": assignment_id})
    if not deleted and not gone:
        rt.store.append_audit(record)
        raise ActionRefused(f"assignment {assignment_id} was not deleted: it does not carry this service's marker")
    now = rt.clock()
    # TICKETED with the same cause is not re-decided, so a revoked grant is not silently re-made. The incident
    # and its audit record are written together: a crash leaves both or neither.
    updated = update_incident_audited(rt, incident_id, lambda cur: replace(
        cur, status=inc.TICKETED, assignment_id=None, verify_due=None,
    ).with_action(Action(now, "revoked", assignment_id, actor)), [record])
    return ActionResult(incident_id, updated.status if updated else inc.TICKETED, f"{done} {assignment_id}")


def suppress(rt: Runtime, target: str, duration: timedelta, reason: str, actor: str) -> Suppression:
    if not reason.strip():
        raise ActionRefused("a reason is required")
    if duration <= timedelta(0):
        raise ActionRefused("the duration must be positive")
    normalized = normalize_object_id(target) or (normalize_scope(target) if target.strip().startswith("/") else None)
    if normalized is None:
        raise ActionRefused("the target must be an object id (GUID) or a resource id starting with /subscriptions")
    now = rt.clock()
    suppression = Suppression(target=normalized, until=now + duration, reason=reason, actor=actor, created_at=now)
    rt.store.add_suppression(suppression)
    rt.audit("suppress", f"suppressed {normalized} until {suppression.until.isoformat()}: {reason}",
             correlation_id=new_correlation_id(), actor=actor, inputs={"target": normalized})
    return suppression


def reset_breaker(rt: Runtime, actor: str) -> BreakerState:
    changed = change_breaker(rt, lambda state: reset(state, actor, rt.clock()))
    if changed is None:
        raise ActionRefused("the breaker kept changing; retry")
    rt.audit("breaker", f"circuit breaker reset by {actor}", correlation_id=new_correlation_id(), actor=actor)
    return changed[1]

