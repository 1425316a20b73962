"""The log sink: one JSON object per line on the `triage.tickets.log` logger. Holds no secrets by construction."""

from __future__ import annotations

import json
import logging

from shared.tickets.base import TicketContent, TicketRef
from shared.tickets.document import LIMIT_COMMENT
from shared.tickets.payload import ticket_payload
from shared.tickets.sanitize import clean_text

LOGGER = "triage.tickets.log"


def log_line(event: str, content: TicketContent, comment: str | None) -> str:
    record = {"event": event, "ticket": ticket_payload(content)}
    if comment:
        record["comment"] = clean_text(comment, LIMIT_COMMENT)
    # ensure_ascii: control characters, U+2028 and friends are escaped, so the record is one line.
    return json.dumps(record, ensure_ascii=True, sort_keys=True)


class LogSink:
    name = "log"
    budgeted = False  # a log line opens nothing in any tracker: no ticket budget (engine/ticketing.py)

    def __init__(self, logger: logging.Logger | None = None):
        self._log = logger or logging.getLogger(LOGGER)

    def _emit(self, event: str, content: TicketContent, comment: str | None) -> None:
        self._log.warning(log_line(event, content, comment))

    def probe(self) -> str:
        return f"writes to the {self._log.name} log"

    def open_or_update(self, content: TicketContent, *, comment: str | None = None) -> TicketRef:
        self._emit("ticket.open_or_update", content, comment)
        return TicketRef(self.name, content.incident_id)

    def resolve(self, content: TicketContent, *, comment: str) -> TicketRef | None:
        self._emit("ticket.resolve", content, comment)
        return TicketRef(self.name, content.incident_id)
