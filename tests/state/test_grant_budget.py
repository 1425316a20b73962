"""The grant budget's reservation (shared/engine/budget.py) on both backends, by several processes at once: SQLite
processes sharing one file, and processes on one real Azurite through the real azure-data-tables client. However
they interleave, no more slots are taken than the cap, and a slot given back is free again."""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from shared.core.budget import BUDGET_KEY
from shared.engine import budget
from shared.state.base import Store
from shared.state.sqlite import SqliteStore
from shared.state.tables import TableStore
from tests.support.azurite import unique_table_prefix
from tests.support.fakes import ManualClock, fake_runtime

pytestmark = pytest.mark.slow  # processes, and Azurite for the table backend

PROCESSES = 4
RESERVATIONS_EACH = 3
DAY_CAP = 5


def _runtime(store: Store) -> Any:
    env = {"TRIAGE_MAX_GRANTS_PER_DAY": str(DAY_CAP), "TRIAGE_MAX_GRANTS_PER_HOUR": "1000"}
    return fake_runtime(env, clock=ManualClock(), store=store, sources=[], sinks=[])  # type: ignore[arg-type]


def _reserve_in_process(open_store: Callable[[], Store], start: Any, queue: Any) -> None:
    store = open_store()
    try:
        rt = _runtime(store)
        start.wait()
        taken = [budget.reserve(rt, f"inc-{n}").reservation for n in range(RESERVATIONS_EACH)]
        queue.put([r.token for r in taken if r is not None])
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which fails the test
        queue.put(f"error: {type(exc).__name__}: {exc}")
    finally:
        store.close()


class _Sqlite:
    def __init__(self, path: str):
        self.path = path

    def __call__(self) -> Store:
        return SqliteStore(self.path)


class _Tables:
    def __init__(self, connection: str, prefix: str):
        self.connection, self.prefix = connection, prefix

    def __call__(self) -> Store:
        return TableStore(self.connection, self.prefix)


@pytest.fixture(params=["sqlite", pytest.param("table", marks=pytest.mark.azurite)])
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Callable[[], Store]:
    if request.param == "sqlite":
        return _Sqlite(str(tmp_path / "state.sqlite3"))
    opener = _Tables(request.getfixturevalue("azurite"), unique_table_prefix())
    opener().ping()  # the tables exist before the processes race for the budget record
    return opener


def test_processes_reserving_at_once_never_take_more_than_the_cap(open_store):
    context = multiprocessing.get_context("fork")
    start, queue = context.Event(), context.Queue()
    workers = [context.Process(target=_reserve_in_process, args=(open_store, start, queue))
               for _ in range(PROCESSES)]
    for worker in workers:
        worker.start()
    start.set()
    answers = [queue.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    errors = [a for a in answers if isinstance(a, str)]
    assert not errors, errors
    tokens = [token for answer in answers for token in answer]
    assert len(tokens) == DAY_CAP == len(set(tokens))

    store = open_store()
    try:
        value, _ = store.get_value(BUDGET_KEY)
        assert sorted(s["token"] for s in value["slots"]) == sorted(tokens)
        rt = _runtime(store)
        assert budget.reserve(rt, "one-more").reservation is None
        slot = budget.Reservation(tokens[0], "inc-0", rt.clock())
        assert budget.release(rt, slot) and budget.reserve(rt, "one-more").reservation is not None
    finally:
        store.close()
