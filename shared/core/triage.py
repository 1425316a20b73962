"""The engine's pure rules: when a failure needs a policy decision, when a scan may skip it, what the outcome of a
merge is. No I/O: the engine (`shared/engine/signals.py`) reads, calls these, and writes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from shared.core import incidents as inc
from shared.core import roles
from shared.core.allowlist import Allowlist
from shared.core.causes import CAUSE_IDS, family_of
from shared.core.incidents import Incident
from shared.core.lifecycle import approval_lapse
from shared.core.model import Diagnosis, Evidence, FailureSignal, RoleAssignmentEvidence
from shared.core.policy import GROUP_MEMBERSHIP_CACHE, PROPAGATION_PENDING, Decision
from shared.core.records import SettledView
from shared.core.resource_ids import applies_at
from shared.core.status import STATUS_FOR_ACTION, DecisionAction

# A claim (grant or ticket) older than this without its result is taken over by a later run.
STALE_CLAIM = timedelta(minutes=2)
# Refusals that lift by themselves (a new run, a new day, the cool-down passing, an operator's breaker reset). An
# incident ticketed only for these is decided again on its next failures, so a per-run cap or a breaker reset
# leads to the grant.
ROLE_PRESENT_STILL_DENIED = "role_present_still_denied"
TRANSIENT_RULES = frozenset({"run_cap", "daily_cap", "hourly_cap", "cooldown", "circuit_breaker"})
# The refusal of a decision made while live evidence could not be read: made again on the next failures.
EVIDENCE_RULE = "evidence_complete"
# The refusal of a grant no witness confirmed: made again when a failure a witness confirms comes in.
WITNESS_RULE = "corroborated"
# The action an engineer's lifting of a revocation leaves on the incidents it refused: decided again.
UNREVOKED = "unrevoked"
REVOKED_RULE = "revoked"
# Statuses whose cause is not re-diagnosed: under verification the check's outcome decides, and a closed incident
# that did not reopen keeps the cause it was closed with.
_CAUSE_KEPT = frozenset({inc.VERIFYING, *inc.CLOSED_STATUSES})
_UNDECIDED = frozenset({inc.DETECTED, inc.DIAGNOSED, inc.SUPPRESSED})
# What the rules a repeat scan applies read: a whole incident, or its compact view (records.settled_view).
IncidentState = Incident | SettledView


def failed_at(signal: FailureSignal, now: datetime) -> datetime:
    """When the failures happened. Role ages are judged at that time, not at the scan's: failures re-read from
    before a role took effect are propagation, not "role present, still denied"."""
    return min(now, signal.last_seen) if signal.last_seen else now


def with_declared_type(signal: FailureSignal, evidence: Evidence | None, allowlist: Allowlist) -> FailureSignal:
    """When nothing observed says what kind of principal failed, use the type its allowlist entry declares: the
    operator knows its own identities, and ARM rejects a wrong declaration (UnmatchedPrincipalType) anyway."""
    if signal.principal_type or (evidence is not None and evidence.principal_type):
        return signal
    entry = allowlist.find(signal.object_id)
    return replace(signal, principal_type=entry.principal_type) if entry else signal


def refused_only_for_transient(incident: IncidentState) -> bool:
    """The incident's latest action is a ticket decision whose refusals are all transient."""
    last = incident.actions[-1] if incident.actions else None
    if last is None or last.kind != "ticketed":
        return False
    return bool(last.rules) and set(last.rules) <= TRANSIENT_RULES


def decided_without_evidence(incident: IncidentState) -> bool:
    """The incident's latest action is a ticket decision refused (among other rules, maybe) because live evidence
    could not be read: it says nothing about the incident, so it is made again."""
    last = incident.actions[-1] if incident.actions else None
    return last is not None and last.kind == "ticketed" and EVIDENCE_RULE in last.rules


