"""Azure DevOps Boards work items (REST 7.1, JSON Patch): one work item per fingerprint, found by its marker tag.

Look-up is a WIQL query on the tag (closed items included, most recently changed first), then one batch read
of their states. Description and discussion are HTML (markup/html.py). Comments go in the same PATCH as the
update (`System.History`), so an update and its comment land together or not at all. States default to the
Agile "Issue" type (Active/Closed); pass others for Basic ("To Do"/"Done") or custom processes.

Auth: a PAT (TRIAGE_ADO_PAT), or the service's own Entra identity (TRIAGE_ADO_AUTH=entra: a token for the Azure
DevOps resource from the app's credential). Routing (TRIAGE_ADO_AREA_PATH, TRIAGE_ADO_ITERATION_PATH) is set on
create only, so a work item people moved stays where they put it.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Mapping
from typing import Any

from shared.core.ticket_model import TicketDecision
from shared.tickets.base import TicketContent, TicketRef
from shared.tickets.decision import declined_comment, matches
from shared.tickets.document import comment_document, ticket_document, ticket_title
from shared.tickets.http import HttpOptions, TrackerClient, basic_auth, secret_forms, segment
from shared.tickets.marker import MANAGED_LABEL, PROBE_MARKER, marker_for
from shared.tickets.markup.html import render_html
from shared.tickets.routing import SinkRouting

log = logging.getLogger("triage.tickets")
API = "7.1"
ADO_SCOPE = "499b84ac-1321-427f-aa17-267ca6975798/.default"  # the Azure DevOps resource, for Entra tokens
TITLE_LIMIT = 255
PRIORITY = "Microsoft.VSTS.Common.Priority"
DONE_STATES = frozenset({"closed", "done", "resolved", "removed", "completed"})
_PATCH = {"Content-Type": "application/json-patch+json"}
# How a person closed a work item: the state's reason, who closed it and when (the Removed state is a decision in
# every inherited process). https://learn.microsoft.com/azure/devops/boards/work-items/guidance/work-item-field
REASON, CLOSED_BY, STATE_CHANGED = "System.Reason", "Microsoft.VSTS.Common.ClosedBy", \
    "Microsoft.VSTS.Common.StateChangeDate"
REMOVED = "removed"
_FIELDS = f"System.Id,System.State,System.Tags,{PRIORITY},{REASON},{CLOSED_BY},{STATE_CHANGED}"
DEFAULT_DECLINED_REASONS = ("Cut", "Deferred", "Duplicate", "Obsolete", "Abandoned", "As Designed",
                            "Removed from the backlog")
_MARKER = re.compile(r"^triage-[0-9a-f]{12}$")


def work_item_description(content: TicketContent) -> str:
    return render_html(ticket_document(content, marker_for(content.fingerprint)))


class AzureDevOpsSink:
    name = "azuredevops"

    def __init__(
        self,
        *,
        org_url: str,
        project: str,
        options: HttpOptions,
        pat: str | None = None,
        credential: Any = None,  # an azure-core TokenCredential, instead of a PAT
        work_item_type: str = "Issue",
        active_state: str = "Active",
        closed_state: str = "Closed",
        declined_reasons: tuple[str, ...] = DEFAULT_DECLINED_REASONS,
        area_path: str = "",
        iteration_path: str = "",
        credential_hint: str = "",
        routes: Mapping[str, Mapping[str, Any]] | None = None,  # owner value -> area/iteration path on create
    ):
        if not pat and credential is None:
            raise ValueError("Azure DevOps sink needs TRIAGE_ADO_PAT or an Entra credential")
        self._org_url = org_url.rstrip("/")
        self._project = project
        self._path = "/" + segment(project) + "/_apis/wit"
        self._type = work_item_type
        self._active, self._closed = active_state, closed_state
        self._declined_reasons = declined_reasons
        self._area_path, self._iteration_path = area_path, iteration_path
        self._routes = SinkRouting(by_owner=routes or {})
        auth_policy = None
        if credential is not None and not pat:
            from azure.core.pipeline.policies import BearerTokenCredentialPolicy

            auth_policy = BearerTokenCredentialPolicy(credential, ADO_SCOPE)
        header = basic_auth("", pat) if pat else ""
        self._http = TrackerClient(
            sink=self.name, base_url=self._org_url, options=options,
            secrets=secret_forms(pat or "", headers=[header] if header else []),
            credential_hint=credential_hint or ("TRIAGE_ADO_PAT" if pat else
                                                "TRIAGE_ADO_AUTH=entra (the service's identity must be a member of "
                                                "the organization, with access to the project)"),
            authorization=(lambda: header) if pat else None,
            auth_policy=auth_policy,
            # Without this a bad PAT gets 203 and an HTML sign-in page instead of 401.
            headers={"X-TFS-FedAuthRedirect": "Suppress"},
        )

    def _find(self, marker: str) -> dict[str, Any] | None:
        if not _MARKER.match(marker):
            raise ValueError("unexpected marker format")
        # The marker is `triage-<hex>` (checked above), so it cannot break out of the WIQL string.
        wiql = ("SELECT [System.Id] FROM WorkItems WHERE [System.TeamProject] = @project "  # noqa: S608
                f"AND [System.Tags] CONTAINS '{marker}' ORDER BY [System.ChangedDate] DESC")
        found = self._http.request("POST", f"{self._path}/wiql", params={"api-version": API, "$top": 20},
                                   json={"query": wiql}, idempotent=True).json() or {}
        ids = [str(item["id"]) for item in found.get("workItems", [])]
        if not ids:
            return None
        items = self._http.request(
            "GET", f"{self._path}/workitems", idempotent=True,
            params={"ids": ",".join(ids), "fields": _FIELDS,
                    "errorPolicy": "omit", "api-version": API},  # a work item deleted since the query is null
        ).json() or {}
        by_id = {str(i["id"]): i for i in items.get("value", []) if i}
        ordered = [by_id[i] for i in ids if i in by_id]
        for item in ordered:
            if not self._is_done(item):
                return item
        return ordered[0] if ordered else None

    def _is_done(self, item: dict[str, Any]) -> bool:
        state = str(item.get("fields", {}).get("System.State", "")).lower()
        return state == self._closed.lower() or state in DONE_STATES

    def _declined(self, item: dict[str, Any]) -> TicketDecision | None:
        fields = item.get("fields", {})
        state, reason = str(fields.get("System.State") or ""), str(fields.get(REASON) or "")
        if not self._is_done(item) or not (state.lower() == REMOVED or matches(reason, self._declined_reasons)):
            return None
        closer = fields.get(CLOSED_BY)
        who = (closer.get("displayName") or closer.get("uniqueName")) if isinstance(closer, dict) else closer
        return TicketDecision(closed_by=str(who) if who else None, how=f"{state} ({reason})" if reason else state,
                              declined=True, at=fields.get(STATE_CHANGED))

    def probe(self) -> str:
        """A read-only look-up (the self-check): raises TicketError/TicketAuthError as a ticket operation would."""
        self._find(PROBE_MARKER)
        return f"project {self._project} readable"

    def open_or_update(self, content: TicketContent, *, comment: str | None = None) -> TicketRef:
        marker = marker_for(content.fingerprint)
        item = self._find(marker)
        ops = self._content_ops(content)
        if comment:
            ops.append(_op("System.History", render_html(comment_document(comment))))
        if item is None:
            ops += [_op("System.Tags", f"{MANAGED_LABEL}; {marker}"), _op(PRIORITY, 1 if content.escalated else 2)]
            route = self._routes.route_of(content.owner)
            ops += [_op(field, value) for field, value in (
                ("System.AreaPath", route.get("area_path", self._area_path)),
                ("System.IterationPath", route.get("iteration_path", self._iteration_path))) if value]
            created = self._http.request("POST", f"{self._path}/workitems/${segment(self._type)}",
                                         params={"api-version": API}, content=json.dumps(ops).encode(),
                                         headers=_PATCH, idempotent=False).json()
            ref = self._ref(created, created=True)
        elif (decision := self._declined(item)) is not None:
            # A person removed it or closed it with a declining reason: left closed; the comment says why.
            if comment:
                self._patch(item["id"], [_op("System.History", render_html(comment_document(
                    declined_comment(comment, decision))))], idempotent=False)
            log.info("azuredevops sink: work item %s was closed as %s; not reopened for %s", item["id"],
                     decision.how, content.incident_id)
            return self._ref(item, decision=decision)
        else:
            reopened = self._is_done(item)
            fields = item.get("fields", {})
            tags = _tags(fields.get("System.Tags"))
            if not {MANAGED_LABEL, marker} <= tags:
                ops.append(_op("System.Tags", "; ".join(sorted(tags | {MANAGED_LABEL, marker}))))
            if reopened:
                ops.append(_op("System.State", self._active))
            if content.escalated and fields.get(PRIORITY) != 1:
                ops.append(_op(PRIORITY, 1))
            updated = self._patch(item["id"], ops, idempotent=not comment)
            ref = self._ref(updated, reopened=reopened)
        log.info("azuredevops sink: %s work item %s for %s",
                 "created" if ref.created else "reopened" if ref.reopened else "updated", ref.ref,
                 content.incident_id)
        return ref

    def resolve(self, content: TicketContent, *, comment: str) -> TicketRef | None:
        marker = marker_for(content.fingerprint)
        item = self._find(marker)
        if item is None:
            return None
        if self._is_done(item):
            return self._ref(item)
        ops = self._content_ops(content) + [
            _op("System.State", self._closed),
            _op("System.History", render_html(comment_document(comment))),
        ]
        closed = self._patch(item["id"], ops, idempotent=False)
        log.info("azuredevops sink: closed work item %s for %s", item["id"], content.incident_id)
        return self._ref(closed)

    def _content_ops(self, content: TicketContent) -> list[dict[str, Any]]:
        return [
            _op("System.Title", ticket_title(content, TITLE_LIMIT)),
            _op("System.Description", work_item_description(content)),
        ]

    def _patch(self, item_id: Any, ops: list[dict[str, Any]], *, idempotent: bool) -> dict[str, Any]:
        return self._http.request("PATCH", f"{self._path}/workitems/{int(item_id)}", params={"api-version": API},
                                  content=json.dumps(ops).encode(), headers=_PATCH, idempotent=idempotent).json()

    def _ref(self, item: dict[str, Any], *, created: bool = False, reopened: bool = False,
             decision: TicketDecision | None = None) -> TicketRef:
        url = f"{self._org_url}/{segment(self._project)}/_workitems/edit/{item['id']}"
        return TicketRef(self.name, str(item["id"]), url, created=created, reopened=reopened, decision=decision)


def _op(field: str, value: Any) -> dict[str, Any]:
    return {"op": "add", "path": f"/fields/{field}", "value": value}


def _tags(raw: Any) -> set[str]:
    return {t.strip() for t in str(raw or "").split(";") if t.strip()}
