"""Jira issues: one issue per fingerprint, found by its label. Jira Cloud (REST v3, ADF) by default; Jira Data
Center / Server (TRIAGE_JIRA_DEPLOYMENT=datacenter: REST v2, wiki markup, a personal access token) too.

Why v3/ADF rather than v2/wiki markup: ADF is JSON, so text from logs can never become markup, a link or a
mention (markup/adf.py); the settings (user e-mail + API token) are Jira Cloud's anyway. Look-up uses the
enhanced JQL search (`/search/jql`, which replaced `/search` in 2025); Jira's index can lag a few seconds behind a
create, far less than one scan interval. Resolve and reopen are workflow transitions, picked by status category;
without a reopen transition a recurrence opens a new issue that names the old one.

Data Center has neither v3 nor ADF: it takes REST v2 (`/rest/api/2/issue`, `/rest/api/2/search`) with
descriptions and comments as wiki markup strings (markup/wiki.py escapes every construct), and authenticates a
personal access token as `Authorization: Bearer <PAT>` (Jira 8.14 and later; it does not accept Atlassian Cloud API
tokens): https://confluence.atlassian.com/enterprise/using-personal-access-tokens-1026032365.html and
https://developer.atlassian.com/server/jira/platform/rest/v10000/intro/ . Who resolved an issue comes from the
issue's `expand=changelog` there (Cloud has its own changelog resource).
"""

from __future__ import annotations

import logging
from typing import Any

from shared.core.ticket_model import TicketDecision
from shared.tickets.base import TicketContent, TicketError, TicketRef
from shared.tickets.decision import declined_comment, matches
from shared.tickets.document import Block, Paragraph, Text, comment_document, ticket_document, ticket_title
from shared.tickets.http import HttpOptions, TrackerClient, basic_auth, secret_forms, segment
from shared.tickets.marker import MANAGED_LABEL, PROBE_MARKER, marker_for
from shared.tickets.markup.adf import render_adf
from shared.tickets.markup.wiki import render_wiki
from shared.tickets.routing import SinkRouting

log = logging.getLogger("triage.tickets")
API = "/rest/api/3"
API_V2 = "/rest/api/2"  # Jira Data Center / Server
TITLE_LIMIT = 255
# Jira's text field limit (jira.text.field.character.limit, 32767 by default): a longer description is refused.
WIKI_LIMIT = 32767
DONE = "done"
# Jira's resolutions that decline rather than do (company-managed defaults, and the older "Won't Fix"), overridable:
# https://support.atlassian.com/jira-cloud-administration/docs/configure-resolutions/
DEFAULT_DECLINED_RESOLUTIONS = ("Won't Do", "Won't Fix", "Declined", "Duplicate")


