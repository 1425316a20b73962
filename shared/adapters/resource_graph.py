"""Role assignments and account settings for many principals and accounts at once, over Azure Resource Graph
(azure-mgmt-resourcegraph): `authorizationresources` for role assignments, `resources` for
`microsoft.cognitiveservices/accounts` (disableLocalAuth, network settings, identity). A few paged queries replace
one ARM read per principal and per account, so a first scan of thousands of groups is not throttled by ARM.

The same pass names the managed identities among the principals (`principal_names`, one more query per chunk):
a managed identity is an ARM resource. A user-assigned one is a `microsoft.managedidentity/userassignedidentities`
resource whose `properties.principalId` is its object id; a system-assigned one is the `identity` block of the
resource it belongs to (`identity.principalId`, only set for the system-assigned identity: learn.microsoft.com/
rest/api/managedidentity/user-assigned-identities/get, learn.microsoft.com/azure/templates/microsoft.web/sites
`ManagedServiceIdentity`). Either way the name shown is that resource's name: the user-assigned identity's own name,
or the name of the web app, function app, VM, ... the system-assigned identity belongs to (the name Entra's
service principal for it is usually shown under, read here without Microsoft Graph; untrusted text like any other,
escaped by every sink). A failed names query leaves the names unknown, nothing more.

What Resource Graph cannot say, the evidence provider reads from ARM (shared/adapters/evidence.py):
- roles held through groups: Resource Graph stores an assignment's principalId, not group membership, so an
  account that any group assignment applies to is read with ARM's `assignedTo()` filter;
- an account the query does not return (not readable there, or not indexed yet: Resource Graph lags ARM).
A failed query (403, 404, throttled past the SDK's retries, anything) makes the whole batch fall back to ARM.

Queries list at most `chunk` principals or accounts each (Resource Graph recommends groups under 300), and page
with `$skipToken`, 1,000 records a page.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from shared.adapters.role_assignments import to_evidence as assignment_evidence
from shared.core.allowlist import normalize_object_id
from shared.core.model import RoleAssignmentEvidence
from shared.core.resource_ids import account_key

log = logging.getLogger("triage.adapters")

CHUNK = 250
PAGE = 1000
_ASSIGNMENT = "microsoft.authorization/roleassignments"
_ACCOUNT = "microsoft.cognitiveservices/accounts"


@dataclass(frozen=True)
class GraphAssignments:
    direct: dict[str, tuple[RoleAssignmentEvidence, ...]]  # principal -> its own assignments (every one asked)
    group_scopes: tuple[str, ...]  # scopes of every assignment to a group in the subscriptions


def _quoted(values: Iterable[str]) -> str:
    return ", ".join("'" + v.replace("'", "") + "'" for v in values)


def _chunks(values: list[str], size: int) -> Iterator[list[str]]:
    for start in range(0, len(values), size):
        yield values[start:start + size]


def assignments_query(principals: Iterable[str]) -> str:
    """The principals' own role assignments and every assignment held by a group."""
    return (
        f"authorizationresources | where type =~ '{_ASSIGNMENT}' "
        "| extend principalId = tolower(tostring(properties.principalId)), "
        "principalType = tostring(properties.principalType) "
        f"| where principalId in ({_quoted(principals)}) or principalType =~ 'Group' "
        "| project id, name, type, principalId, principalType, properties | order by id asc"
    )


def accounts_query(account_ids: Iterable[str]) -> str:
    return (
        f"resources | where type =~ '{_ACCOUNT}' | where tolower(id) in ({_quoted(account_ids)}) "
        "| project id, name, type, ['kind'], location, sku, tags, properties, identity | order by id asc"
    )


_IDENTITY = "microsoft.managedidentity/userassignedidentities"
NAME_MAX = 200  # a display name longer than any ARM resource name is cut (it is shown, never compared)


def identities_query(principals: Iterable[str]) -> str:
    """The resources that are (user-assigned) or carry (system-assigned) the principals' managed identities."""
    wanted = _quoted(principals)
    return (
        "resources | extend systemId = tolower(tostring(identity.principalId)), "
        f"ownId = iff(type =~ '{_IDENTITY}', tolower(tostring(properties.principalId)), '') "
        f"| where systemId in ({wanted}) or ownId in ({wanted}) "
        "| project id, name, type, principalId = iff(ownId != '', ownId, systemId) | order by id asc"
    )


def display_name(name: Any) -> str | None:
    """A resource name as a display name: text on one line, at most NAME_MAX characters (still untrusted: every
    sink escapes it for its markup). None for a name with an "@": no managed identity's resource is named like a
    user (ARM's naming rules allow no "@" in a web app's or an identity's name), and the diagnosis compares the
    caller's name with a user an error names (core/diagnose.py), so a user-like name read from a resource must
    never make another user's refusal look like the caller's."""
    text = " ".join(str(name).split()) if isinstance(name, str) else ""
    if "@" in text:
        return None
    return text[:NAME_MAX] or None


