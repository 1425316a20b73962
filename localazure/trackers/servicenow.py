"""ServiceNow Table API: incident list (sysparm_query), create, update; journal fields; the data policy that
refuses to resolve without a close code and notes; the ACL that refuses to edit a closed incident. Sign-in by
basic auth, or by Bearer tokens from the OAuth client credentials grant at /oauth_token.do (clients registered with
`register_oauth_client`). Reference fields are stored as given, as the Table API does without
sysparm_input_display_value (https://support.servicenow.com/kb?id=kb_article_view&sysparm_article=KB0534905):
assignment_group holds a sys_user_group sys_id (`add_group`, listed at /api/now/table/sys_user_group),
resolved_by/closed_by a sys_user one."""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Callable
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from localazure.https import Request, Response
from localazure.trackers.base import (
    TicketView,
    TrackerCredentials,
    TrackerHandler,
    TrackerRoute,
    TrackerService,
    basic_credentials,
    existing,
    now,
    read,
    write,
)

_INCIDENT_PATH = re.compile(r"/api/now/table/incident(?:/([0-9a-f]{32}))?")
TOKEN_PATH = "/oauth_token.do"  # noqa: S105 - a path
# The default access token lifespan of an OAuth application (Access Token Lifespan, seconds):
# https://www.servicenow.com/docs/bundle/geneva-servicenow-platform/page/administer/security/reference/r_OAuthTokens.html
TOKEN_LIFESPAN = 1800


def _timestamp() -> str:
    return now().strftime("%Y-%m-%d %H:%M:%S")


def _failure(status: int, message: str, detail: str | None) -> Response:
    return Response.json({"error": {"message": message, "detail": detail}, "status": "failure"}, status)


