"""Azure DevOps Boards (REST 7.1): WIQL, work items batch read, JSON Patch create/update, comments. A bad PAT
gets 203 and a sign-in page unless the client sends `X-TFS-FedAuthRedirect: Suppress`, as Azure DevOps does.

Entra ID: a bearer token for the Azure DevOps resource (audience 499b84ac-1321-427f-aa17-267ca6975798, scope
`499b84ac-1321-427f-aa17-267ca6975798/.default`) from the stand-in's token issuer (`localazure.JwtCredential`) is
accepted while it has not expired; a token for any other audience is refused with 401, as Azure DevOps does.
`members` (None: anyone) narrows it to the service principals added to the organization.
https://learn.microsoft.com/azure/devops/integrate/get-started/authentication/service-principal-managed-identity

Area and iteration paths must name a node of the project's classification trees (`add_area_path`,
`add_iteration_path`), else 400 TF401347 "Invalid tree name".
https://learn.microsoft.com/azure/devops/organizations/settings/set-area-paths
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from localazure.credentials import bearer_claims
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

ADO_RESOURCE = "499b84ac-1321-427f-aa17-267ca6975798"  # the Azure DevOps application id: its tokens' audience
_SIGN_IN_PAGE = b"<!DOCTYPE html><html><head><title>Azure DevOps Services | Sign In</title></head></html>"


def _split_tags(raw: Any) -> list[str]:
    return [t.strip() for t in str(raw or "").split(";") if t.strip()]


def _vss(message: str, type_key: str) -> dict[str, Any]:
    return {"$id": "1", "innerException": None, "message": message, "typeName": f"{type_key}, Microsoft.VSS",
            "typeKey": type_key, "errorCode": 0, "eventId": 3000}


def _vss_error(status: int, message: str, type_key: str) -> Response:
    return Response.json(_vss(message, type_key), status)


def _rule_error(detail: str) -> Response:
    return _vss_error(400, f"TF401320: Rule Error for field {detail}", "RuleValidationException")


class AzureDevOpsStandIn(TrackerService):
    name = "azuredevops"
    TYPES = {"Issue": ("Active", {"Active", "Closed"}), "Task": ("New", {"New", "Active", "Closed", "Removed"})}

    def __init__(self, creds: TrackerCredentials):
        super().__init__(creds)
        self.items: dict[int, dict[str, Any]] = {}
        self.comments: dict[int, list[dict[str, Any]]] = {}
        self._seq = 0
        self._last_id = 0
        self.members: set[str] | None = None  # object ids of the service principals in the organization
        self.area_paths = {creds.ado_project}
        self.iteration_paths = {creds.ado_project}
        self.entra_callers: list[str] = []  # oid of each request authenticated with an Entra token

    def add_area_path(self, path: str) -> None:
        self.area_paths.add(path)

    def add_iteration_path(self, path: str) -> None:
        self.iteration_paths.add(path)

    def _entra_ok(self, header: str) -> bool:
        claims = bearer_claims(header)
        if claims is None:
            return False
        audience = str(claims.get("aud", "")).removeprefix("api://").rstrip("/")
        oid = str(claims.get("oid", "")).lower()
        if audience != ADO_RESOURCE or float(claims.get("exp", 0)) <= now().timestamp():
            return False
        if self.members is not None and oid not in {m.lower() for m in self.members}:
            return False
        self.entra_callers.append(oid)
        return True

    def authenticate(self, request: Request) -> Response | None:
        basic = basic_credentials(request)
        if basic is not None and basic[1] == self.creds.ado_pat:  # Azure DevOps ignores the user name of a PAT
            return None
        header = request.headers.get("authorization", "")
        if basic is None and header == f"Bearer {self.creds.ado_pat}":
            return None
        if basic is None and self._entra_ok(header):
            return None
        if request.headers.get("x-tfs-fedauthredirect", "").lower() != "suppress":
            return Response(203, _SIGN_IN_PAGE, {"Content-Type": "text/html; charset=utf-8"})
        return _vss_error(401, "TF400813: The user '' is not authorized to access this resource.",
                          "UnauthorizedRequestException")

    def fault_body(self, status: int) -> Any:
        if status == 429:
            return _vss("TF400733: The request has been canceled: Request was blocked due to exceeding usage "
                        "of resource 'WorkItemTracking' in namespace 'User'.", "RequestBlockedException")
        return _vss("TF246017: Azure DevOps Services is temporarily unavailable.", "ServiceUnavailable")

    def dispatch(self, request: Request) -> TrackerRoute:
        prefix = f"/{self.creds.ado_org}/{self.creds.ado_project}/_apis/wit/"
        if not request.path.lower().startswith(prefix.lower()):
            return read("project.notFound", lambda r: _vss_error(404, "TF200016: The following project does not "
                                                                 "exist.", "ProjectDoesNotExistException"))
        if not request.param("api-version"):
            return read("apiVersion.missing", lambda r: _vss_error(400, "No api-version was supplied for the "
                                                                   "request.", "VssVersionNotSpecifiedException"))
        rest, method = request.path[len(prefix):], request.method
        if rest.lower() == "wiql" and method == "POST":
            return read("wiql.query", self._wiql)  # looked up per call: tests stand in a stale query index
        if rest.lower() == "workitems" and method == "GET":
            return read("workItems.batch", self._batch)
        if match := re.fullmatch(r"workitems/\$(.+)", rest, re.IGNORECASE):
            work_item_type = match[1]
            if method == "POST":
                return write("workItems.create", lambda r: self._create(r, work_item_type))
        elif match := re.fullmatch(r"workitems/(\d+)(/comments)?", rest, re.IGNORECASE):
            item_id = int(match[1])
            if match[2] and method == "POST":
                return write("comments.create", self._existing(item_id, self._add_comment_call))
            if match[2]:
                return read("comments.list", self._existing(item_id, self._list_comments))
            if method == "PATCH":
                return write("workItems.update", self._existing(item_id, self._update))
            if method == "GET":
                return read("workItems.get", self._existing(item_id, lambda i, _: Response.json(self.items[i])))
            return read("notFound", self._existing(item_id, lambda i, _: self._not_found(0)))
        return read("notFound", lambda r: self._not_found(0))

    def _existing(self, item_id: int, handler: Callable[[int, Request], Response]) -> TrackerHandler:
        return existing(self.items, item_id, handler, lambda: self._not_found(item_id))

    @staticmethod
    def _not_found(item_id: int) -> Response:
        return _vss_error(404, f"TF401232: Work item {item_id} does not exist, or you do not have permissions to "
                          "read it.", "WorkItemUnauthorizedAccessException")

    def _wiql(self, request: Request) -> Response:
        query = (request.json() or {}).get("query", "")
        tag = re.search(r"\[System\.Tags\]\s+CONTAINS\s+'([^']*)'", query, re.IGNORECASE)
        items = [i for i in self.items.values()
                 if tag is None or tag[1].lower() in {t.lower() for t in _split_tags(i["fields"].get("System.Tags"))}]
        if re.search(r"ORDER BY \[System\.ChangedDate\] DESC", query, re.IGNORECASE):
            items.sort(key=lambda i: i["_seq"], reverse=True)
        top = int(request.param("$top", "20000"))
        return Response.json({
            "queryType": "flat", "queryResultType": "workItem", "asOf": now().isoformat(),
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
            return _vss_error(400, "You must pass a valid patch document in the body of the request.",
                              "VssPropertyValidationException")
        fields = item["fields"]
        state_before = fields.get("System.State")
        for op in ops:
            path = str(op.get("path", ""))
            if op.get("op") == "test" and path == "/rev":
                if op.get("value") != item["rev"]:
                    return _vss_error(412, "TF26071: This work item has been changed by someone else since you "
                                      "opened it.", "WorkItemRevisionMismatchException")
                continue
            if op.get("op") not in ("add", "replace", "remove") or not path.startswith("/fields/"):
                return _vss_error(400, f"Invalid patch operation {op!r}", "InvalidPatchException")
            name = path[len("/fields/"):]
            if op["op"] == "remove":
                fields.pop(name, None)
            elif name == "System.History":
                self._add_comment(item["id"], str(op.get("value", "")))
            else:
                fields[name] = op.get("value")
        if fields.get("System.State") != state_before and not any(
                str(op.get("path")) == "/fields/System.Reason" for op in ops):
            # A state change takes the transition's default reason (the last one's is no longer true).
            fields["System.Reason"] = f"Moved to state {fields.get('System.State')}"
            fields.pop("Microsoft.VSTS.Common.ClosedBy", None)
        _, states = self.TYPES[work_item_type]
        if fields.get("System.State") not in states:
            return _rule_error(f"State. Error code: LimitedToValues. The value {fields.get('System.State')!r} is "
                               "not in the list of supported values.")
        if not fields.get("System.Title"):
            return _rule_error("Title. Error code: Required, InvalidEmpty.")
        if len(str(fields["System.Title"])) > 255:
            return _rule_error("Title. Error code: MaxLength.")
        if fields.get("Microsoft.VSTS.Common.Priority") not in (None, 1, 2, 3, 4):
            return _rule_error("Priority. Error code: LimitedToValues.")
        for name, known in (("System.AreaPath", self.area_paths), ("System.IterationPath", self.iteration_paths)):
            if str(fields.get(name, "")).lower() not in {k.lower() for k in known}:
                return _vss_error(400, f"TF401347: Invalid tree name given for work item {item.get('id', -1)}, "
                                  f"field '{name}'.", "WorkItemFieldInvalidTreeNameException")
        return None

    @staticmethod
    def _content_type_refused(request: Request) -> Response | None:
        if request.headers.get("content-type", "").split(";")[0].strip() != "application/json-patch+json":
            return _vss_error(415, "The request indicated a Content-Type which is not supported. Valid content "
                              "types for this method are: application/json-patch+json.",
                              "VssRequestContentTypeNotSupportedException")
        return None

    def _create(self, request: Request, work_item_type: str) -> Response:
        if (refused := self._content_type_refused(request)) is not None:
            return refused
        project = self.creds.ado_project
        if work_item_type not in self.TYPES:
            return _vss_error(404, f"VS402323: Work item type {work_item_type} does not exist in project "
                              f"{project} or you do not have permission to access it.",
                              "WorkItemTypeNotFoundException")
        self._last_id += 1  # ids are never reused, even after a delete
        item_id = self._last_id
        created = now().isoformat()
        item = {"id": item_id, "rev": 1, "fields": {
            "System.TeamProject": project, "System.AreaPath": project, "System.IterationPath": project,
            "System.WorkItemType": work_item_type, "System.State": self.TYPES[work_item_type][0],
            "System.Reason": "New", "System.CreatedDate": created, "System.ChangedDate": created,
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

    def _update(self, item_id: int, request: Request) -> Response:
        if (refused := self._content_type_refused(request)) is not None:
            return refused
        item = self.items[item_id]
        before = json.loads(json.dumps(self._public(item)))
        before_comments = list(self.comments[item_id])
        if (invalid := self._apply(item, request.json(), item["fields"]["System.WorkItemType"])) is not None:
            item.update(before)
            self.comments[item_id] = before_comments
            return invalid
        item["rev"] += 1
        item["fields"]["System.ChangedDate"] = now().isoformat()
        self._seq += 1
        item["_seq"] = self._seq
        return Response.json(self._public(item))

    def _add_comment(self, item_id: int, text: str) -> dict[str, Any]:
        comment = {"workItemId": item_id, "id": sum(len(c) for c in self.comments.values()) + 1, "version": 1,
                   "text": text, "createdDate": now().isoformat()}
        self.comments[item_id].append(comment)
        return comment

    def _add_comment_call(self, item_id: int, request: Request) -> Response:
        text = (request.json() or {}).get("text")
        if not text:
            return _vss_error(400, "The comment text is required.", "ArgumentNullException")
        return Response.json(self._add_comment(item_id, str(text)))

    def _list_comments(self, item_id: int, request: Request) -> Response:
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

    def close_by_person(self, ref: str, person: str, reason: str, state: str | None = None) -> None:
        """Close (or remove) a work item as a person does on the board: the state, its reason
        (`System.Reason`), who closed it (`Microsoft.VSTS.Common.ClosedBy`, an identity) and when the state changed.
        https://learn.microsoft.com/azure/devops/boards/work-items/guidance/work-item-field"""
        fields = self.items[int(ref)]["fields"]
        fields.update({"System.State": state or "Closed", "System.Reason": reason,
                       "Microsoft.VSTS.Common.ClosedBy": {"displayName": person,
                                                          "uniqueName": f"{person}@contoso.example"},
                       "Microsoft.VSTS.Common.StateChangeDate": now().isoformat()})
        self.items[int(ref)]["rev"] += 1
        self._seq += 1
        self.items[int(ref)]["_seq"] = self._seq
