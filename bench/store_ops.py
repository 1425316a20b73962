"""store_ops_per_s_sqlite / store_ops_per_s_table: incident upserts per second (reported, no target yet).

Each incident is written twice, as the engine does: created (conditional insert), then replaced at the etag the
create returned (a decision recorded). The incidents are what the engine writes: a real diagnosis of a corpus
signal merged by the lifecycle. SQLite on a file in the work directory; Tables on an in-memory Azurite.
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

from bench.azurite import table_endpoint
from bench.diagnose_speed import corpus
from bench.results import Metric, median
from bench.sizes import Sizes
from shared.core import incidents as inc
from shared.core.diagnose import diagnose
from shared.core.incidents import Action, Incident
from shared.core.lifecycle import open_or_update
from shared.state.base import Store


def incidents(count: int) -> list[Incident]:
    out = []
    for n, (signal, evidence, now) in enumerate(corpus(count, seed=11)):
        diagnosis = diagnose(signal, evidence, now=now)
        incident = open_or_update(None, signal, diagnosis, now)
        out.append(replace(incident, id=f"inc-bench{n:011x}"))  # key callers share a fingerprint: keep ids apart
    return out


def upserts_per_second(store: Store, batch: list[Incident]) -> float:
    started = time.perf_counter()
    for incident in batch:
        created = store.put_incident(incident)
        decided = replace(created, status=inc.TICKETED).with_action(Action(created.last_seen, "ticketed", "#1"))
        store.put_incident(decided, expected_etag=created.etag)
    return 2 * len(batch) / (time.perf_counter() - started)


def _sqlite(sizes: Sizes, workdir: Path) -> Metric:
    from shared.state.sqlite import SqliteStore

    batch = incidents(sizes.store_upserts_sqlite)
    rates = []
    for n in range(sizes.repeats):
        store = SqliteStore(str(workdir / f"store-{n}.sqlite3"))
        try:
            rates.append(upserts_per_second(store, batch))
        finally:
            store.close()
    return Metric("store_ops_per_s_sqlite", round(median(rates)), "upserts/s", None,
                  note=f"{2 * len(batch):,} upserts per run (create + replace at etag), median of {len(rates)}")


def _table(sizes: Sizes, workdir: Path) -> Metric:
    from shared.state.tables import TableStore

    batch = incidents(sizes.store_upserts_table)
    rates = []
    with table_endpoint(workdir) as connection:
        for n in range(sizes.repeats):
            store = TableStore(connection, prefix=f"bench{n}")
            try:
                store.ping()  # creates the tables: not part of the upserts
                rates.append(upserts_per_second(store, batch))
            finally:
                store.close()
    return Metric("store_ops_per_s_table", round(median(rates)), "upserts/s", None,
                  note=f"{2 * len(batch):,} upserts per run against Azurite (in memory, loopback), "
                       f"median of {len(rates)}")


def run(sizes: Sizes, workdir: Path) -> list[Metric]:
    return [_sqlite(sizes, workdir), _table(sizes, workdir)]
