"""Jira Cloud (REST v3): enhanced JQL search, create, edit, comment, transitions. Descriptions and comments are
Atlassian Document Format; a workflow can make Done final (`reopen_allowed = False`).

`datacenter = True` makes it Jira Data Center / Server instead: REST v2 only (`/rest/api/2/search`, `/issue`,
comments, transitions, `expand=changelog`), descriptions and comments as wiki markup strings, and sign-in by a
personal access token as `Authorization: Bearer` (a Cloud API token over basic auth is refused with 401):
https://confluence.atlassian.com/enterprise/using-personal-access-tokens-1026032365.html
Components and issue types are checked against the project in both modes (`components`, `ISSUE_TYPES`)."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

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

_ISSUE_PATH = re.compile(r"/rest/api/([23])/issue/([A-Z][A-Z0-9]*-\d+)(/comment|/transitions|/changelog)?")


def _adf_text(node: Any) -> str:
    if not isinstance(node, dict):
        return ""
    if node.get("type") == "text":
        return str(node.get("text", ""))
    joiner = "\n" if node.get("type") in ("doc", "bulletList", "orderedList") else ""
    return joiner.join(_adf_text(child) for child in node.get("content", []))


def _text(body: Any) -> str:
    """A stored description or comment as text: a wiki markup string as it is, an ADF document's text."""
    return body if isinstance(body, str) else _adf_text(body)


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


def _errors(status: int, messages: list[str], errors: dict[str, str] | None = None) -> Response:
    return Response.json({"errorMessages": messages, "errors": errors or {}}, status)


