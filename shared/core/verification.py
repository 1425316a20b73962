"""Propagation-aware verification: when to look, what the traffic since then means, and what to do next.

A role takes up to the propagation window to apply and log rows arrive after the ingestion lag, so a check reads
the failure source only after `created + window + lag`, counting traffic from `created + window` on.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shared.core import incidents as inc
from shared.core.incidents import Action, Incident

RESOLVED = "resolved"
ESCALATED = "escalated"
KEEP_CHECKING = "keep_checking"
CLOSED_UNVERIFIED = "closed_unverified"
OUTCOMES = (RESOLVED, ESCALATED, KEEP_CHECKING, CLOSED_UNVERIFIED)

GROUP_MEMBERSHIP_CACHE = "group_membership_cache"
# Managed identities cache group membership per resource for around 24 h: never give up on them sooner.
GROUP_CACHE_HORIZON = timedelta(hours=24)
DEFAULT_INTERVAL = timedelta(minutes=15)
PENDING_ACTION = "verify-pending"


def verification_due(effective_from: datetime, window: timedelta, lag: timedelta) -> datetime:
    """When to run the first check for a role created (or found) at `effective_from`."""
    return effective_from + window + lag


def verification_deadline(created_on: datetime, due: datetime, max_verify: timedelta, cause: str) -> datetime:
    """When checking stops: `max_verify` after the role's creation (24 h at least for the group case), and never
    before the first check."""
    horizon = max(max_verify, GROUP_CACHE_HORIZON) if cause == GROUP_MEMBERSHIP_CACHE else max_verify
    return max(due, created_on + horizon)


def evaluate(failures: int, successes: int, *, now: datetime, deadline: datetime, cause: str) -> str:
    """What the traffic seen since the effective time means.

    Failures mean escalation, except in the group case, where the identity's cache may still hold the old
    membership: there they mean keep checking until the deadline. No traffic at all means keep checking until
    the deadline, then close as unverified.
    """
    failures, successes = max(0, failures), max(0, successes)
    at_deadline = now >= deadline
    if failures > 0:
        return ESCALATED if cause != GROUP_MEMBERSHIP_CACHE or at_deadline else KEEP_CHECKING
    if successes > 0:
        return RESOLVED
    return CLOSED_UNVERIFIED if at_deadline else KEEP_CHECKING


def next_check(now: datetime, deadline: datetime, interval: timedelta = DEFAULT_INTERVAL) -> datetime:
    """The next check: one interval on, but never after the deadline (the last check falls on it)."""
    return max(now, min(now + interval, deadline))


def effective_time(incident: Incident, window: timedelta) -> datetime | None:
    """When the role assignment took effect: its creation plus the propagation window."""
    if incident.assignment_created_at is None:
        return None
    return incident.assignment_created_at + window


def last_checked_at(incident: Incident) -> datetime | None:
    for action in reversed(incident.actions):
        if action.kind == PENDING_ACTION:
            return action.at
    return None


def check_since(incident: Incident, window: timedelta, lag: timedelta) -> datetime | None:
    """Where a check's traffic query starts. From the effective time; in the group case, whose earlier checks may
    have seen failures, from the previous check (minus the ingestion lag, so late rows are not missed): only
    failures that are still happening count at its deadline."""
    effective = effective_time(incident, window)
    previous = last_checked_at(incident)
    if effective is None or incident.cause != GROUP_MEMBERSHIP_CACHE or previous is None:
        return effective
    return max(effective, previous - lag)


def apply_verification(
    incident: Incident,
    outcome: str,
    now: datetime,
    *,
    failures: int | None = None,
    successes: int | None = None,
    interval: timedelta = DEFAULT_INTERVAL,
) -> Incident:
    """The incident after a check with `outcome` (from `evaluate`); counts, when given, go into the text."""
    done: dict[str, Any] = {"verify_due": None, "updated_at": now}
    if outcome == RESOLVED:
        closed = replace(incident, status=inc.RESOLVED, closed_at=now, **done)
        return closed.with_action(Action(now, "resolved", resolution_text(incident, successes)))
    if outcome == CLOSED_UNVERIFIED:
        closed = replace(incident, status=inc.CLOSED_UNVERIFIED, closed_at=now, **done)
        return closed.with_action(Action(now, "closed-unverified", unverified_text(incident)))
    if outcome == ESCALATED:
        escalated = replace(incident, status=inc.ESCALATED, **done)
        return escalated.with_action(Action(now, "escalated", escalation_text(incident, failures, successes)))
    if outcome == KEEP_CHECKING:
        deadline = incident.verify_deadline or now + interval
        due = next_check(now, deadline, interval)
        seen = f"{failures} failure(s), {successes} success(es)" if failures is not None else "no result"
        pending = Action(now, PENDING_ACTION, f"{seen} so far; next check {due.isoformat()}, "
                         f"until {deadline.isoformat()}")
        # One trailing pending action, replaced at each check, keeps the record small over a day of checks.
        actions = incident.actions
        if actions and actions[-1].kind == PENDING_ACTION:
            actions = actions[:-1]
        return replace(incident, status=inc.VERIFYING, verify_due=due, updated_at=now, actions=(*actions, pending))
    raise ValueError(f"unknown verification outcome {outcome!r}; expected one of {', '.join(OUTCOMES)}")


def _role_and_scope(incident: Incident) -> tuple[str, str]:
    diagnosis = incident.diagnosis
    role = diagnosis.role_name if diagnosis else None
    scope = diagnosis.scope if diagnosis else None
    return role or "the data role", scope or incident.resource_id


def resolution_text(incident: Incident, successes: int | None = None) -> str:
    role, scope = _role_and_scope(incident)
    traffic = f"{successes} successful request(s)" if successes else "successful requests"
    return f"Verified: {traffic} and no failures since {role} took effect at {scope}. Closing."


def unverified_text(incident: Incident) -> str:
    role, scope = _role_and_scope(incident)
    return (f"{role} is in place at {scope}, but no traffic from this caller was seen before the verification "
            "deadline, so the fix could not be confirmed. Closed as unverified; a new failure reopens it.")


def escalation_text(incident: Incident, failures: int | None = None, successes: int | None = None) -> str:
    """Why verification failed and what a human should try next."""
    role, scope = _role_and_scope(incident)
    when = incident.assignment_created_at.isoformat() if incident.assignment_created_at else "recently"
    seen = f"{failures} failure(s)" if failures is not None else "failures"
    if successes:
        seen += f" and {successes} success(es)"
    steps = [
        "Get a fresh token or restart the app: clients cache tokens, and RBAC changes apply to new tokens.",
        "If the identity holds the role only through a group: managed identities cache group membership for "
        "about 24 hours. Assign the role to the identity itself.",
        "Look for another cause: the wrong endpoint or surface for this role, a token for another audience or "
        "tenant, network rules, or a deny assignment.",
    ]
    if incident.cause == GROUP_MEMBERSHIP_CACHE:
        steps.insert(0, "The 24 h group-membership cache horizon has passed and the identity is still denied: "
                        "assign the role to the managed identity directly rather than to its group.")
    numbered = " ".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    return (f"Escalated: {role} is in place at {scope} (since {when}), yet {seen} continued after the "
            f"propagation window. Sample error: {incident.sample_error or 'n/a'}. Next steps: {numbered}")
