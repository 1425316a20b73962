"""People's decisions on tickets: a ticket a person closed as "won't fix" stays closed when its problem recurs.

Each sink reads how its tracker says a ticket was closed (GitHub `state_reason`, Azure DevOps state and reason, a
ServiceNow close code, a Jira resolution) into a `TicketDecision`; a declined one is neither reopened nor followed
by a successor ticket, and the recurrence comment (throttled by the engine) says why. See docs/tickets.md.
"""

from __future__ import annotations

from collections.abc import Iterable

from shared.core.ticket_model import TicketDecision


def matches(value: str, declined: Iterable[str]) -> bool:
    """`value` is one of the configured words, ignoring case and surrounding blanks (trackers' admins retype them)."""
    wanted = value.strip().casefold()
    return bool(wanted) and any(wanted == d.strip().casefold() for d in declined)


def declined_comment(comment: str, decision: TicketDecision) -> str:
    """The recurrence comment on a ticket left closed: what the engine says, then why it was not reopened."""
    who = decision.closed_by or "someone"
    return f"{comment.rstrip()} Not reopened because {who} closed it as {decision.how}."
