"""Diagnose → decide → act → persist for one failure signal, safely under concurrency.

The pattern for every side effect (grant, ticket): first persist the decision with a conditional write (create, or
replace at the etag we read). Only the instance that wins that write performs the side effect; the loser re-reads
and sees the decision already taken. A crash between the two leaves a visible "claimed"/"ticket pending" state that
a later run completes, so nothing is lost and nothing is done twice.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.core import incidents as inc
from shared.core import roles
from shared.core.breaker import BreakerState
from shared.core.diagnose import diagnose
from shared.core.incidents import Action, Incident
from shared.core.lifecycle import (
    apply_decision,
    open_or_update,
    record_grant,
    start_waiting,
)
from shared.core.model import Diagnosis, Evidence, FailureSignal
from shared.core.policy import Decision, PolicyContext, decide
from shared.core.suppression import suppressed_targets
from shared.engine.runtime import Runtime
from shared.state.base import ConflictError, StoreError
from shared.tickets.base import TicketAuthError, TicketError
from shared.tickets.content import ticket_content
from shared.tickets.throttle import should_comment

log = logging.getLogger("triage")

MAX_ATTEMPTS = 5
# A claim (grant or ticket) older than this without its result is taken over by a later run.
STALE_CLAIM = timedelta(minutes=2)
BREAKER_KEY = "circuit-breaker"
SETTLED_READ_BATCH = 2000  # incidents read per batch when looking for the steady state
# Refusals that lift by themselves (a new run, a new day, the cool-down passing, an operator's breaker reset). An
# incident ticketed only for these is decided again on its next failures; before, it stayed ticketed for good, so
# a per-run cap or a breaker reset never led to the grant.
TRANSIENT_RULES = frozenset({"run_cap", "daily_cap", "cooldown", "circuit_breaker"})


@dataclass
class RunState:
    """Per-run facts read once (caps, suppressions, breaker) and what this run did."""

    correlation_id: str
    now: datetime
    grants_last_24h: int
    suppressed: frozenset[str]
    breaker_open: bool
    grants_this_run: int = 0
    ticket_auth_errors: set[str] = field(default_factory=set)
    outcomes: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def begin(cls, rt: Runtime, correlation_id: str) -> RunState:
        now = rt.clock()
        return cls(
            correlation_id=correlation_id,
            now=now,
            grants_last_24h=rt.store.count_grants_since(now - timedelta(hours=24)),
            suppressed=suppressed_targets(rt.store.active_suppressions(now), now),
            breaker_open=load_breaker(rt).open,
        )


def load_breaker(rt: Runtime) -> BreakerState:
    value, _ = rt.store.get_value(BREAKER_KEY)
    return BreakerState.from_dict(value) if value else BreakerState()


# ---------------------------------------------------------------------------------------------------------------


def handle_signal(rt: Runtime, run: RunState, signal: FailureSignal, evidence: Evidence | None) -> Incident:
    """Diagnose one failure group and act on it. Retries on lost races; raises StoreError if it can't persist."""
    now = rt.clock()
    signal = _with_declared_type(rt, signal, evidence)
    # Role ages are judged at the time of the failures, not of the scan: failures re-read from before a role took
    # effect are propagation. Judged at scan time they read "role present, still denied", and an incident fixed
    # by hand was ticketed as unfixable instead of being verified.
    diagnosis = diagnose(signal, evidence, now=_failed_at(signal, now), propagation_window=rt.window)
    iid = inc.incident_id(inc.fingerprint(signal.object_id, signal.resource_id, diagnosis.cause))
    for _ in range(MAX_ATTEMPTS):
        existing = rt.store.get_incident(iid)
        try:
            return _apply(rt, run, existing, signal, diagnosis, evidence, now)
        except ConflictError:
            continue
    raise StoreError(f"incident {iid} kept changing under concurrent writers")


_SETTLED_CAUSE = frozenset({inc.VERIFYING, *inc.CLOSED_STATUSES})


def _failed_at(signal: FailureSignal, now: datetime) -> datetime:
    return min(now, signal.last_seen) if signal.last_seen else now


