"""Alerts (Azure Monitor common alert schema, by Event Grid or the action-group webhook): a targeted scan of the
alert's window and accounts, once per notification. Alerts about anything but our accounts are recorded and
acknowledged, never scanned."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from shared.core.events import AlertScan, Malformed, parse_alert
from shared.engine.deliveries import handle_once
from shared.engine.inputs import alert_key
from shared.engine.rejections import reject
from shared.engine.runtime import Runtime, new_correlation_id
from shared.engine.scan import run_scan


@dataclass(frozen=True)
class AlertOutcome:
    result: str  # processed | not_relevant | duplicate | rejected
    alert_id: str | None = None
    detail: str = ""


def handle_alert(rt: Runtime, alert: AlertScan, correlation_id: str) -> str:
    if alert.not_relevant:
        detail = f"alert {alert.alert_id or alert.rule or '(no id)'} not relevant: {alert.not_relevant}"
        rt.audit("alert-not-relevant", detail, correlation_id=correlation_id,
                 inputs={"alert_id": alert.alert_id, "rule": alert.rule, "condition": alert.condition})
        return detail
    if not alert.fired:
        return f"alert {alert.alert_id} resolved: nothing to scan"
    report = run_scan(rt, resource_ids=alert.resource_ids or None, window=(alert.start, alert.end),
                      correlation_id=correlation_id, verify=False)
    return f"targeted scan: {report.signals} failure group(s), {len(report.incidents)} incident(s)"


def receive_alert(rt: Runtime, data: Any) -> AlertOutcome:
    """An alert webhook's payload: rejected with a reason, a duplicate delivery, not relevant, or processed. A failure
    while processing releases the delivery, so the action group's retry is processed (engine/deliveries.py)."""
    parsed = parse_alert(data, now=rt.clock())
    if isinstance(parsed, Malformed):
        reject(rt, "", parsed.reason, data)
        return AlertOutcome("rejected", detail=parsed.reason)
    key = alert_key(parsed)
    if not key:  # no alert id: nothing to dedupe on
        return AlertOutcome("not_relevant" if parsed.not_relevant else "processed", parsed.alert_id,
                            handle_alert(rt, parsed, new_correlation_id()))
    handled, detail = handle_once(rt, key, lambda: handle_alert(rt, parsed, new_correlation_id()))
    if not handled:
        return AlertOutcome("duplicate", parsed.alert_id)
    return AlertOutcome("not_relevant" if parsed.not_relevant else "processed", parsed.alert_id, detail or "")
