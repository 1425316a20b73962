"""Recording input that cannot be used: logged, audited with what was received, never retried."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from shared.core.limits import clipped_text
from shared.engine.runtime import Runtime, new_correlation_id

log = logging.getLogger("triage")


@dataclass(frozen=True)
class EventOutcome:
    event_id: str
    result: str  # processed | not_relevant (an alert about other resources) | duplicate | unknown | rejected
    detail: str = ""

    def to_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "result": self.result, "detail": self.detail}


def reject(rt: Runtime, event_id: str, reason: str, raw: Any) -> EventOutcome:
    log.warning("event %s rejected: %s", event_id[:200] or "(no id)", reason,
                extra={"event_id": event_id[:200], "reason": reason})
    rt.audit("event-rejected", reason, correlation_id=new_correlation_id(),
             inputs={"event_id": event_id[:200], "raw": clipped_text(raw)})
    return EventOutcome(event_id, "rejected", reason)
