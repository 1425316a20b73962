"""On-call actions: approve a recommendation, revoke a grant this service made (and lift a revocation), suppress,
reset the breaker.

Every action re-checks policy (all rules but the mode and the witness for approvals, and only for exactly the
terms the recommendation showed) and is audited with the engineer's identity.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from shared.core import incidents as inc
from shared.core import roles
from shared.core.allowlist import normalize_object_id
from shared.core.approval import ApprovalTerms
from shared.core.breaker import BreakerState, reset
from shared.core.incidents import Action
from shared.core.lifecycle import approval_valid
from shared.core.model import Diagnosis
from shared.core.policy import Decision, PolicyContext, decide
from shared.core.ports import evidence_key
from shared.core.records import ConflictError, Suppression
from shared.core.resource_ids import normalize_scope
from shared.core.revocations import Revocation, scopes_overlap
from shared.core.status import DecisionAction
from shared.core.triage import UNREVOKED, approval_obsolete, refused_by_revocation
from shared.engine.grants import secure_grant
from shared.engine.runtime import Runtime, new_correlation_id
from shared.engine.signals import act, policy_context
from shared.engine.unit_of_work import (
    RunState,
    change_breaker,
    change_revocations,
    forget_run_facts,
    load_revocations,
    update_incident,
    update_incident_audited,
)


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
    grant: ApprovalTerms | None = None  # what an approval granted: exactly the terms the recommendation showed

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"incident_id": self.incident_id, "status": self.status, "detail": self.detail,
                "refusals": list(self.refusals)}
        if self.grant is not None:
            body["grant"] = self.grant.to_json()
        return body


def _incident_for_action(rt: Runtime, incident_id: str, actor: str, verb: str) -> inc.Incident:
    if not actor.strip():
        raise ActionRefused(f"the {verb} identity is required")
    incident = rt.store.get_incident(incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    return incident


def approval_terms(rt: Runtime, incident_id: str) -> ApprovalTerms:
    """What approving the incident would grant, exactly: the terms its open recommendation showed."""
    incident = rt.store.get_incident(incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id}")
    if incident.status != inc.RECOMMENDED or incident.approval_terms is None:
        raise ActionRefused(f"incident {incident_id} is {incident.status} with no open recommendation: nothing to "
                            "approve")
    return incident.approval_terms


def approve(rt: Runtime, incident_id: str, actor: str, *, fingerprint: str | None = None) -> ActionResult:
    """Grant a recommended assignment on an engineer's word: exactly the terms the recommendation showed (and,
    with `fingerprint`, only if that is the diagnosis the engineer saw), if every rule but the mode and the
    witness still allows it."""
    incident = _incident_for_action(rt, incident_id, actor, "approving")
    correlation_id = new_correlation_id()
    now = rt.clock()
    if incident.status != inc.RECOMMENDED:
        raise ActionRefused(f"incident {incident_id} is {incident.status}, not recommended: nothing to approve")
    if not approval_valid(incident, now):
        raise ActionRefused(f"the approval window of {incident_id} expired; wait for the next recommendation")
    terms = incident.approval_terms
    if terms is None:
        raise ActionRefused(f"the recommendation of {incident_id} shows no terms to approve (made by an earlier "
                            "version); wait for the next recommendation")
    if fingerprint is not None and fingerprint.strip().lower() != terms.fingerprint:
        rt.audit("approval", f"approval by {actor} not applied: it names diagnosis {fingerprint.strip()}, the "
                 f"recommendation offers {terms.describe()}", incident_id=incident_id,
                 correlation_id=correlation_id, actor=actor, inputs={"fingerprint": fingerprint.strip()})
        raise ActionRefused(f"the recommendation now offers {terms.describe()}, not diagnosis "
                            f"{fingerprint.strip()}: review it and approve again")

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
    context = policy_context(run, incident, evidence, now, approved_terms=terms)

    def decide_with(ctx: PolicyContext) -> Decision:
        return decide(diagnosis, incident.principal_id, rt.policy, ctx)

    decision, reservation = secure_grant(rt, run, incident.id, decide_with(context), context, decide_with)
    refusals = tuple({"rule": r.rule, "reason": r.reason} for r in decision.refusals)
    rt.audit("approval", f"approval by {actor}: {decision.action}", incident_id=incident_id,
             correlation_id=correlation_id, actor=actor,
             inputs={"refusals": [r["rule"] for r in refusals], "role_id": decision.role_id,
                     "scope": decision.scope, "fingerprint": terms.fingerprint})
    if decision.action != DecisionAction.ASSIGN:
        raise ActionRefused("policy refused the approved assignment: "
                            + "; ".join(f"[{r['rule']}] {r['reason']}" for r in refusals))
    approved = replace(incident, approved_by=actor).with_action(Action(now, "approved", terms.describe(), actor))
    try:
        result = act(rt, run, approved, decision, etag=incident.etag, evidence=evidence, actor=actor,
                     reservation=reservation)
    except ConflictError:
        raise ActionRefused(f"incident {incident_id} changed while approving; retry") from None
    return ActionResult(result.id, result.status, f"{decision.role_name} at {decision.scope}", refusals, terms)


def revoke(rt: Runtime, incident_id: str, actor: str) -> ActionResult:
    """Remove an assignment this service created. Never touches anything it did not create. What was revoked
    (principal, role, scope) is recorded first, so no later incident re-grants it until `unrevoke` lifts it."""
    incident = _incident_for_action(rt, incident_id, actor, "revoking")
    correlation_id = new_correlation_id()
    if not incident.assignment_id:
        raise ActionRefused(f"incident {incident_id} has no assignment created by this service")
    now = rt.clock()
    assignment_id = incident.assignment_id
    revocation = _revocation_of(rt, incident, actor, now)
    if revocation is not None:  # recorded first: the service never grants it again, even if the delete fails
        change_revocations(rt, lambda current: current.with_entry(revocation))
    deleted = rt.roles.delete_own(assignment_id)
    # Not deleted and gone: a revoke that died after ARM's delete (or someone deleted it): record it as revoked,
    # so the incident does not keep an assignment that no longer exists.
    gone = not deleted and rt.roles.get(assignment_id) is None
    done = "deleted" if deleted else "already gone" if gone else "refused (not this service's)"
    record = rt.audit_record("revoke", f"revoke by {actor}: {done} {assignment_id}", incident_id=incident_id,
                             correlation_id=correlation_id, actor=actor,
                             inputs={"assignment_id": assignment_id,
                                     **({"revocation": revocation.to_json()} if revocation is not None else {})})
    recorded = (f" (the revocation {revocation.id} is recorded: the service will not grant it again until it is "
                "lifted)" if revocation is not None else "")
    if not deleted and not gone:
        rt.store.append_audit(record)
        raise ActionRefused(f"assignment {assignment_id} was not deleted: it does not carry this service's marker"
                            + recorded)
    # TICKETED with the same cause is not re-decided, so a revoked grant is not silently re-made. The incident
    # and its audit record are written together: a crash leaves both or neither.
    updated = update_incident_audited(rt, incident_id, lambda cur: replace(
        cur, status=inc.TICKETED, assignment_id=None, verify_due=None,
    ).with_action(Action(now, "revoked", assignment_id, actor)), [record])
    return ActionResult(incident_id, updated.status if updated else inc.TICKETED, f"{done} {assignment_id}"
                        + (f"; revocation {revocation.id} recorded" if revocation is not None else ""))


def _revocation_of(rt: Runtime, incident: inc.Incident, actor: str, now: Any) -> Revocation | None:
    """What is revoked, as ARM has it (the assignment's role and scope), or as the incident's grant recorded it."""
    assignment = rt.roles.get(incident.assignment_id) if incident.assignment_id else None
    principal = normalize_object_id(incident.principal_id)
    if assignment is not None:
        role_id, scope = roles.guid_of(assignment.role_definition_id), assignment.scope
    elif incident.diagnosis is not None and incident.diagnosis.role_id and incident.diagnosis.scope:
        role_id, scope = roles.guid_of(incident.diagnosis.role_id), incident.diagnosis.scope
    else:
        return None
    if principal is None or not scope:
        return None
    return Revocation(principal, role_id, scope, actor, now, incident_id=incident.id,
                      assignment_id=incident.assignment_id or "")


def revocations(rt: Runtime) -> list[Revocation]:
    """Every revocation in force (newest last)."""
    found = load_revocations(rt)
    if found.unreadable:
        raise ActionRefused(found.unreadable)
    return sorted(found.entries, key=lambda r: r.at)


def unrevoke(rt: Runtime, revocation_id: str, actor: str, reason: str) -> Revocation:
    """Lift a revocation: the service may grant that role at that scope again. The incidents it refused are
    decided again on their next failures."""
    if not actor.strip():
        raise ActionRefused("the identity lifting the revocation is required")
    if not reason.strip():
        raise ActionRefused("a reason is required")
    lifted: list[Revocation] = []

    def lift(current: Any) -> Any:
        found = current.find(revocation_id.strip())
        if found is None:
            raise NotFound(f"no revocation {revocation_id.strip()}")
        lifted[:] = [found]
        return current.without(found.id)

    change_revocations(rt, lift)
    revocation = lifted[0]
    now = rt.clock()
    correlation_id = new_correlation_id()
    rt.audit("unrevoke", f"revocation {revocation.id} lifted by {actor}: {reason}", incident_id=None,
             correlation_id=correlation_id, actor=actor, inputs={"revocation": revocation.to_json(), "reason": reason})
    for incident in rt.store.open_incidents_of_principal(revocation.principal_id):
        scope = (incident.diagnosis.scope if incident.diagnosis else None) or incident.resource_id
        if (incident.status != inc.TICKETED or incident.principal_id != revocation.principal_id
                or not scopes_overlap(scope, revocation.scope) or not refused_by_revocation(incident)):
            continue
        update_incident(rt, incident.id, lambda cur: cur.with_action(
            Action(now, UNREVOKED, f"revocation {revocation.id} lifted: {reason}", actor)))
        rt.audit("unrevoke", f"revocation {revocation.id} lifted by {actor}: decided again on the next failures",
                 incident_id=incident.id, correlation_id=correlation_id, actor=actor,
                 inputs={"revocation": revocation.id})
    return revocation


def suppress(rt: Runtime, target: str, duration: timedelta, reason: str, actor: str, *,
             incident_id: str | None = None) -> Suppression:
    """Suppress `target` (an object id or a resource id) for `duration`. `incident_id`: the incident it was
    suppressed from (a chat link or the incident's suppress route), so the incident's audit shows it."""
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
    forget_run_facts(rt)
    rt.audit("suppress", f"suppressed {normalized} until {suppression.until.isoformat()}: {reason}",
             incident_id=incident_id, correlation_id=new_correlation_id(), actor=actor, inputs={"target": normalized})
    return suppression


def reset_breaker(rt: Runtime, actor: str) -> BreakerState:
    changed = change_breaker(rt, lambda state: reset(state, actor, rt.clock()))
    if changed is None:
        raise ActionRefused("the breaker kept changing; retry")
    rt.audit("breaker", f"circuit breaker reset by {actor}", correlation_id=new_correlation_id(), actor=actor)
    return changed[1]