class ServiceNowStandIn(TrackerService):
    name = "servicenow"
    _PRIORITY = {("1", "1"): "1", ("1", "2"): "2", ("2", "1"): "2", ("2", "2"): "3", ("1", "3"): "3",
                 ("3", "1"): "3", ("2", "3"): "4", ("3", "2"): "4", ("3", "3"): "5"}
    _LIMITS = {"short_description": 160, "description": 4000, "correlation_id": 100, "correlation_display": 100}

    def __init__(self, creds: TrackerCredentials):
        super().__init__(creds)
        self.records: dict[str, dict[str, Any]] = {}
        self.journal: dict[str, list[tuple[str, str]]] = {}
        self.users: dict[str, dict[str, str]] = {}  # sys_user by sys_id: what reference fields point at
        self.groups: dict[str, dict[str, str]] = {}  # sys_user_group by sys_id (assignment_group points at one)
        self._seq = 0
        # OAuth: registered clients (client_id -> secret) and the tokens issued (token -> expiry, stand-in clock).
        self.oauth_clients: dict[str, str] = {}
        self.client_credentials_enabled = True  # glide.oauth.inbound.client.credential.grant_type.enabled
        self.token_lifespan = TOKEN_LIFESPAN
        self.tokens: dict[str, Any] = {}
        self.tokens_issued = 0
        self.clock: Any = None  # the launcher gives it the stand-ins' clock

    def _now(self) -> Any:
        return self.clock.now() if self.clock is not None else now()

    def register_oauth_client(self, client_id: str, client_secret: str) -> None:
        """An Application Registry entry ("OAuth API endpoint for external clients") with its application user."""
        self.oauth_clients[client_id] = client_secret

    def add_group(self, name: str) -> str:
        """A sys_user_group; its sys_id."""
        sys_id = hashlib.md5(f"group-{name}".encode(), usedforsecurity=False).hexdigest()
        self.groups[sys_id] = {"sys_id": sys_id, "name": name}
        return sys_id

    def expire_tokens(self) -> None:
        """Every issued token expires now (as if its lifespan had passed, or an admin revoked it)."""
        past = self._now() - timedelta(seconds=1)
        self.tokens = dict.fromkeys(self.tokens, past)

    def authenticate(self, request: Request) -> Response | None:
        if request.path == TOKEN_PATH:
            return None  # the token endpoint checks the client's own credentials
        auth = request.headers.get("authorization", "")
        if auth.startswith("Bearer "):
            expiry = self.tokens.get(auth[7:])
            if expiry is not None and self._now() < expiry:
                return None
        elif basic_credentials(request) == (self.creds.servicenow_user, self.creds.servicenow_password):
            return None
        return _failure(401, "User Not Authenticated", "Required to provide Auth information")

    def _token(self, request: Request) -> Response:
        """POST /oauth_token.do, a URL-encoded form. The client credentials grant (Washington DC and later, off
        until glide.oauth.inbound.client.credential.grant_type.enabled is true):
        https://www.servicenow.com/docs/r/platform-security/authentication/client-credentials.html
        A refused request answers 401 {"error": "server_error", "error_description": "access_denied"}, as the
        instance does (e.g. https://www.servicenow.com/community/servicenow-ide-sdk-and-fluent/how-to-generate-
        oauth-token-with-grant-type-client-credentials/td-p/3252663)."""
        if "application/x-www-form-urlencoded" not in request.headers.get("content-type", ""):
            return Response.json({"error": "invalid_request", "error_description": "access_denied"}, 400)
        form = {k: v[0] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        client_id, secret = form.get("client_id", ""), form.get("client_secret", "")
        if (form.get("grant_type") != "client_credentials" or not self.client_credentials_enabled
                or client_id not in self.oauth_clients or self.oauth_clients[client_id] != secret):
            return Response.json({"error": "server_error", "error_description": "access_denied"}, 401)
        token = secrets.token_urlsafe(48)
        self.tokens[token] = self._now() + timedelta(seconds=self.token_lifespan)
        self.tokens_issued += 1
        return Response.json({"access_token": token, "scope": "useraccount", "token_type": "Bearer",
                              "expires_in": self.token_lifespan - 1})

    def fault_body(self, status: int) -> Any:
        message = "Rate limit exceeded" if status == 429 else "Service Unavailable"
        return {"error": {"message": message, "detail": None}, "status": "failure"}

    def dispatch(self, request: Request) -> TrackerRoute:
        if request.path == TOKEN_PATH and request.method == "POST":
            return write("oauth.token", self._token)
        if request.path == "/api/now/table/sys_user_group" and request.method == "GET":
            return read("groups.list", self._groups)
        match = _INCIDENT_PATH.fullmatch(request.path)
        if not match:
            return read("table.invalid", lambda r: _failure(400, "Invalid table", "Invalid table name or path"))
        sys_id, method = match[1], request.method
        if sys_id is None:
            if method == "GET":
                return read("incidents.list", self._list)
            if method == "POST":
                return write("incidents.create", self._create)
            return read("method.unsupported", self._unsupported)
        if method in ("PATCH", "PUT"):
            return write("incidents.update", self._existing(sys_id, self._update))
        if method == "GET":
            return read("incidents.get", self._existing(sys_id, self._get))
        return read("method.unsupported", self._existing(sys_id, lambda _, r: self._unsupported(r)))

    def _existing(self, sys_id: str, handler: Callable[[str, Request], Response]) -> TrackerHandler:
        return existing(self.records, sys_id, handler, lambda: _failure(
            404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval"))

    @staticmethod
    def _unsupported(request: Request) -> Response:
        return _failure(405, "Method not Supported", "Requested method is not supported")

    def _get(self, sys_id: str, request: Request) -> Response:
        return Response.json({"result": self._out(self.records[sys_id], request)})

    def _out(self, record: dict[str, Any], request: Request) -> dict[str, Any]:
        fields = [f for f in (request.param("sysparm_fields") or "").split(",") if f]
        public = {k: v for k, v in record.items() if not k.startswith("_")}
        if not fields:
            return public
        out = {k: v for k, v in public.items() if k in fields}
        # A dot-walked field (`resolved_by.user_name`) reads the referenced user's field; empty when none.
        for name in fields:
            reference, _, attribute = name.partition(".")
            if attribute:
                table = self.groups if reference == "assignment_group" else self.users
                out[name] = table.get(str(record.get(reference) or ""), {}).get(attribute, "")
        return out

    def _list(self, request: Request) -> Response:
        conditions, order = [], None
        for part in (request.param("sysparm_query") or "").split("^"):
            if part.startswith("ORDERBYDESC"):
                order = (part[len("ORDERBYDESC"):], True)
            elif part.startswith("ORDERBY"):
                order = (part[len("ORDERBY"):], False)
            elif "!=" in part:
                name, value = part.split("!=", 1)
                conditions.append((name, value, False))
            elif "=" in part:
                name, value = part.split("=", 1)
                conditions.append((name, value, True))
        records = [r for r in self.records.values()
                   if all((str(r.get(n, "")) == v) == eq for n, v, eq in conditions)]
        if order:
            key = "_seq" if order[0] == "sys_updated_on" else order[0]
            records.sort(key=lambda r: r.get(key) or 0, reverse=order[1])
        limit = int(request.param("sysparm_limit", "10000"))
        return Response.json({"result": [self._out(r, request) for r in records[:limit]]})

    def _write(self, record: dict[str, Any], payload: dict[str, Any]) -> None:
        for name, value in payload.items():
            if name in ("work_notes", "comments"):
                if value:
                    self.journal[record["sys_id"]].append((name, str(value)))
                continue
            if name in ("sys_id", "number"):
                continue
            text = "" if value is None else str(value)
            record[name] = text[: self._LIMITS[name]] if name in self._LIMITS else text
        record["priority"] = self._PRIORITY.get((record["urgency"], record["impact"]), "4")
        self._seq += 1
        record["_seq"] = self._seq
        record["sys_updated_on"] = _timestamp()

    def _groups(self, request: Request) -> Response:
        """GET /api/now/table/sys_user_group: the groups matching `name=<value>` conditions (assignment groups)."""
        wanted = [part.split("=", 1)[1] for part in (request.param("sysparm_query") or "").split("^")
                  if part.startswith("name=")]
        found = [g for g in self.groups.values() if not wanted or g["name"] in wanted]
        fields = [f for f in (request.param("sysparm_fields") or "").split(",") if f]
        limit = int(request.param("sysparm_limit", "10000"))
        return Response.json({"result": [{k: v for k, v in g.items() if not fields or k in fields}
                                         for g in found[:limit]]})

    @staticmethod
    def _data_policy(merged: dict[str, Any]) -> Response | None:
        if merged.get("state") in ("6", "7") and not (merged.get("close_code") and merged.get("close_notes")):
            return _failure(403, "Operation Failed", "Data Policy Exception: \n\tThe following fields are "
                            "mandatory: Resolution code, Resolution notes\n")
        return None

    def _create(self, request: Request) -> Response:
        payload = request.json() or {}
        self._seq += 1
        sys_id = hashlib.md5(f"incident-{self._seq}".encode(), usedforsecurity=False).hexdigest()
        opened = _timestamp()
        record = {"sys_id": sys_id, "number": f"INC{10000 + len(self.records) + 1:07d}", "state": "1",
                  "urgency": "3", "impact": "3", "priority": "5", "short_description": "", "description": "",
                  "correlation_id": "", "correlation_display": "", "close_code": "", "close_notes": "",
                  "assignment_group": "", "category": "inquiry",
                  "work_notes": "", "comments": "", "sys_created_on": opened, "opened_at": opened}
        if (refused := self._data_policy({**record, **{k: str(v) for k, v in payload.items()}})) is not None:
            return refused
        self.journal[sys_id] = []
        self._write(record, payload)
        self.records[sys_id] = record
        return Response.json({"result": self._out(record, request)}, 201)

    def _update(self, sys_id: str, request: Request) -> Response:
        record = self.records[sys_id]
        if record["state"] in ("7", "8"):
            return _failure(403, "Operation Failed", "ACL Exception Update Failed due to security constraints")
        payload = request.json() or {}
        if (refused := self._data_policy({**record, **{k: str(v) for k, v in payload.items()}})) is not None:
            return refused
        self._write(record, payload)
        return Response.json({"result": self._out(record, request)})

    def views(self) -> list[TicketView]:
        return [TicketView(
            ref=r["number"], title=r["short_description"], body=r["description"],
            is_open=r["state"] not in ("6", "7", "8"), markers=(r["correlation_id"],),
            high_priority=r["urgency"] == "1" and r["impact"] == "1",
            comments=tuple(text for _, text in self.journal[r["sys_id"]]),
            raw={k: v for k, v in r.items() if not k.startswith("_")},
        ) for r in sorted(self.records.values(), key=lambda r: r["number"])]

    def set_state(self, ref: str, state: str) -> None:
        record = next(r for r in self.records.values() if r["number"] == ref)
        record["state"] = state
        self._seq += 1
        record["_seq"] = self._seq

    def close_by_person(self, ref: str, person: str, reason: str, state: str | None = None) -> None:
        """Resolve (6), close (7) or cancel (8) an incident as a person does: the close code (`close_code`,
        "Resolution code" on the form) and notes, and who resolved and closed it (`resolved_by`, `closed_by`,
        references to sys_user). https://www.servicenow.com/docs/bundle/washingtondc-it-service-management/page/
        product/incident-management/concept/c_IncidentManagementStateModel.html"""
        record = next(r for r in self.records.values() if r["number"] == ref)
        user_id = hashlib.md5(f"user-{person}".encode(), usedforsecurity=False).hexdigest()
        self.users[user_id] = {"sys_id": user_id, "user_name": person, "name": person}
        at = _timestamp()
        record.update(state=state or "7", close_code=reason, close_notes=f"Closed by {person}.",
                      resolved_by=user_id, resolved_at=at)
        if record["state"] in ("7", "8"):
            record.update(closed_by=user_id, closed_at=at)
        self._seq += 1
        record["_seq"] = self._seq
