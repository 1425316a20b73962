"""Build ticket content from an incident (pure), and all the wording the engine passes to sinks: action texts,
comments, the approve hint."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.core import chat_actions
from shared.core.causes import CAUSES
from shared.core.incidents import Incident
from shared.core.logs_link import incident_logs_link
from shared.core.model import Diagnosis
from shared.core.policy import Decision
from shared.core.status import DecisionAction, IncidentStatus, Mode
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
    base_url: str = "",
    workspace_resource_id: str = "",
    action_links: bool = True,
) -> TicketContent:
    """Everything a ticket says about `incident`. Values from logs stay raw here; each sink escapes them.

    `base_url` (Settings.public_base_url) makes the approve and suppress links (none without it: a relative link is
    useless in chat) and names the host in the commands; `workspace_resource_id` (TRIAGE_LOG_ANALYTICS_WORKSPACE_
    RESOURCE_ID) makes the Log Analytics link. The approve link and command come with `approve_hint`, i.e. only
    while the incident awaits approval. `action_links` False (no TRIAGE_CHAT_APPROVERS): no approve or suppress
    link, as the link routes would refuse everyone; the commands stay."""
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
        **chat_fields(incident, awaiting_approval=approve_hint is not None, base_url=base_url,
                      workspace_resource_id=workspace_resource_id, action_links=action_links),
        owner=incident.owner,  # the account's owner tag value (TRIAGE_ROUTING_TAG): routes new tickets
    )


def chat_fields(incident: Incident, *, awaiting_approval: bool, base_url: str = "",
                workspace_resource_id: str = "", action_links: bool = True) -> dict[str, Any]:
    """The TicketContent fields chat messages offer as actions and links (core/chat_actions.py), and each sink's
    reference to its own ticket or message."""
    terms = incident.approval_terms
    target = chat_actions.suppress_target(incident.principal_id, incident.resource_id) if incident.is_open else None
    return {
        "approve_url": chat_actions.act_url(base_url, incident.id, "approve")
        if awaiting_approval and action_links else None,
        "approve_command": chat_actions.approve_command(base_url, incident.id, terms.fingerprint if terms else None)
        if awaiting_approval else None,
        "suppress_url": chat_actions.act_url(base_url, incident.id, "suppress") if target and action_links else None,
        "suppress_command": chat_actions.suppress_command(base_url, incident.id, target.target) if target else None,
        "rollback_command": chat_actions.rollback_command(base_url, incident.id, incident.assignment_id)
        if incident.assignment_id else None,
        "logs_url": incident_logs_link(workspace_resource_id, principal_id=incident.principal_id,
                                       resource_id=incident.resource_id, since=incident.first_seen,
                                       until=incident.last_seen),
        "refs": tuple((str(name), str(ref)) for name, ref in incident.ticket_refs.items()),
    }


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


def approve_url(incident_id: str, base_url: str = "") -> str:
    """The approve route: the full URL when the app's address is known (Settings.public_base_url), else the path."""
    path = f"/api/incidents/{incident_id}/approve"
    return f"{base_url.rstrip('/')}{path}" if base_url else path


