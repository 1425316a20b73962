"""Local stand-ins for the ticket trackers: GitHub Issues, Azure DevOps Boards, ServiceNow, Jira Cloud, and a
webhook receiver. Each serves only the calls the ticket sinks make, with the real paths, shapes and status codes
(including the odd ones: a bad Azure DevOps PAT gets 203 + a sign-in page unless `X-TFS-FedAuthRedirect:
Suppress`; GitHub drops labels silently without push access; ServiceNow refuses to resolve without a close code
and to edit a closed incident). Every request is recorded; faults (rate limits, 5xx) can be queued per tracker.

    standins = TrackerStandIns.start(ca)
    standins.github_url, .ado_url, .servicenow_url, .jira_url, .webhook_url
    standins.fail_next("github", 403, times=2, retry_after=0.01)
    standins.received("github")  -> [RecordedRequest(method, path, query, headers, body)]
    standins.tickets("jira")     -> [TicketView(...)]
    standins.stop()
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from localazure.https import CertificateAuthority, HttpsServer, Request, Response

TRACKERS = ("github", "azuredevops", "servicenow", "jira", "webhook")


@dataclass(frozen=True)
class TrackerCredentials:
    github_repo: str = "contoso/ai-platform"
    github_token: str = "ghs_StandInGitHubToken0001"
    ado_org: str = "contoso"
    ado_project: str = "AI Platform"
    ado_pat: str = "standin-ado-pat-0001"
    servicenow_user: str = "triage.integration"
    servicenow_password: str = "standin-servicenow-password-0001"
    jira_project: str = "AIP"
    jira_user: str = "triage-bot@contoso.example"
    jira_token: str = "standin-jira-api-token-0001"
    webhook_secret: str = "standin-webhook-secret-0001"

    def secrets(self) -> tuple[str, ...]:
        return (self.github_token, self.ado_pat, self.servicenow_password, self.jira_token, self.webhook_secret)


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


@dataclass(frozen=True)
class TicketView:
    """A tracker-neutral view of one stored ticket, for assertions."""

    ref: str
    title: str
    body: str  # description text as stored (Jira: the text of the ADF document)
    is_open: bool
    markers: tuple[str, ...]  # labels / tags / correlation id
    high_priority: bool
    comments: tuple[str, ...]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)


@dataclass
class _Fault:
    status: int
    retry_after: float | None
    after_apply: bool
    method: str | None = None  # only calls with this method (None: any)
    path_contains: str | None = None  # only calls whose path contains this (None: any)

    def matches(self, request: Request) -> bool:
        return (self.method is None or request.method == self.method) and (
            self.path_contains is None or self.path_contains in request.path)


def _now() -> datetime:
    return datetime.now(UTC)


def _basic(request: Request) -> tuple[str, str] | None:
    auth = request.headers.get("authorization", "")
    if not auth.startswith("Basic "):
        return None
    try:
        user, _, secret = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, secret


def _adf_text(node: Any) -> str:
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    joiner = "\n" if node.get("type") in ("doc", "bulletList", "orderedList") else ""
    return joiner.join(_adf_text(child) for child in node.get("content", []))


class _StandIn:
    """Records, injects faults, checks auth, then routes. Subclasses implement authorized/unauthorized/route."""

    name = ""

    def __init__(self, creds: TrackerCredentials):
        self.creds = creds
        self.lock = threading.RLock()
        self.requests: list[RecordedRequest] = []
        self.faults: list[_Fault] = []
        self.base_url = ""

    def __call__(self, request: Request) -> Response:
        with self.lock:
            self.requests.append(RecordedRequest(request.method, request.path, dict(request.query),
                                                 dict(request.headers), request.body))
            fault = next((f for f in self.faults if f.matches(request)), None)
            if fault is not None:
                self.faults.remove(fault)
        if fault is not None and not fault.after_apply:
            return self.fault_response(fault)
        if not self.authorized(request):
            return self.unauthorized(request)
        with self.lock:
            response = self.route(request)
        if fault is not None and response.status < 400:
            return self.fault_response(fault)  # applied, yet the client sees a failure
        return response

    def authorized(self, request: Request) -> bool:
        raise NotImplementedError

    def unauthorized(self, request: Request) -> Response:
        raise NotImplementedError

    def route(self, request: Request) -> Response:
        raise NotImplementedError

    def fault_body(self, status: int) -> Any:
        return {"message": "Service Unavailable" if status >= 500 else "Too Many Requests"}

    def fault_response(self, fault: _Fault) -> Response:
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        return Response.json(self.fault_body(fault.status), fault.status, headers)

    def views(self) -> list[TicketView]:
        raise NotImplementedError

    def set_state(self, ref: str, state: str) -> None:
        raise NotImplementedError


# ----------------------------------------------------------------------------------------------------------------
# GitHub REST v3: list issues by label, search issues, create, update, comment.


class GitHubStandIn(_StandIn):
    name = "github"
    DOCS = "https://docs.github.com/rest"

    def __init__(self, creds: TrackerCredentials):
        super().__init__(creds)
        self.issues: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self.push_access = True  # False: labels on create are silently dropped, as GitHub does
        self._seq = 0

    def authorized(self, request: Request) -> bool:
        token = self.creds.github_token
        return request.headers.get("authorization", "") in (f"Bearer {token}", f"token {token}")

    def unauthorized(self, request: Request) -> Response:
        return Response.json({"message": "Bad credentials", "documentation_url": self.DOCS, "status": "401"}, 401)

    def fault_body(self, status: int) -> Any:
        if status == 403:
            return {"message": "You have exceeded a secondary rate limit. Please wait a few minutes before you try "
                               "again.", "documentation_url": self.DOCS + "/overview/rate-limits-for-the-rest-api",
                    "status": "403"}
        if status == 429:
            return {"message": "API rate limit exceeded for installation.", "documentation_url": self.DOCS,
                    "status": "429"}
        return {"message": "Server Error"}

    def fault_response(self, fault: _Fault) -> Response:
        response = super().fault_response(fault)
        if fault.status == 429:
            response.headers.update({"x-ratelimit-remaining": "0", "x-ratelimit-reset": "1700000000"})
        return response

    def _error(self, status: int, message: str, errors: list[dict[str, Any]] | None = None) -> Response:
        payload: dict[str, Any] = {"message": message, "documentation_url": self.DOCS, "status": str(status)}
        if errors:
            payload["errors"] = errors
        return Response.json(payload, status)

    def route(self, request: Request) -> Response:
        if request.path == "/search/issues" and request.method == "GET":
            return self._search(request)
        match = re.fullmatch(r"/repos/([^/]+)/([^/]+)/issues(?:/(\d+)(/comments)?)?", request.path)
        if not match or f"{match[1]}/{match[2]}" != self.creds.github_repo:
            return self._error(404, "Not Found")
        number = int(match[3]) if match[3] else None
        if number is None:
            if request.method == "GET":
                return Response.json([self._public(i) for i in self._list(request)])
            if request.method == "POST":
                return self._create(request.json() or {})
        elif number not in self.issues:
            return self._error(404, "Not Found")
        elif match[4] and request.method == "POST":
            return self._comment(number, request.json() or {})
        elif not match[4] and request.method == "PATCH":
            return self._update(number, request.json() or {})
        elif not match[4] and request.method == "GET":
            return Response.json(self._public(self.issues[number]))
        return self._error(404, "Not Found")

    def _touch(self, issue: dict[str, Any]) -> None:
        self._seq += 1
        issue["_seq"] = self._seq
        issue["updated_at"] = _now().strftime("%Y-%m-%dT%H:%M:%SZ")

    @staticmethod
    def _public(issue: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in issue.items() if not k.startswith("_")}

    def _list(self, request: Request) -> list[dict[str, Any]]:
        wanted = {x for x in (request.param("labels") or "").split(",") if x}
        state = request.param("state", "open")
        issues = [i for i in self.issues.values()
                  if wanted <= {label["name"] for label in i["labels"]} and (state == "all" or i["state"] == state)]
        key = "_seq" if request.param("sort") == "updated" else "number"
        issues.sort(key=lambda i: i[key], reverse=request.param("direction", "desc") == "desc")
        return issues[: min(int(request.param("per_page", "30")), 100)]

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
                              "items": [self._public(i) for i in items]})

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
        return self._error(422, "Validation Failed", errors) if errors else None

    def _labels(self, names: list[Any]) -> list[dict[str, Any]]:
        return [{"id": abs(hash(str(n))) % 10**9, "name": str(n), "color": "ededed", "default": False}
                for n in dict.fromkeys(names)]

    def _create(self, payload: dict[str, Any]) -> Response:
        if not payload.get("title"):
            return self._error(422, "Validation Failed",
                               [{"resource": "Issue", "code": "missing_field", "field": "title"}])
        if (invalid := self._validate(payload)) is not None:
            return invalid
        number = len(self.issues) + 1
        now = _now().strftime("%Y-%m-%dT%H:%M:%SZ")
        issue = {
            "id": 1_000_000 + number, "number": number, "title": str(payload["title"]),
            "body": payload.get("body"), "state": "open", "state_reason": None,
            "labels": self._labels(payload.get("labels") or []) if self.push_access else [],
            "comments": 0, "created_at": now, "closed_at": None, "user": {"login": "triage-bot", "type": "Bot"},
            "html_url": f"https://github.com/{self.creds.github_repo}/issues/{number}",
            "url": f"{self.base_url}/repos/{self.creds.github_repo}/issues/{number}",
        }
        self._touch(issue)
        self.issues[number] = issue
        self.comments[number] = []
        return Response.json(self._public(issue), 201)

    def _update(self, number: int, payload: dict[str, Any]) -> Response:
        if (invalid := self._validate(payload)) is not None:
            return invalid
        issue = self.issues[number]
        for key in ("title", "body"):
            if key in payload:
                issue[key] = payload[key]
        if "labels" in payload:
            issue["labels"] = self._labels(payload["labels"] or [])
        if "state" in payload and payload["state"] != issue["state"]:
            issue["state"] = payload["state"]
            closed = payload["state"] == "closed"
            issue["closed_at"] = _now().strftime("%Y-%m-%dT%H:%M:%SZ") if closed else None
            issue["state_reason"] = payload.get("state_reason", "completed") if closed else "reopened"
        self._touch(issue)
        return Response.json(self._public(issue))

    def _comment(self, number: int, payload: dict[str, Any]) -> Response:
        if not payload.get("body"):
            return self._error(422, "Validation Failed",
                               [{"resource": "IssueComment", "code": "missing_field", "field": "body"}])
        comment = {"id": 5_000_000 + sum(len(c) for c in self.comments.values()) + 1, "body": payload["body"],
                   "created_at": _now().strftime("%Y-%m-%dT%H:%M:%SZ"), "user": {"login": "triage-bot"},
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


# ----------------------------------------------------------------------------------------------------------------
# Azure DevOps Boards REST 7.1: WIQL, work items batch read, JSON Patch create/update, comments.


class AzureDevOpsStandIn(_StandIn):
    name = "azuredevops"
    TYPES = {"Issue": ("Active", {"Active", "Closed"}), "Task": ("New", {"New", "Active", "Closed", "Removed"})}

    def __init__(self, creds: TrackerCredentials):
        super().__init__(creds)
        self.items: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self._seq = 0
        self._last_id = 0

    def authorized(self, request: Request) -> bool:
        basic = _basic(request)
        if basic is not None:
            return basic[1] == self.creds.ado_pat  # Azure DevOps ignores the user name of a PAT
        return request.headers.get("authorization", "") == f"Bearer {self.creds.ado_pat}"

    def unauthorized(self, request: Request) -> Response:
        if request.headers.get("x-tfs-fedauthredirect", "").lower() != "suppress":
            page = b"<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head></html>"
            return Response(203, page, {"Content-Type": "text/html; charset=utf-8"})
        return Response.json(self._vss("TF400813: The user '' is not authorized to access this resource.",
                                       "UnauthorizedRequestException"), 401)

    @staticmethod
    def _vss(message: str, type_key: str) -> dict[str, Any]:
        return {"$id": "1", "innerException": None, "message": message, "typeName": f"{type_key}, Microsoft.VSS",
                "typeKey": type_key, "errorCode": 0, "eventId": 3000}

    def fault_body(self, status: int) -> Any:
        if status == 429:
            return self._vss("TF400733: The request has been canceled: Request was blocked due to exceeding usage "
                             "of resource 'WorkItemTracking' in namespace 'User'.", "RequestBlockedException")
        return self._vss("TF246017: Azure DevOps Services is temporarily unavailable.", "ServiceUnavailable")

    def route(self, request: Request) -> Response:
        prefix = f"/{self.creds.ado_org}/{self.creds.ado_project}/_apis/wit/"
        if not request.path.lower().startswith(prefix.lower()):
            return Response.json(self._vss("TF200016: The following project does not exist.",
                                           "ProjectDoesNotExistException"), 404)
        if not request.param("api-version"):
            return Response.json(self._vss("No api-version was supplied for the request.",
                                           "VssVersionNotSpecifiedException"), 400)
        rest = request.path[len(prefix):]
        lowered = rest.lower()
        if lowered == "wiql" and request.method == "POST":
            return self._wiql(request)
        if lowered == "workitems" and request.method == "GET":
            return self._batch(request)
        if match := re.fullmatch(r"workitems/\$(.+)", rest, re.IGNORECASE):
            return self._create(request, match[1]) if request.method == "POST" else self._not_found(0)
        if match := re.fullmatch(r"workitems/(\d+)(/comments)?", rest, re.IGNORECASE):
            item_id = int(match[1])
            if item_id not in self.items:
                return self._not_found(item_id)
            if match[2]:
                return self._comments(request, item_id)
            if request.method == "PATCH":
                return self._update(request, item_id)
            if request.method == "GET":
                return Response.json(self.items[item_id])
        return self._not_found(0)

    def _not_found(self, item_id: int) -> Response:
        return Response.json(self._vss(f"TF401232: Work item {item_id} does not exist, or you do not have "
                                       "permissions to read it.", "WorkItemUnauthorizedAccessException"), 404)

    def _wiql(self, request: Request) -> Response:
        query = (request.json() or {}).get("query", "")
        tag = re.search(r"\[System\.Tags\]\s+CONTAINS\s+'([^']*)'", query, re.IGNORECASE)
        items = [i for i in self.items.values()
                 if tag is None or tag[1].lower() in {t.lower() for t in _split_tags(i["fields"].get("System.Tags"))}]
        if re.search(r"ORDER BY \[System\.ChangedDate\] DESC", query, re.IGNORECASE):
            items.sort(key=lambda i: i["_seq"], reverse=True)
        top = int(request.param("$top", "20000"))
        return Response.json({
            "queryType": "flat", "queryResultType": "workItem", "asOf": _now().isoformat(),
            "columns": [{"referenceName": "System.Id", "name": "ID"}],
            "workItems": [{"id": i["id"], "url": i["url"]} for i in items[:top]],
        })

    def _batch(self, request: Request) -> Response:
        ids = [int(x) for x in (request.param("ids") or "").split(",") if x]
        fields = [f for f in (request.param("fields") or "").split(",") if f]
        missing = [i for i in ids if i not in self.items]
        if missing and (request.param("errorPolicy") or "").lower() != "omit":
            return self._not_found(missing[0])
        out: list[dict[str, Any] | None] = []
        for item_id in ids:
            if item_id in missing:
                out.append(None)  # errorPolicy=omit: a null in place of the missing item
                continue
            item = self._public(self.items[item_id])
            if fields:
                item["fields"] = {k: v for k, v in item["fields"].items() if k in fields}
            out.append(item)
        return Response.json({"count": len(out), "value": out})

    @staticmethod
    def _public(item: dict[str, Any]) -> dict[str, Any]:
        return {k: (dict(v) if isinstance(v, dict) else v) for k, v in item.items() if not k.startswith("_")}

    def _apply(self, item: dict[str, Any], ops: Any, work_item_type: str) -> Response | None:
        if not isinstance(ops, list):
            return Response.json(self._vss("You must pass a valid patch document in the body of the request.",
                                           "VssPropertyValidationException"), 400)
        fields = item["fields"]
        for op in ops:
            path = str(op.get("path", ""))
            if op.get("op") == "test" and path == "/rev":
                if op.get("value") != item["rev"]:
                    return Response.json(self._vss("TF26071: This work item has been changed by someone else since "
                                                   "you opened it.", "WorkItemRevisionMismatchException"), 412)
                continue
            if op.get("op") not in ("add", "replace", "remove") or not path.startswith("/fields/"):
                return Response.json(self._vss(f"Invalid patch operation {op!r}", "InvalidPatchException"), 400)
            name = path[len("/fields/"):]
            if op["op"] == "remove":
                fields.pop(name, None)
            elif name == "System.History":
                self._add_comment(item["id"], str(op.get("value", "")))
            else:
                fields[name] = op.get("value")
        _, states = self.TYPES[work_item_type]
        if fields.get("System.State") not in states:
            return Response.json(self._vss(f"TF401320: Rule Error for field State. Error code: LimitedToValues. "
                                           f"The value {fields.get('System.State')!r} is not in the list of "
                                           "supported values.", "RuleValidationException"), 400)
        if not fields.get("System.Title"):
            return Response.json(self._vss("TF401320: Rule Error for field Title. Error code: Required, "
                                           "InvalidEmpty.", "RuleValidationException"), 400)
        if len(str(fields["System.Title"])) > 255:
            return Response.json(self._vss("TF401320: Rule Error for field Title. Error code: MaxLength.",
                                           "RuleValidationException"), 400)
        if fields.get("Microsoft.VSTS.Common.Priority") not in (None, 1, 2, 3, 4):
            return Response.json(self._vss("TF401320: Rule Error for field Priority. Error code: "
                                           "LimitedToValues.", "RuleValidationException"), 400)
        return None

    def _content_type_ok(self, request: Request) -> Response | None:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json-patch+json":
            return Response.json(self._vss("The request indicated a Content-Type which is not supported. Valid "
                                           "content types for this method are: application/json-patch+json.",
                                           "VssRequestContentTypeNotSupportedException"), 415)
        return None

    def _create(self, request: Request, work_item_type: str) -> Response:
        if (bad := self._content_type_ok(request)) is not None:
            return bad
        if work_item_type not in self.TYPES:
            return Response.json(self._vss(f"VS402323: Work item type {work_item_type} does not exist in project "
                                           f"{self.creds.ado_project} or you do not have permission to access it.",
                                           "WorkItemTypeNotFoundException"), 404)
        self._last_id += 1  # ids are never reused, even after a delete
        item_id = self._last_id
        project = self.creds.ado_project
        now = _now().isoformat()
        item = {"id": item_id, "rev": 1, "fields": {
            "System.TeamProject": project, "System.AreaPath": project, "System.IterationPath": project,
            "System.WorkItemType": work_item_type, "System.State": self.TYPES[work_item_type][0],
            "System.Reason": "New", "System.CreatedDate": now, "System.ChangedDate": now,
        }, "url": f"{self.base_url}/{self.creds.ado_org}/{project}/_apis/wit/workItems/{item_id}"}
        self.comments[item_id] = []
        if (invalid := self._apply(item, request.json(), work_item_type)) is not None:
            self.comments.pop(item_id)
            self._last_id -= 1
            return invalid
        self._seq += 1
        item["_seq"] = self._seq
        self.items[item_id] = item
        return Response.json(self._public(item))

    def _update(self, request: Request, item_id: int) -> Response:
        if (bad := self._content_type_ok(request)) is not None:
            return bad
        item = self.items[item_id]
        before = json.loads(json.dumps(self._public(item)))
        before_comments = list(self.comments[item_id])
        if (invalid := self._apply(item, request.json(), item["fields"]["System.WorkItemType"])) is not None:
            item.update(before)
            self.comments[item_id] = before_comments
            return invalid
        item["rev"] += 1
        item["fields"]["System.ChangedDate"] = _now().isoformat()
        self._seq += 1
        item["_seq"] = self._seq
        return Response.json(self._public(item))

    def _add_comment(self, item_id: int, text: str) -> dict[str, Any]:
        comment = {"workItemId": item_id, "id": sum(len(c) for c in self.comments.values()) + 1, "version": 1,
                   "text": text, "createdDate": _now().isoformat()}
        self.comments[item_id].append(comment)
        return comment

    def _comments(self, request: Request, item_id: int) -> Response:
        if request.method == "POST":
            text = (request.json() or {}).get("text")
            if not text:
                return Response.json(self._vss("The comment text is required.", "ArgumentNullException"), 400)
            return Response.json(self._add_comment(item_id, str(text)))
        comments = self.comments[item_id]
        return Response.json({"totalCount": len(comments), "count": len(comments), "comments": comments})

    def views(self) -> list[TicketView]:
        out = []
        for item in sorted(self.items.values(), key=lambda i: i["id"]):
            fields = item["fields"]
            out.append(TicketView(
                ref=str(item["id"]), title=fields.get("System.Title", ""), body=fields.get("System.Description", ""),
                is_open=fields.get("System.State") not in ("Closed", "Removed"),
                markers=tuple(_split_tags(fields.get("System.Tags"))),
                high_priority=fields.get("Microsoft.VSTS.Common.Priority") == 1,
                comments=tuple(c["text"] for c in self.comments[item["id"]]), raw=self._public(item),
            ))
        return out

    def set_state(self, ref: str, state: str) -> None:
        self.items[int(ref)]["fields"]["System.State"] = state
        self._seq += 1
        self.items[int(ref)]["_seq"] = self._seq


def _split_tags(raw: Any) -> list[str]:
    return [t.strip() for t in str(raw or "").split(";") if t.strip()]


# ----------------------------------------------------------------------------------------------------------------
# ServiceNow Table API: incident list (sysparm_query), create, update; journal fields; data policy; ACLs.


class ServiceNowStandIn(_StandIn):
    name = "servicenow"
    _PRIORITY = {("1", "1"): "1", ("1", "2"): "2", ("2", "1"): "2", ("2", "2"): "3", ("1", "3"): "3",
                 ("3", "1"): "3", ("2", "3"): "4", ("3", "2"): "4", ("3", "3"): "5"}
    _LIMITS = {"short_description": 160, "description": 4000, "correlation_id": 100, "correlation_display": 100}

    def __init__(self, creds: TrackerCredentials):
        super().__init__(creds)
        self.records: dict[str, dict[str, Any]] = {}
        self.journal: dict[str, list[tuple[str, str]]] = {}
        self._seq = 0

    def authorized(self, request: Request) -> bool:
        return _basic(request) == (self.creds.servicenow_user, self.creds.servicenow_password)

    def unauthorized(self, request: Request) -> Response:
        return Response.json({"error": {"message": "User Not Authenticated",
                                        "detail": "Required to provide Auth information"}, "status": "failure"}, 401)

    def fault_body(self, status: int) -> Any:
        message = "Rate limit exceeded" if status == 429 else "Service Unavailable"
        return {"error": {"message": message, "detail": None}, "status": "failure"}

    @staticmethod
    def _failure(status: int, message: str, detail: str) -> Response:
        return Response.json({"error": {"message": message, "detail": detail}, "status": "failure"}, status)

    def route(self, request: Request) -> Response:
        match = re.fullmatch(r"/api/now/table/incident(?:/([0-9a-f]{32}))?", request.path)
        if not match:
            return self._failure(400, "Invalid table", "Invalid table name or path")
        sys_id = match[1]
        if sys_id is None:
            if request.method == "GET":
                return self._list(request)
            if request.method == "POST":
                return self._create(request)
        elif sys_id not in self.records:
            return self._failure(404, "No Record found", "Record doesn't exist or ACL restricts the record retrieval")
        elif request.method in ("PATCH", "PUT"):
            return self._update(request, sys_id)
        elif request.method == "GET":
            return Response.json({"result": self._out(self.records[sys_id], request)})
        return self._failure(405, "Method not Supported", "Requested method is not supported")

    def _out(self, record: dict[str, Any], request: Request) -> dict[str, Any]:
        fields = [f for f in (request.param("sysparm_fields") or "").split(",") if f]
        public = {k: v for k, v in record.items() if not k.startswith("_")}
        return {k: v for k, v in public.items() if k in fields} if fields else public

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
        record["sys_updated_on"] = _now().strftime("%Y-%m-%d %H:%M:%S")

    def _data_policy(self, merged: dict[str, Any]) -> Response | None:
        if merged.get("state") in ("6", "7") and not (merged.get("close_code") and merged.get("close_notes")):
            return self._failure(403, "Operation Failed", "Data Policy Exception: \n\tThe following fields are "
                                 "mandatory: Resolution code, Resolution notes\n")
        return None

    def _create(self, request: Request) -> Response:
        payload = request.json() or {}
        self._seq += 1
        sys_id = hashlib.md5(f"incident-{self._seq}".encode(), usedforsecurity=False).hexdigest()
        now = _now().strftime("%Y-%m-%d %H:%M:%S")
        record = {"sys_id": sys_id, "number": f"INC{10000 + len(self.records) + 1:07d}", "state": "1",
                  "urgency": "3", "impact": "3", "priority": "5", "short_description": "", "description": "",
                  "correlation_id": "", "correlation_display": "", "close_code": "", "close_notes": "",
                  "work_notes": "", "comments": "", "sys_created_on": now, "opened_at": now}
        if (refused := self._data_policy({**record, **{k: str(v) for k, v in payload.items()}})) is not None:
            return refused
        self.journal[sys_id] = []
        self._write(record, payload)
        self.records[sys_id] = record
        return Response.json({"result": self._out(record, request)}, 201)

    def _update(self, request: Request, sys_id: str) -> Response:
        record = self.records[sys_id]
        if record["state"] in ("7", "8"):
            return self._failure(403, "Operation Failed", "ACL Exception Update Failed due to security constraints")
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


# ----------------------------------------------------------------------------------------------------------------
# Jira Cloud REST v3: enhanced JQL search, create, edit, comment, transitions.


class JiraStandIn(_StandIn):
    name = "jira"
    STATUSES = {"To Do": ("new", "10000"), "In Progress": ("indeterminate", "3"), "Done": ("done", "10001")}
    PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
    ISSUE_TYPES = ("Task", "Bug")

    def __init__(self, creds: TrackerCredentials):
        super().__init__(creds)
        self.issues: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self.reopen_allowed = True  # False: a Done issue has no way back (a "closed is final" workflow)
        self._seq = 0

    def authorized(self, request: Request) -> bool:
        return _basic(request) == (self.creds.jira_user, self.creds.jira_token)

    def unauthorized(self, request: Request) -> Response:
        return self._errors(401, ["Client must be authenticated to access this resource."])

    def fault_body(self, status: int) -> Any:
        return {"errorMessages": ["Rate limit exceeded." if status == 429 else "Service unavailable."], "errors": {}}

    @staticmethod
    def _errors(status: int, messages: list[str], errors: dict[str, str] | None = None) -> Response:
        return Response.json({"errorMessages": messages, "errors": errors or {}}, status)

    def route(self, request: Request) -> Response:
        path = request.path
        if path == "/rest/api/3/search/jql" and request.method == "GET":
            return self._search(request)
        if path == "/rest/api/3/issue" and request.method == "POST":
            return self._create(request.json() or {})
        match = re.fullmatch(r"/rest/api/3/issue/([A-Z][A-Z0-9]*-\d+)(/comment|/transitions)?", path)
        if not match:
            return self._errors(404, ["Not found."])
        key, tail = match[1], match[2]
        if key not in self.issues:
            return self._errors(404, ["Issue does not exist or you do not have permission to see it."])
        if tail == "/comment" and request.method == "POST":
            return self._comment(key, (request.json() or {}).get("body"))
        if tail == "/transitions" and request.method == "GET":
            return Response.json({"expand": "transitions", "transitions": self._transitions(key)})
        if tail == "/transitions" and request.method == "POST":
            return self._transition(key, request.json() or {})
        if tail is None and request.method == "PUT":
            return self._edit(key, request.json() or {})
        if tail is None and request.method == "GET":
            return Response.json(self._public(self.issues[key], None))
        return self._errors(405, ["Method not allowed."])

    def _public(self, issue: dict[str, Any], fields: list[str] | None) -> dict[str, Any]:
        status = issue["fields"]["status"]
        category, status_id = self.STATUSES[status]
        out_fields = dict(issue["fields"])
        out_fields["status"] = {"name": status, "id": status_id,
                                "statusCategory": {"key": category, "name": status}}
        if out_fields.get("priority"):
            out_fields["priority"] = {"name": out_fields["priority"]}
        if fields is not None:
            out_fields = {k: v for k, v in out_fields.items() if k in fields}
        return {"id": issue["id"], "key": issue["key"], "self": issue["self"], "fields": out_fields}

    def _search(self, request: Request) -> Response:
        jql = request.param("jql") or ""
        project = re.search(r'project\s*=\s*"?([A-Za-z0-9]+)"?', jql)
        label = re.search(r'labels\s*=\s*"([^"]+)"', jql)
        if project is None and label is None:
            return self._errors(400, ["Unbounded JQL queries are not allowed here. Please add a search restriction "
                                      "to your query."])
        issues = [i for i in self.issues.values()
                  if (project is None or i["key"].split("-")[0] == project[1])
                  and (label is None or label[1] in i["fields"]["labels"])]
        if re.search(r"ORDER BY updated DESC", jql, re.IGNORECASE):
            issues.sort(key=lambda i: i["_seq"], reverse=True)
        fields = [f for f in (request.param("fields") or "id").split(",") if f]
        limit = int(request.param("maxResults", "50"))
        return Response.json({"issues": [self._public(i, fields) for i in issues[:limit]], "isLast": True})

    @staticmethod
    def _adf_problem(doc: Any) -> str | None:
        if not isinstance(doc, dict) or doc.get("type") != "doc" or doc.get("version") != 1:
            return "Operation value must be an Atlassian Document (see the Atlassian Document Format)"

        def walk(node: Any) -> str | None:
            if not isinstance(node, dict) or not isinstance(node.get("type"), str):
                return "INVALID_INPUT"
            if node["type"] == "text" and not node.get("text"):
                return "INVALID_INPUT"
            return next((p for p in map(walk, node.get("content", [])) if p), None)

        return walk(doc)

    def _check_fields(self, fields: dict[str, Any]) -> dict[str, str]:
        errors: dict[str, str] = {}
        if "summary" in fields:
            summary = str(fields.get("summary") or "")
            if not summary:
                errors["summary"] = "You must specify a summary of the issue."
            elif "\n" in summary or "\r" in summary:
                errors["summary"] = "The summary is invalid because it contains newline characters."
            elif len(summary) > 255:
                errors["summary"] = "Summary must be less than 255 characters."
        if "description" in fields and (problem := self._adf_problem(fields["description"])):
            errors["description"] = problem
        for label in fields.get("labels") or []:
            if " " in str(label):
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
        if "priority" in fields and (fields["priority"] or {}).get("name") not in self.PRIORITIES:
            errors["priority"] = "Specify the Priority (name) in the string format"
        return errors

    def _create(self, payload: dict[str, Any]) -> Response:
        fields = dict(payload.get("fields") or {})
        errors = self._check_fields({"summary": fields.get("summary"), **fields})
        if (fields.get("project") or {}).get("key") != self.creds.jira_project:
            errors["project"] = "valid project is required"
        if (fields.get("issuetype") or {}).get("name") not in self.ISSUE_TYPES:
            errors["issuetype"] = "valid issue type is required"
        if errors:
            return self._errors(400, [], errors)
        number = len(self.issues) + 1
        key = f"{self.creds.jira_project}-{number}"
        issue = {"id": str(10000 + number), "key": key, "self": f"{self.base_url}/rest/api/3/issue/{10000 + number}",
                 "fields": {"summary": fields["summary"], "description": fields.get("description"),
                            "labels": list(dict.fromkeys(fields.get("labels") or [])), "status": "To Do",
                            "issuetype": fields["issuetype"]["name"],
                            "priority": (fields.get("priority") or {}).get("name", "Medium")}}
        self._seq += 1
        issue["_seq"] = self._seq
        self.issues[key] = issue
        self.comments[key] = []
        return Response.json({"id": issue["id"], "key": key, "self": issue["self"]}, 201)

    def _edit(self, key: str, payload: dict[str, Any]) -> Response:
        fields = dict(payload.get("fields") or {})
        errors = self._check_fields(fields)
        if errors:
            return self._errors(400, [], errors)
        issue = self.issues[key]
        for name in ("summary", "description"):
            if name in fields:
                issue["fields"][name] = fields[name]
        if "priority" in fields:
            issue["fields"]["priority"] = fields["priority"]["name"]
        for change in (payload.get("update") or {}).get("labels", []):
            if " " in str(change.get("add", "")):
                return self._errors(400, [], {"labels": "The label contains spaces which is invalid."})
            if change.get("add") and change["add"] not in issue["fields"]["labels"]:
                issue["fields"]["labels"].append(change["add"])
            if change.get("remove") in issue["fields"]["labels"]:
                issue["fields"]["labels"].remove(change["remove"])
        self._seq += 1
        issue["_seq"] = self._seq
        return Response(204)

    def _comment(self, key: str, body: Any) -> Response:
        if (problem := self._adf_problem(body)) is not None:
            return self._errors(400, [], {"comment": problem})
        comment = {"id": str(20000 + sum(len(c) for c in self.comments.values()) + 1), "body": body,
                   "created": _now().isoformat(), "author": {"displayName": "triage-bot"}}
        self.comments[key].append(comment)
        self._seq += 1
        self.issues[key]["_seq"] = self._seq
        return Response.json(comment, 201)

    def _transitions(self, key: str) -> list[dict[str, Any]]:
        status = self.issues[key]["fields"]["status"]
        targets = {"11": ("To Do", "To Do"), "21": ("In Progress", "In Progress"), "31": ("Done", "Done")}
        if status == "Done":
            targets = {"41": ("Reopen", "To Do")} if self.reopen_allowed else {}
        out = []
        for tid, (name, to) in targets.items():
            if to == status:
                continue
            category, status_id = self.STATUSES[to]
            out.append({"id": tid, "name": name, "hasScreen": False,
                        "to": {"name": to, "id": status_id, "statusCategory": {"key": category, "name": to}}})
        return out

    def _transition(self, key: str, payload: dict[str, Any]) -> Response:
        wanted = str((payload.get("transition") or {}).get("id"))
        match = next((t for t in self._transitions(key) if t["id"] == wanted), None)
        if match is None:
            return self._errors(400, [f"Transition id '{wanted}' is not valid for this issue."])
        for change in (payload.get("update") or {}).get("comment", []):
            body = (change.get("add") or {}).get("body")
            if (problem := self._adf_problem(body)) is not None:
                return self._errors(400, [], {"comment": problem})
            self.comments[key].append({"id": "t", "body": body, "created": _now().isoformat()})
        self.issues[key]["fields"]["status"] = match["to"]["name"]
        self._seq += 1
        self.issues[key]["_seq"] = self._seq
        return Response(204)

    def views(self) -> list[TicketView]:
        return [TicketView(
            ref=i["key"], title=i["fields"]["summary"], body=_adf_text(i["fields"]["description"]),
            is_open=i["fields"]["status"] != "Done", markers=tuple(i["fields"]["labels"]),
            high_priority=i["fields"]["priority"] in ("High", "Highest"),
            comments=tuple(_adf_text(c["body"]) for c in self.comments[i["key"]]), raw=self._public(i, None),
        ) for i in sorted(self.issues.values(), key=lambda i: int(i["id"]))]

    def set_state(self, ref: str, state: str) -> None:
        self.issues[ref]["fields"]["status"] = state
        self._seq += 1
        self.issues[ref]["_seq"] = self._seq


# ----------------------------------------------------------------------------------------------------------------
# A webhook receiver that checks the HMAC-SHA256 signature over the exact body and records deliveries.


class WebhookStandIn(_StandIn):
    name = "webhook"
    PATH = "/hooks/triage"

    def __init__(self, creds: TrackerCredentials):
        super().__init__(creds)
        self.deliveries: dict[str, dict[str, Any]] = {}

    def authorized(self, request: Request) -> bool:
        expected = "sha256=" + hmac.new(self.creds.webhook_secret.encode(), request.body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(expected, request.headers.get("x-triage-signature", ""))

    def unauthorized(self, request: Request) -> Response:
        return Response.json({"error": "bad signature"}, 401)

    def route(self, request: Request) -> Response:
        if request.path != self.PATH or request.method != "POST":
            return Response.json({"error": "not found"}, 404)
        delivery = request.headers.get("x-triage-delivery", "")
        self.deliveries.setdefault(delivery, request.json())  # a retried delivery is not counted twice
        return Response(204)

    def views(self) -> list[TicketView]:
        by_marker: dict[str, dict[str, Any]] = {}
        for payload in self.deliveries.values():
            by_marker[payload["ticket"]["marker"]] = payload
        return [TicketView(ref=p["ticket"]["incident_id"], title=p["ticket"]["title"], body=json.dumps(p),
                           is_open=p["event"] != "ticket.resolve", markers=(marker,),
                           high_priority=bool(p["ticket"]["escalated"]),
                           comments=(p["comment"],) if p.get("comment") else (), raw=p)
                for marker, p in by_marker.items()]


# ----------------------------------------------------------------------------------------------------------------


class TrackerStandIns:
    """All tracker stand-ins, each on its own HTTPS port on 127.0.0.1."""

    def __init__(self, ca: CertificateAuthority, credentials: TrackerCredentials):
        self.credentials = credentials
        self.ca_path = ca.ca_path  # clients pass it as connection_verify / TRIAGE_CA_BUNDLE
        self._apps: dict[str, _StandIn] = {
            "github": GitHubStandIn(credentials), "azuredevops": AzureDevOpsStandIn(credentials),
            "servicenow": ServiceNowStandIn(credentials), "jira": JiraStandIn(credentials),
            "webhook": WebhookStandIn(credentials),
        }
        self._servers: dict[str, HttpsServer] = {}
        for name, app in self._apps.items():
            server = HttpsServer(app, ca)
            app.base_url = server.url
            self._servers[name] = server

    @classmethod
    def start(cls, ca: CertificateAuthority, credentials: TrackerCredentials | None = None) -> TrackerStandIns:
        standins = cls(ca, credentials or TrackerCredentials())
        for server in standins._servers.values():
            server.start()
        return standins

    @property
    def github_url(self) -> str:
        return self._servers["github"].url

    @property
    def ado_url(self) -> str:
        return f"{self._servers['azuredevops'].url}/{self.credentials.ado_org}"

    @property
    def servicenow_url(self) -> str:
        return self._servers["servicenow"].url

    @property
    def jira_url(self) -> str:
        return self._servers["jira"].url

    @property
    def webhook_url(self) -> str:
        return self._servers["webhook"].url + WebhookStandIn.PATH

    def app(self, tracker: str) -> Any:
        """The stand-in itself, for switches such as `app("github").push_access = False`."""
        return self._apps[tracker]

    def received(self, tracker: str) -> list[RecordedRequest]:
        app = self._apps[tracker]
        with app.lock:
            return list(app.requests)

    def fail_next(self, tracker: str, status: int, times: int = 1, retry_after: float | None = None, *,
                  after_apply: bool = False, method: str | None = None, path_contains: str | None = None) -> None:
        """The next `times` calls to `tracker` answer `status` (GitHub 403 = secondary rate limit, 429 = primary).
        With after_apply the call is carried out first and only the answer fails (a lost response).
        `method` / `path_contains` narrow which calls fail (e.g. only the create)."""
        app = self._apps[tracker]
        with app.lock:
            app.faults.extend(_Fault(status, retry_after, after_apply, method, path_contains) for _ in range(times))

    def reset_faults(self) -> None:
        """Drop queued faults that no call consumed (between tests)."""
        for app in self._apps.values():
            with app.lock:
                app.faults.clear()

    def tickets(self, tracker: str) -> list[TicketView]:
        app = self._apps[tracker]
        with app.lock:
            return app.views()

    def set_state(self, tracker: str, ref: str, state: str) -> None:
        """Change a ticket as a person would (tracker-native state: closed / Closed / 7 / Done ...)."""
        app = self._apps[tracker]
        with app.lock:
            app.set_state(ref, state)

    def settings_env(self) -> dict[str, str]:
        """TRIAGE_* settings that point every sink at these stand-ins."""
        c = self.credentials
        return {
            "TRIAGE_GITHUB_API_URL": self.github_url, "TRIAGE_GITHUB_REPO": c.github_repo,
            "TRIAGE_GITHUB_TOKEN": c.github_token, "TRIAGE_ADO_ORG_URL": self.ado_url,
            "TRIAGE_ADO_PROJECT": c.ado_project, "TRIAGE_ADO_PAT": c.ado_pat,
            "TRIAGE_SERVICENOW_URL": self.servicenow_url, "TRIAGE_SERVICENOW_USER": c.servicenow_user,
            "TRIAGE_SERVICENOW_PASSWORD": c.servicenow_password, "TRIAGE_JIRA_URL": self.jira_url,
            "TRIAGE_JIRA_PROJECT": c.jira_project, "TRIAGE_JIRA_USER": c.jira_user,
            "TRIAGE_JIRA_TOKEN": c.jira_token, "TRIAGE_WEBHOOK_URL": self.webhook_url,
            "TRIAGE_WEBHOOK_SECRET": c.webhook_secret,
        }

    def stop(self) -> None:
        # In parallel: each server's shutdown waits out its poll interval.
        stoppers = [threading.Thread(target=server.stop) for server in self._servers.values()]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
