"""In-memory fakes of the engine's ports, and the one place where the fast tier builds a runtime (`fake_runtime`).

Each fake keeps the contract of the adapter it stands in for, as the adapter and the port docstrings state it:

- `FakeSource` (shared/adapters/logs.py): request rows in memory, each ingested `ingestion_delay` after it
  happened (none by default) and invisible until then; `read` groups the 401/403 rows that arrived in
  [start, read_through) like the failures query (one group per resource, caller, status, operation, route and
  error code), where `read_through` is min(end, the workspace's clock), keeps only the accounts of `resource_ids`,
  and counts each group's rows that arrived before max(start, watermark) as `overlap_count`; `activity` counts one
  caller's visible failures and successes on one account over [since, until). Without its table
  (`without_table`) it answers `no_data` and no activity, as a workspace that never received diagnostics.
- `FakeEvidence` (shared/adapters/evidence.py): ARM's role assignments and account settings. An assignment made to
  a group applies to its members (`via_group`); `gather_evidence` keeps what applies at, above or below each
  resource, like the real provider. `arm_down()` makes every look-up fail until `arm_up()`: each pair then carries
  what failed (`Evidence.failed`, with nothing read) and `failures()` lists it.
- `FakeRoleWriter` (shared/adapters/role_assignments.py): writes into the same `FakeEvidence` under the grant's
  deterministic name, so a grant shows in the next evidence read and `find_own` finds it; an existing identical
  assignment answers "exists", or "created" when it is the service's own (its name or marker); `delete_own`
  deletes only what carries the service's marker.
- `RecordingSink` (shared/tickets/base.py): one ticket per fingerprint, reopened by `open_or_update` when closed.

Every import of engine internals and port types the fast tier needs is in this module, so a move of the runtime
or the ports changes this file only.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from shared.adapters.evidence import applies_to
from shared.adapters.kql import account_of
from shared.adapters.logs import SourceError
from shared.adapters.role_assignments import DESCRIPTION_MARKER, assignment_name, description_for, is_own
from shared.bootstrap import build_runtime
from shared.core import roles as known_roles
from shared.core.allowlist import normalize_object_id, normalize_scope
from shared.core.model import ENTRA, KEY, Evidence, FailureSignal, ResourceEvidence, RoleAssignmentEvidence
from shared.core.ports import Activity, GrantOutcome, RejectedRow, SourceBatch
from shared.core.ticket_model import TicketDecision
from shared.engine.runtime import Runtime, new_correlation_id
from shared.engine.unit_of_work import BREAKER_KEY, RunState
from shared.engine.verify import run_verifications
from shared.settings import load_settings
from shared.state.sqlite import SqliteStore
from shared.tickets.base import TicketContent, TicketError, TicketRef
from shared.tickets.decision import declined_comment

START = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
OPENAI_ROUTE = "/openai/deployments/gpt-4o/chat/completions"
CHAT_OPERATION = "ChatCompletions_Create"
CHAT_DATA_ACTION = "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action"


class ManualClock:
    """The runtime's clock: it moves only when a test moves it."""

    def __init__(self, start: datetime = START):
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, *, seconds: float = 0, minutes: float = 0, hours: float = 0) -> datetime:
        self._now += timedelta(seconds=seconds, minutes=minutes, hours=hours)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = when


# ---- failure source ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Request:
    """One logged request (a row of AzureDiagnostics)."""

    at: datetime
    principal_id: str | None  # None: a key caller
    resource_id: str
    status: int
    code: str | None = None
    message: str | None = None
    route: str | None = OPENAI_ROUTE
    operation: str | None = CHAT_OPERATION
    endpoint: str | None = None  # client-side records (Application Insights) give the host called
    ingested: datetime | None = None  # when the row arrived in the workspace (None: when it happened)

    @property
    def arrived(self) -> datetime:
        return self.ingested or self.at


@dataclass(frozen=True)
class ReadCall:
    start: datetime
    end: datetime
    resource_ids: tuple[str, ...] | None
    watermark: datetime | None


