"""Entry-point translators: what arrives at an entry point (an HTTP body, the Event Grid trigger's event, a CLI
flag) turned into the plain values the services take, or a clear reason why it cannot be.

function_app.py, the HTTP handlers and the CLI commands call these, then the services; nothing here acts.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from shared.core.allowlist import normalize_object_id
from shared.core.events import AlertScan, Envelope, Malformed, envelope_from_dict
from shared.core.limits import MAX_BODY_BYTES, MAX_NESTING, TimeOutOfRange, checked_time, shape_problem
from shared.core.model import ENTRA, FailureSignal
from shared.core.resource_ids import is_account_or_project_id
from shared.core.signals import SignalError, parse_failure
from shared.core.suppression import parse_duration


class BadInput(ValueError):
    """The input cannot be used; the message says why (HTTP 400, CLI exit 2)."""


def parse_json_body(body: bytes) -> tuple[Any, str | None]:
    """The decoded body, or why it cannot be used: empty, over MAX_BODY_BYTES, not JSON, or too deep or large."""
    if not body:
        return None, "the request body must be a JSON object"
    if len(body) > MAX_BODY_BYTES:
        return None, f"the request body is larger than {MAX_BODY_BYTES} bytes"
    try:
        data = json.loads(body.decode("utf-8"))
    except ValueError as exc:  # not UTF-8, not JSON, or an integer longer than Python reads (4300 digits)
        return None, f"the request body is not valid JSON ({type(exc).__name__})"
    except RecursionError:
        return None, f"the request body is nested deeper than {MAX_NESTING} levels"
    problem = shape_problem(data)
    return (None, f"the request body is refused: {problem}") if problem else (data, None)


def diagnose_input(data: Any) -> FailureSignal:
    """The failure an on-call engineer pasted (classify fields and an optional resource_id), or the principal and
    resource they name. BadInput says what is wrong."""
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    resource_id = data.get("resource_id")
    if resource_id is not None and not isinstance(resource_id, str):
        raise BadInput("resource_id must be a string")
    # Checked here, not left to the evidence look-up: a non-ARM id used to end as a 500 (ValueError).
    if resource_id and not is_account_or_project_id(resource_id):
        raise BadInput("resource_id must be a Microsoft.CognitiveServices account (or project) resource id: "
                          "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{a}")
    for name in ("endpoint", "route"):
        if data.get(name) is not None and not isinstance(data.get(name), str):
            raise BadInput(f"{name} must be a string")
    if "status" in data:
        try:
            signal = parse_failure(data)
        except SignalError as exc:
            raise BadInput(str(exc)) from None
        if resource_id:
            signal = replace(signal, resource_id=resource_id)
    else:
        principal = normalize_object_id(data.get("principal_id") if isinstance(data.get("principal_id"), str)
                                        else None)
        if principal is None or not resource_id:
            raise BadInput("give either the failure fields (status, code, message, endpoint, auth, object_id) "
                              "or principal_id (a GUID) and resource_id")
        signal = FailureSignal(status=401, code="PermissionDenied", object_id=principal, auth=ENTRA,
                               resource_id=resource_id, endpoint=data.get("endpoint"), route=data.get("route"))
    return signal


def engineer_identity(headers: Mapping[str, str], data: Any) -> str | None:
    """Who is acting: App Service authentication's principal header wins over a name in the body."""
    for name in ("x-ms-client-principal-name", "x-ms-client-principal-id"):
        value = headers.get(name)
        if value:
            return value.strip()
    if isinstance(data, dict) and isinstance(data.get("by"), str) and data["by"].strip():
        return data["by"].strip()
    return None


def envelope_of(event: Any) -> Envelope | Malformed:
    """Normalize what the Functions Event Grid trigger hands us (EventGridEvent, CloudEvent or a dict)."""
    if isinstance(event, dict):
        return envelope_from_dict(event)
    if not callable(getattr(event, "get_json", None)):
        return Malformed("event must be a JSON object")
    try:
        data = event.get_json()
    except (ValueError, TypeError) as exc:
        return Malformed(f"event data is not JSON ({type(exc).__name__})")
    except RecursionError:
        return Malformed(f"event data is nested deeper than {MAX_NESTING} levels")
    problem = shape_problem(data)
    if problem:
        return Malformed(f"event refused: {problem}")
    try:
        if hasattr(event, "event_type"):  # func.EventGridEvent
            return Envelope(id=str(event.id or ""), type=str(event.event_type or ""),
                            subject=str(event.subject or ""), source=str(event.topic or ""),
                            time=_utc(event.event_time), data=data,
                            topic=str(event.topic or ""))
        return Envelope(id=str(getattr(event, "id", "") or ""), type=str(getattr(event, "type", "") or ""),
                        subject=str(getattr(event, "subject", "") or ""),
                        source=str(getattr(event, "source", "") or ""), time=_utc(getattr(event, "time", None)),
                        data=data)
    except TimeOutOfRange as exc:
        return Malformed(f"event {exc}")


def _utc(value: Any) -> datetime | None:
    """The worker's converter returns a zone-less time as a naive datetime; read it as UTC (as the dict path does)
    instead of failing later on naive/aware comparisons and rejecting a valid event. TimeOutOfRange when it cannot
    be a real time."""
    if not isinstance(value, datetime):
        return None
    return checked_time(value, "time")


def alert_key(alert: AlertScan, delivery_id: str = "") -> str:
    """The dedupe key of one alert notification. Azure sends a Fired and later a Resolved notification under the same
    alert id (a Resolved one can even arrive first), so the monitor condition and the fired time are part of it.
    By Event Grid, `delivery_id` is the event id (a redelivery repeats it); the webhook has none, so the alert id
    and the window stand for the notification."""
    condition = alert.condition.lower()
    fired = alert.fired_at.isoformat() if alert.fired_at else ""
    if delivery_id:
        return f"alert:{delivery_id}:{condition}:{fired}"
    if not alert.alert_id:
        return ""
    return f"alert:{alert.alert_id}:{condition}:{fired}:{alert.start.isoformat()}:{alert.end.isoformat()}"


def suppression_duration(text: str) -> timedelta:
    """The CLI's --for value (7d, 12h, 30m)."""
    try:
        return parse_duration(text)
    except ValueError as exc:
        raise BadInput(f"--for: {exc}") from None
