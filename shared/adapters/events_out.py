"""Outcome events: CloudEvents 1.0 published to an Event Grid topic with azure-eventgrid, best effort.

The basic-topic EventGridPublisherClient ignores transport keywords given to its constructor, so the CA bundle,
retry count and timeouts travel with each `send()`. A failed publish is logged and reported, never raised.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("triage.adapters")

ASSIGNMENT_CREATED = "aoai.triage.assignment.created"
VERIFICATION_RESOLVED = "aoai.triage.verification.resolved"
INCIDENT_ESCALATED = "aoai.triage.incident.escalated"
TICKET_OPENED = "aoai.triage.ticket.opened"
EVENT_TYPES = frozenset({ASSIGNMENT_CREATED, VERIFICATION_RESOLVED, INCIDENT_ESCALATED, TICKET_OPENED})

EVENT_SOURCE = "/aoai-auth-triage"


class _TransportKwargsWarningFilter(logging.Filter):
    """The basic-topic client also hands send() keywords to its CloudEvent model, which logs a warning for each
    one ("connection_verify is not a known attribute ..."). Drop exactly those warnings, nothing else."""

    def __init__(self, names: frozenset[str]):
        super().__init__()
        self.names = names

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args if isinstance(record.args, tuple) else ()
        return not (str(record.msg).startswith("%s is not a known attribute") and args and args[0] in self.names)


_SERIALIZER_LOGGER = "azure.eventgrid._legacy._generated._serialization"
_SEND_KWARGS = frozenset({"connection_verify", "retry_total", "connection_timeout", "read_timeout"})
_filter_installed = False


def _install_warning_filter() -> None:
    global _filter_installed
    if not _filter_installed:
        logging.getLogger(_SERIALIZER_LOGGER).addFilter(_TransportKwargsWarningFilter(_SEND_KWARGS))
        _filter_installed = True


class NullPublisher:
    """Publishing is off (no topic configured)."""

    enabled = False
    failures: tuple[str, ...] = ()

    def publish(self, event_type: str, data: dict[str, Any], subject: str | None = None) -> bool:
        return False


class EventGridOutcomePublisher:
    enabled = True

    def __init__(self, endpoint: str, credential: Any, *, connection_verify: Any = True, retry_total: int = 2,
                 timeout_seconds: float = 10.0):
        from azure.eventgrid import EventGridPublisherClient

        self.endpoint = endpoint
        self._client = EventGridPublisherClient(endpoint, credential)
        self._send_kwargs = {
            "connection_verify": connection_verify,
            "retry_total": retry_total,
            "connection_timeout": timeout_seconds,
            "read_timeout": timeout_seconds,
        }
        _install_warning_filter()
        self._lock = threading.Lock()
        self.failures: list[str] = []  # what could not be published in this process, for the run report
        self.sent = 0

    def publish(self, event_type: str, data: dict[str, Any], subject: str | None = None) -> bool:
        """Send one CloudEvent. True when Event Grid accepted it; False (logged, recorded) otherwise."""
        from azure.core.messaging import CloudEvent

        if event_type not in EVENT_TYPES:
            raise ValueError(f"unknown outcome event type {event_type!r}")
        subject = subject or data.get("incident_id")
        event = CloudEvent(source=EVENT_SOURCE, type=event_type, data=data, subject=subject)
        try:
            self._client.send([event], **self._send_kwargs)
        except Exception as exc:  # noqa: BLE001 - publishing is best effort and must never fail the run
            problem = f"{event_type} for {subject}: {type(exc).__name__}: {_short(exc)}"
            log.warning("outcome event not published: %s", problem)
            with self._lock:
                self.failures.append(problem)
            return False
        with self._lock:
            self.sent += 1
        return True

    def close(self) -> None:
        self._client.close()


def build_publisher(settings: Any, credential: Any) -> EventGridOutcomePublisher | NullPublisher:
    if not settings.eventgrid_topic_endpoint:
        return NullPublisher()
    if settings.eventgrid_topic_key:
        from azure.core.credentials import AzureKeyCredential

        credential = AzureKeyCredential(settings.eventgrid_topic_key)
    return EventGridOutcomePublisher(
        settings.eventgrid_topic_endpoint, credential, connection_verify=settings.ca_bundle or True
    )


def _short(exc: Exception) -> str:
    text = str(exc).strip()
    return text.splitlines()[0][:300] if text else ""
