"""What the engine tells its telemetry port (`core.ports.Telemetry`): a span per step, and what a run measured.

The engine never imports OpenTelemetry. `rt.telemetry` is `NoTelemetry` unless the composition root gave the
runtime the OpenTelemetry adapter (`shared/adapters/telemetry.py`, only when Application Insights is configured),
so with telemetry off a step costs one empty context manager. Metric names are those documented in docs/deploy.md.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from typing import TYPE_CHECKING, Concatenate, ParamSpec, TypeVar

from shared.core.ports import Attribute
from shared.core.sources import advances_watermark

if TYPE_CHECKING:
    from shared.engine.runtime import Runtime
    from shared.engine.scan import ScanReport
    from shared.engine.sources import SourceRead
    from shared.engine.unit_of_work import RunState

SIGNALS = "triage.signals"  # failure signals a scan read (after client records joined server rows)
REJECTED_ROWS = "triage.rejected_rows"  # by source
PARTIAL_RESULTS = "triage.partial_results"  # reads that answered partially, by source
GRANTS = "triage.grants"  # role assignment outcomes, by status
VERIFICATIONS = "triage.verifications"  # by outcome
TICKET_ERRORS = "triage.ticket_errors"  # by sink and kind (auth: the tracker refused the credentials)
BREAKER_OPEN = "triage.breaker.open"  # gauge: 1 while the circuit breaker stops grants
WATERMARK_LAG = "triage.watermark.lag"  # gauge, seconds from a source's watermark to the scan's now, by source

P = ParamSpec("P")
T = TypeVar("T")


class NoTelemetry:
    """Telemetry off: every call does nothing."""

    def span(self, name: str, **attributes: Attribute) -> AbstractContextManager[object]:
        return nullcontext()

    def annotate(self, **attributes: Attribute) -> None:
        return None

    def count(self, name: str, amount: int = 1, **attributes: Attribute) -> None:
        return None

    def gauge(self, name: str, value: float, **attributes: Attribute) -> None:
        return None

    def trace_id(self) -> str | None:
        return None


def traced(name: str) -> Callable[[Callable[Concatenate[Runtime, P], T]], Callable[Concatenate[Runtime, P], T]]:
    """Run an engine step (a function whose first argument is the runtime) inside a span called `name`."""

    def decorate(step: Callable[Concatenate[Runtime, P], T]) -> Callable[Concatenate[Runtime, P], T]:
        @functools.wraps(step)
        def in_span(rt: Runtime, /, *args: P.args, **kwargs: P.kwargs) -> T:
            with rt.telemetry.span(name):
                return step(rt, *args, **kwargs)

        return in_span

    return decorate


def measure_scan(rt: Runtime, run: RunState, report: ScanReport, reads: list[SourceRead], *, targeted: bool) -> None:
    """A scan's counters and gauges, and its span's attributes, from what it read and reported."""
    telemetry = rt.telemetry
    kind = "targeted" if targeted else "timer"
    telemetry.annotate(correlation_id=report.correlation_id, scan=kind, signals=report.signals,
                       incidents=len(report.incidents), failed_sources=len(report.failed_sources))
    telemetry.count(SIGNALS, report.signals, scan=kind)
    for read in reads:
        if read.batch is not None:
            telemetry.count(REJECTED_ROWS, len(read.batch.rejected), source=read.name)
            telemetry.count(PARTIAL_RESULTS, int(bool(read.batch.partial_errors)), source=read.name)
        # The watermark as the scan left it (a targeted scan leaves them all alone).
        moved = not targeted and read.batch is not None and advances_watermark(read.check)
        watermark = read.batch.end if moved and read.batch is not None else read.watermark
        if watermark is not None:
            telemetry.gauge(WATERMARK_LAG, max(0.0, (run.now - watermark).total_seconds()), source=read.name)
    telemetry.gauge(BREAKER_OPEN, int(run.breaker_open))
