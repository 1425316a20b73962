"""Azure Resource Graph's query API (`POST /providers/Microsoft.ResourceGraph/resources`, api 2021-03-01 as
azure-mgmt-resourcegraph 8.0.0 sends it, and 2022-10-01): the KQL runs through duckdb-kql over two tables built
from the stand-in's own state at the moment of the query: `resources` (the Cognitive Services accounts, their ARM
bodies with `type` lower-cased as Resource Graph stores it, and the other ARM resources the stand-in serves: web
apps and gateways with their `identity` block, user-assigned identities with `properties.principalId`: see
`State.put_app_resource`), `authorizationresources` (the role assignments,
type `microsoft.authorization/roleassignments`) and `policyresources` (the scenario's policy assignments and
exemptions, types `microsoft.authorization/policyassignments` and `.../policyexemptions`).

The answer has the documented shape (learn.microsoft.com/rest/api/azureresourcegraph/resourcegraph/resources/
resources; paging: learn.microsoft.com/azure/governance/resource-graph/concepts/paging-results): `totalRecords`,
`count`, `data` (objectArray, or table with `resultFormat: table`), `resultTruncated`, and `$skipToken` while
more records remain. At most 1,000 records a page (`options.$top` asks for fewer). A query with `take`/`limit`/
`sample`, or whose output columns are all dynamic, cannot be paged: `resultTruncated` is "true" and no
`$skipToken` is set. `subscriptions` limits the rows to those subscriptions.

Resource Graph lags ARM in Azure (changes reach it within minutes); the stand-in answers from the current state,
so a test of the lag is a scenario switch, not a default.
"""

from __future__ import annotations

import base64
import json
import re
import tempfile
import threading
from pathlib import Path
from typing import Any

import duckdb_kql

from localazure import armjson, scopes
from localazure.frontdoor import error
from localazure.https import Request, Response
from localazure.policy import scope_of as policy_scope_of
from localazure.state import State

MAX_PAGE = 1000
_COLUMNS = ("id", "name", "type", "tenantId", "kind", "location", "resourceGroup", "subscriptionId", "managedBy",
            "sku", "plan", "properties", "tags", "identity", "zones", "extendedLocation")
_DYNAMIC = {"sku", "plan", "properties", "tags", "identity", "zones", "extendedLocation"}
_UNPAGEABLE = re.compile(r"\|\s*(take|limit|sample)\b", re.IGNORECASE)


