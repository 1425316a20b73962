"""The JSON form of a ticket, for the log and webhook sinks: cleaned and bounded like every other markup."""

from __future__ import annotations

from typing import Any

from shared.tickets import document as limits
from shared.tickets.base import TicketContent
from shared.tickets.marker import marker_for
from shared.tickets.sanitize import clean_line, clean_text, is_safe_url


def ticket_payload(content: TicketContent) -> dict[str, Any]:
    """Every field of the ticket; JSON encoding does the escaping, this does cleaning and bounds."""
    return {
        "incident_id": clean_line(content.incident_id, 64),
        "fingerprint": clean_line(content.fingerprint, limits.LIMIT_ID),
        "marker": marker_for(content.fingerprint),
        "title": clean_line(content.title, 256),
        "cause": clean_line(content.cause, limits.LIMIT_NAME),
        "cause_title": clean_line(content.cause_title, limits.LIMIT_NAME),
        "summary": clean_line(content.summary, limits.LIMIT_SUMMARY),
        "principal": {
            "id": clean_line(content.principal_id, limits.LIMIT_ID) or None,
            "type": clean_line(content.principal_type, limits.LIMIT_NAME) or None,
            "name": clean_line(content.principal_name, limits.LIMIT_NAME) or None,
        },
        "resource_id": clean_line(content.resource_id, limits.LIMIT_ID),
        "count": int(content.count),
        "first_seen": clean_line(content.first_seen, 64),
        "last_seen": clean_line(content.last_seen, 64),
        "sample_error": clean_text(content.sample_error, limits.LIMIT_SAMPLE) or None,
        "evidence": [clean_line(e, limits.LIMIT_EVIDENCE_LINE)
                     for e in content.evidence[: limits.MAX_EVIDENCE_LINES]],
        "fix_command": clean_text(content.fix_command, limits.LIMIT_COMMAND) or None,
        "fix_steps": [{"text": clean_line(text, limits.LIMIT_STEP), "doc_url": url if is_safe_url(url) else None}
                      for text, url in content.fix_steps[: limits.MAX_STEPS]],
        "mode": clean_line(content.mode, 32),
        "action": clean_line(content.action, limits.LIMIT_ACTION),
        "approve_hint": clean_line(content.approve_hint, limits.LIMIT_ACTION) or None,
        "escalated": bool(content.escalated),
        "doc_links": [url for url in content.doc_links if is_safe_url(url)],
    }