def awaits_decision(incident: IncidentState, now: datetime) -> bool:
    """The incident's status asks for a (new) policy decision whatever failure comes in: never decided, an
    expired recommendation, or a ticket refused only for reasons that lift by themselves or made without
    evidence."""
    if incident.status in _UNDECIDED:
        return True
    if incident.status == inc.RECOMMENDED and incident.approval_expires_at and incident.approval_expires_at <= now:
        return True
    return incident.status == inc.TICKETED and (refused_only_for_transient(incident)
                                                 or decided_without_evidence(incident) or unrevoked(incident))


def refused_by_revocation(incident: Incident) -> bool:
    """The incident's latest action is an engineer's revocation, or a ticket decision the `revoked` rule refused."""
    last = incident.actions[-1] if incident.actions else None
    return last is not None and (last.kind == "revoked" or (last.kind == "ticketed" and REVOKED_RULE in last.rules))


def unrevoked(incident: IncidentState) -> bool:
    """An engineer lifted the revocation that stood in the incident's way since its last decision."""
    last = incident.actions[-1] if incident.actions else None
    return last is not None and last.kind == UNREVOKED


def awaits_witness(incident: Incident) -> bool:
    """The incident's latest decision was held back only until a witness confirms the failure (with other
    refusals, maybe): a confirmed failure decides it again."""
    last = next((a for a in reversed(incident.actions) if a.kind in ("recommended", "ticketed")), None)
    return (incident.status in (inc.RECOMMENDED, inc.TICKETED) and last is not None
            and WITNESS_RULE in last.rules)


def grant_in_flight(incident: IncidentState) -> bool:
    """A grant was claimed and its result is not recorded (yet, or ever: the claiming instance may have died)."""
    return incident.status == inc.ASSIGNED and incident.assignment_id is None


def grant_claimed_at(incident: Incident) -> datetime | None:
    return next((a.at for a in reversed(incident.actions) if a.kind == "grant-claimed"), None)


def stale_grant_claim(incident: Incident, now: datetime) -> bool:
    """A grant was claimed longer than STALE_CLAIM ago and its result is still not recorded: the claiming instance
    died (before or after ARM's write), and a sweep reconciles it."""
    if not grant_in_flight(incident):
        return False
    # The claim's age is that of its "grant-claimed" action: `updated_at` moves with every merge of new failures.
    claimed_at = grant_claimed_at(incident) or incident.updated_at
    return claimed_at is None or now - claimed_at > STALE_CLAIM


def claim_was_approved(incident: Incident, now: datetime) -> str | None:
    """The engineer whose still-valid approval the in-flight grant claim carries, or None (the service's own)."""
    if incident.approved_by and incident.approval_handle and incident.approval_expires_at:
        return incident.approved_by if now < incident.approval_expires_at else None
    return None


def needs_decision(existing: Incident | None, merged: Incident, now: datetime, *,
                   evidence_complete: bool = True, witnessed: bool = False) -> bool:
    """Merging a failure into `existing` (giving `merged`) must go to the policy, not just update counts. Never for
    a known incident while its evidence could not be read: the last decision, made on good evidence, stands.
    `witnessed`: something the failing app cannot write confirms this failure."""
    if existing is None:
        return True
    if not evidence_complete:
        return False
    if awaits_decision(merged, now):
        return True
    if merged.status in (inc.RECOMMENDED, inc.TICKETED) and existing.cause != merged.cause:
        return True
    if approval_lapse(merged) is not None:
        return True  # the recommendation no longer offers what it showed: its approval lapses
    if witnessed and awaits_witness(merged):
        return True
    # A grant in flight is not decided here, however old its claim: the end-of-scan sweep (engine/reconcile.py)
    # looks the assignment up first (the claiming instance may have died after ARM's write) and keeps an approval.
    return False