def permission_denied(principal_id: str) -> str:
    """The data plane's message for a caller without a data role on the chat route."""
    return (f"The principal `{principal_id}` lacks the required data action `{CHAT_DATA_ACTION}` to perform "
            "`POST /openai/deployments/{deployment-id}/chat/completions` operation.")


class FakeSource:
    """A failure source over request rows the test writes (`fail`, `succeed`) at the clock's time."""

    def __init__(self, clock: ManualClock, name: str = "logs:fake-workspace"):
        self.name = name
        self._clock = clock
        self.requests: list[Request] = []
        self.malformed: list[tuple[datetime, str, dict[str, Any]]] = []
        self.reads: list[ReadCall] = []
        self.activity_calls: list[tuple[str | None, str, datetime, datetime]] = []
        self._read_errors: list[Exception] = []
        self._activity_errors: list[Exception] = []
        self._partial_reads = 0
        self.missing_table = ""  # not "": the table this workspace has not received yet

    # ---- scripting ----

    def fail(self, principal_id: str | None, resource_id: str, *, count: int = 1, status: int = 401,
             code: str | None = "PermissionDenied", message: str | None = None, route: str | None = OPENAI_ROUTE,
             operation: str | None = CHAT_OPERATION, at: datetime | None = None, endpoint: str | None = None,
             ingestion_delay: timedelta | None = None) -> None:
        """`count` failed requests now (or `at`); the message defaults to the missing-data-role text. A row as real
        Azure writes it has no code and no message (`code=None`), and its route is the `apiName`. With
        `ingestion_delay` the rows arrive in the workspace that much later."""
        if message is None and code == "PermissionDenied" and principal_id:
            message = permission_denied(principal_id)
        when = at or self._clock.now()
        oid = normalize_object_id(principal_id) if principal_id else None
        ingested = when + ingestion_delay if ingestion_delay else None
        self.requests += [Request(when, oid, resource_id, status, code, message, route, operation, endpoint,
                                  ingested)] * count

    def succeed(self, principal_id: str | None, resource_id: str, *, count: int = 1,
                at: datetime | None = None) -> None:
        oid = normalize_object_id(principal_id) if principal_id else None
        self.requests += [Request(at or self._clock.now(), oid, resource_id, 200)] * count

    def add_malformed_row(self, row: dict[str, Any], reason: str) -> None:
        """A row the adapter cannot map (it becomes a RejectedRow of the read that covers it)."""
        self.malformed.append((self._clock.now(), reason, row))

    def fail_reads(self, error: Exception | None = None, *, times: int = 1) -> None:
        """The next `times` reads raise (as the adapter does when Log Analytics keeps failing)."""
        self._read_errors += [error or SourceError(f"{self.name}: HTTP 503 ServiceUnavailable")] * times

    def fail_activity(self, error: Exception | None = None, *, times: int = 1) -> None:
        """The next `times` activity reads (verification) raise, as the adapter does when Log Analytics fails."""
        self._activity_errors += [error or SourceError(f"{self.name}: HTTP 503 ServiceUnavailable")] * times

    def without_table(self, table: str = "AzureDiagnostics") -> None:
        """The workspace has not received this table yet (until `with_table()`): reads say `no_data`."""
        self.missing_table = table

    def with_table(self) -> None:
        self.missing_table = ""

    def partial_reads(self, *, times: int = 1) -> None:
        """The next `times` reads return half of the groups and a PartialError, as Log Analytics may."""
        self._partial_reads += times

    # ---- FailureSource ----

    def read(self, start: datetime, end: datetime, resource_ids: tuple[str, ...] | None = None, *,
             watermark: datetime | None = None) -> SourceBatch:
        self.reads.append(ReadCall(start, end, resource_ids, watermark))
        if self._read_errors:
            raise self._read_errors.pop(0)
        if self.missing_table:
            return SourceBatch(self.name, start, end, (), no_data=(
                f"{self.name}: no data yet: HTTP 400 BadArgumentError: The request had some invalid properties; "
                f"SemanticError: A semantic error occurred.; SEM0100: 'where' operator: Failed to resolve table or "
                f"column expression named '{self.missing_table}'"))
        overlap_end = start if watermark is None else max(start, watermark)
        read_through = min(end, self._clock.now())  # the workspace's clock: nothing later has arrived
        accounts = {account_of(r) for r in resource_ids} if resource_ids is not None else None
        groups: dict[tuple, list[Request]] = {}
        for request in self.requests:
            if not start <= request.arrived < read_through or not _is_failure(request):
                continue
            if accounts is not None and account_of(request.resource_id) not in accounts:
                continue
            key = (request.resource_id.lower(), request.principal_id or "", request.status, request.operation or "",
                   request.route or "", request.code or "", request.endpoint or "")
            groups.setdefault(key, []).append(request)
        signals = [_signal(rows, overlap_end, self.name) for _, rows in sorted(groups.items())]
        partial: tuple[str, ...] = ()
        if self._partial_reads:
            self._partial_reads -= 1
            signals = signals[: len(signals) // 2]
            partial = ("PartialError: There were some errors when processing your query.",)
        rejected = tuple(RejectedRow(self.name, reason, row) for at, reason, row in self.malformed
                         if start <= at < end)
        return SourceBatch(self.name, start, end, tuple(signals), partial_errors=partial, rejected=rejected,
                           read_through=read_through)

    def activity(self, principal_id: str | None, resource_id: str, since: datetime, until: datetime) -> Activity:
        self.activity_calls.append((principal_id, resource_id, since, until))
        if self._activity_errors:
            raise self._activity_errors.pop(0)
        if self.missing_table:
            return Activity(0, 0)
        oid = normalize_object_id(principal_id) if principal_id else None
        account = account_of(resource_id)
        seen = [r for r in self.requests if since <= r.at < until and r.principal_id == oid
                and account_of(r.resource_id) == account and r.arrived <= self._clock.now()]
        return Activity(failures=sum(1 for r in seen if r.status in (401, 403)),
                        successes=sum(1 for r in seen if 200 <= r.status < 300))


def _is_failure(request: Request) -> bool:
    """401/403, and 400 only for a tenant mismatch (the query's filter)."""
    if request.status in (401, 403):
        return True
    text = f"{request.code or ''} {request.message or ''}".lower()
    return request.status == 400 and "tenant" in text


def _signal(rows: list[Request], overlap_end: datetime, source: str) -> FailureSignal:
    first = rows[0]
    return FailureSignal(
        status=first.status, code=first.code, message=first.message, object_id=first.principal_id,
        auth=ENTRA if first.principal_id else KEY, route=first.route, operation=first.operation,
        endpoint=first.endpoint, resource_id=first.resource_id.lower(), count=len(rows),
        overlap_count=sum(1 for r in rows if r.arrived < overlap_end),
        first_seen=min(r.at for r in rows), last_seen=max(r.at for r in rows), source=source,
    )


# ---- ARM: evidence and role writes --------------------------------------------------------------------------


@dataclass
class FakeAssignment:
    id: str
    role_guid: str
    scope: str
    principal_id: str  # the assignee: a user, a service principal or a group
    principal_type: str
    created_on: datetime
    description: str | None = None


class FakeEvidence:
    """Role assignments, group memberships and account settings, as ARM would answer them."""

    def __init__(self, clock: ManualClock):
        self._clock = clock
        self.assignments: list[FakeAssignment] = []
        self.groups: dict[str, set[str]] = {}
        self.accounts: dict[str, ResourceEvidence] = {}
        self.gather_calls: list[set[tuple[str | None, str]]] = []
        self.new_runs = 0
        self.outage = ""  # not "": every look-up fails with this message
        self._failures: list[str] = []
        self._names = itertools.count(1)
        self.accepted_accounts: dict[str, ResourceEvidence] = {}  # what a resumed scan handed over (accept_accounts)

    # ---- scripting ----

    def add_account(self, resource_id: str, **settings: Any) -> str:
        account = account_of(resource_id)
        self.accounts[account] = ResourceEvidence(resource_id=account, **{"kind": "OpenAI", **settings})
        return resource_id

    def assign(self, principal_id: str, role: str, scope: str, *, age: timedelta = timedelta(days=10),
               principal_type: str = "ServicePrincipal", description: str | None = None,
               assignment_id: str | None = None) -> str:
        """An assignment made by someone else `age` ago (role by name or GUID). Returns its id."""
        found = known_roles.lookup(role)
        guid = found.guid if found else known_roles.guid_of(role)
        assignment_id = assignment_id or self.new_assignment_id(scope)
        self.assignments.append(FakeAssignment(assignment_id, guid, scope, normalize_object_id(principal_id) or
                                               principal_id, principal_type, self._clock.now() - age, description))
        return assignment_id

    def arm_down(self, message: str = "HttpResponseError: (ServiceUnavailable) The service is temporarily "
                 "unavailable. Please try again later.") -> None:
        """ARM answers every look-up with `message` (after the SDK's retries) until `arm_up()`."""
        self.outage = message

    def arm_up(self) -> None:
        self.outage = ""

    def add_group_member(self, member_id: str, group_id: str) -> None:
        self.groups.setdefault(normalize_object_id(group_id) or group_id, set()).add(normalize_object_id(member_id))

    def remove(self, assignment_id: str) -> FakeAssignment | None:
        """Someone deletes an assignment behind the service's back (no event)."""
        found = self.find(assignment_id)
        if found is not None:
            self.assignments.remove(found)
        return found

    def find(self, assignment_id: str) -> FakeAssignment | None:
        wanted = assignment_id.lower()
        return next((a for a in self.assignments if a.id.lower() == wanted), None)

    def of(self, principal_id: str) -> list[FakeAssignment]:
        oid = normalize_object_id(principal_id)
        return [a for a in self.assignments if a.principal_id == oid]

    def new_assignment_id(self, scope: str) -> str:
        return (f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/"
                f"00000000-0000-4000-8000-{next(self._names):012d}")

    # ---- EvidenceProvider ----

    def new_run(self) -> None:
        self.new_runs += 1
        self._failures = []
        self.accepted_accounts = {}

    def accept_accounts(self, settings: Any) -> None:
        self.accepted_accounts = dict(settings)  # recorded only: the fake's reads cost nothing

    def failures(self) -> tuple[str, ...]:
        return tuple(self._failures)

    def assignments_for(self, principal_id: str, resource_id: str) -> tuple[RoleAssignmentEvidence, ...]:
        oid = normalize_object_id(principal_id)
        return tuple(a for a in self._listed(oid) if applies_to(a, resource_id)) if oid else ()

    def resource(self, resource_id: str) -> ResourceEvidence | None:
        return self.accounts.get(account_of(resource_id))

    def gather_evidence(self, pairs: set[tuple[str | None, str]]) -> dict[tuple[str | None, str], Evidence]:
        self.gather_calls.append(set(pairs))
        out: dict[tuple[str | None, str], Evidence] = {}
        if self.outage:
            return {pair: self._unreadable(*pair) for pair in pairs}
        for principal, resource_id in pairs:
            oid = normalize_object_id(principal)
            listed = self._listed(oid) if oid else None  # key callers: nothing to look up
            out[(principal, resource_id)] = Evidence(
                assignments=tuple(a for a in listed if applies_to(a, resource_id)) if listed is not None else None,
                resource=self.resource(resource_id),
                principal_type=next((a.principal_type for a in listed or () if not a.via_group), None),
            )
        return out

    def _unreadable(self, principal: str | None, resource_id: str) -> Evidence:
        """Nothing read: the account and, for an Entra caller, its role assignments failed."""
        failed = [f"account {account_of(resource_id)}: {self.outage}"]
        if normalize_object_id(principal):
            failed.insert(0, f"role assignments of {normalize_object_id(principal)}: {self.outage}")
        self._failures.extend(failed)
        return Evidence(failed=tuple(failed))

    def _listed(self, oid: str) -> list[RoleAssignmentEvidence]:
        """`assignedTo(oid)`: the caller's own assignments and those of the groups it is a member of."""
        member_of = {group for group, members in self.groups.items() if oid in members}
        return [self.evidence_of(a, oid) for a in self.assignments if a.principal_id == oid or
                a.principal_id in member_of]

    @staticmethod
    def evidence_of(assignment: FakeAssignment, caller: str) -> RoleAssignmentEvidence:
        return RoleAssignmentEvidence(
            role_definition_id=assignment.role_guid, scope=assignment.scope, principal_id=assignment.principal_id,
            principal_type=assignment.principal_type, created_on=assignment.created_on,
            via_group=assignment.principal_id != caller, assignment_id=assignment.id,
            description=assignment.description,
        )


@dataclass(frozen=True)
class GrantCall:
    scope: str
    principal_id: str
    principal_type: str
    role_guid: str
    incident_id: str


class FakeRoleWriter:
    """Role writes into `evidence`. Answers "created" (or "exists" for an identical assignment) unless told to
    answer otherwise with `answer_next`."""

    def __init__(self, evidence: FakeEvidence, clock: ManualClock):
        self._evidence = evidence
        self._clock = clock
        self.grants: list[GrantCall] = []
        self.deletes: list[str] = []
        self.gets: list[str] = []
        self.finds: list[tuple[str, str, str | None, str]] = []
        self._answers: list[tuple[str, str]] = []
        self.lose_next_result = False  # True: the next create writes, then raises (a crash after ARM's write)

    def answer_next(self, status: str, *, times: int = 1, message: str = "") -> None:
        """The next `times` creates answer `status`: exists | retry_later | forbidden | failed."""
        if status not in ("exists", "retry_later", "forbidden", "failed"):
            raise ValueError(f"unknown grant outcome {status!r}")
        self._answers += [(status, message or f"scripted {status}")] * times

    def create(self, *, scope: str, principal_id: str, principal_type: str, role_guid: str,
               incident_id: str) -> GrantOutcome:
        self.grants.append(GrantCall(scope, principal_id, principal_type, role_guid, incident_id))
        guid = known_roles.guid_of(role_guid)
        if self._answers:
            status, message = self._answers.pop(0)
            if status != "exists":
                return GrantOutcome(status, message=message)
            self._evidence.assign(principal_id, guid, scope, age=timedelta(0), principal_type=principal_type)
        existing = next((a for a in self._evidence.assignments if a.principal_id == normalize_object_id(principal_id)
                         and a.role_guid == guid and normalize_scope(a.scope) == normalize_scope(scope)), None)
        if existing is not None:
            our_name = assignment_name(scope, principal_id, guid)
            if is_own(existing.id.rsplit("/", 1)[-1], existing.description, our_name):
                return GrantOutcome("created", assignment_id=existing.id, created_on=existing.created_on,
                                    message="the role assignment this service made earlier already exists")
            return GrantOutcome("exists", assignment_id=existing.id, created_on=existing.created_on,
                                message="the role assignment already exists")
        # Named as the adapter names it: the grant's deterministic name at its scope.
        own_id = (f"{scope.rstrip('/')}/providers/Microsoft.Authorization/roleAssignments/"
                  f"{assignment_name(scope, principal_id, guid)}")
        assignment_id = self._evidence.assign(principal_id, guid, scope, age=timedelta(0),
                                              principal_type=principal_type,
                                              description=description_for(incident_id), assignment_id=own_id)
        if self.lose_next_result:  # the ARM write happened; the instance died before hearing of it
            self.lose_next_result = False
            raise ConnectionError("the instance stopped after ARM's write")
        return GrantOutcome("created", assignment_id=assignment_id, created_on=self._clock.now(),
                            message=f"assigned {guid} at {scope}")

    def find_own(self, *, scope: str, principal_id: str, role_guid: str | None,
                 incident_id: str) -> RoleAssignmentEvidence | None:
        self.finds.append((scope, principal_id, role_guid, incident_id))
        if self._evidence.outage:
            raise ConnectionError(f"ARM: {self._evidence.outage}")
        oid = normalize_object_id(principal_id)
        name = assignment_name(scope, principal_id, role_guid) if role_guid else None
        by_name = (a for a in self._evidence.assignments if name and a.id.lower().endswith("/" + name)
                   and normalize_scope(a.scope) == normalize_scope(scope))
        by_marker = (a for a in self._evidence.assignments if a.principal_id == oid
                     and normalize_scope(a.scope).startswith(normalize_scope(scope))
                     and a.description == description_for(incident_id))
        found = next(by_name, None) or next(by_marker, None)
        return FakeEvidence.evidence_of(found, found.principal_id) if found else None

    def delete_own(self, assignment_id: str) -> bool:
        self.deletes.append(assignment_id)
        found = self._evidence.find(assignment_id)
        if found is None or not (found.description or "").startswith(DESCRIPTION_MARKER):
            return False
        self._evidence.remove(assignment_id)
        return True

    def get(self, assignment_id: str) -> RoleAssignmentEvidence | None:
        self.gets.append(assignment_id)
        found = self._evidence.find(assignment_id)
        return FakeEvidence.evidence_of(found, found.principal_id) if found else None


# ---- tickets and outcome events --------------------------------------------------------------------------------


@dataclass
class FakeTicket:
    ref: str
    fingerprint: str
    incident_id: str
    content: TicketContent
    is_open: bool = True
    comments: list[str] = field(default_factory=list)
    decision: TicketDecision | None = None  # set when a person closed it (declined or completed)


@dataclass(frozen=True)
class SinkCall:
    op: str  # open_or_update | resolve
    incident_id: str
    comment: str | None
    result: str  # created | updated | reopened | resolved | already-closed | none | failed


class RecordingSink:
    """A tracker in memory: one ticket per fingerprint; every call is recorded, failed ones too."""

    def __init__(self, name: str = "tracker"):
        self.name = name
        self.tickets: dict[str, FakeTicket] = {}
        self.calls: list[SinkCall] = []
        self._failures: list[tuple[str | None, TicketError]] = []
        self._failing: TicketError | None = None
        self._numbers = itertools.count(1)

    def fail_next(self, error: TicketError | None = None, *, times: int = 1, op: str | None = None) -> None:
        """The next `times` calls (of `op` only, when given) raise `error` (TicketError by default)."""
        self._failures += [(op, error or TicketError(f"{self.name}: 503 Service Unavailable"))] * times

    def fail_always(self, error: TicketError | None) -> None:
        """Every call raises `error` until `fail_always(None)`."""
        self._failing = error

    def open_or_update(self, content: TicketContent, *, comment: str | None = None) -> TicketRef:
        self._maybe_fail("open_or_update", content, comment)
        ticket = self.tickets.get(content.fingerprint)
        if ticket is None:
            ticket = FakeTicket(str(next(self._numbers)), content.fingerprint, content.incident_id, content)
            self.tickets[content.fingerprint] = ticket
            result = "created"
        elif not ticket.is_open and ticket.decision is not None and ticket.decision.declined:
            # A person declined it: left closed, as the real sinks do; the comment says why.
            if comment:
                ticket.comments.append(declined_comment(comment, ticket.decision))
            self.calls.append(SinkCall("open_or_update", content.incident_id, comment, "declined"))
            return TicketRef(self.name, ticket.ref, self._url(ticket), decision=ticket.decision)
        else:
            result = "updated" if ticket.is_open else "reopened"
            ticket.content, ticket.is_open, ticket.decision = content, True, None
        if comment:
            ticket.comments.append(comment)
        self.calls.append(SinkCall("open_or_update", content.incident_id, comment, result))
        return TicketRef(self.name, ticket.ref, self._url(ticket), created=result == "created",
                         reopened=result == "reopened")

    def resolve(self, content: TicketContent, *, comment: str) -> TicketRef | None:
        self._maybe_fail("resolve", content, comment)
        ticket = self.tickets.get(content.fingerprint)
        if ticket is None:
            self.calls.append(SinkCall("resolve", content.incident_id, comment, "none"))
            return None
        result = "resolved" if ticket.is_open else "already-closed"
        if ticket.is_open:
            ticket.comments.append(comment)
            ticket.content, ticket.is_open = content, False
        self.calls.append(SinkCall("resolve", content.incident_id, comment, result))
        return TicketRef(self.name, ticket.ref, self._url(ticket))

    def close_by_person(self, incident_id: str, person: str, how: str, *, declined: bool) -> None:
        """A person closes the incident's ticket: as won't fix (`declined`) or as completed."""
        ticket = self.ticket_of(incident_id)
        ticket.is_open = False
        ticket.decision = TicketDecision(closed_by=person, how=how, declined=declined, at="2026-03-01T12:00:00Z")

    def _maybe_fail(self, op: str, content: TicketContent, comment: str | None) -> None:
        error = self._failing
        if error is None:
            index = next((i for i, (wanted, _) in enumerate(self._failures) if wanted in (None, op)), None)
            error = self._failures.pop(index)[1] if index is not None else None
        if error is not None:
            self.calls.append(SinkCall(op, content.incident_id, comment, "failed"))
            raise error

    def _url(self, ticket: FakeTicket) -> str:
        return f"https://tracker.example/{self.name}/{ticket.ref}"

    # ---- reading ----

    def ticket_of(self, incident_id: str) -> FakeTicket:
        [ticket] = [t for t in self.tickets.values() if t.incident_id == incident_id]
        return ticket

    def created(self) -> int:
        return sum(1 for c in self.calls if c.result == "created")


class RecordingPublisher:
    """Outcome events, in order. With `failing`, every publish raises (publishing is best effort)."""

    def __init__(self, *, failing: bool = False):
        self.events: list[tuple[str, dict[str, Any]]] = []
        self.failing = failing

    def publish(self, event_type: str, data: dict[str, Any]) -> None:
        if self.failing:
            raise ConnectionError("event grid topic unreachable")
        self.events.append((event_type, data))

    def types(self) -> list[str]:
        return [t for t, _ in self.events]


# ---- store and runtime -----------------------------------------------------------------------------------------


class WriteCountingStore(SqliteStore):
    """The real SQLite store (in memory), counting its writes by method name in `writes`."""

    def __init__(self, path: str = ":memory:"):
        super().__init__(path)
        self.writes: Counter[str] = Counter()


def _counted(name: str) -> Any:
    write = getattr(SqliteStore, name)

    def counted(self: WriteCountingStore, *args: Any, **kwargs: Any) -> Any:
        self.writes[name] += 1
        return write(self, *args, **kwargs)

    counted.__name__ = name
    return counted


for _write in ("put_incident", "append_audit", "put_value", "record_grant", "set_watermark", "add_suppression",
               "mark_event_processed", "forget_event", "claim_event", "complete_event", "put_incident_audited",
               "create_incidents"):
    setattr(WriteCountingStore, _write, _counted(_write))


def fake_runtime(
    env: Mapping[str, str] | None = None,
    *,
    clock: ManualClock | None = None,
    store: SqliteStore | None = None,
    sources: Iterable[Any] | None = None,
    evidence: FakeEvidence | None = None,
    roles: FakeRoleWriter | None = None,
    sinks: Iterable[Any] | None = None,
    publisher: RecordingPublisher | None = None,
    telemetry: Any = None,
) -> Runtime:
    """The engine's runtime from `TRIAGE_*` settings and fakes; whatever is not given is a fresh fake (telemetry:
    off)."""
    clock = clock or ManualClock()
    evidence = evidence or FakeEvidence(clock)
    return build_runtime(
        load_settings(dict(env or {})),
        store=store or WriteCountingStore(),
        sources=list(sources) if sources is not None else [FakeSource(clock)],
        evidence=evidence,
        roles=roles or FakeRoleWriter(evidence, clock),
        sinks=list(sinks) if sinks is not None else [RecordingSink()],
        events=publisher if publisher is not None else RecordingPublisher(),
        clock=clock.now,
        telemetry=telemetry,
    )


def verify_due(rt: Runtime) -> dict[str, int]:
    """Run the verifications that are due, outside a scan (as `python -m shared verify` does)."""
    return run_verifications(rt, RunState.begin(rt, new_correlation_id()))


def breaker_state(store: SqliteStore) -> dict[str, Any] | None:
    """The stored circuit-breaker record (None: never written, i.e. closed)."""
    value, _ = store.get_value(BREAKER_KEY)
    return value
