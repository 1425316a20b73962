"""Pure parsing of what arrives through Event Grid and alert webhooks into plain commands for the engine.

Three kinds matter: Azure Monitor alerts in the common alert schema (→ a targeted scan), ARM role-assignment
write/delete events (→ state updates), and our documented custom failure event (→ diagnose and act). Anything else
is `Unknown` (logged and acknowledged); anything broken is `Malformed` with the reason (recorded and acknowledged,
never redelivered forever).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared.core.alerts import FIRED, AlertScan, AlertShapeError, alert_scope, alert_window, as_dict, read_time
from shared.core.limits import (
    MAX_ALERT_WINDOW,
    MAX_CLOCK_SKEW,
    MAX_LIST_ITEMS,
    TimeOutOfRange,
    checked_time,
    is_role_assignment_id,
    shape_problem,
)
from shared.core.model import FailureSignal
from shared.core.resource_ids import is_account_or_project_id
from shared.core.signals import SignalError, TimeRangeError, parse_failure, parse_time

FAILURE_EVENT_TYPE = "AOAI.Triage.Failure"
COMMON_ALERT_SCHEMA = "azureMonitorCommonAlertSchema"
RESOURCE_WRITE_SUCCESS = "Microsoft.Resources.ResourceWriteSuccess"
RESOURCE_DELETE_SUCCESS = "Microsoft.Resources.ResourceDeleteSuccess"
ROLE_ASSIGNMENT_WRITE = "microsoft.authorization/roleassignments/write"
ROLE_ASSIGNMENT_DELETE = "microsoft.authorization/roleassignments/delete"
VALIDATION_EVENT = "Microsoft.EventGrid.SubscriptionValidationEvent"


@dataclass(frozen=True)
class Envelope:
    """One event, whichever schema it came in (Event Grid or CloudEvents 1.0)."""

    id: str
    type: str
    subject: str
    source: str
    time: datetime | None
    data: Any
    # The Event Grid schema's `topic`, which Event Grid sets (a publisher cannot choose it); "" for CloudEvents,
    # whose `source` the publisher writes.
    topic: str = ""


@dataclass(frozen=True)
class RoleAssignmentChange:
    assignment_id: str
    deleted: bool
    actor: str  # who made the change (claims), for the audit trail
    correlation_id: str


@dataclass(frozen=True)
class FailureReport:
    signal: FailureSignal


@dataclass(frozen=True)
class Unknown:
    type: str


@dataclass(frozen=True)
class Malformed:
    reason: str


Parsed = AlertScan | RoleAssignmentChange | FailureReport | Unknown | Malformed


MAX_EVENT_ID_CHARS = 1_024


def _parse_time(value: Any) -> datetime | None:
    """A timestamp as events carry it (ISO-8601 text, or a datetime from the Functions worker); None if absent or
    unreadable. Times without a zone are UTC. TimeRangeError when it reads but is out of range."""
    if isinstance(value, datetime):
        try:
            return checked_time(value)
        except TimeOutOfRange as exc:
            raise TimeRangeError(str(exc)) from None
    if not isinstance(value, str) or not value.strip():
        return None
    try:
        return parse_time(value)
    except TimeRangeError:
        raise
    except SignalError:
        return None


def parse_alert(payload: Any, *, now: datetime) -> AlertScan | Malformed:
    """A common-alert-schema payload (action group webhook body, or Event Grid `data`): its window and the accounts
    it is about (shared/core/alerts.py), or why it cannot be read."""
    if not isinstance(payload, dict):
        return Malformed("alert payload must be a JSON object")
    problem = shape_problem(payload)
    if problem:
        return Malformed(f"alert payload refused: {problem}")
    try:
        return _alert(payload, now)
    except AlertShapeError as exc:
        return Malformed(str(exc))


def _alert(payload: dict[str, Any], now: datetime) -> AlertScan | Malformed:
    if payload.get("schemaId") != COMMON_ALERT_SCHEMA:
        return Malformed(f"schemaId must be {COMMON_ALERT_SCHEMA!r}")
    data = payload.get("data")
    essentials = data.get("essentials") if isinstance(data, dict) else None
    if not isinstance(essentials, dict):
        return Malformed("data.essentials is missing")
    targets = essentials.get("alertTargetIDs") or []  # null in budget alerts
    if not isinstance(targets, list) or not all(isinstance(t, str) for t in targets):
        return Malformed("data.essentials.alertTargetIDs must be a list of resource ids")
    items = essentials.get("configurationItems") or []
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        return Malformed("data.essentials.configurationItems must be a list of strings")
    if len(targets) > MAX_LIST_ITEMS or len(items) > MAX_LIST_ITEMS:
        return Malformed(f"the alert names more than {MAX_LIST_ITEMS} resources")
    for name in ("alertId", "alertRule", "monitorCondition"):
        if essentials.get(name) is not None and not isinstance(essentials.get(name), str):
            return Malformed(f"data.essentials.{name} must be a string")
    context = as_dict(as_dict(data).get("alertContext"))
    fired_at = read_time(essentials.get("firedDateTime"))
    anchor = fired_at or now
    start, end = alert_window(context, anchor)
    if end < start:
        return Malformed("alert window ends before it starts")
    if end - start > MAX_ALERT_WINDOW:
        return Malformed(f"alert window is longer than {MAX_ALERT_WINDOW.days} days")
    accounts, not_relevant = alert_scope(essentials, context, targets, items)
    return AlertScan(
        alert_id=str(essentials.get("alertId") or ""),
        rule=str(essentials.get("alertRule") or ""),
        start=start,
        end=max(end, anchor),  # fired after its window closed: scan up to the firing
        resource_ids=accounts,
        condition=str(essentials.get("monitorCondition") or FIRED),
        fired_at=fired_at,
        not_relevant=not_relevant,
    )


def parse_failure_event(data: Any, *, default_time: datetime | None) -> FailureReport | Malformed:
    """Our custom event: the `classify` input fields plus `resource_id` (required) and `time`."""
    if not isinstance(data, dict):
        return Malformed("failure event data must be a JSON object")
    resource_id = data.get("resource_id")
    if not is_account_or_project_id(resource_id):
        return Malformed("resource_id must be a Microsoft.CognitiveServices account (or project) resource id")
    try:
        signal = parse_failure(data)
        when = _parse_time(data.get("time")) or default_time
    except SignalError as exc:
        return Malformed(str(exc))
    if data.get("time") is not None and when is default_time:
        return Malformed("time must be an ISO-8601 timestamp")
    count = data.get("count", 1)
    if not isinstance(count, int) or isinstance(count, bool) or count < 1:
        return Malformed("count must be a positive integer")
    return FailureReport(
        replace(signal, resource_id=resource_id, first_seen=when, last_seen=when, count=count, source="event")
    )


def classify_event(envelope: Envelope, *, now: datetime) -> Parsed:
    event_type = envelope.type or ""
    if not envelope.id:
        return Malformed("event has no id")
    if event_type == FAILURE_EVENT_TYPE:
        report = parse_failure_event(envelope.data, default_time=envelope.time or now)
        seen = report.signal.last_seen if isinstance(report, FailureReport) else None
        if seen is not None and seen > now + MAX_CLOCK_SKEW:
            return Malformed("the failure's time is more than a day in the future")
        return report
    if isinstance(envelope.data, dict) and envelope.data.get("schemaId") == COMMON_ALERT_SCHEMA:
        return parse_alert(envelope.data, now=now)
    if event_type in (RESOURCE_WRITE_SUCCESS, RESOURCE_DELETE_SUCCESS):
        data = envelope.data if isinstance(envelope.data, dict) else None
        if data is None:
            return Malformed(f"{event_type} without a data object")
        operation = str(data.get("operationName") or "").lower()
        if operation not in (ROLE_ASSIGNMENT_WRITE, ROLE_ASSIGNMENT_DELETE):
            return Unknown(f"{event_type}:{data.get('operationName')}")
        assignment_id = data.get("resourceUri") or envelope.subject
        if not isinstance(assignment_id, str) or "/roleassignments/" not in assignment_id.lower():
            return Malformed("role-assignment event without a roleAssignments resource id")
        if not is_role_assignment_id(assignment_id):
            return Malformed("role-assignment event whose resource id is not {scope}/providers/"
                             "Microsoft.Authorization/roleAssignments/{guid} (braces, spaces, query or escapes in it)")
        raw_claims = data.get("claims")
        claims: dict[str, Any] = raw_claims if isinstance(raw_claims, dict) else {}
        actor = str(
            claims.get("name")
            or claims.get("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn")
            or claims.get("appid")
            or claims.get("http://schemas.microsoft.com/identity/claims/objectidentifier")
            or "unknown"
        )
        return RoleAssignmentChange(
            assignment_id=assignment_id,
            deleted=event_type == RESOURCE_DELETE_SUCCESS,
            actor=actor,
            correlation_id=str(data.get("correlationId") or ""),
        )
    return Unknown(event_type or "(no type)")


def envelope_from_dict(raw: Any) -> Envelope | Malformed:
    """Accept an Event Grid schema event or a CloudEvents 1.0 event as a plain dict."""
    if not isinstance(raw, dict):
        return Malformed("event must be a JSON object")
    problem = shape_problem(raw)
    if problem:
        return Malformed(f"event refused: {problem}")
    # CloudEvents name the fields type/source/time; the Event Grid schema eventType/topic/eventTime.
    type_key, source_key, time_key = ("type", "source", "time") if "specversion" in raw else (
        "eventType", "topic", "eventTime")
    for key in ("id", type_key, "subject", source_key):
        if raw.get(key) is not None and (isinstance(raw[key], bool) or not isinstance(raw[key], str | int)):
            return Malformed(f"event {key} must be a string")
    if len(str(raw.get("id") or "")) > MAX_EVENT_ID_CHARS:
        return Malformed(f"event id is longer than {MAX_EVENT_ID_CHARS} characters")
    try:
        time = _parse_time(raw.get(time_key))
    except TimeRangeError as exc:
        return Malformed(f"event {exc}")
    return Envelope(
        id=str(raw.get("id") or ""),
        type=str(raw.get(type_key) or ""),
        subject=str(raw.get("subject") or ""),
        source=str(raw.get(source_key) or ""),
        time=time,
        data=raw.get("data"),
        topic="" if "specversion" in raw else str(raw.get("topic") or ""),
    )
