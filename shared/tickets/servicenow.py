"""ServiceNow incidents (Table API): one incident per fingerprint, found by `correlation_id` = the marker.

Text is plain (markup/plain.py); comments go to `work_notes` in the same PATCH as the update. A Resolved (6)
incident is put back In Progress (2) when the problem recurs; Closed (7) and Canceled (8) incidents are
read-only for integration users, so a recurrence opens a new incident that names the old one.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable, Mapping
from typing import Any

from shared.core.ticket_model import TicketDecision
from shared.tickets.base import TicketContent, TicketError, TicketRef
from shared.tickets.decision import declined_comment, matches
from shared.tickets.document import Paragraph, Text, comment_document, ticket_document, ticket_title
from shared.tickets.http import HttpOptions, HttpResult, TrackerClient, basic_auth, secret_forms
from shared.tickets.marker import MANAGED_LABEL, PROBE_MARKER, marker_for
from shared.tickets.markup.plain import render_plain
from shared.tickets.routing import SinkRouting

log = logging.getLogger("triage.tickets")
TABLE = "/api/now/table/incident"
GROUPS = "/api/now/table/sys_user_group"
_SYS_ID = re.compile(r"[0-9a-f]{32}")
TITLE_LIMIT = 160  # short_description
DESCRIPTION_LIMIT = 4000  # the default max length of incident.description
IN_PROGRESS, RESOLVED, CLOSED, CANCELED = "2", "6", "7", "8"
_FIELDS = "sys_id,number,state,urgency,impact,correlation_id"
# How a person closed an incident: the close code and who resolved or closed it (dot-walked to the user name).
_DECISION_FIELDS = "close_code,resolved_by.user_name,closed_by.user_name,resolved_at,closed_at"
# The out-of-box incident close codes that decline rather than solve (Utah and later, then the older list):
# https://www.servicenow.com/community/incident-management-forum/need-closure-code-definitions-amp-best-practices/m-p/2594757
DEFAULT_DECLINED_CLOSE_CODES = ("Duplicate", "No resolution provided", "Not Solved (Not Reproducible)",
                                "Not Solved (Too Costly)")


def incident_description(content: TicketContent, predecessor: str | None = None) -> str:
    blocks = ticket_document(content, marker_for(content.fingerprint))
    if predecessor:
        blocks = (Paragraph((Text(f"Recurrence of {predecessor}, which is closed."),)), *blocks)
    text = render_plain(blocks)
    if len(text) > DESCRIPTION_LIMIT:  # the server would cut it silently; cut it visibly instead
        text = text[: DESCRIPTION_LIMIT - 40] + "\n… [description truncated]\n"
    return text


class ServiceNowSink:
    name = "servicenow"

    def __init__(
        self,
        *,
        instance_url: str,
        user: str = "",
        password: str = "",
        options: HttpOptions,
        assignment_group: str | None = None,
        close_code: str = "Solution provided",
        declined_close_codes: tuple[str, ...] = DEFAULT_DECLINED_CLOSE_CODES,
        auth: str = "basic",
        client_id: str = "",
        client_secret: str = "",
        routing: SinkRouting | None = None,
        clock: Callable[[], float] = time.monotonic,
    ):
        self._instance = instance_url.rstrip("/")
        # The incident's routing fields on create: TRIAGE_SERVICENOW_ASSIGNMENT_GROUP / _CATEGORY and owner routes.
        self._routing = routing or SinkRouting(defaults={"assignment_group": assignment_group} if assignment_group
                                               else {})
        self._close_code = close_code
        self._declined_codes = declined_close_codes
        self._group_ids: dict[str, str] = {}  # assignment group name -> sys_id, as looked up
        self._token = None
        if auth == "oauth":
            from shared.tickets.oauth import ClientCredentialsToken

            hint = "TRIAGE_SERVICENOW_CLIENT_ID / TRIAGE_SERVICENOW_CLIENT_SECRET"
            self._token = ClientCredentialsToken(instance_url=self._instance, client_id=client_id,
                                                 client_secret=client_secret, options=options,
                                                 credential_hint=hint, clock=clock)
            authorization: Callable[[], str] = self._token.header
            secrets = secret_forms(client_secret)
        else:
            header = basic_auth(user, password)
            hint = "TRIAGE_SERVICENOW_USER / TRIAGE_SERVICENOW_PASSWORD"
            authorization = lambda: header  # noqa: E731
            secrets = secret_forms(password, headers=[header])
        self._http = TrackerClient(
            sink=self.name, base_url=self._instance, options=options, secrets=secrets,
            credential_hint=hint, authorization=authorization,
        )

    def use_token_clock(self, clock: Callable[[], float]) -> None:
        """The monotonic clock the OAuth token cache judges expiry by (tests move it)."""
        if self._token is not None:
            self._token.use_clock(clock)

    def _request(self, method: str, path: str, *, idempotent: bool, params: Mapping[str, Any] | None = None,
                 json: Any = None) -> HttpResult:
        """One Table API call. With OAuth, a 401 drops the token and the call is made once more with a new one
        (a token revoked or expired early); a second 401 is the credentials' fault."""
        if self._token is None:
            return self._http.request(method, path, params=params, json=json, idempotent=idempotent)
        return self._http.request_refreshing(method, path, refresh=self._token.invalidate, params=params, json=json,
                                             idempotent=idempotent)

    def _find(self, marker: str) -> dict[str, Any] | None:
        result = self._request("GET", TABLE, idempotent=True, params={
            "sysparm_query": f"correlation_id={marker}^ORDERBYDESCsys_updated_on",
            "sysparm_fields": f"{_FIELDS},{_DECISION_FIELDS}", "sysparm_limit": 20,
            "sysparm_exclude_reference_link": "true",
        }).json() or {}
        records = result.get("result", [])
        for record in records:
            if str(record.get("state")) not in (RESOLVED, CLOSED, CANCELED):
                return record
        return records[0] if records else None


    def _group_id(self, group: str) -> str | None:
        """The sys_id of an assignment group given by sys_id or name. The Table API stores a reference field's value
        as given (a name would be a broken reference), so a name is looked up in sys_user_group first:
        https://support.servicenow.com/kb?id=kb_article_view&sysparm_article=KB0534905
        An unknown name leaves the incident unassigned (a warning), rather than not opening it."""
        if _SYS_ID.fullmatch(group):
            return group
        if group in self._group_ids:
            return self._group_ids[group]
        found = None
        if "^" not in group:  # the encoded query's separator: no group name of ours holds one
            result = self._request("GET", GROUPS, idempotent=True, params={
                "sysparm_query": f"name={group}", "sysparm_fields": "sys_id", "sysparm_limit": 1}).json() or {}
            records = result.get("result") or []
            found = str(records[0].get("sys_id") or "") or None if records else None
        if found is None:
            log.warning("servicenow sink: no assignment group named %r; the incident is left unassigned", group)
        else:
            self._group_ids[group] = found  # names found are kept; a missing one is looked up again next time
        return found

    def probe(self) -> str:
        """A read-only look-up (the self-check): raises TicketError/TicketAuthError as a ticket operation would."""
        self._find(PROBE_MARKER)
        group = self._routing.defaults.get("assignment_group")
        if group and self._group_id(str(group)) is None:
            raise TicketError(f"servicenow sink: no assignment group {group!r} (TRIAGE_SERVICENOW_ASSIGNMENT_GROUP); "
                              "give its sys_id or its exact name")
        return f"incident table of {self._instance} readable"

    def open_or_update(self, content: TicketContent, *, comment: str | None = None) -> TicketRef:
        marker = marker_for(content.fingerprint)
        record = self._find(marker)
        notes = render_plain(comment_document(comment)) if comment else None
        state = str(record.get("state")) if record else None
        if record is not None and (decision := self._declined(record)) is not None:
            # Declined by a person: not reopened, no successor. A Resolved incident takes the work note; a Closed or
            # Canceled one is read-only for the integration user, so the decision is only recorded on our side.
            if comment and state == RESOLVED:
                self._request("PATCH", f"{TABLE}/{record['sys_id']}", idempotent=False,
                              params={"sysparm_fields": _FIELDS},
                              json={"work_notes": render_plain(comment_document(
                                  declined_comment(comment, decision)))})
            log.info("servicenow sink: %s was closed as %s; not reopened for %s", record.get("number"),
                     decision.how, content.incident_id)
            return self._ref(record, decision=decision)
        if record is None or state in (CLOSED, CANCELED):
            predecessor = record.get("number") if record else None
            level = "1" if content.escalated else "2"
            fields: dict[str, Any] = {
                "short_description": ticket_title(content, TITLE_LIMIT),
                "description": incident_description(content, predecessor),
                "correlation_id": marker, "correlation_display": MANAGED_LABEL,
                "urgency": level, "impact": level,
            }
            # Routing only on create: a person may re-route the incident, and a rewrite must not undo that.
            route = self._routing.for_owner(content.owner)
            if route.get("category"):
                fields["category"] = route["category"]
            if route.get("assignment_group") and (group := self._group_id(route["assignment_group"])):
                fields["assignment_group"] = group
            if notes:
                fields["work_notes"] = notes
            created = self._request("POST", TABLE, json=fields, idempotent=False,
                                    params={"sysparm_fields": _FIELDS}).json()["result"]
            ref = self._ref(created, created=True, reopened=predecessor is not None)
        else:
            reopened = state == RESOLVED
            fields = {"short_description": ticket_title(content, TITLE_LIMIT),
                      "description": incident_description(content)}
            if reopened:
                fields["state"] = IN_PROGRESS
            if content.escalated:
                fields.update(urgency="1", impact="1")
            if notes:
                fields["work_notes"] = notes
            updated = self._request("PATCH", f"{TABLE}/{record['sys_id']}", json=fields,
                                    params={"sysparm_fields": _FIELDS}, idempotent=not notes).json()["result"]
            ref = self._ref(updated, reopened=reopened)
        log.info("servicenow sink: %s %s for %s",
                 "created" if ref.created else "reopened" if ref.reopened else "updated", ref.ref,
                 content.incident_id)
        return ref

    def resolve(self, content: TicketContent, *, comment: str) -> TicketRef | None:
        marker = marker_for(content.fingerprint)
        record = self._find(marker)
        if record is None:
            return None
        if str(record.get("state")) in (RESOLVED, CLOSED, CANCELED):
            return self._ref(record)
        notes = render_plain(comment_document(comment))
        fields = {"state": RESOLVED, "close_code": self._close_code, "close_notes": notes, "work_notes": notes,
                  "description": incident_description(content)}
        resolved = self._request("PATCH", f"{TABLE}/{record['sys_id']}", json=fields,
                                 params={"sysparm_fields": _FIELDS}, idempotent=False).json()["result"]
        log.info("servicenow sink: resolved %s for %s", resolved.get("number"), content.incident_id)
        return self._ref(resolved)

    def _declined(self, record: dict[str, Any]) -> TicketDecision | None:
        """How a person declined the incident: canceled, or resolved/closed with a declining close code."""
        state, code = str(record.get("state")), str(record.get("close_code") or "")
        if state == CANCELED:
            how = f"Canceled ({code})" if code else "Canceled"
        elif state in (RESOLVED, CLOSED) and matches(code, self._declined_codes):
            how = code
        else:
            return None
        who = record.get("closed_by.user_name") or record.get("resolved_by.user_name")
        return TicketDecision(closed_by=str(who) if who else None, how=how, declined=True,
                              at=record.get("closed_at") or record.get("resolved_at") or None)

    def _ref(self, record: dict[str, Any], *, created: bool = False, reopened: bool = False,
             decision: TicketDecision | None = None) -> TicketRef:
        url = f"{self._instance}/nav_to.do?uri=incident.do%3Fsys_id%3D{record['sys_id']}"
        return TicketRef(self.name, str(record.get("number") or record["sys_id"]), url,
                         created=created, reopened=reopened, decision=decision)