class JiraStandIn(TrackerService):
    name = "jira"
    STATUSES = {"To Do": ("new", "10000"), "In Progress": ("indeterminate", "3"), "Done": ("done", "10001")}
    PRIORITIES = ("Highest", "High", "Medium", "Low", "Lowest")
    ISSUE_TYPES = ("Task", "Bug")

    def __init__(self, creds: TrackerCredentials):
        super().__init__(creds)
        self.issues: dict[str, dict[str, Any]] = {}
        self.comments: dict[str, list[dict[str, Any]]] = {}
        self.reopen_allowed = True  # False: a Done issue has no way back (a "closed is final" workflow)
        self.histories: dict[str, list[dict[str, Any]]] = {}  # the changelog of each issue, oldest first
        self._seq = 0
        self.datacenter = False  # True: Jira Data Center (REST v2, wiki markup, Bearer personal access tokens)
        self.components = ["payments", "platform", "identity"]  # the project's components, by name

    def authenticate(self, request: Request) -> Response | None:
        if self.datacenter:
            if request.headers.get("authorization", "") == f"Bearer {self.creds.jira_pat}":
                return None
        elif basic_credentials(request) == (self.creds.jira_user, self.creds.jira_token):
            return None
        return _errors(401, ["Client must be authenticated to access this resource."])

    @property
    def _version(self) -> str:
        return "2" if self.datacenter else "3"

    def _body_problem(self, body: Any) -> str | None:
        """Data Center: a wiki markup string; Cloud v3: an ADF document."""
        if self.datacenter:
            return None if isinstance(body, str) else "Operation value must be a string"
        return _adf_problem(body)

    def fault_body(self, status: int) -> Any:
        return {"errorMessages": ["Rate limit exceeded." if status == 429 else "Service unavailable."], "errors": {}}

    def dispatch(self, request: Request) -> TrackerRoute:
        path, method = request.path, request.method
        version = self._version
        if not self.datacenter and path == "/rest/api/3/search/jql" and method == "GET":
            return read("search.jql", self._search)
        if self.datacenter and path == "/rest/api/2/search" and method == "GET":
            return read("search", self._search)
        if path == f"/rest/api/{version}/issue" and method == "POST":
            return write("issues.create", self._create)
        match = _ISSUE_PATH.fullmatch(path)
        if not match or match[1] != version or (self.datacenter and match[3] == "/changelog"):
            return read("notFound", lambda r: _errors(404, ["Not found."]))
        key, tail = match[2], match[3]
        if tail == "/comment" and method == "POST":
            return write("comments.create", self._existing(key, self._comment))
        if tail == "/transitions" and method == "GET":
            return read("transitions.list", self._existing(key, lambda k, _: Response.json(
                {"expand": "transitions", "transitions": self._transitions(k)})))
        if tail == "/transitions" and method == "POST":
            return write("transitions.do", self._existing(key, self._transition))
        if tail == "/changelog" and method == "GET":
            return read("changelog.list", self._existing(key, lambda k, _: Response.json(self._changelog(k))))
        if tail is None and method == "PUT":
            return write("issues.edit", self._existing(key, self._edit))
        if tail is None and method == "GET":
            return read("issues.get", self._existing(key, self._get))
        return read("method.notAllowed", self._existing(key, lambda k, _: _errors(405, ["Method not allowed."])))

    def _existing(self, key: str, handler: Callable[[str, Request], Response]) -> TrackerHandler:
        return existing(self.issues, key, handler, lambda: _errors(
            404, ["Issue does not exist or you do not have permission to see it."]))

    def _get(self, key: str, request: Request) -> Response:
        fields = [f for f in (request.param("fields") or "").split(",") if f] or None
        out = self._public(self.issues[key], fields)
        if "changelog" in (request.param("expand") or "").split(","):  # v2 (and v3): the histories, oldest first
            values = self.histories.get(key, [])
            out["changelog"] = {"startAt": 0, "maxResults": len(values), "total": len(values), "histories": values}
        return Response.json(out)

    def _touch(self, key: str) -> None:
        self._seq += 1
        self.issues[key]["_seq"] = self._seq

    def _public(self, issue: dict[str, Any], fields: list[str] | None = None) -> dict[str, Any]:
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
            return _errors(400, ["Unbounded JQL queries are not allowed here. Please add a search restriction to "
                                 "your query."])
        issues = [i for i in self.issues.values()
                  if (project is None or i["key"].split("-")[0] == project[1])
                  and (label is None or label[1] in i["fields"]["labels"])]
        if re.search(r"ORDER BY updated DESC", jql, re.IGNORECASE):
            issues.sort(key=lambda i: i["_seq"], reverse=True)
        fields = [f for f in (request.param("fields") or "id").split(",") if f]
        limit = int(request.param("maxResults", "50"))
        return Response.json({"issues": [self._public(i, fields) for i in issues[:limit]], "isLast": True})

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
        if "description" in fields and (problem := self._body_problem(fields["description"])):
            errors["description"] = problem
        for component in fields.get("components") or []:
            name = (component or {}).get("name") if isinstance(component, dict) else None
            if name not in self.components:
                errors["components"] = f"Component name '{name}' is not valid"
        for label in fields.get("labels") or []:
            if " " in str(label):
                errors["labels"] = f"The label '{label}' contains spaces which is invalid."
        if "priority" in fields and (fields["priority"] or {}).get("name") not in self.PRIORITIES:
            errors["priority"] = "Specify the Priority (name) in the string format"
        return errors

    def _create(self, request: Request) -> Response:
        fields = dict((request.json() or {}).get("fields") or {})
        errors = self._check_fields({"summary": fields.get("summary"), **fields})
        if (fields.get("project") or {}).get("key") != self.creds.jira_project:
            errors["project"] = "valid project is required"
        if (fields.get("issuetype") or {}).get("name") not in self.ISSUE_TYPES:
            errors["issuetype"] = "valid issue type is required"
        if errors:
            return _errors(400, [], errors)
        number = len(self.issues) + 1
        key = f"{self.creds.jira_project}-{number}"
        issue = {"id": str(10000 + number), "key": key,
                 "self": f"{self.base_url}/rest/api/{self._version}/issue/{10000 + number}",
                 "fields": {"summary": fields["summary"], "description": fields.get("description"),
                            "labels": list(dict.fromkeys(fields.get("labels") or [])), "status": "To Do",
                            "issuetype": fields["issuetype"]["name"],
                            "priority": (fields.get("priority") or {}).get("name", "Medium"),
                            "resolution": None, "resolutiondate": None,
                            "components": [{"name": c["name"]} for c in fields.get("components") or []]}}
        self.issues[key] = issue
        self.comments[key] = []
        self._touch(key)
        return Response.json({"id": issue["id"], "key": key, "self": issue["self"]}, 201)

    def _edit(self, key: str, request: Request) -> Response:
        payload = request.json() or {}
        fields = dict(payload.get("fields") or {})
        if errors := self._check_fields(fields):
            return _errors(400, [], errors)
        issue = self.issues[key]
        for name in ("summary", "description"):
            if name in fields:
                issue["fields"][name] = fields[name]
        if "priority" in fields:
            issue["fields"]["priority"] = fields["priority"]["name"]
        for change in (payload.get("update") or {}).get("labels", []):
            if " " in str(change.get("add", "")):
                return _errors(400, [], {"labels": "The label contains spaces which is invalid."})
            if change.get("add") and change["add"] not in issue["fields"]["labels"]:
                issue["fields"]["labels"].append(change["add"])
            if change.get("remove") in issue["fields"]["labels"]:
                issue["fields"]["labels"].remove(change["remove"])
        self._touch(key)
        return Response(204)

    def _comment(self, key: str, request: Request) -> Response:
        body = (request.json() or {}).get("body")
        if (problem := self._body_problem(body)) is not None:
            return _errors(400, [], {"comment": problem})
        comment = {"id": str(20000 + sum(len(c) for c in self.comments.values()) + 1), "body": body,
                   "created": now().isoformat(), "author": {"displayName": "triage-bot"}}
        self.comments[key].append(comment)
        self._touch(key)
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

    def _transition(self, key: str, request: Request) -> Response:
        payload = request.json() or {}
        wanted = str((payload.get("transition") or {}).get("id"))
        match = next((t for t in self._transitions(key) if t["id"] == wanted), None)
        if match is None:
            return _errors(400, [f"Transition id '{wanted}' is not valid for this issue."])
        for change in (payload.get("update") or {}).get("comment", []):
            body = (change.get("add") or {}).get("body")
            if (problem := self._body_problem(body)) is not None:
                return _errors(400, [], {"comment": problem})
            self.comments[key].append({"id": "t", "body": body, "created": now().isoformat()})
        self.issues[key]["fields"]["status"] = match["to"]["name"]
        # Jira's default workflow sets the resolution when an issue enters Done and clears it when it leaves.
        resolution = {"name": "Done"} if match["to"]["name"] == "Done" else None
        self._resolve(key, resolution, "triage-bot")
        self._touch(key)
        return Response(204)

    def _resolve(self, key: str, resolution: dict[str, str] | None, author: str) -> None:
        fields = self.issues[key]["fields"]
        if fields.get("resolution") == resolution:
            return
        self.histories.setdefault(key, []).append({
            "id": str(30000 + sum(len(h) for h in self.histories.values()) + 1),
            "author": {"displayName": author}, "created": now().isoformat(),
            "items": [{"field": "resolution", "fieldtype": "jira",
                       "fromString": (fields.get("resolution") or {}).get("name"),
                       "toString": (resolution or {}).get("name")}]})
        fields["resolution"] = resolution
        fields["resolutiondate"] = now().isoformat() if resolution else None

    def _changelog(self, key: str) -> dict[str, Any]:
        values = self.histories.get(key, [])
        return {"startAt": 0, "maxResults": 100, "total": len(values), "isLast": True, "values": values}

    def views(self) -> list[TicketView]:
        return [TicketView(
            ref=i["key"], title=i["fields"]["summary"], body=_text(i["fields"]["description"]),
            is_open=i["fields"]["status"] != "Done", markers=tuple(i["fields"]["labels"]),
            high_priority=i["fields"]["priority"] in ("High", "Highest"),
            comments=tuple(_text(c["body"]) for c in self.comments[i["key"]]), raw=self._public(i),
        ) for i in sorted(self.issues.values(), key=lambda i: int(i["id"]))]

    def set_state(self, ref: str, state: str) -> None:
        self.issues[ref]["fields"]["status"] = state
        self._touch(ref)

    def close_by_person(self, ref: str, person: str, reason: str, state: str | None = None) -> None:
        """Resolve an issue as a person does: into Done with a resolution ("Won't Do", "Duplicate", ...), which
        the issue's `resolution` field and its changelog (author, `resolution` item) show.
        https://developer.atlassian.com/cloud/jira/platform/rest/v3/api-group-issues/#api-rest-api-3-issue-issueidorkey-changelog-get"""
        self.issues[ref]["fields"]["status"] = state or "Done"
        self._resolve(ref, {"name": reason}, person)
        self._touch(ref)
