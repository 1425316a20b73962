"""GitHub Issues (REST v3): one issue per incident fingerprint, found by its marker label.

Look-up lists the repository's issues carrying the marker label (strongly consistent, unlike search). GitHub
silently drops labels on create when the token lacks push/triage access, so the body's first line also carries
the marker and a miss falls back to the search API on that line. Body: GitHub Markdown (markup/markdown.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from shared.core.ticket_model import TicketDecision
from shared.tickets.base import TicketAuthError, TicketContent, TicketRef
from shared.tickets.decision import declined_comment
from shared.tickets.document import comment_document, ticket_document, ticket_title
from shared.tickets.http import HttpOptions, HttpResult, TrackerClient, secret_forms, segment
from shared.tickets.marker import MANAGED_LABEL, PROBE_MARKER, marker_for
from shared.tickets.markup.markdown import render_markdown
from shared.tickets.routing import SinkRouting
from shared.tickets.sanitize import clean_line

log = logging.getLogger("triage.tickets")
PRIORITY_LABEL = "priority:high"
TITLE_LIMIT = 256
API_VERSION = "2022-11-28"
# `state_reason` values that mean a person declined the issue (GitHub's "Close as not planned" and "Close as
# duplicate"; "completed" and "reopened" do not): https://docs.github.com/rest/issues/issues#update-an-issue
DECLINED_STATE_REASONS = frozenset({"not_planned", "duplicate"})


def body_marker(marker: str) -> str:
    return f"<!-- {MANAGED_LABEL}:{marker} -->"


def issue_body(content: TicketContent) -> str:
    """The issue body: the marker line first (the search fallback trusts only that position), then Markdown."""
    marker = marker_for(content.fingerprint)
    return body_marker(marker) + "\n\n" + render_markdown(ticket_document(content, marker))


class GitHubIssuesSink:
    name = "github"

    def __init__(self, *, api_url: str, repo: str, token: str | Callable[[], str], options: HttpOptions,
                 credential_hint: str = "TRIAGE_GITHUB_TOKEN", assignees: tuple[str, ...] = (),
                 labels: tuple[str, ...] = (), routes: Mapping[str, Mapping[str, Any]] | None = None):
        if repo.count("/") != 1:
            raise ValueError("TRIAGE_GITHUB_REPO must be owner/name")
        owner, name = repo.split("/")
        self._repo = repo
        self._path = f"/repos/{segment(owner)}/{segment(name)}"
        self._hint = credential_hint
        self._assignees, self._labels = tuple(assignees), tuple(labels)
        # Owner routes (TRIAGE_TICKET_ROUTES, shared/tickets/routing.py): owner value -> assignees/labels on create.
        self._routes = SinkRouting(by_owner=routes or {})
        token_of: Callable[[], str] = token if callable(token) else (lambda: token)
        static = [token] if isinstance(token, str) else []
        self._token_of = token_of
        self._invalidate: Callable[[str], None] | None = getattr(token, "invalidate", None)
        self._sent: list[str] = []  # the token of the latest call, for `invalidate`
        self._http = TrackerClient(
            sink=self.name, base_url=api_url, options=options,
            secrets=secret_forms(*static, headers=[f"Bearer {t}" for t in static]),
            credential_hint=credential_hint, authorization=self._authorization,
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION},
        )
        observers = getattr(token, "observers", None)
        if isinstance(observers, list):
            observers.append(self._http.add_secrets)  # minted tokens are redacted before their first use

    def _authorization(self) -> str:
        token = self._token_of()
        self._sent[:] = [token]
        return f"Bearer {token}"

    def _request(self, method: str, path: str, *, idempotent: bool, allow: tuple[int, ...] = (),
                 **kwargs: Any) -> HttpResult:
        """One call; with refreshable tokens, a 401 drops the token and the call is made once more (GitHub did not
        act on a request it refused to authenticate, so this holds for creates too)."""
        if self._invalidate is None:
            return self._http.request(method, path, idempotent=idempotent, allow=allow, **kwargs)
        return self._http.request_refreshing(method, path, refresh=self._refused, idempotent=idempotent,
                                             allow=allow, **kwargs)

    def _refused(self) -> None:
        log.info("github sink: GitHub refused the cached installation token (401); minting another")
        if self._invalidate is not None:
            for token in self._sent:
                self._invalidate(token)

    # ---- look-up ----

    def _find(self, marker: str) -> dict[str, Any] | None:
        result = self._request(
            "GET", f"{self._path}/issues", idempotent=True, allow=(404,),
            params={"labels": marker, "state": "all", "sort": "updated", "direction": "desc", "per_page": 20},
        )
        if result.status == 404:
            raise TicketAuthError(f"github sink: repository {self._repo} not found or not visible to the token; "
                                  f"check TRIAGE_GITHUB_REPO and {self._hint}"
                                  + (" (the app's installation must include the repository)"
                                     if self._hint != "TRIAGE_GITHUB_TOKEN" else ""))
        issues = [i for i in result.json() or [] if "pull_request" not in i]
        if not issues:
            issues = self._search_body(marker)
        return _prefer_open(issues)

    def _search_body(self, marker: str) -> list[dict[str, Any]]:
        query = f'repo:{self._repo} is:issue in:body "{marker}"'
        result = self._request("GET", "/search/issues", idempotent=True,
                               params={"q": query, "sort": "updated", "order": "desc", "per_page": 20})
        items = (result.json() or {}).get("items", [])
        # Only our own first line counts: ticket text from logs could quote another incident's marker.
        return [i for i in items if (i.get("body") or "").startswith(body_marker(marker))]

    def probe(self) -> str:
        """A read-only look-up (the self-check): raises TicketError/TicketAuthError as a ticket operation would."""
        self._find(PROBE_MARKER)
        return f"repository {self._repo} readable"

    # ---- TicketSink ----

    def open_or_update(self, content: TicketContent, *, comment: str | None = None) -> TicketRef:
        marker = marker_for(content.fingerprint)
        issue = self._find(marker)
        body = issue_body(content)
        title = ticket_title(content, TITLE_LIMIT)
        if issue is None:
            labels = [MANAGED_LABEL, marker] + ([PRIORITY_LABEL] if content.escalated else [])
            route = self._routes.route_of(content.owner)
            labels += [label for label in route.get("labels", self._labels) if label not in labels]
            created = self._create({"title": title, "body": body, "labels": labels},
                                   tuple(route.get("assignees", self._assignees)))
            if marker not in _label_names(created):
                log.warning("github sink: labels were dropped on issue #%s (token lacks push/triage access); "
                            "look-ups fall back to search", created.get("number"))
            ref = self._ref(created, created=True)
        elif (decision := self._declined(issue)) is not None:
            # A person closed it as not planned: left closed, and the (throttled) comment says why.
            ref = self._ref(issue, decision=decision)
            if comment:
                self._comment(ref.ref, declined_comment(comment, decision))
            log.info("github sink: issue #%s was closed as %s; not reopened for %s", ref.ref, decision.how,
                     content.incident_id)
            return ref
        else:
            reopened = issue.get("state") == "closed"
            patch: dict[str, Any] = {"title": title, "body": body}
            if reopened:
                patch["state"] = "open"
            present = _label_names(issue)
            wanted = present | {MANAGED_LABEL, marker} | ({PRIORITY_LABEL} if content.escalated else set())
            if wanted != present:
                patch["labels"] = sorted(wanted)
            updated = self._request("PATCH", f"{self._path}/issues/{issue['number']}",
                                    idempotent=True, json=patch).json()
            ref = self._ref(updated, reopened=reopened)
        if comment:
            self._comment(ref.ref, comment)
        log.info("github sink: %s issue #%s for %s", _verb(ref), ref.ref, content.incident_id)
        return ref

    def resolve(self, content: TicketContent, *, comment: str) -> TicketRef | None:
        marker = marker_for(content.fingerprint)
        issue = self._find(marker)
        if issue is None:
            return None
        if issue.get("state") == "closed":
            return self._ref(issue)
        self._comment(str(issue["number"]), comment)
        closed = self._request(
            "PATCH", f"{self._path}/issues/{issue['number']}", idempotent=True,
            json={"state": "closed", "state_reason": "completed", "body": issue_body(content)},
        ).json()
        log.info("github sink: closed issue #%s for %s", issue["number"], content.incident_id)
        return self._ref(closed)

    def _declined(self, issue: dict[str, Any]) -> TicketDecision | None:
        """How a closed issue was declined, None when it is open or was closed as completed. The list answer may
        leave `closed_by` out; the issue's own answer has it."""
        if issue.get("state") != "closed" or issue.get("state_reason") not in DECLINED_STATE_REASONS:
            return None
        if "closed_by" not in issue:
            issue = self._request("GET", f"{self._path}/issues/{issue['number']}", idempotent=True).json()
        closer = issue.get("closed_by") or {}
        return TicketDecision(closed_by=str(closer["login"]) if closer.get("login") else None,
                              how=str(issue.get("state_reason")), declined=True, at=issue.get("closed_at"))

    def _create(self, fields: dict[str, Any], assignees: tuple[str, ...]) -> dict[str, Any]:
        """Create the issue with the routed assignees; without them when GitHub refuses one of them."""
        if not assignees:
            return self._request("POST", f"{self._path}/issues", idempotent=False, json=fields).json()
        result = self._request("POST", f"{self._path}/issues", idempotent=False, allow=(422,),
                               json={**fields, "assignees": list(assignees)})
        if result.status != 422:
            return result.json()
        errors = (result.json() or {}).get("errors") or []
        # GitHub names the login in `value`, or (newer answers) lists them in `message`.
        refused = [str(e.get("value") or e.get("message") or "?") for e in errors
                   if isinstance(e, dict) and e.get("field") == "assignees"]
        if not refused:
            raise self._http.error_for(result)
        log.warning("github sink: GitHub cannot assign %s on %s (not collaborators with access); the issue is "
                    "created unassigned: check TRIAGE_GITHUB_ASSIGNEES", ", ".join(clean_line(r, 120) for r in refused),
                    self._repo)
        return self._request("POST", f"{self._path}/issues", idempotent=False, json=fields).json()

    def _comment(self, number: str, text: str) -> None:
        self._request("POST", f"{self._path}/issues/{number}/comments", idempotent=False,
                      json={"body": render_markdown(comment_document(text))})

    def _ref(self, issue: dict[str, Any], *, created: bool = False, reopened: bool = False,
             decision: TicketDecision | None = None) -> TicketRef:
        return TicketRef(self.name, str(issue["number"]), issue.get("html_url"), created=created, reopened=reopened,
                         decision=decision)


def _label_names(issue: dict[str, Any]) -> set[str]:
    return {label["name"] if isinstance(label, dict) else str(label) for label in issue.get("labels") or []}


def _prefer_open(issues: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The open issue if there is one, else the most recently updated closed one (input is newest first)."""
    for issue in issues:
        if issue.get("state") == "open":
            return issue
    return issues[0] if issues else None


def _verb(ref: TicketRef) -> str:
    return "created" if ref.created else "reopened" if ref.reopened else "updated"
