"""What a ticket says (`TicketContent`), what a tracker hands back (`TicketRef`) and the errors sinks raise.

Core types: the engine builds content and reads references without knowing which tracker is behind a sink;
each sink in `shared/tickets/` renders the content in its tracker's markup.
"""

from __future__ import annotations

from dataclasses import dataclass, field


class TicketError(RuntimeError):
    """A ticket operation failed transiently (tracker down, rate-limited). Retry next cycle."""


class TicketAuthError(TicketError):
    """Credentials rejected: one operator-facing error, not one per incident."""


class TicketRateLimited(TicketError):
    """The tracker answered with its rate limit (429; a 403 secondary limit; an exhausted quota). `retry_after` is
    how many seconds it asked to wait, by its own clock (Retry-After, or x-ratelimit-reset less the answer's Date):
    no new ticket is opened on that sink until then. None: the tracker did not say."""

    def __init__(self, message: str, retry_after: float | None = None):
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True)
class TicketContent:
    """Everything a ticket says. Fields from logs/events are raw here; sinks escape them for their markup."""

    incident_id: str
    fingerprint: str
    cause: str
    cause_title: str
    summary: str  # plain-language cause
    principal_id: str | None
    principal_type: str | None
    principal_name: str | None
    resource_id: str
    count: int
    first_seen: str  # ISO-8601
    last_seen: str
    sample_error: str | None
    evidence: tuple[str, ...]
    fix_command: str | None
    fix_steps: tuple[tuple[str, str | None], ...]  # (text, doc url)
    action: str  # what the service did or will do
    mode: str
    approve_hint: str | None = None  # how to approve (recommend mode)
    escalated: bool = False
    doc_links: tuple[str, ...] = field(default_factory=tuple)
    # What chat messages (Teams, Slack) offer as actions and links; trackers may show them too. None: not known or
    # not applicable (no approval pending, nothing this service created to roll back, no workspace resource id).
    approve_url: str | None = None  # the approve link a signed-in person opens (App Service authentication)
    approve_command: str | None = None  # the full `az rest` command that approves, for people without the link
    suppress_url: str | None = None  # the link that suppresses this incident's target for 24 h
    suppress_command: str | None = None
    rollback_command: str | None = None  # undoes the role assignment this service created
    logs_url: str | None = None  # Log Analytics in the portal, with the KQL of the failing requests
    # Each sink's reference to its existing ticket or message (sink name, ref): for sinks that cannot look one up
    # (chat), so they update or thread their own message instead of posting a second one.
    refs: tuple[tuple[str, str], ...] = ()
    # The value of the account's owner tag (TRIAGE_ROUTING_TAG) when routing by owner is configured.
    owner: str | None = None

    def ref_for(self, sink: str) -> str | None:
        """This sink's existing reference, if it has one."""
        return next((ref for name, ref in self.refs if name == sink), None)

    @property
    def title(self) -> str:
        who = self.principal_name or self.principal_id or "key callers"
        resource = self.resource_id.rstrip("/").rsplit("/", 1)[-1] or self.resource_id
        return f"[{self.cause}] {who} on {resource}"


@dataclass(frozen=True)
class TicketDecision:
    """How a person closed a ticket, as the tracker reports it: `how` is the tracker's own word (GitHub
    `state_reason`, an Azure DevOps state/reason, a ServiceNow close code, a Jira resolution); `declined` when that
    word means "won't fix" (not planned, removed, a configured code), so a recurrence must not reopen it."""

    closed_by: str | None  # the tracker's name for who closed it; None when it does not say
    how: str
    declined: bool
    at: str | None = None  # when, as the tracker wrote it


@dataclass(frozen=True)
class TicketRef:
    sink: str
    ref: str  # the tracker's id/number/key
    url: str | None = None
    created: bool = False  # True when this call created it (False: found and updated)
    reopened: bool = False  # True when this call reopened a closed ticket (or opened a successor to it)
    # Set when the ticket was found closed by a person as declined and left closed (not reopened, not succeeded).
    decision: TicketDecision | None = None