class ResourceGraphReader:
    """Batched reads over one ResourceGraphClient (built lazily by the caller)."""

    def __init__(self, client: Any, *, chunk: int = CHUNK):
        self.client = client
        self._chunk = max(1, chunk)
        self.queries = 0  # query requests sent (pages included), for benchmarks

    def _rows(self, query: str, subscriptions: list[str]) -> Iterator[dict[str, Any]]:
        from azure.mgmt.resourcegraph.models import QueryRequest, QueryRequestOptions

        skip_token = None
        while True:
            options = QueryRequestOptions(skip_token=skip_token, top=PAGE, result_format="objectArray")
            self.queries += 1
            answer = self.client.resources(QueryRequest(subscriptions=subscriptions, query=query, options=options))
            yield from answer.data or ()
            if str(answer.result_truncated).lower().endswith("true"):
                raise GraphIncomplete(f"Resource Graph truncated the answer ({answer.count} of "
                                      f"{answer.total_records} records) and gave no $skipToken")
            skip_token = answer.skip_token
            if not skip_token:
                return

    def query_rows(self, query: str, subscriptions: Iterable[str]) -> list[dict[str, Any]]:
        """Every row of one query over the subscriptions, all pages (the access reviews' policy read)."""
        return list(self._rows(query, sorted(set(subscriptions))))

    def assignments(self, principals: Iterable[str], subscriptions: Iterable[str]) -> GraphAssignments:
        wanted = sorted({oid for p in principals if (oid := normalize_object_id(p))})
        subs = sorted(set(subscriptions))
        direct: dict[str, list[RoleAssignmentEvidence]] = {oid: [] for oid in wanted}
        group_scopes: dict[str, None] = {}
        seen: set[str] = set()
        for chunk in _chunks(wanted, self._chunk) if wanted else iter([[]]):
            for row in self._rows(assignments_query(chunk), subs):
                if (row.get("id") or "").lower() in seen:
                    continue  # group assignments come back with every chunk
                seen.add((row.get("id") or "").lower())
                model = _assignment_model(row)
                if (row.get("principalType") or "").lower() == "group":
                    group_scopes[model.scope or ""] = None
                oid = normalize_object_id(row.get("principalId"))
                if oid in direct:
                    direct[oid].append(assignment_evidence(model, oid))
        return GraphAssignments({oid: tuple(found) for oid, found in direct.items()}, tuple(group_scopes))

    def principal_names(self, principals: Iterable[str], subscriptions: Iterable[str]) -> dict[str, str]:
        """Object id -> the name of its managed identity's resource, for each principal that is a managed identity
        in the subscriptions (others are simply absent: users, groups, app registrations' service principals). A
        user-assigned identity's own resource wins over a resource it would also match (first by id otherwise)."""
        wanted = sorted({oid for p in principals if (oid := normalize_object_id(p))})
        found: dict[str, tuple[bool, str]] = {}
        for chunk in _chunks(wanted, self._chunk):
            for row in self._rows(identities_query(chunk), sorted(set(subscriptions))):
                oid, name = normalize_object_id(row.get("principalId")), display_name(row.get("name"))
                if oid is None or name is None:
                    continue
                own = str(row.get("type") or "").lower() == _IDENTITY
                if oid not in found or (own and not found[oid][0]):
                    found[oid] = (own, name)
        return {oid: name for oid, (_, name) in found.items()}

    def accounts(self, account_ids: Iterable[str], subscriptions: Iterable[str]) -> dict[str, Any]:
        """Account key -> the SDK Account model, for each account Resource Graph returned."""
        from azure.mgmt.cognitiveservices.models import Account

        wanted = sorted({account_key(a) for a in account_ids})
        found: dict[str, Any] = {}
        for chunk in _chunks(wanted, self._chunk):
            for row in self._rows(accounts_query(chunk), sorted(set(subscriptions))):
                found[account_key(row.get("id") or "")] = Account.deserialize(row)
        return found


class GraphIncomplete(RuntimeError):
    """Resource Graph answered only part of a query: the batch falls back to ARM."""


def _assignment_model(row: dict[str, Any]) -> Any:
    from azure.mgmt.authorization.v2022_04_01.models import RoleAssignment

    return RoleAssignment.deserialize({"id": row.get("id"), "name": row.get("name"),
                                       "type": "Microsoft.Authorization/roleAssignments",
                                       "properties": row.get("properties") or {}})
