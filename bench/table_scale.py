"""eventgrid_burst_s_table, eventgrid_burst_store_ops_per_event_table, scan_steady_ratio_table: the production store.

The burst and the repeat scan of bench/eventgrid_burst.py and bench/scan_steady.py, with Azure Table Storage (a
real Azurite, in memory, on loopback) as the store instead of SQLite.

- The burst: the same 1,000 `AOAI.Triage.Failure` events (700 distinct, 300 redeliveries) handed to function_app's
  `events` function with 16 deliveries at once (DELIVERIES_AT_ONCE): Event Grid pushes deliveries concurrently and
  one instance's Python worker runs them on its thread pool; 16 is the concurrency this benchmark states and
  measures. 50 ms of latency on every ARM call. A redelivery that finds its first delivery still being handled is
  refused as in flight (transient), as the engine answers Event Grid, and so is one whose incident kept changing
  under the other deliveries' writes; those are delivered again after the burst, as Event Grid retries, and their
  time and operations count. Two bursts, each in a fresh world: the time is their median, the operations the
  run with the most.
- Storage operations are counted at the HTTP level: the Table client's transport counts every request it sends
  (a point read, a query page, an entity-group transaction and a create are one each; retries would count again),
  from the first delivery to the last. Per distinct event = all of them / distinct events; the redeliveries' own
  count (their requests, from the thread that handled them) is in the note.
- The repeat scan: 10,000 groups from 1,000,000 rows, seeded by a first scan on SQLite whose incidents and
  watermark are then written into Tables with `create_incidents` (batched, not measured); then a service on
  Tables runs repeat scans, each timed against the bare Log Analytics query of the same window, interleaved.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

from azure.core.pipeline.transport import RequestsTransport

from bench import eventgrid_burst as burst_bench
from bench import scan_steady as steady_bench
from bench.azurite import table_endpoint
from bench.logrows import load_flood
from bench.results import Metric, median, rounded
from bench.sizes import Sizes
from bench.world import BenchWorld, BenchWorldError, bench_world
from localazure import FakeCredential
from shared import bootstrap
from shared.adapters import kql
from shared.engine.runtime import Runtime
from shared.engine.scan import run_scan
from shared.settings import load_settings

DELIVERIES_AT_ONCE = 16
TABLE_REPEATS = 3  # repeat scans on Tables: the median of three
BURST_REPEATS = 2  # bursts on Tables (each a fresh world): the group's budget is 150 s
COPY_BATCH = 2_000


class CountingTransport(RequestsTransport):
    """The HTTP transport of the store's Table clients: counts each request it sends, by the label of the thread
    that sent it (`label`), and by method and table operation."""

    def __init__(self) -> None:
        super().__init__()
        self._lock = threading.Lock()
        self.by_label: Counter[str] = Counter()
        self.by_operation: Counter[str] = Counter()
        self.local = threading.local()

    def send(self, request: Any, **kwargs: Any) -> Any:
        path = request.url.split("?", 1)[0].rsplit("/", 1)[-1]
        operation = f"{request.method} {path.split('(', 1)[0]}{'(keys)' if '(' in path else ''}"
        if path == "$batch":
            body = request.body if isinstance(request.body, bytes | str) else b""
            text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
            # A change set names its table in each request line: `.../<prefix>Events(...)` for an upsert or a
            # replace, `.../<prefix>Events HTTP/1.1` for a create.
            operation += " Events" if "Events(" in text or "Events HTTP/" in text else " Incidents"
        with self._lock:
            self.by_label[getattr(self.local, "label", "other")] += 1
            self.by_operation[operation] += 1
        return super().send(request, **kwargs)

    def reset(self) -> None:
        with self._lock:
            self.by_label.clear()
            self.by_operation.clear()

    @property
    def total(self) -> int:
        return sum(self.by_label.values())

    @contextmanager
    def labelled(self, label: str) -> Iterator[None]:
        self.local.label = label
        try:
            yield
        finally:
            self.local.label = "other"


def _table_runtime(world: BenchWorld, connection: str, prefix: str, transport: CountingTransport | None = None,
                   **changes: str) -> Runtime:
    from shared.state.tables import TableStore

    options = {"transport": transport} if transport is not None else {}
    store = TableStore(connection, prefix=prefix, **options)
    env = {**world.env, **changes}
    return bootstrap.build_runtime(load_settings(env), credential=FakeCredential(), clock=world.clock.now,
                                   store=store)


# ---- the burst ----


@dataclass
class BurstResult:
    wall_s: float
    ops: int
    redelivery_ops: int
    unique: int
    redeliveries: int
    retried: int  # deliveries refused (in flight, or a transient failure) and delivered again
    incidents: int
    operations: Counter[str] = field(default_factory=Counter)


def one_burst(sizes: Sizes, workdir: Path, connection: str, prefix: str) -> BurstResult:
    import function_app
    from shared.bootstrap import set_runtime
    from shared.engine.deliveries import DeliveryInFlight

    with burst_bench._world(workdir) as world:  # noqa: SLF001 - the same world as the SQLite burst
        burst_bench._prepare(world)
        deliveries, unique = burst_bench.deliveries(world, sizes.burst_events, sizes.burst_redelivered)
        world.az.faults.add("arm", route=".*", delay=sizes.arm_latency_s, times=None)
        transport = CountingTransport()
        rt = _table_runtime(world, connection, prefix, transport)
        rt.store.ping()  # creates the tables: not part of the burst
        handler = function_app.events.build().get_user_function()
        seen: set[str] = set()
        labelled = []
        for delivery in deliveries:
            labelled.append((burst_bench._event(delivery, burst_bench.TOPIC),
                             "again" if delivery.id in seen else "first"))
            seen.add(delivery.id)
        refused: list[tuple[Any, str]] = []
        refused_lock = threading.Lock()

        def deliver(item: tuple[Any, str]) -> None:
            event, label = item
            with transport.labelled(label):
                try:
                    handler(event)
                except Exception as exc:  # noqa: BLE001 - a transient failure is retried by Event Grid
                    if not isinstance(exc, DeliveryInFlight) and not rt.transient(exc):
                        raise
                    with refused_lock:
                        refused.append(item)

        set_runtime(rt)
        transport.reset()
        try:
            started = time.perf_counter()
            with ThreadPoolExecutor(max_workers=DELIVERIES_AT_ONCE) as pool:
                list(pool.map(deliver, labelled))
            retried = len(refused)
            for _ in range(5):  # Event Grid retries what was refused as in flight
                again, refused[:] = list(refused), []
                for item in again:
                    deliver(item)
                if not refused:
                    break
            wall = time.perf_counter() - started
            ops, by_label, operations = transport.total, Counter(transport.by_label), Counter(transport.by_operation)
        finally:
            set_runtime(None)
        if refused:
            raise BenchWorldError(f"{len(refused)} deliveries stayed in flight after five retries")
        incidents = rt.store.list_incidents()
        rt.close()
    counted = sum(i.count for i in incidents)
    if counted != unique:
        raise BenchWorldError(f"the burst counted {counted} failures of {unique} distinct events")
    return BurstResult(wall, ops, by_label["again"], unique, len(deliveries) - unique, retried, len(incidents),
                       operations)


# ---- the repeat scan ----


def _copy_into(source: Runtime, target: Runtime) -> int:
    """Every incident and watermark of the seeding store, written into Tables in batches."""
    incidents = source.store.list_incidents()
    for at in range(0, len(incidents), COPY_BATCH):
        written = target.store.create_incidents([(i, ()) for i in incidents[at : at + COPY_BATCH]])
        if any(w is None for w in written):
            raise BenchWorldError("the Tables store already held an incident being seeded")
    for src in source.sources:
        mark = source.store.get_watermark(src.name)
        if mark is not None:
            target.store.set_watermark(src.name, mark)
    return len(incidents)


def steady(sizes: Sizes, workdir: Path, connection: str) -> tuple[list[float], list[float], int, int, float]:
    """(repeat-scan seconds, bare-query seconds, rows, incidents, seconds spent seeding)."""
    shape = sizes.steady
    with bench_world(workdir, with_trackers=True) as world:
        rows = load_flood(world.az, shape, world.clock.now(), steady_bench.SPREAD)
        started = time.perf_counter()
        seed = run_scan(world.rt)
        if seed.signals != shape.groups:
            raise BenchWorldError(f"first scan saw {seed.signals} groups, expected {shape.groups}")
        service = _table_runtime(world, connection, "steady", TRIAGE_TICKET_SINKS="log,github")
        incidents = _copy_into(world.rt, service)
        seeding = time.perf_counter() - started
        client = steady_bench.bare_client(world)
        source = service.sources[0]
        overlap = timedelta(minutes=service.settings.lookback_overlap_minutes)
        scans, bares = [], []
        try:
            for n in range(min(sizes.repeats, TABLE_REPEATS)):
                world.clock.advance(steady_bench.STEP_SECONDS)
                watermark = service.store.get_watermark(source.name)
                start, end = watermark - overlap, world.clock.now()
                text = kql.failures_query(start=start, watermark=watermark, end=end)

                def bare(text=text, start=start, end=end):
                    return client.query_workspace(world.az.workspace_id, text, timespan=(start, end))

                arm_before, tickets_before = world.az.calls.count(service="arm"), world.github_calls()
                if n % 2 == 0:
                    bare_s, _ = steady_bench.timed_call(bare)
                    scan_s, report = steady_bench.timed_call(lambda: run_scan(service))
                else:
                    scan_s, report = steady_bench.timed_call(lambda: run_scan(service))
                    bare_s, _ = steady_bench.timed_call(bare)
                steady_bench.check_steady(report, shape.groups, len(seed.incidents))
                if world.az.calls.count(service="arm") != arm_before or world.github_calls() != tickets_before:
                    raise BenchWorldError("a repeat scan on Tables called ARM or a tracker: it is no steady state")
                scans.append(scan_s)
                bares.append(bare_s)
        finally:
            service.close()
            client.close()
    return scans, bares, rows, incidents, seeding


def run(sizes: Sizes, workdir: Path) -> list[Metric]:
    bursts = []
    with table_endpoint(workdir) as connection:
        for n in range(min(sizes.repeats, BURST_REPEATS)):
            run_dir = workdir / f"burst-{n}"
            run_dir.mkdir()
            bursts.append(one_burst(sizes, run_dir, connection, f"burst{n}"))
        (workdir / "steady").mkdir()
        scans, bares, rows, incidents, seeding = steady(sizes, workdir / "steady", connection)
    last = bursts[-1]
    where = (f"{sizes.burst_events:,} events ({last.unique:,} distinct, {last.redeliveries:,} redeliveries) -> "
             f"{last.incidents} incidents, Azurite Tables, {DELIVERIES_AT_ONCE} deliveries at once, "
             f"{sizes.arm_latency_s * 1000:.0f} ms per ARM call")
    per_event = max(b.ops / b.unique for b in bursts)
    per_redelivery = max(b.redelivery_ops / max(b.redeliveries, 1) for b in bursts)
    top = ", ".join(f"{name} {count}" for name, count in last.operations.most_common(6))
    shape = sizes.steady
    return [
        Metric("eventgrid_burst_s_table", rounded(median([b.wall_s for b in bursts])), "s", "<= 3",
               note=f"{where}; {max(b.retried for b in bursts)} refused (in flight or transient) and delivered "
                    f"again (the most in a run); median of {len(bursts)}"),
        Metric("eventgrid_burst_store_ops_per_event_table", rounded(per_event), "ops", "<= 3",
               note=f"{where}: Table requests sent during the burst / distinct events, the most in a run; "
                    f"{per_redelivery:.2f} per redelivery; last run: {top}"),
        Metric("scan_steady_ratio_table", rounded(median(scans) / median(bares)), "ratio", "<= 1.5",
               baseline=rounded(median(bares)),
               note=f"{shape.groups:,} groups from {rows:,} rows ({incidents:,} incidents) on Azurite Tables; "
                    f"{len(scans)} repeat scans: scan {median(scans):.2f} s vs bare query {median(bares):.2f} s "
                    f"(medians); seeding (first scan on SQLite, copied in batches; not measured) {seeding:.0f} s"),
    ]
