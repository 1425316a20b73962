"""Build ticket content from an incident (pure), plus the standard comment texts the engine passes to sinks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.core.causes import CAUSES
from shared.core.incidents import Incident
from shared.tickets.base import TicketContent


def _iso(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def _steps(diagnosis: dict[str, Any]) -> tuple[tuple[str, str | None], ...]:
    steps = []
    for step in diagnosis.get("fix_steps") or ():
        if isinstance(step, dict) and step.get("text"):
            steps.append((str(step["text"]), str(step["doc_url"]) if step.get("doc_url") else None))
    return tuple(steps)


def ticket_content(
    incident: Incident,
    *,
    mode: str,
    action: str,
    approve_hint: str | None = None,
    escalated: bool = False,
) -> TicketContent:
    """Everything a ticket says about `incident`. Values from logs stay raw here; each sink escapes them."""
    diagnosis = incident.diagnosis or {}
    cause_id = diagnosis.get("cause") or incident.cause
    cause = CAUSES.get(cause_id) or CAUSES["unknown"]
    steps = _steps(diagnosis)
    return TicketContent(
        incident_id=incident.id,
        fingerprint=incident.fingerprint,
        cause=cause_id,
        cause_title=cause.title,
        summary=str(diagnosis.get("summary") or cause.title),
        principal_id=incident.principal_id,
        principal_type=incident.principal_type,
        principal_name=incident.principal_name,
        resource_id=incident.resource_id,
        count=incident.count,
        first_seen=_iso(incident.first_seen),
        last_seen=_iso(incident.last_seen),
        sample_error=incident.sample_error,
        evidence=tuple(str(line) for line in diagnosis.get("evidence") or ()),
        fix_command=diagnosis.get("fix_command") or None,
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
