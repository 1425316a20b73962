"""The storage layout behind the Store contract: the compact settled view answers as the whole incident does, and
data written by the previous layout (Tables: one `incident` partition; SQLite: schema version 1) is migrated on
first start, or refused with a clear message when it comes from a newer version."""

from __future__ import annotations

import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest
from azure.data.tables import TableServiceClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core import triage
from shared.core.incidents import STATUSES, Action, Incident
from shared.core.model import FailureSignal
from shared.core.records import settled_view
from shared.state import codec
from shared.state.base import StoreError
from shared.state.sqlite import SqliteStore
from shared.state.tables import INCIDENT_PARTITIONS, LAYOUT_PARTITION, TableStore, incident_partition, table_key
from tests.state.test_store_contract import T0, audit, make_incident
from tests.support.azurite import unique_table_prefix

# ---- the settled view ----

RULES = sorted(triage.TRANSIENT_RULES | {triage.EVIDENCE_RULE, triage.WITNESS_RULE, triage.REVOKED_RULE,
                                          "allowlist", "mode"})
KINDS = ["diagnosed", "recommended", "ticketed", "assigned", "grant-claimed", "revoked", triage.UNREVOKED,
         "approval-lapsed", "resolved", "waiting", "cause-changed"]
TIMES = st.integers(-3, 3).map(lambda h: T0 + timedelta(hours=h))
OPTIONAL_TIMES = st.none() | TIMES
ACTIONS = st.builds(Action, at=TIMES, kind=st.sampled_from(KINDS),
                    rules=st.lists(st.sampled_from(RULES), max_size=3).map(tuple))
SETTLING = st.builds(
    lambda base, **changes: replace(base, **changes),
    st.just(make_incident(1)),
    status=st.sampled_from(STATUSES), last_seen=TIMES, ticket_pending=st.booleans(),
    actions=st.lists(ACTIONS, max_size=5).map(tuple), assignment_id=st.none() | st.just("/assignments/a1"),
    approval_expires_at=OPTIONAL_TIMES, closed_at=OPTIONAL_TIMES, approval_handle=st.none() | st.just("h"),
    approved_by=st.none() | st.just("alice"), verify_due=OPTIONAL_TIMES, last_grant_at=OPTIONAL_TIMES,
)


@settings(max_examples=400, deadline=None)
@given(incident=SETTLING, seen=OPTIONAL_TIMES, now=TIMES)
def test_the_settled_view_answers_settled_as_the_whole_incident_does(incident, seen, now):
    signal = FailureSignal(status=401, count=2, last_seen=seen, overlap_count=2)
    view = settled_view(incident)
    assert triage.settled(view, signal, now) == triage.settled(incident, signal, now)
    assert view.etag is None and view.diagnosis is None and len(view.actions) <= 2


def test_incidents_spread_over_every_partition():
    partitions = {incident_partition(f"inc-{n:016x}") for n in range(2000)}
    assert len(partitions) == INCIDENT_PARTITIONS
    assert all(p.startswith("i") and len(p) == 3 for p in partitions)


# ---- SQLite: version 1 files ----

_VERSION_1 = (
    """CREATE TABLE incidents (id TEXT PRIMARY KEY, status TEXT NOT NULL, verify_due TEXT,
        record TEXT NOT NULL, etag TEXT NOT NULL)""",
    "CREATE TABLE audit (seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, incident_id TEXT, "
    "record TEXT NOT NULL)",
    "PRAGMA user_version = 1",
)


def _version_1_file(path: str, incidents: list[Incident]) -> None:
    db = sqlite3.connect(path)
    for statement in _VERSION_1:
        db.execute(statement)
    db.executemany("INSERT INTO incidents (id, status, verify_due, record, etag) VALUES (?, ?, NULL, ?, ?)",
                   [(i.id, i.status, codec.incident_to_json(i), f"etag-{n}") for n, i in enumerate(incidents)])
    db.commit()
    db.close()


def test_a_version_1_sqlite_file_is_migrated_on_first_start(tmp_path):
    path = str(tmp_path / "old.sqlite3")
    old = [make_incident(n, count=n) for n in (1, 2, 3)]
    _version_1_file(path, old)
    store = SqliteStore(path)
    try:
        for n, incident in enumerate(old):
            assert store.get_incident(incident.id) == replace(incident, etag=f"etag-{n}")
        assert store.get_settled([i.id for i in old]) == {i.id: settled_view(i) for i in old}
        saved = store.put_incident(replace(old[0], count=99), expected_etag="etag-0")
        assert store.get_settled([saved.id])[saved.id].count == 99
    finally:
        store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3  # 1 → 2 (views) → 3 (indexed columns)
    db.close()
    SqliteStore(path).close()  # a second start finds nothing to do


