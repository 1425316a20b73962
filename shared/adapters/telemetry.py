"""The engine's telemetry port over OpenTelemetry, and Application Insights export through the Azure Monitor distro.

Imported only by the composition root when APPLICATIONINSIGHTS_CONNECTION_STRING is set (or by tests, with their own
providers): with telemetry off nothing of OpenTelemetry is loaded. The engine's span and metric names are in
shared/engine/telemetry.py; span attributes are given the `triage.` prefix here, metric attributes are not.

In Azure Functions the Python worker configures the distro itself when PYTHON_APPLICATIONINSIGHTS_ENABLE_TELEMETRY
is true (exporting the records of the logger PYTHON_APPLICATIONINSIGHTS_LOGGER_NAME names; the template says
`triage`, as here), and attaches each invocation's trace context from the host; then it is not configured a second
time here.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from shared.core.ports import Attribute

INSTRUMENTATION = "aoai-auth-triage"
SERVICE_LOGGER = "triage"  # the records exported as logs: the service's own loggers, not the SDKs'
# As the worker does: the Functions resource detector names the service after the app (AppRoleName, which the alert
# rules filter on), and the distro's default detectors are not run (its VM detector asks the instance metadata
# endpoint, which a Functions instance does not serve).
RESOURCE_DETECTORS = ("OTEL_EXPERIMENTAL_RESOURCE_DETECTORS", "azure_functions")

_configure_lock = threading.Lock()


class OpenTelemetry:
    """`core.ports.Telemetry` over the OpenTelemetry API: the global providers unless given others (tests)."""

    def __init__(self, tracer_provider: Any = None, meter_provider: Any = None):
        from opentelemetry import metrics, trace

        self._trace = trace
        self._tracer = trace.get_tracer(INSTRUMENTATION, tracer_provider=tracer_provider)
        self._meter = metrics.get_meter(INSTRUMENTATION, meter_provider=meter_provider)
        self._instruments: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    @contextmanager
    def span(self, name: str, **attributes: Attribute) -> Iterator[object]:
        # start_as_current_span records an exception leaving the block and marks the span as failed.
        with self._tracer.start_as_current_span(name, attributes=_prefixed(attributes)) as current:
            yield current

    def annotate(self, **attributes: Attribute) -> None:
        self._trace.get_current_span().set_attributes(_prefixed(attributes))

    def count(self, name: str, amount: int = 1, **attributes: Attribute) -> None:
        self._instrument("counter", name).add(amount, _plain(attributes))

    def gauge(self, name: str, value: float, **attributes: Attribute) -> None:
        self._instrument("gauge", name).set(value, _plain(attributes))

    def trace_id(self) -> str | None:
        context = self._trace.get_current_span().get_span_context()
        return self._trace.format_trace_id(context.trace_id) if context.is_valid else None

    def _instrument(self, kind: str, name: str) -> Any:
        # One instrument per name: the SDK warns about (and ignores) a second registration of the same name.
        with self._lock:
            found = self._instruments.get((kind, name))
            if found is None:
                create = self._meter.create_counter if kind == "counter" else self._meter.create_gauge
                found = self._instruments[(kind, name)] = create(name)
            return found


def azure_monitor_telemetry(connection_string: str) -> OpenTelemetry:
    """Telemetry exported to Application Insights: the distro is configured once per process (unless the Functions
    worker configured it already), and the port then uses its global providers."""
    with _configure_lock:
        if not sdk_configured():
            from azure.monitor.opentelemetry import configure_azure_monitor

            os.environ.setdefault(*RESOURCE_DETECTORS)
            configure_azure_monitor(connection_string=connection_string, logger_name=SERVICE_LOGGER)
    return OpenTelemetry()


def sdk_configured() -> bool:
    """Whether an OpenTelemetry SDK tracer provider is installed (the API's default is a proxy that does nothing)."""
    from opentelemetry import trace

    return not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)


def _prefixed(attributes: dict[str, Attribute]) -> dict[str, Attribute]:
    return {f"triage.{key}": _value(value) for key, value in attributes.items()}


def _plain(attributes: dict[str, Attribute]) -> dict[str, Attribute]:
    return {key: _value(value) for key, value in attributes.items()}


def _value(value: Attribute) -> Attribute:
    # The engine's StrEnums (statuses, actions) are exported by their text.
    return str(value) if isinstance(value, str) else value
