"""Making a role assignment the policy allowed: reserve a slot of the grant budget, claim the grant, call ARM once,
record what came of it (and give the slot back when no assignment was written)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from shared.core import incidents as inc
from shared.core import roles
from shared.core.incidents import Action, Incident
from shared.core.lifecycle import record_grant
from shared.core.policy import Decision, PolicyContext
from shared.core.records import ConflictError, StoreError
from shared.core.status import GRANTED, GrantStatus
from shared.core.triage import verify_horizon
from shared.engine import budget, ticketing
from shared.engine.budget import Reservation
from shared.engine.checkpoints import checkpoint
from shared.engine.runtime import Runtime
from shared.engine.telemetry import GRANTS, traced
from shared.engine.ticketing import TicketUpdate
from shared.engine.unit_of_work import RunState, load_revocations, put_incident, share_budget_seen, update_incident
from shared.tickets.content import grant_refused_text, group_grant_text


def secure_grant(rt: Runtime, run: RunState, incident_id: str, decision: Decision, context: PolicyContext,
                 decide_with: Callable[[PolicyContext], Decision]) -> tuple[Decision, Reservation | None]:
    """The decision to act on, and the budget slot its grant holds. `decision` is `decide_with(context)`. One that
    would grant is made again on the revocations as they are now (an engineer may have revoked since the run
    began), then a slot is reserved; when a cap is reached the policy decides once more on the counts the
    reservation saw, so the refusal names its rule. Only a decision that grants comes with a slot."""
    if not decision.grants:
        return decision, None
    revocations = load_revocations(rt)
    if revocations != run.revocations:
        run.revocations = revocations
        context = replace(context, revocations=revocations)
        decision = decide_with(context)
        if not decision.grants:
            return decision, None
    answer = budget.reserve(rt, incident_id)
    run.saw_budget(answer.counts)
    share_budget_seen(rt, answer.counts)
    if answer.reservation is not None:
        return decision, answer.reservation
    decision = decide_with(replace(context, grants_last_24h=answer.counts.last_24h,
                                   grants_last_hour=answer.counts.last_hour))
    if decision.grants:  # the reservation and the policy read the same caps: this cannot be
        raise StoreError("the grant budget refused a slot the policy would grant")
    return decision, None


@traced("grant")
def grant(rt: Runtime, run: RunState, incident: Incident, decision: Decision, *, reservation: Reservation,
          etag: str | None, actor: str) -> Incident:
    now = rt.clock()
    assert decision.role_id in roles.GRANTABLE  # the policy guarantees it; never weaken
    assert decision.scope is not None and decision.role_id is not None
    assert reservation.incident_id == incident.id  # a slot of the grant budget is held for exactly this grant
    claim = replace(
        incident,
        status=inc.ASSIGNED,
        assignment_id=None,
        approved_by=actor if actor != "service" else incident.approved_by,
    ).with_action(Action(now, "grant-claimed", f"{decision.role_name} at {decision.scope}", actor))
    try:
        claimed = put_incident(rt, claim, etag)  # the loser of a race gets ConflictError here and never calls ARM
    except ConflictError:
        budget.release(rt, reservation)
        raise
    checkpoint("grant-claimed")
    rt.invalidate_evidence()  # this write changes the assignments any cached evidence shows
    # A failure raised from here on keeps the slot: the assignment may have been written.
    outcome = rt.roles.create(
        scope=decision.scope,
        principal_id=inc.principal_key(incident.principal_id),
        principal_type=decision.principal_type or "ServicePrincipal",
        role_guid=decision.role_id,
        incident_id=incident.id,
    )
    rt.telemetry.annotate(incident_id=incident.id, role=decision.role_name or "", status=outcome.status)
    rt.telemetry.count(GRANTS, status=outcome.status)
    checkpoint("grant-written")
    audit_inputs = {
        "role_id": decision.role_id,
        "role": decision.role_name,
        "scope": decision.scope,
        "principal_id": incident.principal_id,
        "principal_type": decision.principal_type,
        "outcome": outcome.status,
        "assignment_id": outcome.assignment_id,
        "budget_slot": reservation.token,
    }
    if outcome.status in GRANTED:
        run.count_grant()
        rt.store.record_grant(incident.id, now)
        rt.audit("action", f"role assignment {outcome.status}: {decision.role_name} at {decision.scope}",
                 incident_id=incident.id, correlation_id=run.correlation_id, actor=actor, inputs=audit_inputs)
        # Only an assignment this service created may ever be revoked by it.
        own_id = outcome.assignment_id if outcome.status == GrantStatus.CREATED else None
        # The result is merged into the current record, not written at the claim's etag: another instance may
        # have merged new failures into it meanwhile, and a conflict here lost the assignment id and the
        # verification schedule (the incident stayed "assigned" with no assignment, and was granted again).
        horizon = verify_horizon(incident.cause, rt.max_verify)
        saved = update_incident(rt, incident.id, lambda cur: record_grant(
            cur, outcome.status, own_id, outcome.created_on or now, now, rt.window, rt.lag, horizon)) or claimed
        rt.publish("aoai.triage.assignment.created", {
            "incident_id": incident.id, "principal_id": incident.principal_id, "resource_id": incident.resource_id,
            "role": decision.role_name, "role_id": decision.role_id, "scope": decision.scope,
            "assignment_id": outcome.assignment_id, "actor": actor,
        })
        if decision.opens_ticket and rt.sinks:
            # The group case can take a day to verify: people should know a direct assignment was made and why.
            saved = ticketing.send(rt, run, saved, TicketUpdate(group_grant_text(decision, mode=rt.settings.mode)))
        return saved
    budget.release(rt, reservation)  # no assignment was written: its slot goes back to the budget
    if outcome.status == GrantStatus.RETRY_LATER:
        rt.audit("action", f"role assignment deferred (directory replication): {outcome.message}",
                 incident_id=incident.id, correlation_id=run.correlation_id, actor=actor, inputs=audit_inputs)
        return update_incident(rt, incident.id, lambda cur: replace(cur, status=inc.DIAGNOSED).with_action(
            Action(now, "grant-retry-later", outcome.message, actor))) or claimed
    # forbidden / failed: an operator must act; ticket it with the exact command.
    rt.audit("refusal", f"role assignment {outcome.status}: {outcome.message}", incident_id=incident.id,
             correlation_id=run.correlation_id, actor=actor, inputs=audit_inputs)
    saved = update_incident(rt, incident.id, lambda cur: ticketing.claim(rt, replace(cur, status=inc.TICKETED))
                            .with_action(Action(now, f"grant-{outcome.status}", outcome.message, actor))) or claimed
    return ticketing.send(rt, run, saved, TicketUpdate(grant_refused_text(decision, outcome.message)))
