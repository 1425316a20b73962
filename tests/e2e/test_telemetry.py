"""Telemetry with the real adapters over the stand-in (issue 15): a scan's trace reaches into the evidence pool's
threads (azure-core's own HTTP spans are children of the evidence span), audit records carry the trace id, and the
counters say what the scan did. And the cost side: with no connection string neither importing the Function App
nor building its runtime loads OpenTelemetry; with one, the Azure Monitor distro is configured once.

The OpenTelemetry SDK's in-memory exporter and metric reader stand in for Application Insights.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest
from azure.core.settings import settings as azure_core_settings

from tests.support.engine import service_world
from tests.support.functions_worker import call_http, deliver, failure_cloudevent, http_request, installed_world
from tests.support.paths import REPO_ROOT
from tests.support.telemetry import TelemetryRecorder, global_spans, trace_id_of

ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"
WINDOW = 120
TELEMETRY_MODULES = ("opentelemetry", "azure.monitor.opentelemetry", "azure.core.tracing.ext")


@pytest.fixture
def azure_core_spans() -> Iterator[TelemetryRecorder]:
    """azure-core's tracing on (as the distro turns it on), recorded with the service's spans; off afterwards."""
    with global_spans() as recorder:
        before = azure_core_settings.tracing_implementation()
        azure_core_settings.tracing_implementation = "opentelemetry"
        try:
            yield recorder
        finally:
            azure_core_settings.tracing_implementation = before


def test_a_scan_over_the_stand_in_is_one_trace_down_to_the_evidence_threads_http_calls(tmp_path,
                                                                                       azure_core_spans):
    recorder = azure_core_spans
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}],
                       propagation_seconds=WINDOW) as world:
        world.rt.telemetry = recorder.telemetry
        world.failing_caller(ORDERS)
        world.run_traffic(3)
        first = world.scan()
        assert first.actions == {"assign": 1}
        incident = world.incident_of(ORDERS)

        scan = recorder.only("scan")
        ours = {"scan", "source.read", "evidence", "decide", "grant", "verify"}
        assert ours <= set(recorder.names())
        assert {trace_id_of(span) for span in recorder.spans()} == {trace_id_of(scan)}
        # The evidence look-ups ran in the pool's threads, yet their HTTP calls are children of the evidence span.
        evidence_calls = [s for s in recorder.spans() if s.name not in ours
                          and recorder.ancestry(s)[:1] == ["evidence"]]
        assert evidence_calls, [(s.name, recorder.ancestry(s)) for s in recorder.spans()]
        assert all(recorder.ancestry(s)[-1] == "scan" for s in recorder.spans() if s is not scan)
        assert [s for s in recorder.spans() if s.name not in ours
                and "grant" in recorder.ancestry(s)]  # the ARM PUT under the grant
        audit = [a for a in world.rt.store.list_audit(incident.id) if a.correlation_id == first.correlation_id]
        assert [a.kind for a in audit] == ["decision", "action"]
        assert {a.trace_id for a in audit} == {trace_id_of(scan)}
        assert recorder.metric("triage.grants", status="created") == 1
        assert recorder.metric("triage.signals", scan="timer") == 1

        world.run_traffic(2)
        world.advance(WINDOW)
        world.run_traffic(2)
        assert world.scan().verifications == {"resolved": 1}
        assert recorder.metric("triage.verifications", outcome="resolved") == 1
        assert recorder.metric("triage.breaker.open") == 0
        assert recorder.metric("triage.watermark.lag", source=world.rt.sources[0].name) == 0


def test_an_event_delivery_and_an_http_call_are_each_one_trace_from_the_function_down(tmp_path):
    recorder = TelemetryRecorder()
    with installed_world(tmp_path, mode="recommend") as world:
        world.clock.set_now("2026-11-22T10:01:30Z")
        world.rt.telemetry = recorder.telemetry
        deliver(failure_cloudevent("9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d", count=4))
        (incident,) = world.rt.store.list_incidents()
        event = recorder.only("event")
        assert event.parent is None and event.attributes["triage.result"] == "processed"
        assert event.attributes["triage.event_id"] == "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
        assert {"decide", "ticket"} <= {s.name for s in recorder.spans() if recorder.ancestry(s)[-1:] == ["event"]}
        assert {a.trace_id for a in world.rt.store.list_audit(incident.id)} == {trace_id_of(event)}

        status, body = call_http("incident", http_request("GET", f"incidents/{incident.id}",
                                                          route_params={"incident_id": incident.id}))
        assert status == 200 and recorder.only("incident").parent is None
        assert {entry["trace_id"] for entry in body["audit"]} == {trace_id_of(event)}


def run_python(code: str, **env: str) -> dict:
    """`code` in a fresh interpreter with only the interpreter's environment and `env`; its last line, as JSON."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("TRIAGE_", "APPLICATIONINSIGHTS_", "PYTHON_APPLICATIONINSIGHTS_", "OTEL_"))}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env={**clean, **env}, capture_output=True,
                            text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


# What an instance's first invocation does before it runs a step (the runtime itself needs a store, which the cost
# measured here leaves out): quiet azure-core, set telemetry up; then what it loaded and how long that took.
FIRST_INVOCATION = """
import json, logging, os, sys, time
import function_app
from shared import bootstrap
from shared.settings import load_settings
started = time.perf_counter()
bootstrap.quiet_azure_http_logging()
telemetry = bootstrap.instance_telemetry(load_settings())
again = bootstrap.instance_telemetry(load_settings())
seconds = time.perf_counter() - started
configured = None
if telemetry is not None:
    from opentelemetry import trace
    with telemetry.span("probe"):
        assert telemetry.trace_id() and telemetry.trace_id() == again.trace_id()
    configured = type(trace.get_tracer_provider()).__module__
print(json.dumps({"loaded": sorted(m for m in sys.modules if m.startswith(PREFIXES)), "configured": configured,
                  "seconds": seconds, "http_level": logging.getLogger(bootstrap.AZURE_HTTP_LOGGER).level,
                  "handlers": [type(h).__name__ for h in logging.getLogger("triage").handlers]}))
sys.stdout.flush()
os._exit(0)  # no exporter flush at exit: the endpoint in the test accepts nothing
"""


def first_invocation(tmp_path, **env: str) -> dict:
    return run_python(f"PREFIXES = {TELEMETRY_MODULES!r}\n" + FIRST_INVOCATION, TMPDIR=str(tmp_path), **env)


def test_without_a_connection_string_nothing_of_opentelemetry_is_loaded(tmp_path):
    out = first_invocation(tmp_path)
    assert out["loaded"] == [] and out["configured"] is None
    assert out["http_level"] == 30 and out["handlers"] == []  # azure-core quieted all the same


def test_with_a_connection_string_the_azure_monitor_distro_is_configured_once_on_first_use(tmp_path):
    out = first_invocation(
        tmp_path,
        APPLICATIONINSIGHTS_CONNECTION_STRING="InstrumentationKey=00000000-0000-0000-0000-000000000000;"
                                              "IngestionEndpoint=https://127.0.0.1:9/",
        APPLICATIONINSIGHTS_STATSBEAT_DISABLED_ALL="true")
    assert out["configured"] == "opentelemetry.sdk.trace"
    assert "azure.monitor.opentelemetry" in out["loaded"]
    assert out["handlers"] == ["LoggingHandler"]  # the service's own logs are exported, once
    assert out["http_level"] == 30