def approve_hint(incident: Incident, *, base_url: str = "") -> str:
    """How to approve, and exactly what approving grants (the terms bound to the recommendation). `base_url`: the
    app's https:// address, so the hint carries the full approve URL."""
    terms = incident.approval_terms
    route = approve_url(incident.id, base_url)
    if terms is None:
        return f"python -m shared approve {incident.id} --by <you>   or   POST {route}"
    return (f"Approving grants exactly {terms.role_name} at {terms.scope} to {terms.principal_id} (diagnosis "
            f"{terms.fingerprint}), nothing else: python -m shared approve {incident.id} --fingerprint "
            f"{terms.fingerprint} --by <you>   or   POST {route} with "
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


# ---- the ticket queue and storm groups (engine/ticketing.py) ---------------------------------------------------

# A group ticket lists at most this many incidents (one evidence line each, the documents' line limit); more of
# one cause on one account open a second part.
MAX_GROUP_MEMBERS = 40


def ticket_severity(incident: Incident) -> int:
    """How urgently a queued new ticket is opened, from the decision and the cause: 3 escalated (a fix was made or
    verified and the caller still fails: a person must look now); 2 recommended (a role fixes it, one approval
    away); 1 ticketed or otherwise decided (a person must act, no automatic fix); 0 an unknown cause."""
    if incident.status == IncidentStatus.ESCALATED:
        return 3
    if incident.cause == "unknown":
        return 0
    if incident.status == IncidentStatus.RECOMMENDED:
        return 2
    return 1


def queue_order(incident: Incident) -> tuple[int, int, str, str]:
    """Sort key of the ticket queue: severity, then failure count (both highest first), then oldest, then id."""
    return -ticket_severity(incident), -incident.count, incident.first_seen.isoformat(), incident.id


def group_key(incident: Incident) -> str:
    """A storm groups new tickets per cause and account: the failures most likely to share one fix."""
    return f"{incident.cause}|{incident.resource_id.lower()}"


def group_member_line(member: dict[str, str | int | bool]) -> str:
    state = "open" if member.get("open") else "closed"
    return (f"{member['incident']} ({state}): {member['who']}, {member['count']} failure(s), last seen "
            f"{member['last_seen']}; fingerprint {member['fingerprint']}")


def group_member(incident: Incident) -> dict[str, str | int | bool]:
    """What a group ticket's record keeps of one member, enough to list it in the body without reading it."""
    return {"incident": incident.id, "fingerprint": incident.fingerprint,
            "who": incident.principal_name or incident.principal_id or "key callers", "count": incident.count,
            "last_seen": _iso(incident.last_seen), "first_seen": _iso(incident.first_seen),
            "open": incident.is_open, "severity": ticket_severity(incident)}


def group_content(lead: Incident, group_id: str, fingerprint: str, members: list[dict[str, str | int | bool]],
                  *, mode: str) -> TicketContent:
    """The grouped ticket: the lead member's cause, summary and fix steps, every member's fingerprint listed."""
    base = ticket_content(lead, mode=mode, action="")
    open_members = [m for m in members if m.get("open")]
    who = {str(m["who"]) for m in members}
    return TicketContent(
        incident_id=group_id, fingerprint=fingerprint, cause=base.cause, cause_title=base.cause_title,
        summary=(f"{len(members)} incidents of this cause on this account, grouped into one ticket (more new "
                 f"tickets were waiting than the ticket budget allows); {len(open_members)} still open. "
                 + base.summary),
        principal_id=None, principal_type=None,
        principal_name=next(iter(who)) if len(who) == 1 else f"{len(who)} principals",
        resource_id=lead.resource_id, count=sum(int(m["count"]) for m in members),
        first_seen=min(str(m["first_seen"]) for m in members), last_seen=max(str(m["last_seen"]) for m in members),
        sample_error=lead.sample_error, evidence=tuple(group_member_line(m) for m in members),
        fix_command=None, fix_steps=base.fix_steps, mode=mode,
        action=("Each listed incident is tracked here; the ticket closes when the last of them is resolved. "
                "Each incident in full: python -m shared incidents <incident>."),
        escalated=any(m.get("severity") == 3 and m.get("open") for m in members), doc_links=base.doc_links,
    )


# ---- access reviews (docs/reviews.md) -------------------------------------------------------------------------


def review_fingerprint(review: str, account_id: str) -> str:
    """One ticket per account and review: the same on every run, so a run updates the ticket the last one opened."""
    import hashlib

    from shared.core.resource_ids import account_key

    return hashlib.sha256(f"review|{review}|{account_key(account_id)}".encode()).hexdigest()[:32]


def review_content(review: str, account_id: str, *, summary: str, evidence: tuple[str, ...],
                   commands: tuple[str, ...], at: datetime, mode: str) -> TicketContent:
    """A review's ticket: `review` is readiness, access or upgrade; `evidence` its reasons or findings (each naming
    its rule), `commands` what a person would run."""
    fingerprint = review_fingerprint(review, account_id)
    return TicketContent(
        incident_id=f"review-{review}-{fingerprint[:12]}", fingerprint=fingerprint, cause=f"review_{review}",
        cause_title=f"Access review: {review}", summary=summary, principal_id=None, principal_type=None,
        principal_name=f"{review} review", resource_id=account_id, count=len(evidence), first_seen=_iso(at),
        last_seen=_iso(at), sample_error=None, evidence=evidence, fix_command=commands[0] if commands else None,
        fix_steps=tuple((command, None) for command in commands[1:]),
        action="review only: the service changes nothing; a person runs the commands after review", mode=mode,
        doc_links=())


def review_closed_comment(review: str) -> str:
    return f"The {review} review found nothing left to change on this account; closing."
