"""GitHub Issues (REST v3): list issues by label, search issues, create, update, comment. Labels and assignees on
create are dropped silently without push access, as GitHub does; an assignee who cannot be assigned (not a
collaborator) is refused with 422 `{"field": "assignees", "code": "invalid"}`; a 403 fault is GitHub's secondary
rate limit. https://docs.github.com/rest/issues/issues#create-an-issue

GitHub Apps (`register_app`): `POST /app/installations/{id}/access_tokens` takes a JWT signed RS256 with the app's
private key, `iss` the app's id or client id, `iat` and `exp` at most 10 minutes apart and `exp` in the future and
no more than 10 minutes ahead, and answers 201 `{token, expires_at}` with an installation token valid one hour;
an expired or revoked installation token is refused with 401 "Bad credentials".
https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
https://docs.github.com/rest/apps/apps#create-an-installation-access-token-for-an-app

GitHub's documented rate limits are on by default (`GitHubRateLimits`; `app("github").limits = None` turns them
off): every authenticated answer carries `x-ratelimit-limit/remaining/used/reset/resource`; the primary limit is
5,000 requests an hour per token ("core") and 30 searches a minute ("search"), refused with 403 and
`x-ratelimit-remaining: 0`; the secondary limit on content-creating requests (issues and comments created: POST)
is 80 a minute and 500 an hour, refused with 403 and `retry-after`. Windows run on the stand-ins' clock.
https://docs.github.com/rest/using-the-rest-api/rate-limits-for-the-rest-api
"""

from __future__ import annotations

import base64
import json
import math
import re
import secrets
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from localazure.clock import Clock
from localazure.faults import Fault
from localazure.frontdoor import CallContext, RouteFn
from localazure.https import Request, Response
from localazure.trackers.base import (
    TicketView,
    TrackerCredentials,
    TrackerHandler,
    TrackerRoute,
    TrackerService,
    existing,
    now,
    read,
    write,
)

_ISSUES_PATH = re.compile(r"/repos/([^/]+)/([^/]+)/issues(?:/(\d+)(/comments)?)?")
_ACCESS_TOKENS_PATH = re.compile(r"/app/installations/(\d+)/access_tokens")
JWT_MAX_SECONDS = 600  # "exp ... must be no more than 10 minutes into the future"
INSTALLATION_TOKEN_SECONDS = 3600  # "The installation access token will expire after 1 hour."


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _timestamp() -> str:
    return now().strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class GitHubRateLimits:
    """GitHub's documented REST limits for an authenticated token or installation."""

    core_per_hour: int = 5000
    search_per_minute: int = 30
    content_per_minute: int = 80
    content_per_hour: int = 500


class _Window:
    """A fixed window as GitHub's primary limits have: `limit` requests until `reset`, then a new window."""

    def __init__(self, limit: int, seconds: int):
        self.limit, self.seconds = limit, seconds
        self.used = 0
        self.reset = 0.0

    def roll(self, at: float) -> None:
        if at >= self.reset:
            self.used, self.reset = 0, at + self.seconds

    def headers(self, resource: str, at: float) -> dict[str, str]:
        # The reset as the answer's Date header tells time (the server's wall clock), however far the stand-ins'
        # clock was moved: a client subtracts the two.
        reset = time.time() + (self.reset - at)
        return {"x-ratelimit-limit": str(self.limit), "x-ratelimit-remaining": str(max(0, self.limit - self.used)),
                "x-ratelimit-used": str(self.used), "x-ratelimit-reset": str(math.ceil(reset)),
                "x-ratelimit-resource": resource}


