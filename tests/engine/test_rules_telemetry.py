"""Telemetry over the fakes (issue 15): a scan is one trace of its steps, its audit records carry that trace's id,
and a run's counters and gauges say what it read, granted, verified and failed at. Off, nothing is recorded.

The OpenTelemetry SDK's in-memory exporter and metric reader stand in for Application Insights
(tests/support/telemetry.py); the same over the stand-in with the real adapters is tests/e2e/test_telemetry.py.
"""

from __future__ import annotations

import logging

from opentelemetry.trace import StatusCode

from shared import bootstrap
from shared.engine.queries import incident_detail
from shared.engine.scan import run_scan
from shared.engine.telemetry import NoTelemetry
from shared.settings import load_settings
from shared.tickets.base import TicketAuthError
from tests.engine.common import ORDERS, STRANGER, incident_of
from tests.support.telemetry import TelemetryRecorder, trace_id_of

STEPS = {"scan", "source.read", "evidence", "decide", "grant", "ticket", "verify"}


def test_a_scan_is_one_trace_of_its_steps(make_runtime, traffic, store):
    recorder = TelemetryRecorder()
    rt = make_runtime(mode="enforce", allowlist=[ORDERS], telemetry=recorder.telemetry)
    traffic(3, failing=[ORDERS, STRANGER])  # one is granted, the other refused and ticketed
    report = run_scan(rt)

    assert STEPS <= set(recorder.names())
    scan = recorder.only("scan")
    assert scan.parent is None and len({trace_id_of(s) for s in recorder.spans()}) == 1
    assert all(recorder.ancestry(span)[-1] == "scan" for span in recorder.spans() if span is not scan)
    assert recorder.ancestry(recorder.only("grant")) == ["scan"]
    assert len(recorder.named("decide")) == 2
    assert scan.attributes["triage.correlation_id"] == report.correlation_id
    assert scan.attributes["triage.signals"] == 2 and scan.attributes["triage.scan"] == "timer"
    grant = recorder.only("grant")
    assert grant.attributes["triage.status"] == "created"
    assert grant.attributes["triage.incident_id"] == incident_of(store, ORDERS).id
    assert recorder.only("source.read").attributes["triage.source"] == rt.sources[0].name
    assert recorder.only("evidence").attributes["triage.pairs"] == 2


def test_every_audit_record_of_the_scan_carries_its_trace_id(make_runtime, traffic, store):
    recorder = TelemetryRecorder()
    rt = make_runtime(mode="enforce", allowlist=[ORDERS], telemetry=recorder.telemetry)
    traffic(3, failing=[ORDERS, STRANGER])
    report = run_scan(rt)
    records = [a for a in store.list_audit() if a.correlation_id == report.correlation_id]
    assert {a.kind for a in records} >= {"action", "refusal"}
    assert {a.trace_id for a in records} == {trace_id_of(recorder.only("scan"))}
    shown = incident_detail(rt, incident_of(store, ORDERS).id)["audit"]  # GET /api/incidents/{id}
    assert {entry["trace_id"] for entry in shown} == {trace_id_of(recorder.only("scan"))}


def test_a_runs_counters_and_gauges(make_runtime, traffic, source, sink, clock):
    recorder = TelemetryRecorder()
    rt = make_runtime(mode="enforce", allowlist=[ORDERS], telemetry=recorder.telemetry)
    name = source.name
    source.add_malformed_row({"TimeGenerated": "yesterday"}, "TimeGenerated is not a time")
    traffic(3, failing=[ORDERS, STRANGER])
    sink.fail_next(TicketAuthError("tracker: 401 Bad credentials"))
    run_scan(rt)
    assert recorder.metric("triage.signals", scan="timer") == 2
    assert recorder.metric("triage.rejected_rows", source=name) == 1
    assert recorder.metric("triage.partial_results", source=name) == 0
    assert recorder.metric("triage.grants", status="created") == 1
    assert recorder.metric("triage.ticket_errors", sink=sink.name, kind="auth") == 1
    assert recorder.metric("triage.watermark.lag", source=name) == 0  # read completely up to now
    assert recorder.metric("triage.breaker.open") == 0

    traffic(4, succeeding=[ORDERS])
    source.partial_reads()
    run_scan(rt)
    assert recorder.metric("triage.verifications", outcome="resolved") == 1
    assert recorder.metric("triage.partial_results", source=name) == 1
    assert recorder.metric("triage.watermark.lag", source=name) == 4 * 60  # a partial answer keeps the watermark
    assert recorder.metric("triage.signals", scan="timer") == 2 + 1  # half of the two groups, as partial answers do

    clock.advance(minutes=5)
    source.fail_reads()
    run_scan(rt)
    assert recorder.metric("triage.watermark.lag", source=name) == 9 * 60
    failed = recorder.named("source.read")[-1]
    assert failed.status.status_code == StatusCode.ERROR
    assert [event.name for event in failed.events] == ["exception"]


def test_the_ticket_step_is_a_span_and_a_sink_error_is_counted_by_sink(make_runtime, traffic, sink):
    recorder = TelemetryRecorder()
    rt = make_runtime(mode="recommend", allowlist=[ORDERS], telemetry=recorder.telemetry)
    traffic(2, failing=[ORDERS])
    sink.fail_next()
    run_scan(rt)
    assert recorder.metric("triage.ticket_errors", sink=sink.name, kind="error") == 1
    assert recorder.ancestry(recorder.named("ticket")[0]) == ["scan"]


def test_telemetry_is_off_by_default_and_records_carry_no_trace_id(make_runtime, traffic, store):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    assert isinstance(rt.telemetry, NoTelemetry)
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    assert {a.trace_id for a in store.list_audit()} == {None}


def test_the_instance_gets_no_telemetry_without_a_connection_string():
    assert bootstrap.instance_telemetry(load_settings({})) is None


def test_azure_cores_http_logging_is_quieted_unless_a_level_was_chosen():
    http_log = logging.getLogger(bootstrap.AZURE_HTTP_LOGGER)
    before = http_log.level
    try:
        http_log.setLevel(logging.NOTSET)
        bootstrap.quiet_azure_http_logging()
        assert http_log.level == logging.WARNING
        http_log.setLevel(logging.DEBUG)  # an operator chasing a problem keeps what they chose
        bootstrap.quiet_azure_http_logging()
        assert http_log.level == logging.DEBUG
    finally:
        http_log.setLevel(before)
