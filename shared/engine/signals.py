"""Diagnose → decide → act → persist for one failure signal, safely under concurrency (see unit_of_work).

Each signal is diagnosed and fingerprinted once per pass: `triage_signal` does both and hands the result on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, replace
from datetime import datetime, timedelta
from operator import attrgetter
from typing import Any

from shared.core import incidents as inc
from shared.core import triage
from shared.core.approval import ApprovalTerms
from shared.core.collector import collection_paused
from shared.core.correlation import WITNESS_WINDOW, is_server_source, server_witness
from shared.core.diagnose import diagnose
from shared.core.incidents import Incident
from shared.core.lifecycle import apply_decision, open_or_update, start_waiting
from shared.core.model import Diagnosis, Evidence, FailureSignal
from shared.core.policy import APPROVABLE_RULES, Decision, PolicyContext, decide
from shared.core.records import AuditRecord
from shared.core.sources import error_text
from shared.core.status import DecisionAction
from shared.engine import ticketing
from shared.engine.budget import Reservation
from shared.engine.grants import grant, secure_grant
from shared.engine.runtime import Runtime
from shared.engine.ticketing import TicketUpdate
from shared.engine.unit_of_work import RunState, put_incident, retry_on_conflict
from shared.tickets.content import decision_text, last_action_text, still_failing_comment

log = logging.getLogger("triage")

SETTLED_READ_BATCH = 5000  # settled views (records.SettledView: a few fields) read per batch by the steady-state check


@dataclass(frozen=True)
class Triaged:
    """A signal with its diagnosis and the id of the incident it belongs to."""

    signal: FailureSignal
    diagnosis: Diagnosis
    fingerprint: str
    incident_id: str


def triage_signal(rt: Runtime, signal: FailureSignal, evidence: Evidence | None, now: datetime) -> Triaged:
    diagnosis = diagnose(signal, evidence, now=triage.failed_at(signal, now), propagation_window=rt.window)
    fp = inc.fingerprint(signal.object_id, signal.resource_id, diagnosis.cause, inc.keyed_scope(signal, diagnosis))
    return Triaged(signal, diagnosis, fp, inc.incident_id(fp))


# The fields of a signal a diagnosis never reads: how many rows a group holds and when its first one was. A repeat
# scan sees them change as old rows leave the window, and nothing else of a group that stopped failing.
_UNREAD_FIELDS = frozenset({"count", "overlap_count", "first_seen"})
_text_key_of = attrgetter(*(f.name for f in fields(FailureSignal) if f.name not in _UNREAD_FIELDS))
# Bounded, so a process's memory stays flat as groups grow: past it, texts not seen yet are diagnosed every time.
TEXT_IDS_KEPT = 20_000
TEXT_IDS: dict[tuple[Any, ...], str] = {}  # (signal text fields, failed at, window) -> incident id


def text_incident_id(rt: Runtime, signal: FailureSignal, now: datetime) -> str:
    """`triage_signal(rt, signal, None, now).incident_id`, remembered per process: the text-only triage is a pure
    function of the signal's other fields, the time its failures are judged at and the propagation window, so a
    group a repeat scan reads again is found without a diagnosis."""
    # The window as its setting (`rt.window` makes a timedelta of it on every call).
    key = (_text_key_of(signal), triage.failed_at(signal, now), rt.settings.propagation_window_seconds)
    found = TEXT_IDS.get(key)
    if found is None:
        found = triage_signal(rt, signal, None, now).incident_id
        if len(TEXT_IDS) < TEXT_IDS_KEPT:
            TEXT_IDS[key] = found
    return found


def handle_signal(rt: Runtime, run: RunState, signal: FailureSignal, evidence: Evidence | None,
                  triaged: Triaged | None = None, *, witness: str | None = None,
                  read_again: Callable[[], Evidence | None] | None = None, decide: bool = True) -> Incident:
    """Diagnose one failure group and act on it. Retries on lost races; raises StoreError if it can't persist.
    `triaged` is this pass's diagnosis of the signal when it was made already without evidence (and there is none).
    `witness` names what confirms a failure that did not come from a server-side row (a trusted event topic).
    `read_again` is given when `evidence` was not read from ARM by this run (a resumed scan's checkpoint): it
    serves the diagnosis and a ticket, but a decision that would grant is made again, before anything is written,
    on what `read_again()` reads now. With `decide=False` only a recurrence is handled (counts, the ticket's
    comment or retry): a failure that needs a new decision raises DecisionDue before anything is written."""
    now = rt.clock()
    triaged = triage_with_evidence(rt, signal, evidence, triaged, now)
    witnessed = witness or server_witness(signal)
    try:
        return retry_on_conflict(rt, triaged.incident_id, lambda existing: _apply(
            rt, run, existing, triaged, evidence, now, witnessed, may_grant=read_again is None, may_decide=decide))
    except _EvidenceTooOld:
        assert read_again is not None
        return handle_signal(rt, run, signal, read_again(), witness=witness)


def triage_with_evidence(rt: Runtime, signal: FailureSignal, evidence: Evidence | None, triaged: Triaged | None,
                         now: datetime) -> Triaged:
    """The signal diagnosed on its evidence (`triaged`: the text's diagnosis, reused where evidence adds nothing);
    an evidence outage keeps the incident's last good diagnosis."""
    typed = triage.with_declared_type(signal, evidence, rt.policy.allowlist)
    if triaged is None or evidence is not None or typed is not signal or triaged.signal is not signal:
        triaged = triage_signal(rt, typed, evidence, now)
    if evidence is not None and not evidence.complete:
        triaged = _last_good_triage(rt, triaged)
    return triaged


class _EvidenceTooOld(Exception):
    """A decision would grant on evidence this run did not read: nothing was written; read it again first."""


class DecisionDue(Exception):  # noqa: N818 - not an error: the caller handles the failure the usual way
    """`handle_signal(decide=False)` met a failure that needs a new decision: nothing was written."""


def _last_good_triage(rt: Runtime, triaged: Triaged) -> Triaged:
    """An evidence outage never downgrades: the failure goes to the incident it belongs to with the diagnosis that
    incident was last decided on, whatever the degraded diagnosis says (its cause family may differ). None known:
    the degraded diagnosis stands, and the policy refuses any grant on it."""
    signal = triaged.signal
    scoped = triage.incident_ids_of(signal.object_id, signal.resource_id,
                                    inc.keyed_scope(signal, triaged.diagnosis))
    known = rt.store.get_incidents({*scoped, *triage.incident_ids_of(signal.object_id, signal.resource_id)})
    # An incident of the project the failure names comes first: another project's decision never stands for it.
    kept = triage.last_good(known[i] for i in scoped if i in known) or triage.last_good(known.values())
    if kept is None or kept.diagnosis is None:
        return triaged
    return Triaged(signal, kept.diagnosis, kept.fingerprint, kept.id)


def settled_signals(rt: Runtime, signals: Sequence[FailureSignal],
                    text_triage: dict[int, Triaged] | None = None) -> dict[int, str]:
    """The steady state, found without live evidence and with batched store reads: the signals (by index) that a
    timer scan may skip, each with its incident's id, because handling it would change nothing. The text-only
    diagnoses of the signals not settled are left in `text_triage` (by index), for the rest of the pass.

    A signal qualifies when every one of its rows lies before the watermark (an earlier scan read that span) and
    `triage.settled` holds for its incident. The incident is found by the text's diagnosis: fingerprints are keyed
    by cause family, which live evidence changes only through the account's settings, and then the incident looked
    up does not exist and the signal goes the full way. What is given up: failures already handled are not
    diagnosed again against newer role assignments; a role written by hand is seen through its role-assignment
    event, or the caller's next failure.
    """
    with collection_paused():  # the views die with this call: never promoted (shared/core/collector.py)
        return _settled_signals(rt, signals, text_triage)


def _settled_signals(rt: Runtime, signals: Sequence[FailureSignal],
                     text_triage: dict[int, Triaged] | None) -> dict[int, str]:
    now = rt.clock()
    by_incident: dict[str, list[int]] = {}
    for index, signal in enumerate(signals):
        if signal.count < 1 or signal.overlap_count != signal.count or signal.last_seen is None:
            continue
        # Only the incident id is kept here: holding every diagnosis until the reads are done costs ~2 KB a group.
        by_incident.setdefault(text_incident_id(rt, signal, now), []).append(index)
    settled: dict[int, str] = {}
    ids = sorted(by_incident)  # batches of neighbouring ids: a store reading key ranges reads each view once
    for at in range(0, len(ids), SETTLED_READ_BATCH):  # batches bound the incidents held at once
        # The compact views (records.settled_view), kept in step with every incident write: a few small entities
        # per partition instead of whole incidents.
        known = rt.store.get_settled(ids[at : at + SETTLED_READ_BATCH])
        for iid, incident in known.items():
            settled.update((i, iid) for i in by_incident[iid] if triage.settled(incident, signals[i], now))
    if text_triage is not None:
        # The signals that go on keep their text diagnosis for the rest of the pass (made again: the per-text
        # caches make the second one cheap).
        text_triage.update((i, triage_signal(rt, signals[i], None, now)) for indices in by_incident.values()
                           for i in indices if i not in settled)
    return settled


def _apply(rt: Runtime, run: RunState, existing: Incident | None, triaged: Triaged, evidence: Evidence | None,
           now: datetime, witness: str | None, *, may_grant: bool = True, may_decide: bool = True) -> Incident:
    signal, diagnosis = triaged.signal, triaged.diagnosis
    merged = open_or_update(existing, signal, diagnosis, now, fingerprint=triaged.fingerprint)
    merged = triage.with_evidence_identity(triage.keep_verified_cause(existing, merged), evidence, signal,
                                           routing_tag=rt.settings.routing_tag)
    etag = existing.etag if existing else None
    complete = evidence is None or evidence.complete
    if triage.needs_decision(existing, merged, now, evidence_complete=complete, witnessed=witness is not None):
        if not may_decide:
            raise DecisionDue(merged.id)
        context = policy_context(run, merged, evidence, now, signal=signal, witness=witness)

        def decide_with(ctx: PolicyContext) -> Decision:
            with rt.telemetry.span("decide", cause=diagnosis.cause):
                return decide(diagnosis, signal.object_id, rt.policy, ctx)

        decision = decide_with(context)
        if _witness_would_help(decision):
            found = find_server_witness(rt, signal, now)
            if found is not None:
                context = replace(context, witness=found)
                decision = decide_with(context)
        if decision.grants and not may_grant:
            raise _EvidenceTooOld(merged.id)
        if not triage.still_refused(existing, merged, decision):
            decision, reservation = secure_grant(rt, run, merged.id, decision, context, decide_with)
            if triage.changed_course(existing, merged, decision):
                _audit_decision(rt, run, merged, signal, diagnosis, decision)
            result = act(rt, run, merged, decision, etag=etag, evidence=evidence, actor="service",
                         reservation=reservation)
            run.outcomes.append({"incident": result.id, "action": decision.action, "cause": diagnosis.cause})
            return result
    assert existing is not None
    return _recurrence(rt, run, existing, merged, etag, now, complete)


def _witness_would_help(decision: Decision) -> bool:
    """The decision is held back for want of a witness, and apart from that only by what an approval or time
    lifts: worth looking for a server-side row."""
    rules = set(decision.rules)
    return triage.WITNESS_RULE in rules and rules <= APPROVABLE_RULES | triage.TRANSIENT_RULES


def find_server_witness(rt: Runtime, signal: FailureSignal, now: datetime) -> str | None:
    """A server-side source that logged this caller failing on this account from shortly before the claimed
    failure until now (a row the failing app cannot write); None when none did, or none could be read."""
    if not signal.object_id or not signal.resource_id:
        return None
    since = (signal.first_seen or now) - WITNESS_WINDOW
    for source in rt.sources:
        if not is_server_source(source.name):
            continue
        try:
            activity = source.activity(signal.object_id, signal.resource_id, since, now)
        except Exception as exc:  # noqa: BLE001 - an unreadable source witnesses nothing; the others may
            log.warning("witness look-up in %s failed: %s", source.name, error_text(exc))
            continue
        if activity.failures > 0:
            return f"{source.name} row"
    return None


def _audit_decision(rt: Runtime, run: RunState, merged: Incident, signal: FailureSignal, diagnosis: Diagnosis,
                    decision: Decision) -> None:
    rt.store.append_audit(_decision_record(rt, run, merged, signal, diagnosis, decision))


def _decision_record(rt: Runtime, run: RunState, merged: Incident, signal: FailureSignal, diagnosis: Diagnosis,
                     decision: Decision) -> AuditRecord:
    refusals = "; ".join(f"[{r.rule}] {r.reason}" for r in decision.refusals)
    return rt.audit_record(
        "refusal" if decision.refusals else "decision",
        f"{decision.action}: {diagnosis.cause}" + (f"; {refusals}" if refusals else ""),
        incident_id=merged.id,
        correlation_id=run.correlation_id,
        inputs={
            "principal_id": signal.object_id,
            "resource_id": signal.resource_id,
            "cause": diagnosis.cause,
            "role_id": diagnosis.role_id,
            "scope": diagnosis.scope,
            "mode": rt.settings.mode,
            "refusals": list(decision.rules),
        },
    )


def policy_context(run: RunState, incident: Incident, evidence: Evidence | None, now: datetime,
                   signal: FailureSignal | None = None, *, witness: str | None = None,
                   approved_terms: ApprovalTerms | None = None) -> PolicyContext:
    """`signal` is the failure being decided on, when there is one (an approval decides on the incident, with
    `approved_terms`: what the engineer approved). The principal type the policy weighs as observed is only what
    ARM evidence shows; what a signal or the incident says is a claim, refused when it disagrees."""
    return PolicyContext(
        now=now,
        grants_this_run=run.grants_this_run,
        grants_last_24h=run.grants_last_24h,
        grants_last_hour=run.grants_last_hour,
        last_grant_at=incident.last_grant_at,
        suppressed_targets=run.suppressed,
        breaker_open=run.breaker_open,
        approved=approved_terms is not None,
        approved_terms=approved_terms,
        evidence_principal_type=evidence.principal_type if evidence else None,
        claimed_principal_type=(signal.principal_type if signal else None) or incident.principal_type,
        resource_id=incident.resource_id,
        evidence_failures=evidence.failed if evidence is not None else (),
        witness=witness,
        revocations=run.revocations,
    )


def act(rt: Runtime, run: RunState, incident: Incident, decision: Decision, *, etag: str | None,
        evidence: Evidence | None, actor: str, reservation: Reservation | None = None) -> Incident:
    """Persist the decision (conditional write), then perform its side effect if this instance won. A grant comes
    with the budget slot `secure_grant` reserved for it."""
    now = rt.clock()
    if decision.action == DecisionAction.ASSIGN:
        if reservation is None:
            raise ValueError("a grant needs a reserved slot of the grant budget (grants.secure_grant)")
        return grant(rt, run, incident, decision, reservation=reservation, etag=etag, actor=actor)
    if decision.action == DecisionAction.WAIT:
        created = triage.newest_recent_assignment(evidence, min(now, incident.last_seen), rt.window) or now
        return put_incident(rt, start_waiting(incident, created, now, rt.window, rt.lag, rt.max_verify), etag)
    updated = apply_decision(incident, decision, now, timedelta(hours=rt.settings.approval_ttl_hours))
    if decision.action in (DecisionAction.OBSERVE, DecisionAction.SUPPRESSED):
        return put_incident(rt, updated, etag)
    # recommend / ticket: claim the ticket, then open it.
    claimed = put_incident(rt, ticketing.claim(rt, updated), etag)
    role_fixable = bool(claimed.diagnosis and claimed.diagnosis.role_fixable)
    text = decision_text(decision, mode=rt.settings.mode, role_fixable=role_fixable)
    lapsed = [a.detail for a in claimed.actions[len(incident.actions):] if a.kind == "approval-lapsed"]
    return ticketing.send(rt, run, claimed, TicketUpdate(text, comment=lapsed[-1] + "; a new approval is needed."
                                                         if lapsed else None))


@dataclass(frozen=True)
class NewIncident:
    """A failure with no incident yet, decided without writing anything (`plan_new`): the incident to create, with
    its decision's audit record and, when its decision opens a ticket, the ticket operation to send once the create
    (which is also the ticket's claim) has won."""

    triaged: Triaged
    decision: Decision
    incident: Incident
    audit: tuple[AuditRecord, ...]
    ticket: TicketUpdate | None


def plan_new(rt: Runtime, run: RunState, triaged: Triaged, evidence: Evidence | None, *,
             tickets_ahead: int = 0) -> NewIncident | None:
    """What `_apply` would write for a failure whose incident does not exist, when acting on it writes nothing to ARM
    and reads nothing more: None for a decision that would grant (it must hold its claim and its budget slot
    before any ARM write) or that a server-side witness could change; those go the per-signal way.
    `tickets_ahead`: new tickets planned before it that will be sent first (ticketing.queued_when_new)."""
    now = rt.clock()
    signal, diagnosis = triaged.signal, triaged.diagnosis
    merged = open_or_update(None, signal, diagnosis, now, fingerprint=triaged.fingerprint)
    merged = triage.with_evidence_identity(triage.keep_verified_cause(None, merged), evidence, signal,
                                           routing_tag=rt.settings.routing_tag)
    context = policy_context(run, merged, evidence, now, signal=signal, witness=server_witness(signal))
    decision = decide(diagnosis, signal.object_id, rt.policy, context)
    if decision.grants or decision.action == DecisionAction.ASSIGN or _witness_would_help(decision):
        return None  # decided again on the per-signal way (and traced there)
    with rt.telemetry.span("decide", cause=diagnosis.cause):  # the same pure decision, traced as `_apply` does
        decision = decide(diagnosis, signal.object_id, rt.policy, context)
    audit = (_decision_record(rt, run, merged, signal, diagnosis, decision),)  # a new incident changes course
    ticket: TicketUpdate | None = None
    if decision.action == DecisionAction.WAIT:
        created = triage.newest_recent_assignment(evidence, min(now, merged.last_seen), rt.window) or now
        incident = start_waiting(merged, created, now, rt.window, rt.lag, rt.max_verify)
    else:
        incident = apply_decision(merged, decision, now, timedelta(hours=rt.settings.approval_ttl_hours))
        if decision.action not in (DecisionAction.OBSERVE, DecisionAction.SUPPRESSED):
            # recommend / ticket: the create claims the ticket, already queued where no sink could open it now
            claimed = ticketing.claim(rt, incident)
            incident = replace(claimed, ticket_queued=ticketing.queued_when_new(rt, run, tickets_ahead))
            role_fixable = bool(claimed.diagnosis and claimed.diagnosis.role_fixable)
            text = decision_text(decision, mode=rt.settings.mode, role_fixable=role_fixable)
            lapsed = [a.detail for a in claimed.actions[len(merged.actions):] if a.kind == "approval-lapsed"]
            ticket = TicketUpdate(text, comment=lapsed[-1] + "; a new approval is needed." if lapsed else None)
    return NewIncident(triaged, decision, replace(incident, updated_at=rt.clock()), audit, ticket)


def act_on_new(rt: Runtime, run: RunState, planned: NewIncident, created: Incident, *,
               queue_again: bool = False, deferred: list[ticketing.DeferredRecord] | None = None) -> Incident:
    """After `planned`'s create won: its ticket operation (one queued in the create writes nothing more; with
    `deferred`, its outcome is left there to be written with others), and its outcome. `queue_again`: a ticket
    planned before it lost its create, so the slot it was to take may be free; the queue recorded in the create is
    decided again, as `send` would have for a fresh claim."""
    if planned.ticket is not None and queue_again and created.ticket_queued:
        created = replace(created, ticket_queued=())  # as claimed by the per-signal way: `send` records the queue
    result = created if planned.ticket is None else ticketing.send(rt, run, created, planned.ticket,
                                                                   deferred=deferred)
    run.outcomes.append({"incident": result.id, "action": planned.decision.action,
                         "cause": planned.triaged.diagnosis.cause})
    return result


def _recurrence(rt: Runtime, run: RunState, existing: Incident, merged: Incident, etag: str | None,
                now: datetime, evidence_complete: bool) -> Incident:
    """No new decision: persist counts if they changed; update the ticket at most once per interval (never while
    evidence could not be read)."""
    interval = timedelta(minutes=rt.settings.ticket_comment_interval_minutes)
    plan = triage.recurrence(existing, merged, now, interval, evidence_complete=evidence_complete)
    if not plan.write:
        return existing  # steady state: no write, no ticket call
    saved = put_incident(rt, merged, etag)
    if plan.comment_due:
        return ticketing.send(rt, run, saved, TicketUpdate(
            last_action_text(saved), comment=still_failing_comment(plan.new_failures, merged),
            escalated=saved.status == inc.ESCALATED))
    if plan.retry_pending:
        return ticketing.redo(rt, run, saved)
    return saved