def settled_signals(rt: Runtime, signals: Sequence[FailureSignal]) -> dict[int, str]:
    """The steady state, found without live evidence and with batched store reads: the signals (by index) that a
    timer scan may skip, each with its incident's id, because handling it would change nothing.

    A signal qualifies when every one of its rows lies before the watermark (an earlier scan read that span) and
    its incident already holds its newest failure, so merging it adds no failure and moves no time; and the
    incident waits on nothing a scan would act on (see `_settled`). The incident is found by the text's
    diagnosis: fingerprints are keyed by cause family, which live evidence changes only through the account's
    settings, and then the incident looked up does not exist and the signal goes the full way. What is given up:
    failures already handled are not diagnosed again against newer role assignments; a role written by hand is
    seen through its role-assignment event, or the caller's next failure.
    """
    now = rt.clock()
    by_incident: dict[str, list[int]] = {}
    for index, signal in enumerate(signals):
        if signal.count < 1 or signal.overlap_count != signal.count or signal.last_seen is None:
            continue
        text_only = diagnose(signal, None, now=_failed_at(signal, now), propagation_window=rt.window)
        iid = inc.incident_id(inc.fingerprint(signal.object_id, signal.resource_id, text_only.cause))
        by_incident.setdefault(iid, []).append(index)
    settled: dict[int, str] = {}
    ids = list(by_incident)
    for at in range(0, len(ids), SETTLED_READ_BATCH):  # batches bound the incidents held at once
        known = rt.store.get_incidents(ids[at : at + SETTLED_READ_BATCH])
        for iid, incident in known.items():
            settled.update((i, iid) for i in by_incident[iid] if _settled(incident, signals[i], now))
    return settled


def _settled(incident: Incident, signal: FailureSignal, now: datetime) -> bool:
    """Merging `signal` into `incident` would take the "steady state: no write, no ticket call" way out of
    `_apply`, whatever the evidence says about its cause (the conditions of `_needs_decision` and `_recurrence`)."""
    if signal.last_seen is None or incident.last_seen < signal.last_seen or incident.ticket_pending:
        return False
    if incident.status in (inc.DETECTED, inc.DIAGNOSED, inc.SUPPRESSED):
        return False
    if not incident.is_open:  # a failure after the close reopens it
        return incident.closed_at is not None and signal.last_seen <= incident.closed_at
    if incident.status == inc.RECOMMENDED and incident.approval_expires_at and incident.approval_expires_at <= now:
        return False
    if incident.status == inc.TICKETED and _refused_only_for_transient(incident):
        return False
    return not (incident.status == inc.ASSIGNED and incident.assignment_id is None)


def _with_declared_type(rt: Runtime, signal: FailureSignal, evidence: Evidence | None) -> FailureSignal:
    """When nothing observed says what kind of principal failed, use the type its allowlist entry declares: the
    operator knows its own identities, and ARM rejects a wrong declaration (UnmatchedPrincipalType) anyway."""
    if signal.principal_type or (evidence is not None and evidence.principal_type):
        return signal
    entry = rt.policy.allowlist.find(signal.object_id)
    return replace(signal, principal_type=entry.principal_type) if entry else signal


def _needs_decision(existing: Incident | None, merged: Incident, now: datetime) -> bool:
    if existing is None or merged.status in (inc.DETECTED, inc.DIAGNOSED, inc.SUPPRESSED):
        return True
    if merged.status in (inc.RECOMMENDED, inc.TICKETED) and existing.cause != merged.cause:
        return True
    if merged.status == inc.RECOMMENDED and merged.approval_expires_at and merged.approval_expires_at <= now:
        return True
    if merged.status == inc.TICKETED and _refused_only_for_transient(merged):
        return True
    # A grant claimed by an instance that died before recording the result: take it over. The claim's age is that
    # of its "grant-claimed" action: `updated_at` moves with every merge of new failures (and is `now` in
    # `merged`), so a dead claim was never taken over while the caller kept failing.
    claimed_at = _grant_claimed_at(merged) or existing.updated_at
    return (
        merged.status == inc.ASSIGNED
        and merged.assignment_id is None
        and (claimed_at is None or now - claimed_at > STALE_CLAIM)
    )


def _grant_claimed_at(incident: Incident) -> datetime | None:
    return next((a.at for a in reversed(incident.actions) if a.kind == "grant-claimed"), None)