def settled(incident: IncidentState, signal: FailureSignal, now: datetime) -> bool:
    """Merging `signal` into `incident` would change nothing, whatever the evidence says: the signal adds no
    failure and moves no time, no ticket operation waits, and `needs_decision` could not become true. A ticket
    operation that waits only because a new ticket is queued (`ticket_queued`: the ticket budget or a tracker's rate
    limit) does not count: the end-of-scan drain opens it, and nothing the evidence says would change that."""
    if signal.last_seen is None or incident.last_seen < signal.last_seen:
        return False
    if incident.ticket_pending and not incident.ticket_queued:
        return False
    if awaits_decision(incident, now):
        return False
    if not incident.is_open:  # a failure after the close reopens it
        return incident.closed_at is not None and signal.last_seen <= incident.closed_at
    return not grant_in_flight(incident)


def keep_verified_cause(existing: Incident | None, merged: Incident) -> Incident:
    """Under verification, or closed and not reopened, the incident keeps its cause and diagnosis: failures re-read
    from before a role took effect would otherwise replace the cause being verified (and the group-cache case
    would lose its 24 h horizon). Counts and times stay merged; only the "cause-changed" action is dropped."""
    if existing is not None and existing.status == merged.status and existing.status in _CAUSE_KEPT:
        return replace(merged, cause=existing.cause, diagnosis=existing.diagnosis, actions=existing.actions)
    return merged


def incident_ids_of(object_id: str | None, resource_id: str | None, scope: str | None = None) -> tuple[str, ...]:
    """The ids an incident of this principal on this resource can have: one per cause family (keyed by the project
    `scope` names, when it names one under the resource's account)."""
    causes = {family_of(cause): cause for cause in reversed(CAUSE_IDS)}
    return tuple(inc.incident_id(inc.fingerprint(object_id, resource_id, cause, scope)) for cause in causes.values())


def last_good(candidates: Iterable[Incident]) -> Incident | None:
    """Of a principal's incidents on one resource, the one a failure belongs to when evidence could not be read
    (the diagnosis of that moment cannot be trusted to pick its cause family): an open one before a closed one,
    then the latest seen. Only incidents with a diagnosis count."""
    found = [i for i in candidates if i.diagnosis is not None]
    return max(found, key=lambda i: (i.is_open, i.last_seen), default=None)


def owner_of(tags: Iterable[tuple[str, str]] | None, tag_name: str) -> str | None:
    """The value of the tag named `tag_name` (Azure tag names are case-insensitive), None when absent or empty."""
    wanted = tag_name.strip().casefold()
    if not wanted:
        return None
    for name, value in tags or ():
        if str(name).casefold() == wanted and str(value or "").strip():
            return str(value).strip()
    return None


def with_evidence_identity(merged: Incident, evidence: Evidence | None, signal: FailureSignal,
                           routing_tag: str = "") -> Incident:
    """Who the caller is, from the evidence; with `routing_tag`, the account's owner too (kept when the account's
    settings could not be read)."""
    if evidence is None:
        return merged
    owner = merged.owner
    if routing_tag and evidence.resource is not None:
        owner = owner_of(evidence.resource.tags, routing_tag)
    return replace(
        merged,
        principal_type=merged.principal_type or evidence.principal_type or signal.principal_type,
        principal_name=merged.principal_name or evidence.principal_name,
        owner=owner,
    )


def still_refused(existing: Incident | None, merged: Incident, decision: Decision) -> bool:
    """A ticketed incident refused again for the same cause: no ticket rewrite on every scan."""
    return (existing is not None and existing.status == inc.TICKETED and decision.action == DecisionAction.TICKET
            and existing.cause == merged.cause and not decided_without_evidence(existing))


def changed_course(existing: Incident | None, merged: Incident, decision: Decision) -> bool:
    """The decision moves the incident somewhere new (worth an audit record)."""
    if existing is None or existing.cause != merged.cause:
        return True
    return existing.status != STATUS_FOR_ACTION.get(decision.action, inc.DIAGNOSED)


