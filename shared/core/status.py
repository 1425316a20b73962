"""The service's small vocabularies: modes, decision actions, incident statuses, grant outcomes.

`StrEnum`s, so each value is still the plain string stored in records, shown in JSON and compared in tests; and one
map from a decision's action to the status it gives an incident.
"""

from __future__ import annotations

from enum import StrEnum


class Mode(StrEnum):
    OBSERVE = "observe"
    RECOMMEND = "recommend"
    ENFORCE = "enforce"


class DecisionAction(StrEnum):
    ASSIGN = "assign"
    RECOMMEND = "recommend"
    TICKET = "ticket"
    WAIT = "wait"
    OBSERVE = "observe"
    SUPPRESSED = "suppressed"


class IncidentStatus(StrEnum):
    DETECTED = "detected"
    DIAGNOSED = "diagnosed"
    RECOMMENDED = "recommended"
    ASSIGNED = "assigned"
    VERIFYING = "verifying"
    RESOLVED = "resolved"
    ESCALATED = "escalated"
    TICKETED = "ticketed"
    SUPPRESSED = "suppressed"
    CLOSED_UNVERIFIED = "closed_unverified"


class GrantStatus(StrEnum):
    CREATED = "created"  # this service created the assignment (it alone may revoke it)
    EXISTS = "exists"  # an equal assignment was already there
    RETRY_LATER = "retry_later"  # the principal is still replicating in the directory
    FORBIDDEN = "forbidden"  # the service's identity may not write it
    FAILED = "failed"


GRANTED = frozenset({GrantStatus.CREATED, GrantStatus.EXISTS})

# The status a decision gives an incident. An observe decision records the diagnosis only and leaves the status as
# it is; a wait reaches VERIFYING through `lifecycle.start_waiting`, which also schedules the check.
STATUS_FOR_ACTION: dict[DecisionAction, IncidentStatus] = {
    DecisionAction.ASSIGN: IncidentStatus.ASSIGNED,
    DecisionAction.RECOMMEND: IncidentStatus.RECOMMENDED,
    DecisionAction.TICKET: IncidentStatus.TICKETED,
    DecisionAction.WAIT: IncidentStatus.VERIFYING,
    DecisionAction.SUPPRESSED: IncidentStatus.SUPPRESSED,
}
