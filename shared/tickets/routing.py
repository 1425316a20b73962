"""Where a new ticket goes: each sink's own routing settings, with the route of the account's owner over them.

Pure: `route_for(sink, owner, settings)` is what a sink sets on a ticket it creates (never on updates: people
re-route tickets, and a rewrite must not undo that). The owner is the value of the account's tag named by
TRIAGE_ROUTING_TAG (`TicketContent.owner`); TRIAGE_TICKET_ROUTES maps owner values to per-sink fields
(settings.ROUTE_FIELDS). A route's field replaces the sink's setting of that field; fields it does not name keep
the setting. Owner values match exactly, else ignoring case.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.core.triage import owner_of
from shared.settings import ROUTE_FIELDS, Settings

__all__ = ["SinkRouting", "owner_of", "route_for", "sink_defaults", "sink_routing"]


def sink_defaults(sink: str, settings: Settings) -> dict[str, Any]:
    """The sink's own routing settings (empty values left out)."""
    if sink == "servicenow":
        fields: dict[str, Any] = {"assignment_group": settings.servicenow_assignment_group,
                                  "category": settings.servicenow_category}
    elif sink == "jira":
        fields = {"components": settings.jira_components, "labels": settings.jira_labels,
                  "issue_type": settings.jira_issue_type}
    else:  # github, azuredevops: their sinks take their own settings and lay `by_owner` over them
        fields = {}
    return {name: value for name, value in fields.items() if value}


@dataclass(frozen=True)
class SinkRouting:
    """One sink's routing: its defaults and, per owner value, the fields a route sets."""

    defaults: Mapping[str, Any] = field(default_factory=dict)
    by_owner: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def route_of(self, owner: str | None) -> Mapping[str, Any]:
        if not owner:
            return {}
        owner = owner.strip()
        if owner in self.by_owner:
            return self.by_owner[owner]
        folded = owner.casefold()
        return next((route for name, route in self.by_owner.items() if name.casefold() == folded), {})

    def for_owner(self, owner: str | None) -> dict[str, Any]:
        """The fields a new ticket of `owner` gets: the route's over the defaults."""
        return {**self.defaults, **self.route_of(owner)}


def sink_routing(sink: str, settings: Settings) -> SinkRouting:
    by_owner = {owner: dict(sinks[sink]) for owner, sinks in settings.ticket_routes.items() if sink in sinks}
    return SinkRouting(defaults=sink_defaults(sink, settings), by_owner=by_owner)


def route_for(sink: str, owner: str | None, settings: Settings) -> dict[str, Any]:
    """The routing fields `sink` sets on a new ticket for an account owned by `owner` (None: no owner known).
    Keys are the sink's ROUTE_FIELDS; absent keys mean "leave the tracker's default"."""
    if sink not in ROUTE_FIELDS:
        return {}
    return sink_routing(sink, settings).for_owner(owner)
