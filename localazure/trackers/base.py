"""What the tracker stand-ins share: their credentials, the tracker-neutral ticket view tests assert on, and the
base every tracker builds on to sit behind the stand-in's front door (`localazure.frontdoor.front`)."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Container
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from localazure.calls import READ, WRITE
from localazure.faults import Fault
from localazure.frontdoor import CallContext, RouteFn, fault_headers
from localazure.https import Request, Response

TRACKERS = ("github", "azuredevops", "servicenow", "jira", "webhook", "slack", "teams")

TrackerHandler = Callable[[Request], Response]
TrackerRoute = tuple[str, str, TrackerHandler]  # (route name, read|write, handler)


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
    slack_bot_token: str = "xoxb-0000000001-0000000001-StandInSlackBotToken01"
    slack_channel: str = "C0TRIAGE01"
    slack_webhook_path: str = "T0STANDIN/B0STANDIN/StandInSlackWebhook0001"  # after /services/
    # A GitHub App (its public key is registered by a test or scenario: `app("github").register_app(...)`).
    github_app_id: int = 424242
    github_app_client_id: str = "Iv23liStandInApp0001"
    github_installation_id: int = 51515151
    teams_sig: str = "standin-teams-sig-0001"  # the Workflows webhook URL's `sig` (its credential)

    # ServiceNow OAuth client credentials (registered with the stand-in at start) and a Jira Data Center PAT.
    servicenow_client_id: str = "standin-servicenow-client-0001"
    servicenow_client_secret: str = "standin-servicenow-client-secret-0001"
    jira_pat: str = "standin-jira-dc-pat-0001"

    def secrets(self) -> tuple[str, ...]:
        return (self.github_token, self.ado_pat, self.servicenow_password, self.jira_token, self.webhook_secret,
                self.slack_bot_token, self.slack_webhook_path, self.teams_sig, self.servicenow_client_secret,
                self.jira_pat)


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


def read(name: str, handler: TrackerHandler) -> TrackerRoute:
    return name, READ, handler


def write(name: str, handler: TrackerHandler) -> TrackerRoute:
    return name, WRITE, handler


def existing(store: Container[Any], key: Any, handler: Callable[[Any, Request], Response],
             missing: Callable[[], Response]) -> TrackerHandler:
    """`handler(key, request)` when `key` is in `store` as the call is served (under the tracker's lock), else
    the tracker's not-found answer."""
    return lambda request: handler(key, request) if key in store else missing()


def now() -> datetime:
    return datetime.now(UTC)


def basic_credentials(request: Request) -> tuple[str, str] | None:
    """(user, secret) of an `Authorization: Basic` header, None without a readable one."""
    auth = request.headers.get("authorization", "")
    if not auth.startswith("Basic "):
        return None
    try:
        user, _, secret = base64.b64decode(auth[6:]).decode("utf-8").partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, secret


class TrackerService:
    """One tracker as a front-door `Service`. Subclasses name the route and pick its handler in `dispatch`
    (shape and method only), check credentials in `authenticate`, and shape injected faults in `fault_body`.
    Handlers run under the tracker's lock, as do the views the launcher reads."""

    name = ""
    retry_after_statuses: tuple[int, ...] = (429, 503)  # the statuses this tracker sends Retry-After with

    def __init__(self, creds: TrackerCredentials):
        self.creds = creds
        self.lock = threading.RLock()
        self.base_url = ""  # https://127.0.0.1:P, set by the launcher once the server has its port

    def route(self, request: Request) -> tuple[str, str, RouteFn]:
        name, kind, handler = self.dispatch(request)

        def locked(req: Request, _ctx: CallContext) -> Response:
            with self.lock:
                return handler(req)

        return name, kind, locked

    def dispatch(self, request: Request) -> TrackerRoute:
        raise NotImplementedError

    def authenticate(self, request: Request) -> Response | None:
        raise NotImplementedError

    def fault_body(self, status: int) -> Any:
        return {"message": "Service Unavailable" if status >= 500 else "Too Many Requests"}

    def fault_response(self, fault: Fault) -> Response:
        status = fault.status or 500
        return Response.json(self.fault_body(status), status, fault_headers(fault, self.retry_after_statuses))

    def views(self) -> list[TicketView]:
        raise NotImplementedError

    def set_state(self, ref: str, state: str) -> None:
        raise NotImplementedError

    def close_by_person(self, ref: str, person: str, reason: str, state: str | None = None) -> None:
        """Close a ticket as `person` would, with the tracker's own reason field set to `reason`."""
        raise NotImplementedError
