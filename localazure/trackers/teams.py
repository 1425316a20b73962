"""A Teams Workflows webhook ("Post to a channel when a webhook request is received"), as the Teams sink sees it.

What it reproduces:

- The URL is a Logic Apps shared access URL: `.../workflows/<id>/triggers/manual/paths/invoke?api-version=...
  &sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=<signature>`. Without `sp`, `sv` and `sig` the answer is 401
  AuthorizationFailed "Required parameters for shared access URL are permissions ('sp'), version ('sv'), and
  signature ('sig')." (https://github.com/Azure/logicapps/issues/169); a wrong signature is 401 AuthorizationFailed
  too (https://github.com/Azure/LogicAppsUX/issues/2937; the exact message is not documented).
- A signed POST answers 202 Accepted with an empty body as soon as the flow is triggered
  (https://github.com/atc0005/go-teams-notify/pull/265): the card is posted afterwards, so a card Teams refuses
  does not change the answer; it fails the flow run ("The specified Teams flowbot adaptive card request is missing
  or invalid", https://github.com/ffind-dev/pve-ups/issues/4). Each request is kept as a `FlowRun` with the
  errors that run would fail with: the envelope (`type: message`, the card as the first attachment,
  https://learn.microsoft.com/microsoftteams/platform/webhooks-and-connectors/how-to/connectors-using), the card
  against the official Adaptive Card 1.4.0 JSON schema (data/, vendored), a version above 1.4 (the flow bot refuses
  it: https://github.com/Skitionek/notify-microsoft-teams/issues/107), and the ~28 KB message limit
  (https://learn.microsoft.com/connectors/teams/#known-issues-and-limitations-with-actions).
- Scenario switches (undocumented or non-default behaviour): `reject_invalid = True` answers a run that would fail
  with 400 and an error body instead of 202 (a flow with a Response action after a schema check would); rate
  limits (429 with Retry-After) come from the shared `faults` (`standins.faults.add("teams", status=429)`).
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from localazure.https import Request, Response
from localazure.trackers.base import TicketView, TrackerCredentials, TrackerRoute, TrackerService, read, write

SCHEMA_PATH = Path(__file__).with_name("data") / "adaptive-card-1.4.0.json"
CARD_CONTENT_TYPE = "application/vnd.microsoft.card.adaptive"
HIGHEST_VERSION = (1, 4)
MAX_MESSAGE_BYTES = 28_000  # about 28 KB; Teams counts message size in UTF-16
_validator_lock = threading.Lock()
_validator: Any = None


def card_validator() -> Any:
    """The JSON-schema validator of the vendored Adaptive Card 1.4.0 schema (jsonschema: a dev-only package)."""
    global _validator
    with _validator_lock:
        if _validator is None:
            import jsonschema

            schema = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
            _validator = jsonschema.validators.validator_for(schema)(schema)
        return _validator


def card_errors(card: Any) -> list[str]:
    """Why Teams would refuse `card` (empty: it renders)."""
    if not isinstance(card, dict):
        return ["the attachment's content is not an object"]
    from jsonschema.exceptions import best_match

    errors: list[str] = []
    error = best_match(card_validator().iter_errors(card))
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path) or "(card)"
        errors.append(f"schema: {where}: {error.message[:300]}")
    version = str(card.get("version", ""))
    try:
        parsed = tuple(int(part) for part in version.split("."))
    except ValueError:
        parsed = ()
    if not parsed or parsed > HIGHEST_VERSION:
        errors.append(f"version {version!r}: the flow bot posts Adaptive Cards up to 1.4")
    return errors


def message_errors(body: bytes) -> tuple[list[str], dict[str, Any] | None]:
    """The errors of the whole request body, and the card when there is one."""
    try:
        payload = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return ["the body is not JSON"], None
    if not isinstance(payload, dict) or payload.get("type") != "message":
        return ["the body is not a message (`type: message`)"], None
    attachments = payload.get("attachments")
    if not isinstance(attachments, list) or not attachments or not isinstance(attachments[0], dict):
        return ["the message has no attachments"], None
    first = attachments[0]
    if first.get("contentType") != CARD_CONTENT_TYPE:
        return [f"the first attachment is not an Adaptive Card ({first.get('contentType')!r})"], None
    card = first.get("content")
    errors = card_errors(card)
    size = len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-16-le"))
    if size > MAX_MESSAGE_BYTES:
        errors.append(f"Request Entity too large ({size} bytes in UTF-16)")
    return errors, card if isinstance(card, dict) else None


@dataclass
class FlowRun:
    """One triggered run of the flow: what was posted and, when the run failed, why."""

    run_id: str
    card: dict[str, Any] | None
    errors: list[str] = field(default_factory=list)

    @property
    def succeeded(self) -> bool:
        return not self.errors


class TeamsStandIn(TrackerService):
    name = "teams"
    retry_after_statuses = (429,)
    PATH = "/workflows/6d1c0b1e5a2f4b0c9e8d7f6a5b4c3d2e/triggers/manual/paths/invoke"

    def __init__(self, creds: TrackerCredentials):
        super().__init__(creds)
        self.runs: list[FlowRun] = []
        self.reject_invalid = False

    @property
    def query(self) -> str:
        return f"api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig={self.creds.teams_sig}"

    def authenticate(self, request: Request) -> Response | None:
        if not all(request.param(p) for p in ("sp", "sv", "sig")):
            return Response.json({"error": {"code": "AuthorizationFailed", "message": (
                "Required parameters for shared access URL are permissions ('sp'), version ('sv'), and signature "
                "('sig').")}}, 401)
        if request.param("sig") != self.creds.teams_sig:
            return Response.json({"error": {"code": "AuthorizationFailed", "message": (
                "The provided shared access signature is not valid for this workflow trigger.")}}, 401)
        return None

    def fault_body(self, status: int) -> Any:
        if status == 429:
            return {"error": {"code": "WorkflowRequestsThrottled",
                              "message": "The workflow is being throttled; retry later."}}
        return {"error": {"code": "ServiceUnavailable", "message": "The service is unavailable."}}

    def dispatch(self, request: Request) -> TrackerRoute:
        if request.path != self.PATH or request.method != "POST":
            return read("notFound", lambda r: Response.json({"error": {"code": "NotFound"}}, 404))
        return write("workflows.trigger", self._trigger)

    def _trigger(self, request: Request) -> Response:
        errors, card = message_errors(request.body)
        run = FlowRun(f"08584{len(self.runs):016d}", card, errors)
        self.runs.append(run)
        if errors and self.reject_invalid:
            return Response.json({"error": {"code": "InvalidRequestContent", "message": "; ".join(errors)}}, 400)
        return Response(202)

    def views(self) -> list[TicketView]:
        return [TicketView(ref=run.run_id, title=_first_text(run.card), body=json.dumps(run.card), is_open=True,
                           markers=(), high_priority=False, comments=(), raw={"errors": run.errors})
                for run in self.runs]


def _first_text(card: dict[str, Any] | None) -> str:
    for block in (card or {}).get("body", []):
        for inline in block.get("inlines", []) if isinstance(block, dict) else []:
            if isinstance(inline, dict):
                return str(inline.get("text", ""))
    return ""