def _refused_only_for_transient(incident: Incident) -> bool:
    """The incident's latest action is a ticket decision whose refusals (`[rule] reason; ...`) are all transient."""
    last = incident.actions[-1] if incident.actions else None
    if last is None or last.kind != "ticketed":
        return False
    rules = set(re.findall(r"\[([a-z_]+)\]", last.detail))
    return bool(rules) and rules <= TRANSIENT_RULES


def _apply(
    rt: Runtime,
    run: RunState,
    existing: Incident | None,
    signal: FailureSignal,
    diagnosis: Diagnosis,
    evidence: Evidence | None,
    now: datetime,
) -> Incident:
    merged = open_or_update(existing, signal, diagnosis, now)
    if existing is not None and existing.status == merged.status and existing.status in _SETTLED_CAUSE:
        # Under verification the outcome of the check decides, so the cause being verified stays: re-diagnosing the
        # failures re-read from before the role took effect replaced it (and the group-cache case lost its 24 h
        # horizon). A closed incident that did not reopen keeps the cause it was closed with: those rows are
        # history. Counts and times are merged as usual; only the "cause-changed" action is dropped.
        merged = replace(merged, cause=existing.cause, diagnosis=existing.diagnosis, actions=existing.actions)
    if evidence is not None:
        merged = replace(
            merged,
            principal_type=merged.principal_type or evidence.principal_type or signal.principal_type,
            principal_name=merged.principal_name or evidence.principal_name,
        )
    etag = existing.etag if existing else None
    if not _needs_decision(existing, merged, now):
        return _recurrence(rt, run, existing, merged, etag, now)

    decision = decide(diagnosis, signal.object_id, rt.policy, policy_context(rt, run, merged, evidence, now))
    still_refused = (existing is not None and existing.status == inc.TICKETED and decision.action == "ticket"
                     and existing.cause == merged.cause)
    if still_refused:
        return _recurrence(rt, run, existing, merged, etag, now)  # no ticket rewrite on every scan
    changed_course = existing is None or existing.status != _status_for(decision) or existing.cause != merged.cause
    if changed_course:
        rt.audit(
            "refusal" if decision.refusals else "decision",
            f"{decision.action}: {diagnosis.cause}"
            + ("; " + "; ".join(f"[{r.rule}] {r.reason}" for r in decision.refusals) if decision.refusals else ""),
            incident_id=merged.id,
            correlation_id=run.correlation_id,
            inputs={
                "principal_id": signal.object_id,
                "resource_id": signal.resource_id,
                "cause": diagnosis.cause,
                "role_id": diagnosis.role_id,
                "scope": diagnosis.scope,
                "mode": rt.settings.mode,
                "refusals": [r.rule for r in decision.refusals],
            },
        )
    result = act(rt, run, merged, decision, etag=etag, evidence=evidence, actor="service")
    run.outcomes.append({"incident": result.id, "action": decision.action, "cause": diagnosis.cause})
    return result


def _status_for(decision: Decision) -> str:
    return {
        "assign": inc.ASSIGNED,
        "recommend": inc.RECOMMENDED,
        "ticket": inc.TICKETED,
        "wait": inc.VERIFYING,
        "suppressed": inc.SUPPRESSED,
    }.get(decision.action, inc.DIAGNOSED)


def policy_context(
    rt: Runtime, run: RunState, incident: Incident, evidence: Evidence | None, now: datetime, approved: bool = False
) -> PolicyContext:
    return PolicyContext(
        now=now,
        grants_this_run=run.grants_this_run,
        grants_last_24h=run.grants_last_24h,
        last_grant_at=incident.last_grant_at,
        suppressed_targets=run.suppressed,
        breaker_open=run.breaker_open,
        approved=approved,
        evidence_principal_type=(evidence.principal_type if evidence else None) or incident.principal_type,
        resource_id=incident.resource_id,
    )


