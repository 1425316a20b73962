"""The Log Analytics query API stand-in: `POST /v1/workspaces/{id}/query`, `POST /v1/{resourceId}/query` and
`POST /v1/$batch`, executing the KQL on the workspace's DuckDB tables. Each workspace is its own `LogStore`; a
resource-centric query reads the main one."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from localazure.calls import READ
from localazure.clock import as_utc
from localazure.faults import Fault
from localazure.frontdoor import CallContext, RouteFn, bearer_token, fault_headers
from localazure.https import Request, Response
from localazure.logstore import LogStore, QueryError
from localazure.state import State

_DURATION = re.compile(
    r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$",
    re.IGNORECASE,
)


def parse_duration(text: str) -> timedelta:
    m = _DURATION.match(text.strip())
    if not m or text.strip().upper() in ("P", "PT"):
        raise ValueError(f"not an ISO-8601 duration: {text!r}")
    parts = {k: float(v) if v else 0.0 for k, v in m.groupdict().items()}
    return timedelta(weeks=parts["w"], days=parts["d"], hours=parts["h"], minutes=parts["m"], seconds=parts["s"])


def parse_timespan(text: str | None, now: datetime) -> tuple[datetime, datetime] | None:
    """`duration` (ending now), `start/end`, `start/duration` or `duration/end`, as the API accepts them."""
    if not text:
        return None
    first, sep, second = text.strip().partition("/")
    if not sep:
        return now - parse_duration(first), now
    first_is_duration = first.strip().upper().startswith("P")
    second_is_duration = second.strip().upper().startswith("P")
    if first_is_duration and second_is_duration:
        raise ValueError("a timespan needs at least one point in time")
    if first_is_duration:
        end = as_utc(second)
        return end - parse_duration(first), end
    start = as_utc(first)
    return (start, start + parse_duration(second)) if second_is_duration else (start, as_utc(second))


def _error_body(code: str, message: str, inner_code: str, inner_message: str,
                deepest: tuple[str, str] | None = None) -> dict[str, Any]:
    inner: dict[str, Any] = {"code": inner_code, "message": inner_message}
    if deepest is not None:
        inner["innererror"] = {"code": deepest[0], "message": deepest[1]}
    return {"error": {"message": message, "code": code, "correlationId": "00000000-0000-0000-0000-000000000000",
                      "innererror": inner}}


# The error code (and, for the statuses that are not an injected outage, the message) Log Analytics answers with.
_FAULT_CODES = {429: "ThrottledError", 500: "InternalServerError", 503: "ServiceUnavailableError"}
_FAULT_ERRORS = {
    403: ("InsufficientAccessError",
          "The provided credentials have insufficient access to perform the requested operation"),
    404: ("WorkspaceNotFoundError", "The workspace could not be found"),
}


class LogsService:
    name = "logs"

    def __init__(self, state: State, stores: Mapping[str, LogStore]):
        self.state = state
        self.stores = stores  # by lower-cased workspace id; the main workspace's is `state.workspace_id`'s

    @property
    def store(self) -> LogStore:
        return self.stores[self.state.workspace_id.lower()]

    def authenticate(self, request: Request) -> Response | None:
        if bearer_token(request) is None:
            return Response.json(_error_body("AuthorizationRequiredError", "Valid authentication was not provided",
                                             "AuthorizationRequiredError", "Valid authentication was not provided"),
                                 401)
        return None

    def fault_response(self, fault: Fault) -> Response:
        status = fault.status or 500
        code, message = _FAULT_ERRORS.get(status, (_FAULT_CODES.get(status, "InjectedFault"),
                                                   f"Injected fault with status {status}."))
        body = _error_body(code, message, code, f"Injected fault ({status}).")
        return Response.json(body, status, fault_headers(fault))

    def route(self, request: Request) -> tuple[str, str, RouteFn]:
        path = "/" + request.path.strip("/")
        if re.fullmatch(r"/v1/\$batch", path, re.IGNORECASE):
            return "logs.batch", READ, self.batch
        m = re.fullmatch(r"/v1/workspaces/([^/]+)/query", path, re.IGNORECASE)
        if m:
            workspace = m.group(1)
            return "logs.query", READ, lambda r, c: self.http_query(r, c, workspace=workspace)
        m = re.fullmatch(r"/v1(/subscriptions/.+)/query", path, re.IGNORECASE)
        if m:
            resource = m.group(1)
            return "logs.queryResource", READ, lambda r, c: self.http_query(r, c, resource_id=resource)
        return "unknown", READ, lambda r, c: Response.json(
            _error_body("PathNotFoundError", f"The requested path does not exist: {path}", "PathNotFoundError",
                        "The requested path does not exist"), 404)

    # ------------------------------------------------------------ handlers
    def http_query(self, request: Request, ctx: CallContext, *, workspace: str | None = None,
                   resource_id: str | None = None) -> Response:
        if request.method.upper() == "GET":
            body = {"query": request.param("query"), "timespan": request.param("timespan")}
        else:
            try:
                body = request.json() or {}
            except ValueError:
                body = {}
        status, payload = self.run(body, workspace=workspace, resource_id=resource_id, partial=ctx.partial,
                                   prefer=request.headers.get("prefer", ""))
        return Response.json(payload, status)

    def batch(self, request: Request, ctx: CallContext) -> Response:
        try:
            requests = (request.json() or {}).get("requests") or []
        except ValueError:
            requests = []
        responses = []
        for item in requests:
            status, payload = self.run(item.get("body") or {}, workspace=item.get("workspace"), partial=ctx.partial,
                                       prefer=(item.get("headers") or {}).get("Prefer", ""))
            responses.append({"id": item.get("id"), "status": status, "body": payload})
        return Response.json({"responses": responses})

    def run(self, body: dict[str, Any], *, workspace: str | None = None, resource_id: str | None = None,
            partial: bool = False, prefer: str = "") -> tuple[int, dict[str, Any]]:
        store = self.store if workspace is None else self.stores.get(workspace.lower())
        if store is None:
            return 404, _error_body("WorkspaceNotFoundError", "The workspace could not be found",
                                    "WorkspaceNotFoundError", f"Workspace {workspace} was not found")
        query = body.get("query")
        if not query:
            return 400, _error_body("BadArgumentError", "The request had some invalid properties",
                                    "QueryValidationError", "The query parameter is required")
        now = self.state.clock.now()
        try:
            window = parse_timespan(body.get("timespan"), now)
        except ValueError as exc:
            return 400, _error_body("BadArgumentError", "The request had some invalid properties",
                                    "InvalidTimespan", str(exc))
        started = time.perf_counter()
        try:
            result = store.query(query, now=now, start=window[0] if window else None,
                                 end=window[1] if window else None, resource_id=resource_id,
                                 max_rows=self.state.settings.max_query_rows)
        except QueryError as exc:
            return 400, _error_body("BadArgumentError", "The request had some invalid properties", exc.code,
                                    exc.message, exc.inner)
        rows = result.rows
        payload: dict[str, Any] = {"tables": [{"name": "PrimaryResult",
                                               "columns": [{"name": n, "type": t} for n, t in result.columns],
                                               "rows": rows}]}
        if "include-statistics=true" in prefer.lower():
            payload["statistics"] = {"query": {"executionTime": time.perf_counter() - started}}
        if partial:
            payload["tables"][0]["rows"] = rows[: len(rows) // 2]
            payload["error"] = {"code": "PartialError", "message": "There were some errors when processing your query.",
                                "innererror": {"code": "EngineError",
                                               "message": "Injected partial failure: some shards did not answer."}}
        elif result.truncated:
            payload["error"] = {
                "code": "PartialError",
                "message": "There were some errors when processing your query.",
                "innererror": {"code": "-2133196797", "message": (
                    f"The results of this query exceed the set limit of {self.state.settings.max_query_rows} "
                    "records, so not all records were returned (E_QUERY_RESULT_SET_TOO_LARGE, 0x80DA0003).")},
            }
        return 200, payload