class GitHubStandIn(TrackerService):
    name = "github"
    DOCS = "https://docs.github.com/rest"
    retry_after_statuses = (403, 429, 503)  # a secondary rate limit is a 403 with Retry-After

    def __init__(self, creds: TrackerCredentials):
        super().__init__(creds)
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.push_access = True  # False: labels on create are silently dropped, as GitHub does
        self._seq = 0
        self.clock = Clock()  # the launcher gives it the stand-ins' clock
        self.limits: GitHubRateLimits | None = GitHubRateLimits()
        self._windows: dict[str, _Window] = {}
        self._content: deque[float] = deque()  # times of content-creating requests in the last hour
        # GitHub Apps: app id -> {client_id, public_key, installations}; installation tokens -> expiry (epoch s)
        self.apps: dict[int, dict[str, Any]] = {}
        self.installation_tokens: dict[str, float] = {}
        self.installation_token_seconds = INSTALLATION_TOKEN_SECONDS
        # Logins that can be assigned to issues (collaborators with at least triage access).
        self.assignable: set[str] = {"octocat", "triage-oncall", "platform-lead"}

    def route(self, request: Request) -> tuple[str, str, RouteFn]:
        name, kind, handler = super().route(request)

        def limited(req: Request, ctx: CallContext) -> Response:
            with self.lock:
                if self.limits is None or req.path.startswith("/app/"):  # app (JWT) calls: not the token's quota
                    return handler(req, ctx)
                resource = "search" if req.path.startswith("/search/") else "core"
                at = self.clock.now().timestamp()
                window, refused = self._count(resource, at, content=req.method == "POST" and resource == "core")
                response = refused or handler(req, ctx)
                response.headers.update(window.headers(resource, at))
                return response

        return name, kind, limited

    def _count(self, resource: str, at: float, *, content: bool) -> tuple[_Window, Response | None]:
        """Count one authenticated request; the refusal GitHub answers when it is over a limit."""
        assert self.limits is not None
        window = self._windows.get(resource)
        if window is None:
            limit, seconds = ((self.limits.search_per_minute, 60) if resource == "search"
                              else (self.limits.core_per_hour, 3600))
            window = self._windows[resource] = _Window(limit, seconds)
        window.roll(at)
        if window.used >= window.limit:
            return window, self._error(403, "API rate limit exceeded for installation. Check out the documentation "
                                            "for more details.")
        window.used += 1
        if not content:
            return window, None
        while self._content and self._content[0] <= at - 3600:
            self._content.popleft()
        last_minute = [t for t in self._content if t > at - 60]
        wait = 0.0
        if len(last_minute) >= self.limits.content_per_minute:
            wait = last_minute[-self.limits.content_per_minute] + 60 - at
        if len(self._content) >= self.limits.content_per_hour:
            wait = max(wait, self._content[-self.limits.content_per_hour] + 3600 - at)
        if wait > 0:
            refused = self._error(403, "You have exceeded a secondary rate limit. Please wait a few minutes before "
                                       "you try again.")
            refused.headers["retry-after"] = str(math.ceil(wait))
            return window, refused
        self._content.append(at)
        return window, None

    def set_limits(self, limits: GitHubRateLimits | None) -> None:
        """Other limits (None: none), counted afresh."""
        with self.lock:
            self.limits = limits
            self._windows.clear()
            self._content.clear()

    def authenticate(self, request: Request) -> Response | None:
        if request.path.startswith("/app/"):
            return None  # app endpoints take the app's JWT, checked by the route (`_access_token`)
        token = self.creds.github_token
        header = request.headers.get("authorization", "")
        if header in (f"Bearer {token}", f"token {token}"):
            return None
        presented = header.split(" ", 1)[-1] if header.startswith(("Bearer ", "token ")) else ""
        expiry = self.installation_tokens.get(presented)
        if expiry is not None and self.clock.now().timestamp() < expiry:
            return None
        return Response.json({"message": "Bad credentials", "documentation_url": self.DOCS, "status": "401"}, 401)

    # ---- GitHub Apps ----

    def register_app(self, public_key_pem: bytes | str, *, app_id: int | None = None, client_id: str | None = None,
                     installation_id: int | None = None) -> int:
        """Register a GitHub App by its public key (PEM) with one installation on the repository; its app id."""
        from cryptography.hazmat.primitives.serialization import load_pem_public_key

        pem = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
        app = int(app_id if app_id is not None else self.creds.github_app_id)
        with self.lock:
            self.apps[app] = {"client_id": client_id or self.creds.github_app_client_id,
                              "public_key": load_pem_public_key(pem),
                              "installations": {int(installation_id or self.creds.github_installation_id)}}
        return app

    def revoke_installation_tokens(self) -> None:
        """Every installation token stops working (as `DELETE /installation/token` or an uninstall does)."""
        with self.lock:
            self.installation_tokens.clear()

    def _jwt_refusal(self, message: str) -> Response:
        return Response.json({"message": message, "documentation_url": self.DOCS, "status": "401"}, 401)

    def _app_of(self, request: Request) -> tuple[int | None, Response | None]:
        """The app a request's JWT authenticates, or GitHub's 401 for the JWT."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        undecodable = self._jwt_refusal("A JSON web token could not be decoded")
        header = request.headers.get("authorization", "")
        if not header.startswith("Bearer "):
            return None, undecodable
        parts = header[len("Bearer "):].strip().split(".")
        if len(parts) != 3:
            return None, undecodable
        try:
            head = json.loads(_unb64url(parts[0]))
            claims = json.loads(_unb64url(parts[1]))
            signature = _unb64url(parts[2])
        except (ValueError, UnicodeDecodeError):
            return None, undecodable
        if not isinstance(head, dict) or not isinstance(claims, dict) or head.get("alg") != "RS256":
            return None, undecodable
        issuer = claims.get("iss")
        app_id = next((a for a, app in self.apps.items()
                       if str(issuer) in (str(a), app["client_id"])), None)
        if app_id is None:
            # No app with that id or client id: there is no public key to check the signature with.
            return None, undecodable
        try:
            self.apps[app_id]["public_key"].verify(signature, f"{parts[0]}.{parts[1]}".encode("ascii"),
                                                   padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            return None, undecodable
        now_s = self.clock.now().timestamp()
        iat, exp = claims.get("iat"), claims.get("exp")
        if not isinstance(iat, int | float) or iat > now_s + 60:
            return None, self._jwt_refusal("'Issued at' claim ('iat') must be an Integer representing the time that "
                                           "the assertion was issued")
        if not isinstance(exp, int | float) or exp <= now_s:
            return None, self._jwt_refusal("'Expiration time' claim ('exp') must be a numeric value representing "
                                           "the future time at which the assertion expires")
        if exp > now_s + JWT_MAX_SECONDS or exp - iat > JWT_MAX_SECONDS:
            return None, self._jwt_refusal("'Expiration time' claim ('exp') is too far in the future")
        return app_id, None

    def _access_token(self, installation_id: int, request: Request) -> Response:
        app_id, refused = self._app_of(request)
        if refused is not None:
            return refused
        assert app_id is not None
        if installation_id not in self.apps[app_id]["installations"]:
            return self._error(404, "Not Found")
        token = "ghs_" + secrets.token_urlsafe(27)
        expires = self.clock.now().timestamp() + self.installation_token_seconds
        self.installation_tokens[token] = expires
        return Response.json({
            "token": token, "expires_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(expires)),
            "permissions": {"issues": "write", "metadata": "read"}, "repository_selection": "selected",
        }, 201)

    def fault_body(self, status: int) -> Any:
        if status == 403:
            return {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
                               "again.", "documentation_url": self.DOCS + "/overview/rate-limits-for-the-rest-api",
                    "status": "403"}
        if status == 429:
            return {"message": "API rate limit exceeded for installation.", "documentation_url": self.DOCS,
                    "status": "429"}
        return {"message": "Server Error"}

    def fault_response(self, fault: Fault) -> Response:
        response = super().fault_response(fault)
        if fault.status == 429:
            response.headers.update({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000000"})
        return response

    def _error(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> Response:
        payload: dict[str, Any] = {"message": message, "documentation_url": self.DOCS, "status": str(status)}
        if errors:
            payload["errors"] = errors
        return Response.json(payload, status)

    def _not_found(self, request: Request) -> Response:
        return self._error(404, "Not Found")

    def dispatch(self, request: Request) -> TrackerRoute:
        method = request.method
        if (token_path := _ACCESS_TOKENS_PATH.fullmatch(request.path)) and method == "POST":
            installation_id = int(token_path[1])
            return write("installations.accessToken", lambda r: self._access_token(installation_id, r))
        if request.path == "/search/issues" and method == "GET":
            return read("search.issues", self._search)
        match = _ISSUES_PATH.fullmatch(request.path)
        if not match or f"{match[1]}/{match[2]}" != self.creds.github_repo:
            return read("notFound", self._not_found)
        if match[3] is None:
            if method == "GET":
                return read("issues.list", self._list)
            if method == "POST":
                return write("issues.create", self._create)
            return read("notFound", self._not_found)
        number, comments = int(match[3]), bool(match[4])
        if comments and method == "POST":
            return write("comments.create", self._existing(number, self._comment))
        if not comments and method == "PATCH":
            return write("issues.update", self._existing(number, self._update))
        if not comments and method == "GET":
            return read("issues.get", self._existing(number, lambda n, _: Response.json(self._public(self.issues[n]))))
        return read("notFound", self._existing(number, lambda n, r: self._not_found(r)))

    def _existing(self, number: int, handler: Callable[[int, Request], Response]) -> TrackerHandler:
        return existing(self.issues, number, handler, lambda: self._error(404, "Not Found"))

    def _touch(self, issue: dict[str, Any]) -> None:
        self._seq += 1
        issue["_seq"] = self._seq
        issue["updated_at"] = _timestamp()

    @staticmethod
    def _public(issue: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in issue.items() if not k.startswith("_")}

    @classmethod
    def _listed(cls, issue: dict[str, Any]) -> dict[str, Any]:
        """An issue as lists and searches show it: `closed_by` is optional in GitHub's issue schema and only the
        issue's own answer (`GET .../issues/{number}`) is relied on to carry it."""
        return {k: v for k, v in cls._public(issue).items() if k != "closed_by"}

    def _list(self, request: Request) -> Response:
        wanted = {x for x in (request.param("labels") or "").split(",") if x}
        state = request.param("state", "open")
        issues = [i for i in self.issues.values()
                  if wanted <= {label["name"] for label in i["labels"]} and (state == "all" or i["state"] == state)]
        key = "_seq" if request.param("sort") == "updated" else "number"
        issues.sort(key=lambda i: i[key], reverse=request.param("direction", "desc") == "desc")
        return Response.json([self._listed(i) for i in issues[: min(int(request.param("per_page", "30")), 100)]])

    def _search(self, request: Request) -> Response:
        query = request.param("q") or ""
        terms = re.findall(r'"([^"]+)"|(\S+)', query)
        repo, needles = None, []
        for quoted, bare in terms:
            if bare.startswith("repo:"):
                repo = bare[5:]
            elif bare in ("is:issue", "in:body", "in:title"):
                continue
            else:
                needles.append((quoted or bare).lower())
        if repo is None:
            return self._error(422, "Validation Failed", [{"message": "None of the search qualifiers apply.",
                                                           "resource": "Search", "field": "q", "code": "invalid"}])
        items = [i for i in self.issues.values() if repo == self.creds.github_repo
                 and all(n in (i["body"] or "").lower() or n in i["title"].lower() for n in needles)]
        items.sort(key=lambda i: i["_seq"], reverse=True)
        return Response.json({"total_count": len(items), "incomplete_results": False,
                              "items": [self._listed(i) for i in items]})

    def _validate(self, payload: dict[str, Any]) -> Response | None:
        errors = []
        if "title" in payload and len(str(payload["title"] or "")) > 256:
            errors.append({"resource": "Issue", "code": "custom", "field": "title",
                           "message": "title is too long (maximum is 256 characters)"})
        if len(str(payload.get("body") or "")) > 65536:
            errors.append({"resource": "Issue", "code": "custom", "field": "body",
                           "message": "body is too long (maximum is 65536 characters)"})
        if "state" in payload and payload["state"] not in ("open", "closed"):
            errors.append({"resource": "Issue", "code": "invalid", "field": "state"})
        for label in payload.get("labels") or []:
            if len(str(label)) > 50:
                errors.append({"resource": "Label", "code": "invalid", "field": "name"})
        if self.push_access:  # without push access assignees are dropped, not checked
            for login in payload.get("assignees") or []:
                if str(login).lower() not in {a.lower() for a in self.assignable}:
                    errors.append({"value": str(login), "resource": "Issue", "field": "assignees", "code": "invalid"})
        return self._error(422, "Validation Failed", errors) if errors else None

    def _labels(self, names: list[Any]) -> list[dict[str, Any]]:
        return [{"id": abs(hash(str(n))) % 10**9, "name": str(n), "color": "ededed", "default": False}
                for n in dict.fromkeys(names)]

    def _create(self, request: Request) -> Response:
        payload = request.json() or {}
        if not payload.get("title"):
            return self._error(422, "Validation Failed",
                               [{"resource": "Issue", "code": "missing_field", "field": "title"}])
        if (invalid := self._validate(payload)) is not None:
            return invalid
        number = len(self.issues) + 1
        issue = {
            "id": 1_000_000 + number, "number": number, "title": str(payload["title"]),
            "body": payload.get("body"), "state": "open", "state_reason": None,
            "labels": self._labels(payload.get("labels") or []) if self.push_access else [],
            "assignees": [{"login": str(a), "type": "User"} for a in dict.fromkeys(payload.get("assignees") or [])]
            if self.push_access else [],
            "comments": 0, "created_at": _timestamp(), "closed_at": None, "closed_by": None,
            "user": {"login": "triage-bot", "type": "Bot"},
            "html_url": f"https://github.com/{self.creds.github_repo}/issues/{number}",
            "url": f"{self.base_url}/repos/{self.creds.github_repo}/issues/{number}",
        }
        self._touch(issue)
        self.issues[number] = issue
        self.comments[number] = []
        return Response.json(self._public(issue), 201)

    def _update(self, number: int, request: Request) -> Response:
        payload = request.json() or {}
        if (invalid := self._validate(payload)) is not None:
            return invalid
        issue = self.issues[number]
        for key in ("title", "body"):
            if key in payload:
                issue[key] = payload[key]
        if "labels" in payload:
            issue["labels"] = self._labels(payload["labels"] or [])
        if "assignees" in payload:
            issue["assignees"] = [{"login": str(a), "type": "User"} for a in dict.fromkeys(payload["assignees"] or [])]
        if "state" in payload and payload["state"] != issue["state"]:
            issue["state"] = payload["state"]
            closed = payload["state"] == "closed"
            issue["closed_at"] = _timestamp() if closed else None
            issue["state_reason"] = payload.get("state_reason", "completed") if closed else "reopened"
            issue["closed_by"] = {"login": "triage-bot", "type": "Bot"} if closed else None
        self._touch(issue)
        return Response.json(self._public(issue))

    def _comment(self, number: int, request: Request) -> Response:
        payload = request.json() or {}
        if not payload.get("body"):
            return self._error(422, "Validation Failed",
                               [{"resource": "IssueComment", "code": "missing_field", "field": "body"}])
        comment = {"id": 5_000_000 + sum(len(c) for c in self.comments.values()) + 1, "body": payload["body"],
                   "created_at": _timestamp(), "user": {"login": "triage-bot"},
                   "html_url": f"https://github.com/{self.creds.github_repo}/issues/{number}#issuecomment"}
        self.comments[number].append(comment)
        self.issues[number]["comments"] += 1
        self._touch(self.issues[number])
        return Response.json(comment, 201)

    def views(self) -> list[TicketView]:
        return [TicketView(
            ref=str(i["number"]), title=i["title"], body=i["body"] or "", is_open=i["state"] == "open",
            markers=tuple(label["name"] for label in i["labels"]),
            high_priority=any(label["name"] == "priority:high" for label in i["labels"]),
            comments=tuple(c["body"] for c in self.comments[i["number"]]), raw=self._public(i),
        ) for i in sorted(self.issues.values(), key=lambda i: i["number"])]

    def set_state(self, ref: str, state: str) -> None:
        self.issues[int(ref)]["state"] = state
        self._touch(self.issues[int(ref)])

    def close_by_person(self, ref: str, person: str, reason: str, state: str | None = None) -> None:
        """Close an issue as a person does in the UI: "Close as completed" / "not planned" / "duplicate" set
        `state_reason`, and the issue names who closed it (`closed_by`), as GitHub's issue object does.
        https://docs.github.com/rest/issues/issues#get-an-issue"""
        issue = self.issues[int(ref)]
        issue.update(state=state or "closed", state_reason=reason, closed_at=_timestamp(),
                     closed_by={"login": person, "type": "User"})
        self._touch(issue)
