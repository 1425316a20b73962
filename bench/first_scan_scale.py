"""first_scan_scale: first scans at production scale, with ARM throttled as ARM documents it.

The stand-in's ARM runs its token buckets (250 reads, then 25/s, per subscription and principal;
localazure/throttle.py) and the service runs its own client-side limiter at its defaults (the same sizes).

- scan_first_s_table_10k: a first scan of 10,000 new groups (2,000 callers, 5 accounts each of 500) with the state
  on Azurite Tables and Resource Graph on (TRIAGE_RESOURCE_GRAPH): wall seconds.
- scan_first_s_table_10k_arm: the same without Resource Graph, one ARM read per principal and per account; its
  baseline is the throttling floor, the time ARM's refill alone takes: (ARM reads beyond the 250 burst) / 25 per s.
- arm_reads_per_scan_first_graph: bench/first_scan's world (1,000 incidents, 200 principals, 50 accounts) with
  Resource Graph on, on SQLite: ARM reads (Resource Graph queries are counted apart, in the note).

Each run is a fresh stand-in (full buckets) and a fresh store. Timings are one run each (`scale_repeats`); the
notes also give the Table requests each scan sent (counted at the HTTP client), which do not vary with the load.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from bench.azurite import table_endpoint
from bench.logrows import FloodShape, load_flood
from bench.results import Metric, median, rounded
from bench.sizes import Sizes
from bench.world import BenchWorldError, bench_world
from localazure.throttle import ThrottleLimits
from shared.engine.scan import run_scan

SPREAD_MINUTES = 9
GRAPH_ROUTE = "resourceGraph.resources"
READ_BURST = ThrottleLimits().reads.burst
READ_REFILL = ThrottleLimits().reads.refill_per_second


@dataclass(frozen=True)
class ScaleRun:
    wall_s: float
    arm_reads: int
    graph_queries: int
    throttled: int  # 429 answers ARM gave
    incidents: int
    table_requests: int = 0  # HTTP requests to the Table service (an entity-group transaction is one)
    transactions: int = 0  # of them, entity-group transactions

    @property
    def floor_s(self) -> float:
        return max(0, self.arm_reads - READ_BURST) / READ_REFILL


@contextmanager
def counting_requests(endpoint: str) -> Iterator[list[int]]:
    """[requests, of them entity-group transactions]: what the SDKs' transport (requests) sends to URLs under
    `endpoint` inside the block."""
    import requests.adapters

    sent = [0, 0]
    send = requests.adapters.HTTPAdapter.send

    def counted(adapter: requests.adapters.HTTPAdapter, request: requests.PreparedRequest, **kwargs: object) -> object:
        url = str(request.url)
        if url.startswith(endpoint):
            sent[0] += 1
            sent[1] += url.endswith("/$batch")
        return send(adapter, request, **kwargs)  # type: ignore[arg-type]

    requests.adapters.HTTPAdapter.send = counted  # type: ignore[assignment, method-assign]
    try:
        yield sent
    finally:
        requests.adapters.HTTPAdapter.send = send  # type: ignore[method-assign]


def _table_service(store: dict[str, str]) -> str:
    connection = store.get("AzureWebJobsStorage", "")
    return next((part.partition("=")[2] for part in connection.split(";") if part.startswith("TableEndpoint=")),
                "(no table service)")


def one_scan(shape: FloodShape, workdir: Path, *, graph: bool, store: dict[str, str]) -> ScaleRun:
    with bench_world(workdir) as world:
        load_flood(world.az, shape, world.clock.now(), timedelta(minutes=SPREAD_MINUTES))
        world.az.set_arm_throttling(True)
        service = world.runtime(TRIAGE_RESOURCE_GRAPH="true" if graph else "false",
                                TRIAGE_ARM_READS_PER_SECOND=str(READ_REFILL), **store)
        try:
            world.az.calls.reset()
            with counting_requests(_table_service(store)) as table_requests:
                started = time.perf_counter()
                report = run_scan(service)
                elapsed = time.perf_counter() - started
        finally:
            service.close()
        calls = world.az.calls
        if report.signals != shape.groups or report.partial:
            raise BenchWorldError(f"first scan saw {report.signals} groups (expected {shape.groups}); partial: "
                                  f"{report.partial}, evidence errors: {report.evidence_errors[:3]}")
        graph_queries = calls.count(service="arm", route=GRAPH_ROUTE)
        return ScaleRun(elapsed, calls.reads("arm") - graph_queries, graph_queries,
                        calls.count(service="arm", status=429), len(report.incidents), *table_requests)


def _tables(connection: str, prefix: str) -> dict[str, str]:
    return {"TRIAGE_STATE_BACKEND": "table", "AzureWebJobsStorage": connection, "TRIAGE_TABLE_PREFIX": prefix}


def run(sizes: Sizes, workdir: Path) -> list[Metric]:
    shape = sizes.scale_first
    graph_runs, arm_runs = [], []
    with table_endpoint(workdir) as connection:
        for n in range(sizes.scale_repeats):
            for runs, graph, name in ((graph_runs, True, "graph"), (arm_runs, False, "arm")):
                run_dir = workdir / f"{name}-{n}"
                run_dir.mkdir()
                runs.append(one_scan(shape, run_dir, graph=graph, store=_tables(connection, f"scale{name}{n}")))
    small_dir = workdir / "graph-first"
    small_dir.mkdir()
    small = one_scan(sizes.first, small_dir, graph=True, store={})
    where = (f"{shape.groups:,} new groups, {shape.principals:,} callers, {shape.resources} accounts, on Azurite "
             f"Tables; ARM throttled (250 reads then 25/s) and the service's limiter on")
    graph_wall = median([r.wall_s for r in graph_runs])
    arm_wall = median([r.wall_s for r in arm_runs])
    g, a = graph_runs[0], arm_runs[0]
    floor = max(r.floor_s for r in arm_runs)
    return [
        Metric("scan_first_s_table_10k", rounded(graph_wall), "s", "<= 60",
               note=f"{where}; Resource Graph on: {g.arm_reads} ARM reads, {g.graph_queries} Resource Graph queries, "
                    f"{g.throttled} answered 429, {g.incidents:,} incidents, {_requests(g)}; {len(graph_runs)} "
                    f"run(s)"),
        Metric("scan_first_s_table_10k_arm", rounded(arm_wall), "s", f"<= {rounded(1.5 * floor)}",
               baseline=rounded(floor),
               note=f"{where}; Resource Graph off: {a.arm_reads} ARM reads, {a.throttled} answered 429, "
                    f"{_requests(a)}; baseline = "
                    f"the throttling floor ({a.arm_reads} - {READ_BURST}) / {READ_REFILL:g} per s; target 1.5x it"),
        Metric("arm_reads_per_scan_first_graph", small.arm_reads, "calls", "<= 5",
               note=f"{sizes.first.groups:,} groups ({small.incidents:,} incidents), {sizes.first.principals} "
                    f"principals, {sizes.first.resources} "
                    f"accounts, Resource Graph on (SQLite): {small.arm_reads} ARM reads and {small.graph_queries} "
                    f"Resource Graph queries (counted apart)"),
    ]


def _requests(run: ScaleRun) -> str:
    per = run.table_requests / run.incidents if run.incidents else 0
    return (f"{run.table_requests:,} Table requests ({per:.2f} per incident; {run.transactions:,} of them "
            f"entity-group transactions)")