def act(
    rt: Runtime,
    run: RunState,
    incident: Incident,
    decision: Decision,
    *,
    etag: str | None,
    evidence: Evidence | None,
    actor: str,
) -> Incident:
    """Persist the decision (conditional write), then perform its side effect if this instance won."""
    now = rt.clock()
    if decision.action == "assign":
        return _grant(rt, run, incident, decision, etag=etag, actor=actor)
    if decision.action == "wait":
        created = _newest_recent_assignment(evidence, min(now, incident.last_seen), rt.window) or now
        waiting = start_waiting(incident, created, now, rt.window, rt.lag, rt.max_verify)
        return put_incident(rt, waiting, etag)
    if decision.action in ("observe", "suppressed"):
        updated = apply_decision(incident, decision, now, timedelta(hours=rt.settings.approval_ttl_hours))
        return put_incident(rt, updated, etag)
    # recommend / ticket: claim the ticket, then open it.
    updated = apply_decision(incident, decision, now, timedelta(hours=rt.settings.approval_ttl_hours))
    claimed = put_incident(rt, replace(updated, ticket_pending=bool(rt.sinks)), etag)
    return finish_tickets(rt, run, claimed, action_text=_action_text(rt, claimed, decision))


def _newest_recent_assignment(evidence: Evidence | None, now: datetime, window: timedelta) -> datetime | None:
    if evidence is None or not evidence.assignments:
        return None
    recent = [a.created_on for a in evidence.assignments if a.created_on and now - a.created_on < window]
    return max(recent) if recent else None


def put_incident(rt: Runtime, incident: Incident, etag: str | None) -> Incident:
    return rt.store.put_incident(replace(incident, updated_at=rt.clock()), expected_etag=etag)


def update_incident(rt: Runtime, incident_id: str, change: Callable[[Incident], Incident]) -> Incident | None:
    """Read-modify-write with retries, for recording results after a side effect."""
    for _ in range(MAX_ATTEMPTS):
        current = rt.store.get_incident(incident_id)
        if current is None:
            return None
        try:
            return put_incident(rt, change(current), current.etag)
        except ConflictError:
            continue
    raise StoreError(f"incident {incident_id} kept changing under concurrent writers")


# ---------------------------------------------------------------------------------------------------------------
# grants


def _grant(rt: Runtime, run: RunState, incident: Incident, decision: Decision, *, etag: str | None,
           actor: str) -> Incident:
    now = rt.clock()
    assert decision.role_id in roles.GRANTABLE  # the policy guarantees it; never weaken
    claim = replace(
        incident,
        status=inc.ASSIGNED,
        assignment_id=None,
        approved_by=actor if actor != "service" else incident.approved_by,
    ).with_action(Action(now, "grant-claimed", f"{decision.role_name} at {decision.scope}", actor))
    claimed = put_incident(rt, claim, etag)  # the loser of a race gets ConflictError here and never calls ARM
    rt.invalidate_evidence()  # this write changes the assignments any cached evidence shows
    outcome = rt.roles.create(
        scope=decision.scope,
        principal_id=inc.principal_key(incident.principal_id),
        principal_type=decision.principal_type or "ServicePrincipal",
        role_guid=decision.role_id,
        incident_id=incident.id,
    )
    audit_inputs = {
        "role_id": decision.role_id,
        "role": decision.role_name,
        "scope": decision.scope,
        "principal_id": incident.principal_id,
        "principal_type": decision.principal_type,
        "outcome": outcome.status,
        "assignment_id": outcome.assignment_id,
    }
    if outcome.status in ("created", "exists"):
        run.grants_this_run += 1
        run.grants_last_24h += 1
        rt.store.record_grant(incident.id, now)
        rt.audit("action", f"role assignment {outcome.status}: {decision.role_name} at {decision.scope}",
                 incident_id=incident.id, correlation_id=run.correlation_id, actor=actor, inputs=audit_inputs)
        # Only an assignment this service created may ever be revoked by it.
        own_id = outcome.assignment_id if outcome.status == "created" else None
        # The result is merged into the current record, not written at the claim's etag: another instance may
        # have merged new failures into it meanwhile, and a conflict here lost the assignment id and the
        # verification schedule (the incident stayed "assigned" with no assignment, and was granted again).
        saved = update_incident(rt, incident.id, lambda cur: record_grant(
            cur, outcome.status, own_id, outcome.created_on or now, now, rt.window, rt.lag,
            _verify_horizon(rt, incident.cause))) or claimed
        rt.publish("aoai.triage.assignment.created", {
            "incident_id": incident.id, "principal_id": incident.principal_id, "resource_id": incident.resource_id,
            "role": decision.role_name, "role_id": decision.role_id, "scope": decision.scope,
            "assignment_id": outcome.assignment_id, "actor": actor,
        })
        if decision.opens_ticket and rt.sinks:
            # The group case can take a day to verify: people should know a direct assignment was made and why.
            saved = finish_tickets(rt, run, saved, action_text=(
                f"Assigned {decision.role_name} directly at {decision.scope} (mode {rt.settings.mode}). The "
                "identity held the role only through a group; managed identities see group changes only after "
                "their ~24 h token cache expires, so verification runs for up to a day."))
        return saved
    if outcome.status == "retry_later":
        rt.audit("action", f"role assignment deferred (directory replication): {outcome.message}",
                 incident_id=incident.id, correlation_id=run.correlation_id, actor=actor, inputs=audit_inputs)
        return update_incident(rt, incident.id, lambda cur: replace(cur, status=inc.DIAGNOSED).with_action(
            Action(now, "grant-retry-later", outcome.message, actor))) or claimed
    # forbidden / failed: an operator must act; ticket it with the exact command.
    rt.audit("refusal", f"role assignment {outcome.status}: {outcome.message}", incident_id=incident.id,
             correlation_id=run.correlation_id, actor=actor, inputs=audit_inputs)
    saved = update_incident(rt, incident.id, lambda cur: replace(
        cur, status=inc.TICKETED, ticket_pending=bool(rt.sinks)).with_action(
        Action(now, f"grant-{outcome.status}", outcome.message, actor))) or claimed
    return finish_tickets(
        rt, run, saved,
        action_text=f"Tried to assign {decision.role_name} at {decision.scope} and Azure refused: "
        f"{outcome.message}. Run the fix command with an identity allowed to assign roles.",
    )


