"""Build ticket content from an incident (pure), and all the wording the engine passes to sinks: action texts,
comments, the approve hint."""

from __future__ import annotations

from datetime import datetime

from shared.core.causes import CAUSES
from shared.core.incidents import Incident
from shared.core.model import Diagnosis
from shared.core.policy import Decision
from shared.core.status import DecisionAction, Mode
from shared.tickets.base import TicketContent


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _steps(diagnosis: Diagnosis | None) -> tuple[tuple[str, str | None], ...]:
    if diagnosis is None:
        return ()
    return tuple((str(step.text), str(step.doc_url) if step.doc_url else None)
                 for step in diagnosis.fix_steps if step.text)


def ticket_content(
    incident: Incident,
    *,
    mode: str,
    action: str,
    approve_hint: str | None = None,
    escalated: bool = False,
) -> TicketContent:
    """Everything a ticket says about `incident`. Values from logs stay raw here; each sink escapes them."""
    diagnosis = incident.diagnosis
    cause_id = (diagnosis.cause if diagnosis else None) or incident.cause
    cause = CAUSES.get(cause_id) or CAUSES["unknown"]
    steps = _steps(diagnosis)
    return TicketContent(
        incident_id=incident.id,
        fingerprint=incident.fingerprint,
        cause=cause_id,
        cause_title=cause.title,
        summary=str((diagnosis.summary if diagnosis else None) or cause.title),
        principal_id=incident.principal_id,
        principal_type=incident.principal_type,
        principal_name=incident.principal_name,
        resource_id=incident.resource_id,
        count=incident.count,
        first_seen=_iso(incident.first_seen),
        last_seen=_iso(incident.last_seen),
        sample_error=incident.sample_error,
        evidence=tuple(str(line) for line in diagnosis.evidence) if diagnosis else (),
        fix_command=(diagnosis.fix_command if diagnosis else None) or None,
        fix_steps=steps,
        action=action,
        mode=mode,
        approve_hint=approve_hint,
        escalated=escalated,
        doc_links=tuple(dict.fromkeys(url for _, url in steps if url)),
    )


def recurrence_comment(content: TicketContent, *, previous_count: int | None = None, reopened: bool = False) -> str:
    """The text for a (throttled) recurrence comment."""
    grew = f" (was {previous_count})" if previous_count is not None else ""
    lead = "The problem came back after the ticket was closed. " if reopened else "Still failing. "
    return f"{lead}{content.count} failures so far{grew}; last seen {content.last_seen}."


def resolution_comment(*, what_fixed: str, verified_at: datetime, detail: str | None = None) -> str:
    """The closing comment: what fixed it and when it was verified."""
    text = f"Resolved: {what_fixed}. Verified at {verified_at.isoformat()}: no more failures from this caller."
    return f"{text}\n\n{detail}" if detail else text


# ---- what the service says it did, in the ticket's "action" section and comments ----------------------------


def decision_text(decision: Decision, *, mode: str, role_fixable: bool) -> str:
    """The action text for a recommendation or a refusal."""
    if decision.action == DecisionAction.RECOMMEND:
        why = f"mode {mode}"
        if mode == Mode.ENFORCE:  # the mode allows grants: the refusal says what asks for an engineer instead
            why += "; " + "; ".join(r.reason for r in decision.refusals)
        return (f"Recommended, not applied ({why}): assign {decision.role_name} at {decision.scope}. An on-call "
                "engineer can approve it.")
    if decision.refusals and role_fixable:
        reasons = "; ".join(f"{r.rule}: {r.reason}" for r in decision.refusals)
        return f"No automatic change. Policy refused the assignment ({reasons}). Apply the fix by hand."
    return "No automatic change: a role assignment does not fix this. Follow the fix steps."


def approve_hint(incident: Incident) -> str:
    """How to approve, and exactly what approving grants (the terms bound to the recommendation)."""
    terms = incident.approval_terms
    if terms is None:
        return (f"python -m shared approve {incident.id} --by <you>   or   "
                f"POST /api/incidents/{incident.id}/approve")
    return (f"Approving grants exactly {terms.role_name} at {terms.scope} to {terms.principal_id} (diagnosis "
            f"{terms.fingerprint}), nothing else: python -m shared approve {incident.id} --fingerprint "
            f"{terms.fingerprint} --by <you>   or   POST /api/incidents/{incident.id}/approve with "
            f'{{"by": "<you>", "fingerprint": "{terms.fingerprint}"}}. If a later failure changes the diagnosis, '
            "this approval lapses and the ticket says why.")


def group_grant_text(decision: Decision, *, mode: str) -> str:
    """Why a direct assignment was made for an identity that held the role through a group."""
    return (f"Assigned {decision.role_name} directly at {decision.scope} (mode {mode}). The identity held the role "
            "only through a group; managed identities see group changes only after their ~24 h token cache "
            "expires, so verification runs for up to a day.")


def grant_refused_text(decision: Decision, message: str) -> str:
    return (f"Tried to assign {decision.role_name} at {decision.scope} and Azure refused: {message}. Run the fix "
            "command with an identity allowed to assign roles.")


def assignment_deleted_text(assignment_id: str, actor: str) -> str:
    return (f"The role assignment this service created ({assignment_id}) was deleted by {actor}. The caller may "
            "fail again; review before re-approving.")


def still_failing_comment(new_failures: int, incident: Incident) -> str:
    return (f"Still failing: {new_failures} more failure(s); {incident.count} in total, last seen "
            f"{incident.last_seen.isoformat()}.")


def last_action_text(incident: Incident) -> str:
    """The latest thing done, for a ticket update that has nothing new to say."""
    for action in reversed(incident.actions):
        if action.detail:
            return f"{action.kind}: {action.detail}"
    return incident.status
