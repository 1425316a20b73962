"""Every source stands alone (issue 11): a workspace without its table is "no data yet" and the scan goes on; a
source that fails is recorded with its whole message, the others are handled, and the run reports it; the
watermark of a failed or no-data source does not move; each source's health is kept in the store."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.adapters.logs import SourceError
from shared.core.sources import health_key
from shared.engine.events import handle_event_safely
from shared.engine.scan import run_scan
from shared.engine.sources import source_health
from tests.engine.common import ACCOUNT, ORDERS, STRANGER, incident_of
from tests.support.fakes import FakeSource

FORBIDDEN = ("logs:ws-denied: Log Analytics query on workspace ws-denied failed: HTTP 403 InsufficientAccessError: "
             "The provided credentials have insufficient access to perform the requested operation")


@pytest.fixture
def second(clock) -> FakeSource:
    return FakeSource(clock, name="logs:ws-second")


@pytest.fixture
def runtime(make_runtime, source, second):
    """A runtime reading two workspaces: the shared `source` and `second`."""

    def build(mode: str = "observe", **options):
        return make_runtime(mode=mode, sources=[source, second], **options)

    return build


def health(store, name: str) -> dict:
    value, _ = store.get_value(health_key(name))
    assert value is not None, f"no health recorded for {name}"
    return value


def test_a_workspace_without_the_table_is_no_data_yet_beside_a_healthy_one(runtime, source, second, traffic, store):
    rt = runtime()
    second.without_table("AzureDiagnostics")
    source.fail(ORDERS, ACCOUNT, count=3)
    traffic(1)
    report = run_scan(rt)

    assert not report.failed and report.failed_sources == [] and report.evidence_errors == []
    assert report.sources[source.name]["state"] == "ok"
    no_data = report.sources[second.name]
    assert no_data["state"] == "no_data" and not no_data["transient"]
    assert "Failed to resolve table or column expression named 'AzureDiagnostics'" in no_data["detail"]
    assert incident_of(store, ORDERS).count == 3  # the healthy workspace was handled
    # Nothing was read from the empty workspace, so its watermark does not claim anything was.
    assert store.get_watermark(source.name) is not None and store.get_watermark(second.name) is None
    assert health(store, second.name)["state"] == "no_data" and health(store, source.name)["state"] == "ok"
    audits = [a for a in store.list_audit() if a.kind == "source-health"]
    assert [a.inputs["state"] for a in audits if a.inputs["source"] == second.name] == ["no_data"]

    run_scan(rt)  # unchanged: recorded, but audited once
    audits = [a for a in store.list_audit() if a.kind == "source-health" and a.inputs["source"] == second.name]
    assert len(audits) == 1


def test_when_the_first_diagnostics_arrive_the_window_is_read_from_the_initial_lookback(runtime, second, store,
                                                                                         clock):
    rt = runtime()
    second.without_table()
    run_scan(rt)
    # Issue 13: the look-back is anchored at the first attempt, so first runs that read nothing lose nothing.
    anchored = clock.now() - timedelta(minutes=60)
    second.fail(STRANGER, ACCOUNT, count=2, at=clock.now() - timedelta(minutes=50))  # ingested late, as first data is
    second.with_table()
    clock.advance(minutes=5)
    report = run_scan(rt)
    assert report.sources[second.name]["state"] == "ok"
    assert second.reads[-1].watermark is None
    assert second.reads[-1].start == anchored
    assert incident_of(store, STRANGER).count == 2
    assert store.get_watermark(second.name) == clock.now()
    assert health(store, second.name)["state"] == "ok"


def test_a_forbidden_source_is_reported_with_its_whole_message_and_the_others_handled(runtime, source, second,
                                                                                      traffic, store, clock):
    rt = runtime()
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    first_success = clock.now()
    watermark = store.get_watermark(second.name)
    assert watermark == first_success

    traffic(2, failing=[ORDERS])
    second.fail_reads(SourceError(FORBIDDEN))
    report = run_scan(rt)
    assert report.failed and report.failed_sources == [second.name]
    failed = report.sources[second.name]
    assert {k: failed[k] for k in ("state", "detail", "transient", "partial")} == {
        "state": "failed", "detail": FORBIDDEN, "transient": False, "partial": False}
    assert failed["last_success"] == first_success.isoformat() and failed["last_error"] == FORBIDDEN
    assert report.to_json()["failed_sources"] == [second.name]
    assert incident_of(store, ORDERS).count == 8  # the healthy source was read and counted
    assert store.get_watermark(second.name) == watermark  # a failed read does not move its watermark
    assert store.get_watermark(source.name) == clock.now()

    stored = health(store, second.name)
    assert stored["state"] == "failed" and stored["last_error"] == FORBIDDEN
    assert stored["last_success"] == first_success.isoformat() and stored["last_error_at"] == clock.now().isoformat()
    [listed] = [h for h in source_health(rt) if h["name"] == second.name]
    assert listed["last_error"] == FORBIDDEN

    clock.advance(minutes=1)
    recovered = run_scan(rt)
    assert not recovered.failed
    stored = health(store, second.name)
    assert stored["state"] == "ok" and stored["since"] == clock.now().isoformat()
    assert stored["last_error"] == FORBIDDEN  # kept after the recovery, with its time


def test_a_transient_failure_is_marked_so(runtime, second):
    rt = runtime()
    second.fail_reads(SourceError("logs:ws-second: HTTP 503"), times=1)
    second.fail_reads(ConnectionError("connection reset by peer"))
    first = run_scan(rt)
    assert first.sources[second.name]["transient"] is False  # a bare SourceError carries no transient cause
    second_report = run_scan(rt)
    assert second_report.sources[second.name]["transient"] is True


def alert_event(clock, event_id: str = "alert-evt") -> dict:
    alert = {"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {
        "alertId": "alert-1", "alertRule": "aoai-401-403", "monitorCondition": "Fired",
        "firedDateTime": clock.now().isoformat(), "alertTargetIDs": [ACCOUNT.lower()]}}}
    return {"id": event_id, "eventType": "Contoso.Monitoring.AlertFired", "subject": "aoai-401-403",
            "eventTime": clock.now().isoformat(), "data": alert}


def test_an_alert_scan_with_a_transiently_failing_source_is_retried_after_the_others_are_handled(
        runtime, source, second, store, clock):
    rt = runtime(mode="recommend")
    source.fail(ORDERS, ACCOUNT, count=3, at=clock.now() - timedelta(minutes=2))
    second.fail_reads(ConnectionError("Log Analytics unreachable"))
    with pytest.raises(ConnectionError):
        handle_event_safely(rt, alert_event(clock))
    # The healthy source was handled before the retry was asked for (a targeted scan leaves counting to the timer).
    handled = incident_of(store, ORDERS)
    assert handled.status == "ticketed"
    assert health(store, second.name)["state"] == "failed"
    assert handle_event_safely(rt, alert_event(clock)).result == "processed"  # the redelivery is processed
    assert incident_of(store, ORDERS).id == handled.id


@pytest.mark.parametrize("problem", ["no_data", "forbidden"])
def test_an_alert_scan_is_acknowledged_when_a_retry_cannot_help(runtime, source, second, store, clock, problem):
    rt = runtime(mode="recommend")
    source.fail(ORDERS, ACCOUNT, count=3, at=clock.now() - timedelta(minutes=2))
    if problem == "no_data":
        second.without_table()
    else:
        second.fail_reads(SourceError(FORBIDDEN))
    assert handle_event_safely(rt, alert_event(clock)).result == "processed"
    assert incident_of(store, ORDERS).status == "ticketed"
    assert health(store, second.name)["state"] == ("no_data" if problem == "no_data" else "failed")


def test_a_source_that_cannot_be_read_defers_a_verification_and_one_without_its_table_counts_nothing(
        runtime, source, second, traffic, store, clock):
    rt = runtime(mode="enforce", allowlist=[ORDERS])
    second.without_table()
    traffic(3, failing=[ORDERS])
    run_scan(rt)
    assert incident_of(store, ORDERS).status == "verifying"

    traffic(3, succeeding=[ORDERS])
    source.fail_activity()
    deferred = run_scan(rt)
    assert deferred.verifications == {"deferred": 1}  # half the traffic must not resolve or escalate anything
    assert incident_of(store, ORDERS).status == "verifying"

    clock.advance(minutes=1)
    assert run_scan(rt).verifications == {"resolved": 1}  # the table-less workspace counted no traffic