def _verify_horizon(rt: Runtime, cause: str) -> timedelta:
    # Managed identities see group changes only after ~24 h token caches expire: never shorter than that.
    return max(rt.max_verify, timedelta(hours=24)) if cause == "group_membership_cache" else rt.max_verify


# ---------------------------------------------------------------------------------------------------------------
# tickets


def _action_text(rt: Runtime, incident: Incident, decision: Decision) -> str:
    diag = incident.diagnosis
    if decision.action == "recommend":
        return (f"Recommended, not applied (mode {rt.settings.mode}): assign {decision.role_name} at "
                f"{decision.scope}. An on-call engineer can approve it.")
    if decision.refusals and diag.get("role_fixable"):
        reasons = "; ".join(f"{r.rule}: {r.reason}" for r in decision.refusals)
        return f"No automatic change. Policy refused the assignment ({reasons}). Apply the fix by hand."
    return "No automatic change: a role assignment does not fix this. Follow the fix steps."


def approve_hint(incident: Incident) -> str:
    return (f"python -m shared approve {incident.id} --by <you>   or   "
            f"POST /api/incidents/{incident.id}/approve")


def _sink_call(rt: Runtime, run: RunState, incident: Incident, call: Callable[[Any], Any]) -> tuple[dict, bool]:
    refs = dict(incident.ticket_refs)
    pending = False
    for sink in rt.sinks:
        try:
            ref = call(sink)
        except TicketAuthError as exc:
            pending = True
            if sink.name not in run.ticket_auth_errors:  # one operator error per sink per run, not per incident
                run.ticket_auth_errors.add(sink.name)
                log.error("ticket sink %s rejected its credentials: %s", sink.name, exc)
        except TicketError as exc:
            pending = True
            log.warning("ticket sink %s failed for %s, will retry next run: %s", sink.name, incident.id, exc)
        else:
            if ref is not None:
                refs[sink.name] = ref.url or ref.ref
    return refs, pending


