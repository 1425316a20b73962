"""Incidents: one per problem, keyed by a fingerprint of principal, resource and cause family.

Pure data and pure transitions; the state backends persist `Incident.to_record()` and rebuild with
`Incident.from_record()`.
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime
from typing import Any

from shared.core import endpoints
from shared.core.allowlist import normalize_object_id
from shared.core.approval import ApprovalTerms
from shared.core.causes import family_of
from shared.core.model import Diagnosis, FailureSignal
from shared.core.resource_ids import normalize_scope, parse_strict
from shared.core.resource_ids import parse as parse_resource_id
from shared.core.status import IncidentStatus

KEY_CALLERS = "key-callers"

# Lifecycle states (IncidentStatus members, kept as module names for readability at call sites).
DETECTED = IncidentStatus.DETECTED
DIAGNOSED = IncidentStatus.DIAGNOSED
RECOMMENDED = IncidentStatus.RECOMMENDED
ASSIGNED = IncidentStatus.ASSIGNED
VERIFYING = IncidentStatus.VERIFYING
RESOLVED = IncidentStatus.RESOLVED
ESCALATED = IncidentStatus.ESCALATED
TICKETED = IncidentStatus.TICKETED
SUPPRESSED = IncidentStatus.SUPPRESSED
CLOSED_UNVERIFIED = IncidentStatus.CLOSED_UNVERIFIED

STATUSES: tuple[str, ...] = tuple(IncidentStatus)
OPEN_STATUSES = frozenset({DETECTED, DIAGNOSED, RECOMMENDED, ASSIGNED, VERIFYING, ESCALATED, TICKETED})
CLOSED_STATUSES = frozenset({RESOLVED, CLOSED_UNVERIFIED})


def principal_key(object_id: str | None) -> str:
    """The principal part of a fingerprint: the normalized object id, or KEY_CALLERS for key/anonymous."""
    return normalize_object_id(object_id) or KEY_CALLERS


def fingerprint(object_id: str | None, resource_id: str | None, cause: str, scope: str | None = None) -> str:
    """`scope` is the diagnosis's: a project under the failing account keys the incident by that project, so a
    decision on one project never stands for another project or the account."""
    resource = normalize_scope(resource_id) if resource_id else "/unknown-resource"
    return f"{principal_key(object_id)}|{decision_target(resource, scope)}|{family_of(cause)}"


def keyed_scope(signal: FailureSignal, diagnosis: Diagnosis) -> str | None:
    """The scope an incident is keyed by: the diagnosis's when it names a project, else the project the failing
    request itself named (its URL or route). A diagnosis that names no role (propagation, role present) has no
    scope; keyed by the account, the failures of a project granted a role moments ago became a second incident."""
    named = parse_strict(diagnosis.scope) if diagnosis.scope else None
    if named is not None and named.is_project:
        return diagnosis.scope
    _, project, _ = endpoints.detect(signal.endpoint, signal.route, signal.operation)
    account = parse_resource_id(signal.resource_id) if signal.resource_id else None
    if project and account is not None:
        return account.project(project).text
    return diagnosis.scope


def decision_target(resource: str, scope: str | None) -> str:
    """The normalized resource a decision is about: the diagnosis's project when it names one under the failing
    account, else the failing resource."""
    target = parse_strict(scope) if scope else None
    failing = parse_strict(resource)
    if target is None or failing is None or not target.is_project or target.account() != failing.account():
        return normalize_scope(resource)
    return target.key


def incident_id(fp: str) -> str:
    """A short, stable, URL-safe id derived from the fingerprint (same problem, same id, on every instance)."""
    return "inc-" + hashlib.sha256(fp.encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class Action:
    at: datetime
    kind: str  # diagnosed | recommended | assigned | waiting | ticketed | refused | resolved | escalated | ...
    detail: str = ""
    actor: str = "service"
    # The policy rule ids that refused the decision this action records (structured, so rules are never read back
    # out of `detail`'s wording).
    rules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Incident:
    id: str
    fingerprint: str
    principal_id: str | None  # None for key callers
    resource_id: str
    cause: str
    status: str
    first_seen: datetime
    last_seen: datetime
    count: int = 0
    principal_type: str | None = None
    principal_name: str | None = None
    diagnosis: Diagnosis | None = None  # the diagnosis the current decision was made on
    sample_error: str | None = None
    actions: tuple[Action, ...] = ()
    ticket_refs: dict[str, str] = field(default_factory=dict)  # sink name -> ticket reference
    ticket_pending: bool = False  # a ticket operation failed; retry next cycle
    assignment_id: str | None = None  # set only for assignments this service created
    assignment_created_at: datetime | None = None
    verify_due: datetime | None = None
    verify_deadline: datetime | None = None
    approval_handle: str | None = None
    approval_expires_at: datetime | None = None
    approved_by: str | None = None
    # What the open recommendation offers for approval (core/approval.py); None when there is none.
    approval_terms: ApprovalTerms | None = None
    last_grant_at: datetime | None = None
    last_comment_at: datetime | None = None  # last recurrence comment on the ticket (throttled)
    closed_at: datetime | None = None  # when it was resolved / closed unverified (recurrence after this reopens)
    # Sinks whose NEW ticket waits for the ticket budget or a tracker's rate limit (engine/ticketing.py): the queue,
    # durable on the incident; ticket_pending stays True while it is not empty.
    ticket_queued: tuple[str, ...] = ()
    # sink name -> key of the grouped (storm) ticket this incident is listed in; its ticket_refs entry is that ticket
    ticket_groups: dict[str, str] = field(default_factory=dict)
    updated_at: datetime | None = None
    # The value of the account's owner tag (TRIAGE_ROUTING_TAG) as its evidence last showed it: routes new tickets.
    owner: str | None = None
    etag: str | None = None  # set by the store; never part of the record

    @property
    def family(self) -> str:
        return family_of(self.cause)

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def with_action(self, action: Action) -> Incident:
        return replace(self, actions=(*self.actions, action))

    def to_record(self) -> dict[str, Any]:
        """JSON-safe dict (datetimes as ISO-8601 strings); `etag` is left out."""
        raw = asdict(self)
        raw.pop("etag")
        raw["diagnosis"] = self.diagnosis.to_json() if self.diagnosis is not None else {}
        return _jsonable(raw)

    @classmethod
    def from_record(cls, record: dict[str, Any], etag: str | None = None) -> Incident:
        data = dict(record)
        for name in (
            "first_seen",
            "last_seen",
            "assignment_created_at",
            "verify_due",
            "verify_deadline",
            "approval_expires_at",
            "last_grant_at",
            "last_comment_at",
            "closed_at",
            "updated_at",
        ):
            if data.get(name):
                data[name] = datetime.fromisoformat(data[name])
        data["actions"] = tuple(
            Action(at=datetime.fromisoformat(a["at"]), kind=a["kind"], detail=a.get("detail", ""),
                   actor=a.get("actor", "service"), rules=tuple(a.get("rules") or ()))
            for a in data.get("actions", ())
        )
        data["ticket_refs"] = dict(data.get("ticket_refs") or {})
        data["ticket_queued"] = tuple(data.get("ticket_queued") or ())
        data["ticket_groups"] = dict(data.get("ticket_groups") or {})
        data["diagnosis"] = Diagnosis.from_json(data["diagnosis"]) if data.get("diagnosis") else None
        data["approval_terms"] = ApprovalTerms.from_json(data["approval_terms"]) if data.get("approval_terms") else None
        return cls(**data, etag=etag)


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value