def _jql_string(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _description_blocks(content: TicketContent, predecessor: str | None) -> tuple[Block, ...]:
    blocks: tuple[Block, ...] = ticket_document(content, marker_for(content.fingerprint))
    if predecessor:
        blocks = (Paragraph((Text(f"Recurrence of {predecessor}, which is closed and cannot be reopened."),)),
                  *blocks)
    return blocks


def issue_description(content: TicketContent, predecessor: str | None = None) -> dict[str, Any]:
    return render_adf(_description_blocks(content, predecessor))


def bounded_wiki(text: str, limit: int = WIKI_LIMIT) -> str:
    """Wiki markup within Jira's text field limit, cut visibly (never between a backslash and what it escapes)."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 40].rstrip("\\")
    return cut + "\n… [description truncated]\n"


def wiki_description(content: TicketContent, predecessor: str | None = None) -> str:
    return bounded_wiki(render_wiki(_description_blocks(content, predecessor)))


class JiraSink:
    name = "jira"

    def __init__(
        self,
        *,
        base_url: str,
        project: str,
        user: str = "",
        token: str,
        options: HttpOptions,
        issue_type: str = "Task",
        escalated_priority: str = "High",
        declined_resolutions: tuple[str, ...] = DEFAULT_DECLINED_RESOLUTIONS,
        deployment: str = "cloud",
        routing: SinkRouting | None = None,
    ):
        self._base = base_url.rstrip("/")
        self._project = project
        # Issue type, components and extra labels of new issues: TRIAGE_JIRA_* settings and owner routes.
        self._routing = routing or SinkRouting(defaults={"issue_type": issue_type})
        self._priority = escalated_priority
        self._declined = declined_resolutions
        self._datacenter = deployment == "datacenter"
        if self._datacenter:
            self._api = API_V2
            header = f"Bearer {token}"
            hint = "TRIAGE_JIRA_TOKEN (a Jira Data Center personal access token)"
        else:
            self._api = API
            header = basic_auth(user, token)
            hint = "TRIAGE_JIRA_USER / TRIAGE_JIRA_TOKEN"
        self._http = TrackerClient(
            sink=self.name, base_url=self._base, options=options, secrets=secret_forms(token, headers=[header]),
            credential_hint=hint, authorization=lambda: header,
        )

    def _body(self, blocks: tuple[Block, ...]) -> Any:
        """A comment body: ADF on Cloud, wiki markup on Data Center."""
        return bounded_wiki(render_wiki(blocks)) if self._datacenter else render_adf(blocks)

    def _find(self, marker: str) -> dict[str, Any] | None:
        jql = f"project = {_jql_string(self._project)} AND labels = {_jql_string(marker)} ORDER BY updated DESC"
        search = f"{API_V2}/search" if self._datacenter else f"{API}/search/jql"
        found = self._http.request("GET", search, idempotent=True, params={
            "jql": jql, "fields": "status,labels,priority,resolution,resolutiondate", "maxResults": 20,
        }).json() or {}
        issues = found.get("issues", [])
        for issue in issues:
            if _category(issue) != DONE:
                return issue
        return issues[0] if issues else None

    def probe(self) -> str:
        """A read-only look-up (the self-check): raises TicketError/TicketAuthError as a ticket operation would."""
        self._find(PROBE_MARKER)
        return f"project {self._project} readable"

    def open_or_update(self, content: TicketContent, *, comment: str | None = None) -> TicketRef:
        marker = marker_for(content.fingerprint)
        issue = self._find(marker)
        reopened = False
        predecessor = None
        if issue is not None and (decision := self._decision(issue)) is not None:
            # Resolved by a person as won't do: left done, no successor; the (throttled) comment says why.
            ref = self._ref(issue["key"], decision=decision)
            if comment:
                self._http.request("POST", f"{self._api}/issue/{segment(ref.ref)}/comment", idempotent=False,
                                   json={"body": self._body(comment_document(declined_comment(comment, decision)))})
            log.info("jira sink: %s was resolved as %s; not reopened for %s", ref.ref, decision.how,
                     content.incident_id)
            return ref
        if issue is not None and _category(issue) == DONE:
            transition = self._transition_to(issue["key"], reopen=True)
            if transition is None:
                predecessor, issue = issue["key"], None
            else:
                self._http.request("POST", f"{self._api}/issue/{segment(issue['key'])}/transitions", idempotent=False,
                                   json={"transition": {"id": transition}})
                reopened = True
        if issue is None:
            fields = self._fields(content, predecessor)
            # Routing only on create: a person may move the issue, and a rewrite must not undo that.
            route = self._routing.for_owner(content.owner)
            fields.update(project={"key": self._project}, issuetype={"name": route.get("issue_type") or "Task"},
                          labels=list(dict.fromkeys([MANAGED_LABEL, marker, *route.get("labels", ())])))
            if route.get("components"):
                fields["components"] = [{"name": name} for name in route["components"]]
            created = self._http.request("POST", f"{self._api}/issue", json={"fields": fields}, idempotent=False).json()
            ref = self._ref(created["key"], created=True, reopened=predecessor is not None)
        else:
            labels = set((issue.get("fields") or {}).get("labels") or [])
            update = {"labels": [{"add": label} for label in (MANAGED_LABEL, marker) if label not in labels]}
            body: dict[str, Any] = {"fields": self._fields(content)}
            if update["labels"]:
                body["update"] = update
            self._http.request("PUT", f"{self._api}/issue/{segment(issue['key'])}", json=body, idempotent=True)
            ref = self._ref(issue["key"], reopened=reopened)
        if comment:
            self._http.request("POST", f"{self._api}/issue/{segment(ref.ref)}/comment", idempotent=False,
                               json={"body": self._body(comment_document(comment))})
        log.info("jira sink: %s %s for %s",
                 "created" if ref.created else "reopened" if ref.reopened else "updated", ref.ref,
                 content.incident_id)
        return ref

    def resolve(self, content: TicketContent, *, comment: str) -> TicketRef | None:
        marker = marker_for(content.fingerprint)
        issue = self._find(marker)
        if issue is None:
            return None
        key = issue["key"]
        if _category(issue) == DONE:
            return self._ref(key)
        transition = self._transition_to(key, reopen=False)
        if transition is None:
            status = ((issue.get("fields") or {}).get("status") or {}).get("name", "?")
            raise TicketError(f"jira sink: no transition from status {status!r} to a done status on {key}; "
                              "check the project's workflow")
        self._http.request("PUT", f"{self._api}/issue/{segment(key)}", json={"fields": self._fields(content)},
                           idempotent=True)
        # The comment rides on the transition: both land or neither does.
        self._http.request("POST", f"{self._api}/issue/{segment(key)}/transitions", idempotent=False, json={
            "transition": {"id": transition},
            "update": {"comment": [{"add": {"body": self._body(comment_document(comment))}}]},
        })
        log.info("jira sink: resolved %s for %s", key, content.incident_id)
        return self._ref(key)

    def _fields(self, content: TicketContent, predecessor: str | None = None) -> dict[str, Any]:
        description = wiki_description(content, predecessor) if self._datacenter else issue_description(
            content, predecessor)
        fields: dict[str, Any] = {"summary": ticket_title(content, TITLE_LIMIT), "description": description}
        if content.escalated:
            fields["priority"] = {"name": self._priority}
        return fields

    def _transition_to(self, key: str, *, reopen: bool) -> str | None:
        """A transition into a done status (resolve) or out of one (reopen: prefer one named Reopen, then a
        'new' status, then 'in progress')."""
        found = self._http.request("GET", f"{self._api}/issue/{segment(key)}/transitions", idempotent=True).json() or {}
        transitions = found.get("transitions", [])
        if not reopen:
            return next((t["id"] for t in transitions if _target_category(t) == DONE), None)

        def rank(t: dict[str, Any]) -> int:
            name = str(t.get("name", "")).lower()
            return 0 if "reopen" in name else 1 if _target_category(t) == "new" else 2

        candidates = sorted((t for t in transitions if _target_category(t) != DONE), key=rank)
        return candidates[0]["id"] if candidates else None

    def _decision(self, issue: dict[str, Any]) -> TicketDecision | None:
        """A done issue whose resolution declines it, with who set that resolution (the issue's changelog says;
        the issue itself does not)."""
        fields = issue.get("fields") or {}
        resolution = str((fields.get("resolution") or {}).get("name") or "")
        if _category(issue) != DONE or not matches(resolution, self._declined):
            return None
        if self._datacenter:  # v2: the issue's changelog expansion (histories, oldest first)
            expanded = self._http.request("GET", f"{API_V2}/issue/{segment(issue['key'])}", idempotent=True,
                                          params={"expand": "changelog", "fields": "resolution"}).json() or {}
            histories = (expanded.get("changelog") or {}).get("histories") or []
        else:
            found = self._http.request("GET", f"{API}/issue/{segment(issue['key'])}/changelog", idempotent=True,
                                       params={"maxResults": 100}).json() or {}
            histories = found.get("values") or []
        who = None
        for history in histories:  # oldest first: the last resolution change wins
            if any(item.get("field") == "resolution" for item in history.get("items") or []):
                who = (history.get("author") or {}).get("displayName")
        return TicketDecision(closed_by=str(who) if who else None, how=resolution, declined=True,
                              at=fields.get("resolutiondate"))

    def _ref(self, key: str, *, created: bool = False, reopened: bool = False,
             decision: TicketDecision | None = None) -> TicketRef:
        return TicketRef(self.name, key, f"{self._base}/browse/{segment(key)}", created=created, reopened=reopened,
                         decision=decision)


def _category(issue: dict[str, Any]) -> str:
    status = (issue.get("fields") or {}).get("status") or {}
    return str((status.get("statusCategory") or {}).get("key", ""))


def _target_category(transition: dict[str, Any]) -> str:
    return str(((transition.get("to") or {}).get("statusCategory") or {}).get("key", ""))
