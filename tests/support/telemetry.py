"""The service's telemetry port over the OpenTelemetry SDK's in-memory span exporter and metric reader.

    recorder = TelemetryRecorder()
    rt = fake_runtime(env, ..., telemetry=recorder.telemetry)      # or: build_runtime(..., telemetry=...)
    run_scan(rt)
    recorder.names(), recorder.only("grant").attributes, recorder.metric("triage.grants", status="created")

Each recorder has its own providers, so tests need no global OpenTelemetry state (`global_spans` is for what
uses the global tracer provider, as azure-core's tracing does).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from opentelemetry import trace
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import InMemoryMetricReader
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.adapters.telemetry import OpenTelemetry


class TelemetryRecorder:
    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.tracer_provider = tracer_provider or TracerProvider()
        self.tracer_provider.add_span_processor(SimpleSpanProcessor(self.exporter))
        self.reader = InMemoryMetricReader()
        self.telemetry = OpenTelemetry(tracer_provider=self.tracer_provider,
                                       meter_provider=MeterProvider(metric_readers=[self.reader]))

    # ---- spans ----

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def names(self) -> list[str]:
        return [span.name for span in self.spans()]

    def named(self, name: str) -> list[ReadableSpan]:
        return [span for span in self.spans() if span.name == name]

    def only(self, name: str) -> ReadableSpan:
        (span,) = self.named(name)
        return span

    def ancestry(self, span: ReadableSpan) -> list[str]:
        """The names of the span's ancestors among the recorded spans, nearest first."""
        by_id = {s.context.span_id: s for s in self.spans()}
        names = []
        parent = span.parent
        while parent is not None and parent.span_id in by_id:
            found = by_id[parent.span_id]
            names.append(found.name)
            parent = found.parent
        return names

    # ---- metrics ----

    def metric(self, name: str, **attributes: Any) -> float | None:
        """The current value of the metric's point with exactly these attributes (a counter's total); None if the
        metric or the point was never recorded."""
        for point in self.points(name):
            if dict(point.attributes or {}) == attributes:
                return point.value
        return None

    def points(self, name: str) -> list[Any]:
        data = self.reader.get_metrics_data()
        if data is None:
            return []
        return [point for resource in data.resource_metrics for scope in resource.scope_metrics
                for metric in scope.metrics if metric.name == name for point in metric.data.data_points]


def trace_id_of(span: ReadableSpan) -> str:
    return trace.format_trace_id(span.context.trace_id)


@contextmanager
def global_spans() -> Iterator[TelemetryRecorder]:
    """A recorder on the process's global tracer provider (installed once per process), emptied on the way in."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        provider = TracerProvider()
        trace.set_tracer_provider(provider)
    recorder = TelemetryRecorder(provider)
    try:
        yield recorder
    finally:
        recorder.exporter.shutdown()
