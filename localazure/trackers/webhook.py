"""A webhook receiver that checks the HMAC-SHA256 signature over the exact body and keeps one delivery per
delivery id (a retried delivery is not counted twice)."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

from localazure.https import Request, Response
from localazure.trackers.base import TicketView, TrackerCredentials, TrackerRoute, TrackerService, read, write


class WebhookStandIn(TrackerService):
    name = "webhook"
    PATH = "/hooks/triage"

    def __init__(self, creds: TrackerCredentials):
        super().__init__(creds)
        self.deliveries: dict[str, dict[str, Any]] = {}

    def authenticate(self, request: Request) -> Response | None:
        expected = "sha256=" + hmac.new(self.creds.webhook_secret.encode(), request.body, hashlib.sha256).hexdigest()
        if hmac.compare_digest(expected, request.headers.get("x-triage-signature", "")):
            return None
        return Response.json({"error": "bad signature"}, 401)

    def dispatch(self, request: Request) -> TrackerRoute:
        if request.path != self.PATH or request.method != "POST":
            return read("notFound", lambda r: Response.json({"error": "not found"}, 404))
        return write("deliveries.receive", self._receive)

    def _receive(self, request: Request) -> Response:
        delivery = request.headers.get("x-triage-delivery", "")
        self.deliveries.setdefault(delivery, request.json())
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
