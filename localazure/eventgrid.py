"""An Event Grid topic stand-in: `POST /api/events` (basic topic, api 2018-01-01) accepting Event Grid schema
and CloudEvents 1.0 batches as `EventGridPublisherClient.send` produces them, and namespace topics
(`POST /topics/{topic}:publish`). It records what it accepts for tests to read."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from localazure.calls import WRITE
from localazure.clock import Clock
from localazure.faults import Fault
from localazure.frontdoor import CallContext, RouteFn, bearer_token, error, fault_headers
from localazure.https import Request, Response
from localazure.state import State

_EVENTGRID_REQUIRED = ("id", "subject", "eventType", "eventTime", "data", "dataVersion")
_CLOUDEVENT_REQUIRED = ("id", "source", "type", "specversion")


@dataclass(frozen=True)
class ReceivedEvent:
    schema: str  # eventgrid | cloudevents
    topic: str  # "" for the basic topic, else the namespace topic name
    event: dict[str, Any]
    received_at: datetime

    @property
    def type(self) -> str:
        return self.event.get("eventType") or self.event.get("type") or ""

    @property
    def data(self) -> Any:
        return self.event.get("data")


def _validate(events: Any, cloud: bool) -> str | None:
    if not isinstance(events, list) or not events:
        return "The request body must be a non-empty JSON array of events."
    required = _CLOUDEVENT_REQUIRED if cloud else _EVENTGRID_REQUIRED
    for index, event in enumerate(events):
        if not isinstance(event, dict):
            return f"Event {index} is not a JSON object."
        missing = [k for k in required if k not in event or event[k] in (None, "")]
        if missing and not (not cloud and missing == ["data"]):
            return f"Event {index} is missing required properties: {', '.join(missing)}."
    return None


class EventGridService:
    name = "eventgrid"

    def __init__(self, state: State, clock: Clock):
        self.state = state
        self.clock = clock
        self.received: list[ReceivedEvent] = []
        self._lock = threading.Lock()

    def authenticate(self, request: Request) -> Response | None:
        key = request.headers.get("aeg-sas-key")
        if key is not None:
            if key == self.state.settings.eventgrid_key:
                return None
            return error(401, "Unauthorized", "The request authorization key is not authorized for this topic.")
        if request.headers.get("aeg-sas-token") or bearer_token(request):
            return None
        return error(401, "Unauthorized", "The request must carry an aeg-sas-key, aeg-sas-token or bearer token.")

    def fault_response(self, fault: Fault) -> Response:
        status = fault.status or 500
        return error(status, "InjectedFault", f"Injected fault with status {status}.", fault_headers(fault))

    def route(self, request: Request) -> tuple[str, str, RouteFn]:
        path = "/" + request.path.strip("/")
        if request.method.upper() == "POST" and path.lower() == "/api/events":
            return "eventgrid.publish", WRITE, lambda r, c: self.publish(r, c, "")
        m = re.fullmatch(r"/topics/([^/:]+):publish", path, re.IGNORECASE)
        if request.method.upper() == "POST" and m:
            topic = m.group(1)
            return "eventgrid.publishNamespace", WRITE, lambda r, c: self.publish(r, c, topic)
        return "unknown", WRITE, lambda r, c: error(404, "NotFound", f"No topic at {path}.")

    def publish(self, request: Request, ctx: CallContext, topic: str) -> Response:
        content_type = request.headers.get("content-type", "").lower()
        try:
            events = request.json()
        except ValueError:
            return error(400, "BadRequest", "The request body is not valid JSON.")
        cloud = "cloudevents" in content_type or (
            isinstance(events, list) and bool(events) and isinstance(events[0], dict) and "specversion" in events[0]
        )
        if isinstance(events, dict) and cloud:
            events = [events]  # a single structured-mode CloudEvent
        problem = _validate(events, cloud)
        if problem:
            return error(400, "BadRequest", problem)
        now = self.clock.now()
        with self._lock:
            for event in events:
                self.received.append(ReceivedEvent("cloudevents" if cloud else "eventgrid", topic, event, now))
        return Response(200)

    def clear(self) -> None:
        with self._lock:
            self.received.clear()
