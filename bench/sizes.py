"""How big each benchmark runs: the stated sizes, and a tiny set for the smoke test (structure, not speed)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.logrows import FloodShape


@dataclass(frozen=True)
class Sizes:
    repeats: int  # each timed benchmark repeats this often and reports the median
    diagnose_signals: int
    steady: FloodShape  # the repeat scan: every group already known
    first: FloodShape  # the first scan: every group new
    memory: FloodShape
    arm_latency_s: float
    cold_start_runs: int
    burst_events: int
    burst_redelivered: float  # share of the burst that repeats an earlier event id
    store_upserts_sqlite: int
    store_upserts_table: int
    budget_reservations_sqlite: int
    budget_reservations_table: int
    # the ticket budget's storm: a first scan of this many new groups with the GitHub sink (bench/ticket_budget.py)
    ticket_storm: FloodShape = FloodShape(groups=10_000, principals=2_000, resources=50, rows=20_000,
                                          key_callers=False)
    ticket_budget: int = 25  # TRIAGE_MAX_TICKETS_PER_RUN for it (25 is the setting's default)
    resume_chunk_pairs: int = 100  # evidence pairs a chunk of the resumed first scan (engine/scan_progress)
    # first_scan_scale: a first scan at 10x bench/first_scan's size, on Tables, ARM throttled as documented
    scale_first: FloodShape = FloodShape(groups=10_000, principals=2_000, resources=500, rows=100_000,
                                         key_callers=False)
    scale_repeats: int = 1  # each 10k first scan takes a minute or more: one run each
    # The memory slope's smaller point (the memory shape at a tenth), and the 100k repeat scans timed.
    memory_small: FloodShape = FloodShape(groups=60, principals=6, resources=5, rows=600, routes=2)
    steady_100k_repeats: int = 1
    diagnose_new_shapes: int = 2_000  # texts that each get a shape of their own (fewer than the caches hold)


FULL = Sizes(
    repeats=5,
    diagnose_signals=100_000,
    steady=FloodShape(groups=10_000, principals=2_000, resources=50, rows=1_000_000, assigned_every=20),
    first=FloodShape(groups=1_000, principals=200, resources=50, rows=100_000, key_callers=False),
    memory=FloodShape(groups=100_000, principals=2_000, resources=50, rows=1_000_000, routes=5,
                      assigned_every=50),
    arm_latency_s=0.05,
    cold_start_runs=10,
    burst_events=1_000,
    burst_redelivered=0.3,
    store_upserts_sqlite=1_000,
    store_upserts_table=150,
    budget_reservations_sqlite=1_000,
    budget_reservations_table=200,
    memory_small=FloodShape(groups=10_000, principals=200, resources=50, rows=100_000, routes=5, assigned_every=50),
    steady_100k_repeats=2,
)

TINY = Sizes(
    repeats=1,
    diagnose_signals=500,
    steady=FloodShape(groups=40, principals=10, resources=4, rows=400),
    first=FloodShape(groups=20, principals=5, resources=4, rows=200, key_callers=False),
    memory=FloodShape(groups=60, principals=6, resources=5, rows=600, routes=2),
    arm_latency_s=0.005,
    cold_start_runs=1,
    burst_events=20,
    burst_redelivered=0.3,
    store_upserts_sqlite=20,
    store_upserts_table=10,
    budget_reservations_sqlite=10,
    budget_reservations_table=5,
    ticket_storm=FloodShape(groups=120, principals=40, resources=4, rows=480, key_callers=False),
    ticket_budget=3,
    resume_chunk_pairs=4,
    scale_first=FloodShape(groups=40, principals=10, resources=8, rows=400, key_callers=False),
    memory_small=FloodShape(groups=30, principals=3, resources=5, rows=300, routes=2),
    steady_100k_repeats=1,
    diagnose_new_shapes=100,
)
