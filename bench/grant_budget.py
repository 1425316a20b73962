"""grant_reservation_ms_sqlite / grant_reservation_ms_table: the cost of reserving one slot of the grant budget
(shared/engine/budget.py) before a role-assignment write: one read of the budget record and one conditional write
of it, with no contention (reported, no target yet).

The record holds 19 slots already (a day one grant short of the default cap of 20), as it would late on a busy
day; each timed reservation is given back untimed, so every one sees the same record. SQLite on a file in the work
directory; Tables on an in-memory Azurite.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from bench.azurite import table_endpoint
from bench.results import Metric, median
from bench.sizes import Sizes
from shared.bootstrap import build_runtime
from shared.engine import budget
from shared.settings import load_settings
from shared.state.base import Store

HELD = 19


class _Nothing:
    """The ports a reservation never calls."""

    name = "none"

    def new_run(self) -> None:
        return None


def _runtime(store: Store) -> Any:
    settings = load_settings({"TRIAGE_MAX_GRANTS_PER_DAY": "1000", "TRIAGE_MAX_GRANTS_PER_HOUR": "1000"})
    nothing: Any = _Nothing()
    return build_runtime(settings, store=store, sources=[], evidence=nothing, roles=nothing, sinks=[])


def reservation_ms(store: Store, count: int) -> float:
    """Median milliseconds of one reservation, over `count` reservations each given back afterwards."""
    rt = _runtime(store)
    for n in range(HELD):
        assert budget.reserve(rt, f"inc-held-{n}").reservation is not None
    times = []
    for n in range(count):
        started = time.perf_counter()
        answer = budget.reserve(rt, f"inc-bench-{n}")
        times.append((time.perf_counter() - started) * 1000)
        assert answer.reservation is not None
        budget.release(rt, answer.reservation)
    return median(times)


def _sqlite(sizes: Sizes, workdir: Path) -> Metric:
    from shared.state.sqlite import SqliteStore

    runs = []
    for n in range(sizes.repeats):
        store = SqliteStore(str(workdir / f"budget-{n}.sqlite3"))
        try:
            runs.append(reservation_ms(store, sizes.budget_reservations_sqlite))
        finally:
            store.close()
    return Metric("grant_reservation_ms_sqlite", round(median(runs), 3), "ms", None,
                  note=f"one read + one conditional write (BEGIN IMMEDIATE) of a {HELD}-slot record; median of "
                       f"{sizes.budget_reservations_sqlite} reservations, median of {len(runs)} runs")


def _table(sizes: Sizes, workdir: Path) -> Metric:
    from shared.state.tables import TableStore

    runs = []
    with table_endpoint(workdir) as connection:
        for n in range(sizes.repeats):
            store = TableStore(connection, prefix=f"budget{n}")
            try:
                store.ping()  # creates the tables: not part of a reservation
                runs.append(reservation_ms(store, sizes.budget_reservations_table))
            finally:
                store.close()
    return Metric("grant_reservation_ms_table", round(median(runs), 3), "ms", None,
                  note=f"one GET + one If-Match PUT of a {HELD}-slot entity against Azurite (in memory, loopback); "
                       f"median of {sizes.budget_reservations_table} reservations, median of {len(runs)} runs")


def run(sizes: Sizes, workdir: Path) -> list[Metric]:
    return [_sqlite(sizes, workdir), _table(sizes, workdir)]