def test_a_version_2_sqlite_file_gets_its_indexed_columns_on_first_start(tmp_path):
    path = str(tmp_path / "v2.sqlite3")
    principal = make_incident(1).principal_id
    old = [make_incident(1, status="ticketed", ticket_pending=True),
           make_incident(2, status="verifying", assignment_id="/x/roleAssignments/AB", principal_id=principal.upper()),
           make_incident(3, status="resolved", principal_id=principal)]
    db = sqlite3.connect(path)
    for statement in _VERSION_1:
        db.execute(statement)
    db.execute("ALTER TABLE incidents ADD COLUMN settled TEXT")  # what version 2 added
    db.executemany("INSERT INTO incidents (id, status, verify_due, record, etag, settled) VALUES (?, ?, NULL, ?, ?, ?)",
                   [(i.id, i.status, codec.incident_to_json(i), f"etag-{n}", codec.settled_to_json(settled_view(i)))
                    for n, i in enumerate(old)])
    db.execute("PRAGMA user_version = 2")
    db.commit()
    db.close()
    store = SqliteStore(path)
    try:
        assert [i.id for i in store.list_ticket_pending()] == [old[0].id]
        assert [i.id for i in store.incidents_with_assignment("/X/ROLEASSIGNMENTS/ab")] == [old[1].id]
        assert [i.id for i in store.open_incidents_of_principal(principal)] == [old[0].id, old[1].id]
    finally:
        store.close()
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == 3
    plan = " ".join(str(row) for row in db.execute(
        "EXPLAIN QUERY PLAN SELECT record FROM incidents WHERE ticket_pending = 1 ORDER BY id"))
    assert "incidents_by_ticket_pending" in plan  # an index, not a scan of every record
    for query, index in (
            ("EXPLAIN QUERY PLAN SELECT record FROM incidents WHERE assignment = 'a'", "incidents_by_assignment"),
            ("EXPLAIN QUERY PLAN SELECT record FROM incidents WHERE principal = 'p'", "incidents_by_principal"),
            ("EXPLAIN QUERY PLAN SELECT record FROM incidents WHERE verify_due <= 'z'", "incidents_by_verify_due"),
            ("EXPLAIN QUERY PLAN SELECT record FROM incidents WHERE status = 's'", "incidents_by_status")):
        plan = " ".join(str(row) for row in db.execute(query))
        assert index in plan, plan
    db.close()


def test_a_sqlite_file_from_a_newer_version_is_refused_clearly(tmp_path):
    path = str(tmp_path / "newer.sqlite3")
    SqliteStore(path).close()
    db = sqlite3.connect(path)
    db.execute("PRAGMA user_version = 9")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="schema version 9, newer than this version"):
        SqliteStore(path)


# ---- Tables: the single `incident` partition ----


def _legacy_incident_entity(incident: Incident) -> dict:
    """An incident as layout 1 wrote it: partition `incident`, RowKey the escaped id."""
    text = codec.incident_to_json(incident)
    return {"PartitionKey": "incident", "RowKey": table_key(incident.id), "status": incident.status,
            "ticket_pending": incident.ticket_pending, "json_parts": 1, "json_0": text}


def _legacy_audit_entity(incident: Incident, row: str, step: int) -> dict:
    text = codec.audit_to_json(audit(T0, incident.id, "verification", step=step))
    return {"PartitionKey": "incident", "RowKey": f"~audit|{table_key(incident.id)}|{row}", "kind": "verification",
            "audit_row": row, "json_parts": 1, "json_0": text}


@pytest.mark.azurite
def test_table_data_in_the_single_incident_partition_is_moved_on_first_start(azurite):
    prefix = unique_table_prefix()
    old = [make_incident(n, count=n, status=STATUSES[n % len(STATUSES)]) for n in range(1, 31)]
    newer = TableStore(azurite, prefix)  # a copy this version wrote, before layout 1's copy is moved: it wins
    newer.put_incident(replace(old[1], count=1000))
    newer.close()
    service = TableServiceClient.from_connection_string(azurite)
    table = service.get_table_client(prefix + "Incidents")
    for incident in old:
        table.create_entity(_legacy_incident_entity(incident))
    table.create_entity(_legacy_audit_entity(old[0], f"{codec.time_key(T0)}|1|a", 1))

    store = TableStore(azurite, prefix)
    try:
        assert store.get_incident(old[0].id) == replace(old[0], etag=store.get_incident(old[0].id).etag)
        assert store.get_incident(old[1].id).count == 1000
        assert {i.id for i in store.list_incidents()} == {i.id for i in old}
        views = store.get_settled([i.id for i in old])
        assert views[old[0].id] == settled_view(old[0]) and views[old[1].id].count == 1000
        assert [r.inputs["step"] for r in store.list_audit(old[0].id)] == [1]
        assert list(table.query_entities("PartitionKey eq 'incident'")) == []
    finally:
        store.close()
        service.close()


