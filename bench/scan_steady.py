"""scan_steady_ratio, scan_steady_own_s_per_10k, arm_calls_repeat_scan, ticket_calls_repeat_scan: a repeat scan
over unchanged failures.

10,000 failure groups summarized from 1,000,000 AzureDiagnostics rows (the last 4 minutes before the first scan).
A first scan makes every group a known incident (log sink; not measured). Then, a minute apart, repeat scans by
a service configured with the log and GitHub sinks re-read the same rows: they lie inside the 10-minute overlap
before the watermark, so every group comes back, with nothing new. Each repeat scan is timed against a bare
`LogsQueryClient.query_workspace` of the same KQL over the same window, against the same stand-in, interleaved.
ARM calls are counted by the stand-in, ticket calls by the GitHub tracker stand-in, during the repeat scans only.
The service's own work is each repeat scan's wall time minus the time its source spent inside
`LogsQueryClient.query_workspace` (the HTTP call and the SDK's parsing of the answer: `TimedLogsClient`).
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from bench.logrows import load_flood
from bench.results import Metric, median, rounded
from bench.sizes import Sizes
from bench.world import BenchWorld, BenchWorldError, bench_world
from shared import bootstrap
from shared.adapters import kql
from shared.adapters.logs import LogAnalyticsSource
from shared.engine.runtime import Runtime
from shared.engine.scan import ScanReport, run_scan

SPREAD = timedelta(minutes=4)  # rows stay inside the overlap for 6 one-minute steps
STEP_SECONDS = 60


def bare_client(world: BenchWorld):
    from azure.monitor.query import LogsQueryClient

    from localazure import FakeCredential

    return LogsQueryClient(FakeCredential(), endpoint=world.az.logs_url, connection_verify=world.az.ca_path)


class TimedLogsClient:
    """A LogsQueryClient that adds up the time spent in its queries (the HTTP call and the SDK's parse)."""

    def __init__(self, client: Any):
        self.client = client
        self.seconds = 0.0
        self.queries = 0

    def query_workspace(self, *args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return self.client.query_workspace(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - started
            self.queries += 1

    def close(self) -> None:
        self.client.close()


def timed_service(world: BenchWorld, **changes: str) -> tuple[Runtime, TimedLogsClient]:
    """A service instance like world.runtime(), whose one log source queries through a TimedLogsClient."""
    from localazure import FakeCredential
    from shared.settings import load_settings

    timed = TimedLogsClient(bare_client(world))
    env = {**world.env, **changes}
    service = bootstrap.build_runtime(load_settings(env), credential=FakeCredential(), clock=world.clock.now,
                                      sources=[LogAnalyticsSource(timed, world.az.workspace_id)])
    return service, timed


def timed_call(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def check_steady(report: ScanReport, groups: int, incidents: int) -> None:
    if report.signals != groups or len(report.incidents) != incidents or report.actions or report.partial:
        raise BenchWorldError(
            f"repeat scan saw {report.signals} groups / {len(report.incidents)} incidents (expected {groups} / "
            f"{incidents}), actions {report.actions}, partial {report.partial}")


def run(sizes: Sizes, workdir: Path) -> list[Metric]:
    shape = sizes.steady
    with bench_world(workdir, with_trackers=True) as world:
        rows = load_flood(world.az, shape, world.clock.now(), SPREAD)
        seeding, seed = timed_call(lambda: run_scan(world.rt))
        if seed.signals != shape.groups:
            raise BenchWorldError(f"first scan saw {seed.signals} groups, expected {shape.groups}")
        service, timed = timed_service(world, TRIAGE_TICKET_SINKS="log,github")
        client = bare_client(world)
        source = service.sources[0]
        overlap = timedelta(minutes=service.settings.lookback_overlap_minutes)
        scans, bares, arm_calls, ticket_calls, own = [], [], [], [], []
        try:
            for n in range(sizes.repeats):
                world.clock.advance(STEP_SECONDS)
                watermark = service.store.get_watermark(source.name)
                start, end = watermark - overlap, world.clock.now()
                text = kql.failures_query(start=start, watermark=watermark, end=end)

                def bare(text=text, start=start, end=end):
                    return client.query_workspace(world.az.workspace_id, text, timespan=(start, end))

                arm_before, tickets_before = world.az.calls.count(service="arm"), world.github_calls()
                queried_before = timed.seconds
                if n % 2 == 0:
                    bare_s, _ = timed_call(bare)
                    scan_s, report = timed_call(lambda: run_scan(service))
                else:
                    scan_s, report = timed_call(lambda: run_scan(service))
                    bare_s, _ = timed_call(bare)
                check_steady(report, shape.groups, len(seed.incidents))
                arm_calls.append(world.az.calls.count(service="arm") - arm_before)
                ticket_calls.append(world.github_calls() - tickets_before)
                scans.append(scan_s)
                bares.append(bare_s)
                own.append(scan_s - (timed.seconds - queried_before))
        finally:
            service.close()
            client.close()
            timed.close()
    where = (f"{shape.groups:,} groups from {rows:,} rows ({len(seed.incidents):,} incidents); "
             f"{len(scans)} repeat scans")
    return [
        Metric("scan_steady_ratio", rounded(median(scans) / median(bares)), "ratio", "<= 1.5",
               baseline=rounded(median(bares)),
               note=f"{where}: scan {median(scans):.2f} s vs bare query {median(bares):.2f} s (medians); "
                    f"first scan (every group new, not measured) {seeding:.0f} s"),
        Metric("scan_steady_own_s_per_10k", rounded(median(own) * 10_000 / shape.groups), "s", "<= 0.25",
               note=f"{where}: the repeat scan's wall time outside its log queries (median {median(own):.2f} s "
                    f"for {shape.groups:,} groups; {timed.queries // max(1, len(scans)):.0f} queries a scan)"),
        Metric("arm_calls_repeat_scan", max(arm_calls), "calls", "== 0", note=f"{where}: the most in any"),
        Metric("ticket_calls_repeat_scan", max(ticket_calls), "calls", "== 0",
               note=f"{where}: requests the GitHub tracker stand-in received, the most in any"),
    ]
