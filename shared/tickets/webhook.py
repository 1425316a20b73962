"""The webhook sink: a signed JSON POST per ticket event. The receiver dedupes by `marker` (one per problem) and
by `delivery_id` (retries of one event carry the same id).

Signature: `X-Triage-Signature: sha256=<hex HMAC-SHA256 of the exact body bytes, keyed with the secret>`; the
signed body carries `sent_at` so receivers can refuse replays.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from urllib.parse import urlsplit

from shared.tickets.base import TicketContent, TicketRef
from shared.tickets.document import LIMIT_COMMENT
from shared.tickets.http import HttpOptions, TrackerClient, secret_forms
from shared.tickets.payload import ticket_payload
from shared.tickets.sanitize import clean_text

log = logging.getLogger("triage.tickets")
SIGNATURE_HEADER = "X-Triage-Signature"
EVENT_HEADER = "X-Triage-Event"
DELIVERY_HEADER = "X-Triage-Delivery"


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str | None) -> bool:
    """For receivers: constant-time check of the signature header over the exact body."""
    return signature is not None and bool(signature) and hmac.compare_digest(sign(secret, body), signature)


def webhook_body(event: str, content: TicketContent, comment: str | None, *, delivery_id: str,
                 sent_at: datetime) -> bytes:
    """The exact bytes that are signed and sent: compact, key-sorted, ASCII-only JSON."""
    record = {"event": event, "delivery_id": delivery_id, "sent_at": sent_at.isoformat(),
              "ticket": ticket_payload(content),
              "comment": clean_text(comment, LIMIT_COMMENT) if comment else None}
    return json.dumps(record, ensure_ascii=True, sort_keys=True, separators=(",", ":")).encode("ascii")


class WebhookSink:
    name = "webhook"

    def __init__(self, *, url: str, secret: str, options: HttpOptions,
                 clock: Callable[[], datetime] | None = None):
        if not secret:
            raise ValueError("TRIAGE_WEBHOOK_SECRET is required for the webhook sink")
        parts = urlsplit(url)
        self._path = parts.path + (f"?{parts.query}" if parts.query else "")
        self._secret = secret
        self._clock = clock or (lambda: datetime.now(UTC))
        self._http = TrackerClient(sink=self.name, base_url=f"{parts.scheme}://{parts.netloc}", options=options,
                                   secrets=secret_forms(secret), credential_hint="TRIAGE_WEBHOOK_SECRET")

    def _post(self, event: str, content: TicketContent, comment: str | None) -> TicketRef:
        delivery = str(uuid.uuid4())
        body = webhook_body(event, content, comment, delivery_id=delivery, sent_at=self._clock())
        # Retrying is safe: a receiver sees the same delivery id and ignores the repeat.
        self._http.request("POST", self._path, content=body, idempotent=True, headers={
            "Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body),
            EVENT_HEADER: event, DELIVERY_HEADER: delivery,
        })
        log.info("webhook sink: delivered %s for %s", event, content.incident_id)
        return TicketRef(self.name, content.incident_id)

    def open_or_update(self, content: TicketContent, *, comment: str | None = None) -> TicketRef:
        return self._post("ticket.open_or_update", content, comment)

    def resolve(self, content: TicketContent, *, comment: str) -> TicketRef | None:
        return self._post("ticket.resolve", content, comment)
