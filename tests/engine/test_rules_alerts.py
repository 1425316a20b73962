"""Alerts, by the action-group webhook (engine/alerts.receive_alert) and by Event Grid (engine/events): one scan per
notification, of the alert's accounts and window; alerts about other resources recorded and acknowledged."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from shared.engine.alerts import receive_alert
from shared.engine.events import handle_event_safely
from tests.engine.common import ACCOUNT, ORDERS, incident_of

WORKSPACE = ("/subscriptions/11111111-1111-1111-1111-111111111111/resourcegroups/rg-ops/providers/"
             "microsoft.operationalinsights/workspaces/ops")
VM = ("/subscriptions/11111111-1111-1111-1111-111111111111/resourcegroups/rg-app/providers/microsoft.compute/"
      "virtualmachines/app-01")


def alert(clock: Any, *, targets: list[str], items: list[str] | None = None, condition: str = "Fired",
          fired_minutes_ago: int = 1, window: tuple[int, int] | None = None) -> dict[str, Any]:
    """A log search alert in the common schema; `window` in minutes before now."""
    now = clock.now()
    body: dict[str, Any] = {"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {
        "alertId": "/subscriptions/11111111-1111-1111-1111-111111111111/providers/Microsoft.AlertsManagement/"
                   "alerts/0f1e2d3c-0000-4000-8000-00000000a001",
        "alertRule": "aoai-401-403", "signalType": "Log", "monitoringService": "Log Alerts V2",
        "monitorCondition": condition, "alertTargetIDs": targets,
        "configurationItems": targets if items is None else items,
        "firedDateTime": (now - timedelta(minutes=fired_minutes_ago)).isoformat()},
        "alertContext": {"conditionType": "LogQueryCriteria", "condition": {"allOf": []}}}}
    if window:
        body["data"]["alertContext"]["condition"].update(
            windowStartTime=(now - timedelta(minutes=window[0])).isoformat(),
            windowEndTime=(now - timedelta(minutes=window[1])).isoformat())
    return body


def forwarded(payload: dict[str, Any], event_id: str) -> dict[str, Any]:
    return {"id": event_id, "eventType": "Contoso.Monitoring.Alert", "subject": "aoai-401-403", "topic": "t",
            "eventTime": payload["data"]["essentials"]["firedDateTime"], "data": payload, "dataVersion": "1"}


def test_a_resolved_notification_that_arrives_first_does_not_swallow_the_fired_one(make_runtime, source, store,
                                                                                    clock):
    rt = make_runtime(mode="observe")
    source.fail(ORDERS, ACCOUNT, count=2, at=clock.now() - timedelta(minutes=2))
    resolved = receive_alert(rt, alert(clock, targets=[ACCOUNT.lower()], condition="Resolved"))
    assert resolved.result == "processed" and "resolved" in resolved.detail and source.reads == []

    fired = alert(clock, targets=[ACCOUNT.lower()])
    assert receive_alert(rt, fired).result == "processed"
    assert source.reads[-1].resource_ids == (ACCOUNT.lower(),)
    assert incident_of(store, ORDERS)
    assert receive_alert(rt, fired).result == "duplicate"  # the action group's retry of the same notification
    assert len(source.reads) == 1


def test_the_same_alert_fired_again_later_is_a_new_notification(make_runtime, source, clock):
    rt = make_runtime(mode="observe")
    receive_alert(rt, alert(clock, targets=[ACCOUNT.lower()], fired_minutes_ago=20, window=(30, 20)))
    receive_alert(rt, alert(clock, targets=[ACCOUNT.lower()], fired_minutes_ago=1, window=(10, 1)))
    assert len(source.reads) == 2


def test_event_grid_dedupes_an_alert_by_event_id_condition_and_fired_time(make_runtime, source, clock):
    rt = make_runtime(mode="observe")
    # A forwarder that reuses one event id for both notifications of an alert.
    resolved = forwarded(alert(clock, targets=[ACCOUNT.lower()], condition="Resolved"), "alert-a001")
    fired = forwarded(alert(clock, targets=[ACCOUNT.lower()]), "alert-a001")
    assert handle_event_safely(rt, resolved).result == "processed"
    assert handle_event_safely(rt, fired).result == "processed"
    assert handle_event_safely(rt, fired).result == "duplicate"  # Event Grid's redelivery
    assert len(source.reads) == 1


def test_an_alert_about_another_resource_is_recorded_and_acknowledged_without_a_scan(make_runtime, source, store,
                                                                                     clock):
    rt = make_runtime(mode="observe")
    outcome = receive_alert(rt, alert(clock, targets=[VM], items=["app-01"]))
    assert outcome.result == "not_relevant" and "app-01" in outcome.detail
    assert receive_alert(rt, alert(clock, targets=[VM], items=["app-01"])).result == "duplicate"
    event = handle_event_safely(rt, forwarded(alert(clock, targets=[VM], items=["app-01"]), "vm-alert"))
    assert event.result == "not_relevant"
    assert source.reads == []
    records = [a for a in store.list_audit() if a.kind == "alert-not-relevant"]
    assert len(records) == 2 and records[0].inputs["rule"] == "aoai-401-403"


def test_a_log_alert_on_the_workspace_scans_every_account_over_the_alert_window_only(make_runtime, source, store,
                                                                                     clock):
    rt = make_runtime(mode="observe")
    receive_alert(rt, alert(clock, targets=[WORKSPACE], items=[], window=(10, 2)))
    (read,) = source.reads
    assert read.resource_ids is None
    assert (read.start, read.end) == (clock.now() - timedelta(minutes=10), clock.now() - timedelta(minutes=1))
    assert store.get_watermark(source.name) is None