def newest_recent_assignment(evidence: Evidence | None, now: datetime, window: timedelta) -> datetime | None:
    """When the newest role assignment younger than the propagation window was made (a wait starts there)."""
    if evidence is None or not evidence.assignments:
        return None
    recent = [a.created_on for a in evidence.assignments if a.created_on and now - a.created_on < window]
    return max(recent) if recent else None


def verify_horizon(cause: str, max_verify: timedelta) -> timedelta:
    """Managed identities see group changes only after ~24 h token caches expire: never shorter than that."""
    return max(max_verify, timedelta(hours=24)) if cause == GROUP_MEMBERSHIP_CACHE else max_verify


def should_comment(last_comment_at: datetime | None, now: datetime, interval: timedelta) -> bool:
    """True when no comment was added yet, or at least `interval` has passed since the last one.

    A last comment "in the future" (clock skew between instances) counts as recent, so skew can delay a
    comment by at most the skew, never cause two.
    """
    if last_comment_at is None:
        return True
    return now - last_comment_at >= interval


@dataclass(frozen=True)
class Recurrence:
    """What a merge that needs no decision does: write the counts, retry a failed ticket operation, comment."""

    new_failures: int
    write: bool
    retry_pending: bool
    comment_due: bool


def recurrence(existing: Incident, merged: Incident, now: datetime, comment_interval: timedelta, *,
               evidence_complete: bool = True) -> Recurrence:
    """While evidence could not be read the ticket is left alone (no comment): the counts are still written."""
    new_failures = merged.count - existing.count
    # Staleness is judged on the stored record: `merged.updated_at` is always `now`, which made a pending ticket look
    # freshly claimed forever, so it was never retried.
    retry_pending = merged.ticket_pending and (existing.updated_at is None or now - existing.updated_at > STALE_CLAIM)
    # No "still failing" comment while a role propagates (verifying): those failures are expected, and the check's
    # outcome (resolved or escalated) is what the ticket is told.
    comment_due = (
        evidence_complete and bool(merged.ticket_refs) and new_failures > 0 and merged.is_open
        and merged.status != inc.VERIFYING and should_comment(merged.last_comment_at, now, comment_interval)
    )
    write = new_failures > 0 or merged.last_seen != existing.last_seen or retry_pending
    return Recurrence(new_failures, write, retry_pending, comment_due)


def covering_assignment(diagnosis: Diagnosis, evidence: Evidence | None,
                        resource_id: str) -> RoleAssignmentEvidence | None:
    """A role the principal now holds directly, at or above the resource, whose data actions cover the surface the
    diagnosis is about: the recommended grant would add nothing. Group-held roles don't count (a direct grant is
    what the group cases recommend), nor do roles whose definitions could not be read."""
    if evidence is None or not evidence.assignments:
        return None
    target = diagnosis.scope or resource_id
    for assignment in evidence.assignments:
        role = roles.role_of(assignment.role_definition_id, evidence.role_definitions)
        if assignment.via_group or role is None or not role.data_surfaces:
            continue
        if diagnosis.surface is not None and diagnosis.surface not in role.data_surfaces:
            continue
        if applies_at(assignment.scope, target):
            return assignment
    return None


def approval_obsolete(diagnosis: Diagnosis, evidence: Evidence | None, resource_id: str, now: datetime,
                      window: timedelta) -> tuple[str, str] | None:
    """Why the live evidence makes an approved grant pointless, as (cause, explanation); None when it does not."""
    held = covering_assignment(diagnosis, evidence, resource_id)
    if held is None:
        return None
    found = roles.role_of(held.role_definition_id, evidence.role_definitions if evidence else ())
    role = found.name if found else roles.guid_of(held.role_definition_id)
    if held.created_on is not None and now - held.created_on < window:
        return PROPAGATION_PENDING, (f"the caller was assigned {role} at {held.scope} at "
                                     f"{held.created_on.isoformat()}; it is still propagating")
    return ROLE_PRESENT_STILL_DENIED, f"the caller already holds {role} at {held.scope}"