def _resource_group_of(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    return lowered[lowered.index("resourcegroups") + 1] if "resourcegroups" in lowered else ""


class ResourceGraph:
    def __init__(self, state: State):
        self.state = state
        self._lock = threading.Lock()  # one duckdb connection, one query at a time

    def _rows(self) -> dict[str, list[dict[str, Any]]]:
        state = self.state
        with state.lock:
            accounts = list(state.accounts.values())
            assignments = state.all_assignments()
            others = list(state.app_resources.values())
        resources = []
        for account in accounts:
            body = armjson.account(account)
            resources.append({**body, "type": str(body.get("type", "")).lower(), "tenantId": state.tenant_id,
                              "resourceGroup": account.resource_group.lower(),
                              "subscriptionId": account.subscription_id})
        for body in others:
            resource_id = str(body.get("id", ""))
            resources.append({**body, "type": str(body.get("type", "")).lower(), "tenantId": state.tenant_id,
                              "resourceGroup": _resource_group_of(resource_id),
                              "subscriptionId": scopes.subscription_of(resource_id) or state.subscription_id})
        authorization = []
        for assignment in assignments:
            body = armjson.assignment(assignment, state.subscription_id)
            subscription = scopes.subscription_of(assignment.scope) or state.subscription_id
            authorization.append({**body, "type": body["type"].lower(), "tenantId": state.tenant_id,
                                  "resourceGroup": _resource_group_of(assignment.scope),
                                  "subscriptionId": subscription})
        return {"resources": resources, "authorizationresources": authorization,
                "policyresources": self._policy_rows()}

    def _policy_rows(self) -> list[dict[str, Any]]:
        """The scenario's policy assignments and exemptions, as ARM's bodies with `type` lower-cased. Resource Graph
        returns only what the caller may read: rows at an unreadable scope (`unreadable_scopes`) are left out."""
        state = self.state
        with state.lock:
            world = state.policies
            items = [*world.assignments, *world.exemptions]
            unreadable = list(world.unreadable_scopes)
        rows = []
        for item in items:
            scope = policy_scope_of(item)
            if any(scopes.is_at_or_above(u, scope) for u in unreadable):
                continue
            rows.append({**item, "type": item["type"].lower(), "tenantId": state.tenant_id,
                         "resourceGroup": _resource_group_of(scope),
                         "subscriptionId": scopes.subscription_of(scope) or ""})
        return rows

    def serve(self, request: Request, caller: str) -> Response:
        try:
            body = request.json() or {}
        except ValueError:
            return error(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")
        query = body.get("query")
        if not isinstance(query, str) or not query.strip():
            return error(400, "BadRequest", "Please provide a query.")
        options = body.get("options") or {}
        subscriptions = {s.lower() for s in body.get("subscriptions") or ()}
        try:
            offset = int(base64.b64decode(options["$skipToken"]).decode()) if options.get("$skipToken") else int(
                options.get("$skip") or 0)
        except (ValueError, TypeError):
            return error(400, "BadRequest", "The $skipToken is not valid.")
        top = min(MAX_PAGE, int(options.get("$top") or MAX_PAGE))
        try:
            columns, rows = self._run(query, subscriptions)
        except duckdb_kql.KqlError as exc:
            return error(400, "BadRequest", f"Please provide below info when asking for support: the query is "
                         f"invalid: {exc}")
        except Exception as exc:  # noqa: BLE001 - a query duckdb cannot run is a bad query, not a stand-in crash
            return error(400, "BadRequest", f"Query is invalid: {type(exc).__name__}: {exc}")
        page = rows[offset:offset + top]
        pageable = not _UNPAGEABLE.search(query) and any(kind != "dynamic" for _, kind in columns)
        more = offset + len(page) < len(rows)
        answer: dict[str, Any] = {
            "totalRecords": len(rows),
            "count": len(page),
            "resultTruncated": "true" if more and not pageable else "false",
            "facets": [],
        }
        if options.get("resultFormat") == "table":
            answer["data"] = {"columns": [{"name": n, "type": t} for n, t in columns],
                              "rows": [[r[n] for n, _ in columns] for r in page]}
        else:
            answer["data"] = page
        if more and pageable:
            answer["$skipToken"] = base64.b64encode(str(offset + len(page)).encode()).decode()
        return Response.json(answer)

    def _run(self, query: str, subscriptions: set[str]) -> tuple[list[tuple[str, str]], list[dict[str, Any]]]:
        tables = self._rows()
        with self._lock:
            con = duckdb_kql.connect()
            try:
                with tempfile.TemporaryDirectory(prefix="localazure-graph-") as tmp:
                    for table, rows in tables.items():
                        kept = [r for r in rows if not subscriptions or str(r.get("subscriptionId", "")).lower()
                                in subscriptions]
                        _load(con, table, kept, Path(tmp) / f"{table}.ndjson")
                relation = duckdb_kql.kql(con.cursor(), query.strip(), allow_write=False)
                names = list(relation.columns)
                kinds = ["dynamic" if str(t).upper() == "JSON" else "string" for t in relation.types]
                found = relation.fetchall()
            finally:
                con.close()
        out = []
        for row in found:
            out.append({n: json.loads(v) if k == "dynamic" and isinstance(v, str) else v
                        for n, k, v in zip(names, kinds, row, strict=True)})
        return list(zip(names, kinds, strict=True)), out


def _load(con: Any, table: str, rows: list[dict[str, Any]], path: Path) -> None:
    """One pass of DuckDB's JSON reader (row-by-row inserts take seconds for a few thousand assignments)."""
    columns = ", ".join(f'"{c}" {"JSON" if c in _DYNAMIC else "VARCHAR"}' for c in _COLUMNS)
    if not rows:
        con.execute(f"CREATE TABLE {table} ({columns})")
        return
    with path.open("w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps({c: _cell(row.get(c), c in _DYNAMIC) for c in _COLUMNS}) + "\n")
    spec = "{" + ", ".join(f"'{c}': '{'JSON' if c in _DYNAMIC else 'VARCHAR'}'" for c in _COLUMNS) + "}"
    con.execute(f"CREATE TABLE {table} AS SELECT * FROM read_json(?, format='newline_delimited', "
                f"columns={spec})", [str(path)])


def _cell(value: Any, dynamic: bool) -> Any:
    if value is None or dynamic:
        return value
    return str(value)
