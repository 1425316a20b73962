"""tickets_opened_first_scan_10k, arm_calls_repeat_scan_tickets_queued: the ticket budget in a storm.

A first scan finds 10,000 new failure groups (2,000 Entra callers over 50 accounts, no key callers) with the GitHub
sink configured against the GitHub tracker stand-in, which serves GitHub's documented rate limits and headers
(5,000 requests an hour, 30 searches a minute; 80 content-creating requests a minute, 500 an hour). The service is
in its default mode (recommend) with an empty allowlist, so every incident is ticketed and wants a new issue;
TRIAGE_MAX_TICKETS_PER_RUN (its default, 25) bounds what the scan opens, and the rest wait on their incidents. A
minute later a repeat scan re-reads the same rows (inside the overlap, nothing new) while most tickets still wait:
it must read nothing from ARM, and its drain opens the next budget's worth as grouped issues (one per cause and
account). SQLite store; ARM calls are counted by the stand-in, issues by the GitHub stand-in.
"""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from bench.logrows import load_flood
from bench.results import Metric
from bench.sizes import Sizes
from bench.world import BenchWorldError, bench_world
from shared.engine.scan import run_scan

SPREAD = timedelta(minutes=4)  # the rows stay inside the repeat scan's 10-minute overlap
STEP_SECONDS = 60


def run(sizes: Sizes, workdir: Path) -> list[Metric]:
    shape = sizes.ticket_storm
    with bench_world(workdir, sinks="github", TRIAGE_MAX_TICKETS_PER_RUN=str(sizes.ticket_budget)) as world:
        budget = world.rt.settings.max_tickets_per_run
        rows = load_flood(world.az, shape, world.clock.now(), SPREAD)
        started = time.perf_counter()
        first = run_scan(world.rt)
        first_s = time.perf_counter() - started
        if first.signals != shape.groups or first.partial:
            raise BenchWorldError(f"first scan saw {first.signals} groups (expected {shape.groups}); "
                                  f"partial: {first.partial}")
        opened_first = len(world.trackers.tickets("github"))
        queued_first = sum(1 for i in world.rt.store.list_ticket_pending() if i.ticket_queued)

        world.clock.advance(STEP_SECONDS)
        world.trackers.clock.advance(STEP_SECONDS)  # GitHub's minute windows (search: 30 a minute) move too
        arm_before = world.az.calls.count(service="arm")
        started = time.perf_counter()
        repeat = run_scan(world.rt)
        repeat_s = time.perf_counter() - started
        arm_calls = world.az.calls.count(service="arm") - arm_before
        still_queued = sum(1 for i in world.rt.store.list_ticket_pending() if i.ticket_queued)
        if repeat.signals != shape.groups or not still_queued:
            raise BenchWorldError(f"repeat scan saw {repeat.signals} groups with {still_queued} tickets queued: "
                                  "not the world this benchmark describes")
        issues = world.trackers.tickets("github")
        grouped = sum(1 for t in issues if "grouped into one ticket" in t.body)
    where = (f"{shape.groups:,} new groups from {rows:,} rows, {len(first.incidents):,} incidents, GitHub sink, "
             f"TRIAGE_MAX_TICKETS_PER_RUN={budget}")
    return [
        Metric("tickets_opened_first_scan_10k", opened_first, "tickets", f"<= {budget}",
               note=f"{where}: {queued_first:,} queued after the first scan ({first_s:.0f} s)"),
        Metric("arm_calls_repeat_scan_tickets_queued", arm_calls, "calls", "== 0",
               note=f"{where}: the repeat scan a minute later ({repeat_s:.1f} s) with {still_queued:,} still queued; "
                    f"its drain opened {len(issues) - opened_first} grouped issues ({grouped} grouped in all)"),
    ]