@pytest.mark.azurite
def test_incidents_their_views_and_audit_share_one_partition(azurite):
    prefix = unique_table_prefix()
    store = TableStore(azurite, prefix)
    incident = make_incident(7)
    store.put_incident_audited(incident, None, [audit(T0, incident.id, "decision")])
    service = TableServiceClient.from_connection_string(azurite)
    try:
        rows = [r for r in service.get_table_client(prefix + "Incidents").list_entities()
                if r["PartitionKey"] != LAYOUT_PARTITION]  # the layout marker (layout 3) has its own partition
        assert {r["PartitionKey"] for r in rows} == {incident_partition(incident.id)}
        # the incident, its view, its audit, and its index row (an open incident's principal)
        assert sorted(r["RowKey"].split("|")[0] for r in rows) == [table_key(incident.id), "~audit", "~principal",
                                                                   "~settled"]
    finally:
        store.close()
        service.close()



# ---- the engine's conditional writes start from the copy a store remembers ----


def test_a_stale_remembered_copy_never_decides_a_write_or_a_no_change(tmp_path):
    from shared.engine.unit_of_work import put_incident, retry_on_conflict
    from tests.support.fakes import fake_runtime

    path = str(tmp_path / "two.sqlite3")
    mine, other = fake_runtime(store=SqliteStore(path)), fake_runtime(store=SqliteStore(path))
    created = mine.store.put_incident(make_incident(1, count=1))
    theirs = other.store.put_incident(replace(created, count=10), expected_etag=created.etag)
    assert mine.store.cached_incident(created.id) == created  # stale now
    seen: list[Incident | None] = []

    def unchanged(current: Incident | None) -> Incident | None:
        seen.append(current)
        return current  # the failure changed nothing: no write

    assert retry_on_conflict(mine, created.id, unchanged) == theirs  # answered on the current incident
    assert [i.count for i in seen if i is not None] == [1, 10]

    def add_one(current: Incident | None) -> Incident:
        assert current is not None
        return put_incident(mine, replace(current, count=current.count + 1), current.etag)

    other.store.put_incident(replace(theirs, count=20), expected_etag=theirs.etag)  # mine's copy is stale again
    assert retry_on_conflict(mine, created.id, add_one).count == 21
    assert other.store.get_incident(created.id).count == 21


# ---- the view stays in step with its incident through any sequence of writes, lost races included ----

WRITES = st.lists(st.tuples(st.sampled_from(["create", "replace", "stale", "audited", "batch"]),
                            st.integers(1, 3), st.sampled_from(STATUSES), st.integers(0, 99)), min_size=1, max_size=12)


def _apply_writes(store, writes) -> None:
    read_before: dict[str, Incident] = {}
    for kind, number, status, count in writes:
        incident_id = make_incident(number).id
        current = store.get_incident(incident_id)
        changed = replace(current or make_incident(number), status=status, count=count, etag=None)
        try:
            if kind == "create" or current is None:
                store.put_incident(changed)
            elif kind == "replace":
                store.put_incident(changed, expected_etag=current.etag)
            elif kind == "stale":
                stale = read_before.get(incident_id, current)
                store.put_incident(changed, expected_etag=stale.etag)
            elif kind == "audited":
                store.put_incident_audited(changed, current.etag, [audit(T0, incident_id, "decision")])
            else:
                store.create_incidents([(changed, [audit(T0, incident_id, "decision")])])
        except StoreError:
            pass  # a lost race (ConflictError): nothing of it may show, in the incident or its view
        read_before[incident_id] = current or changed
        stored = {i.id: i for i in store.list_incidents()}
        assert store.get_settled(list(stored) + ["inc-none"]) == {i: settled_view(v) for i, v in stored.items()}


@settings(max_examples=60, deadline=None)
@given(writes=WRITES)
def test_the_view_follows_its_incident_through_any_writes_on_sqlite(writes):
    store = SqliteStore(":memory:")
    try:
        _apply_writes(store, writes)
    finally:
        store.close()


@pytest.mark.azurite
@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=WRITES)
def test_the_view_follows_its_incident_through_any_writes_on_tables(azurite, writes):
    store = TableStore(azurite, "seq" + unique_table_prefix())
    try:
        _apply_writes(store, writes)
    finally:
        store.close()