def finish_tickets(rt: Runtime, run: RunState, incident: Incident, *, action_text: str,
                    comment: str | None = None, escalated: bool = False) -> Incident:
    if not rt.sinks:
        return incident
    content = ticket_content(
        incident, mode=rt.settings.mode, action=action_text,
        approve_hint=approve_hint(incident) if incident.status == inc.RECOMMENDED else None,
        escalated=escalated,
    )
    had_ticket = bool(incident.ticket_refs)
    refs, pending = _sink_call(rt, run, incident, lambda s: s.open_or_update(content, comment=comment))
    now = rt.clock()
    result = update_incident(rt, incident.id, lambda cur: replace(
        cur, ticket_refs=refs, ticket_pending=pending,
        last_comment_at=now if comment else cur.last_comment_at,
    ))
    if refs and not had_ticket:
        rt.audit("action", "ticket opened: " + ", ".join(f"{k}={v}" for k, v in refs.items()),
                 incident_id=incident.id, correlation_id=run.correlation_id)
        rt.publish("aoai.triage.ticket.opened", {"incident_id": incident.id, "tickets": refs,
                                                 "cause": incident.cause})
    return result or incident


def resolve_tickets(rt: Runtime, run: RunState, incident: Incident, comment: str) -> Incident:
    if not rt.sinks or not incident.ticket_refs:
        return incident
    content = ticket_content(incident, mode=rt.settings.mode, action=comment)
    refs, pending = _sink_call(rt, run, incident, lambda s: s.resolve(content, comment=comment))
    return update_incident(rt, incident.id, lambda cur: replace(cur, ticket_pending=pending)) or incident


def _recurrence(rt: Runtime, run: RunState, existing: Incident | None, merged: Incident, etag: str | None,
                now: datetime) -> Incident:
    """No new decision: persist counts if they changed; update the ticket at most once per interval."""
    assert existing is not None
    new_failures = merged.count - existing.count
    interval = timedelta(minutes=rt.settings.ticket_comment_interval_minutes)
    # Staleness is judged on the stored record: `merged.updated_at` is always `now` (open_or_update sets it), which
    # made a pending ticket look freshly claimed forever, so it was never retried.
    retry_pending = merged.ticket_pending and (existing.updated_at is None or now - existing.updated_at > STALE_CLAIM)
    # No "still failing" comment while a role propagates (verifying): those failures are expected, and the
    # check's outcome (resolved or escalated) is what the ticket is told.
    comment_due = (
        bool(merged.ticket_refs) and new_failures > 0 and merged.is_open and merged.status != inc.VERIFYING
        and should_comment(merged.last_comment_at, now, interval)
    )
    if new_failures <= 0 and merged.last_seen == existing.last_seen and not retry_pending:
        return existing  # steady state: no write, no ticket call
    saved = put_incident(rt, merged, etag)
    if retry_pending and not comment_due:
        return _retry_tickets(rt, run, saved)
    if comment_due:
        comment = (f"Still failing: {new_failures} more failure(s); {merged.count} in total, last seen "
                   f"{merged.last_seen.isoformat()}.")
        return finish_tickets(rt, run, saved, action_text=_last_action_text(saved), comment=comment,
                               escalated=saved.status == inc.ESCALATED)
    return saved


def _retry_tickets(rt: Runtime, run: RunState, incident: Incident) -> Incident:
    """Redo the ticket operation that failed. A closed incident's failed operation was the close: retrying it
    with open_or_update would have reopened the ticket the verification had just resolved."""
    if not incident.is_open and not incident.ticket_refs:  # no ticket was ever opened: nothing left to close
        return update_incident(rt, incident.id, lambda cur: replace(cur, ticket_pending=False)) or incident
    if not incident.is_open:
        closing = next((a.detail for a in reversed(incident.actions) if a.kind in ("resolved", "closed-unverified")),
                       _last_action_text(incident))
        return resolve_tickets(rt, run, incident, closing)
    return finish_tickets(rt, run, incident, action_text=_last_action_text(incident),
                           escalated=incident.status == inc.ESCALATED)


def retry_pending_tickets(rt: Runtime, run: RunState, handled: set[str]) -> int:
    """Retry stale "ticket pending" incidents this run did not see. Without this, a failed ticket operation was
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
        _retry_tickets(rt, run, claimed)
        retried += 1
    return retried


def _last_action_text(incident: Incident) -> str:
    for action in reversed(incident.actions):
        if action.detail:
            return f"{action.kind}: {action.detail}"
    return incident.status

