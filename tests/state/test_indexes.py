"""The index rows of the Table layout (shared/state/table_index.py): exactly the rows the stored incidents call for,
whatever the writes and lost races; built for data of layout 2 on first start, by several processes at once; and
what the timer cycle and the role-assignment events ask Table Storage is RowKey ranges and point reads, never a
scan of an incident partition or of the table."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from azure.core import MatchConditions
from azure.data.tables import TableClient, TableServiceClient, UpdateMode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core import incidents as inc
from shared.core.allowlist import normalize_object_id
from shared.core.incidents import STATUSES, Incident
from shared.state import table_index
from shared.state.base import ConflictError
from shared.state.tables import (
    INCIDENT_PARTITIONS,
    LAYOUT_PARTITION,
    LAYOUT_ROW,
    TableStore,
    incident_partition,
    table_key,
)
from tests.state.test_store_contract import ASSIGNMENT, T0, audit, make_incident
from tests.support.azurite import unique_table_prefix

pytestmark = pytest.mark.azurite

INDEX_PREFIXES = (table_index.DUE, table_index.PENDING, table_index.STATUS, table_index.ASSIGNMENT,
                  table_index.PRINCIPAL)


@contextmanager
def raw_table(connection: str, prefix: str) -> Iterator[TableClient]:
    service = TableServiceClient.from_connection_string(connection)
    try:
        yield service.get_table_client(prefix + "Incidents")
    finally:
        service.close()


def stored_rows(table: TableClient) -> tuple[dict[str, Any], set[tuple[str, str]]]:
    """The incident entities by RowKey, and the (partition, RowKey) of every index row in the table."""
    entities = list(table.list_entities())
    incidents = {e["RowKey"]: e for e in entities if not e["RowKey"].startswith("~")}
    rows = {(e["PartitionKey"], e["RowKey"]) for e in entities if e["RowKey"].startswith(INDEX_PREFIXES)}
    return incidents, rows


def expected_rows(incidents: list[Incident]) -> set[tuple[str, str]]:
    return {(incident_partition(i.id), row) for i in incidents
            for row in table_index.rows_of(i, table_key(i.id), table_key)}


def assert_index_exact(store: TableStore, table: TableClient) -> None:
    """Every index row the stored incidents call for exists, no other does, and each incident lists its own; and
    each indexed query answers as a filter over every incident would."""
    everything = store.list_incidents()
    entities, rows = stored_rows(table)
    assert rows == expected_rows(everything)
    for incident in everything:
        listed = json.loads(entities[table_key(incident.id)]["index_rows"])
        assert set(listed) == {row for _, row in expected_rows([incident])}
    assert store.due_verifications(T0) == [i for i in sorted(everything, key=lambda i: (i.verify_due or T0, i.id))
                                           if i.is_open and i.verify_due is not None and i.verify_due <= T0]
    assert store.list_ticket_pending() == [i for i in everything if i.ticket_pending]
    for status in STATUSES:
        assert store.list_incidents(status) == [i for i in everything if i.status == status]
    for assignment in (ASSIGNMENT, ASSIGNMENT + "2"):
        assert store.incidents_with_assignment(assignment) == [
            i for i in everything if (i.assignment_id or "").lower() == assignment.lower()]
    principal = make_incident(1).principal_id
    assert store.open_incidents_of_principal(principal) == [
        i for i in everything if i.is_open and normalize_object_id(i.principal_id) == principal]


# ---- through any writes, the index rows are exactly those of the incidents stored ----

CHANGES = st.fixed_dictionaries({
    "status": st.sampled_from(STATUSES), "verify_due": st.none() | st.just(T0) | st.just(T0 + timedelta(hours=1)),
    "ticket_pending": st.booleans(), "assignment_id": st.sampled_from([None, ASSIGNMENT, ASSIGNMENT + "2"]),
    "principal_id": st.sampled_from([make_incident(1).principal_id, make_incident(1).principal_id.upper(), None]),
})
WRITES = st.lists(st.tuples(st.sampled_from(["create", "replace", "stale", "audited", "batch", "replace-batch",
                                             "fresh-store"]), st.integers(1, 3), CHANGES), min_size=1, max_size=10)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(writes=WRITES)
def test_index_rows_follow_their_incidents_through_any_writes_and_lost_races(azurite, writes):
    prefix = unique_table_prefix()
    store = TableStore(azurite, prefix)
    first_read: dict[str, Incident] = {}
    with raw_table(azurite, prefix) as table:
        try:
            for kind, number, changes in writes:
                incident_id = make_incident(number).id
                current = store.get_incident(incident_id)
                first_read.setdefault(incident_id, current or make_incident(number))
                changed = replace(current or make_incident(number), **changes, etag=None)
                try:
                    if current is None:
                        store.create_incidents([(changed, ())]) if kind == "batch" else store.put_incident(changed)
                    elif kind == "stale":
                        store.put_incident(changed, expected_etag=first_read[incident_id].etag or "never")
                    elif kind == "audited":
                        store.put_incident_audited(changed, current.etag, [audit(T0, incident_id, "decision")])
                    elif kind == "replace-batch":
                        store.replace_incidents([(changed, first_read[incident_id].etag or "never", ())])
                    elif kind == "fresh-store":  # an instance that never read it replaces it at its etag
                        other = TableStore(azurite, prefix)
                        other.put_incident(changed, expected_etag=current.etag)
                        other.close()
                    else:
                        store.put_incident(changed, expected_etag=current.etag)
                except ConflictError:
                    pass  # a lost race: none of its index rows may show
                assert_index_exact(store, table)
        finally:
            store.close()


def test_an_assignment_id_too_long_for_a_key_part_is_hashed_and_still_found(azurite):
    prefix = unique_table_prefix()
    store = TableStore(azurite, prefix)
    long_id = ASSIGNMENT + "/x" * 400
    try:
        created = store.put_incident(make_incident(1, status=inc.VERIFYING, assignment_id=long_id))
        assert store.incidents_with_assignment(long_id.upper()) == [created]
        assert store.incidents_with_assignment(long_id + "y") == []
        with raw_table(azurite, prefix) as table:
            assert all(len(row) < 512 for _, row in stored_rows(table)[1])
    finally:
        store.close()


# ---- layout 2 (no index rows) is indexed on first start ----


def _as_layout_2(table: TableClient) -> None:
    """What layout 2 left: the incidents with their views and audit, no index rows, no `index_rows`, no marker."""
    for entity in list(table.list_entities()):
        if entity["RowKey"].startswith(INDEX_PREFIXES) or entity["PartitionKey"] == LAYOUT_PARTITION:
            table.delete_entity(entity["PartitionKey"], entity["RowKey"])
        elif "index_rows" in entity:
            del entity["index_rows"]
            table.update_entity(entity, mode=UpdateMode.REPLACE, etag=entity.metadata["etag"],
                                match_condition=MatchConditions.IfNotModified)


def test_table_data_of_layout_2_gets_its_index_rows_on_first_start_by_many_processes_at_once(azurite, caplog):
    prefix = unique_table_prefix()
    old = [make_incident(n, status=STATUSES[n % len(STATUSES)], verify_due=T0 if n % 3 else None,
                         ticket_pending=n % 4 == 0, assignment_id=ASSIGNMENT if n == 5 else None,
                         principal_id=make_incident(1).principal_id) for n in range(1, 121)]
    writer = TableStore(azurite, prefix)
    writer.create_incidents([(i, [audit(T0, i.id, "decision")]) for i in old])
    writer.close()
    with raw_table(azurite, prefix) as table:
        _as_layout_2(table)
        assert stored_rows(table)[1] == set()
        stores = [TableStore(azurite, prefix) for _ in range(4)]
        start = threading.Barrier(len(stores))

        def first_use(store: TableStore) -> None:
            start.wait()
            store.due_verifications(T0)

        threads = [threading.Thread(target=first_use, args=(s,)) for s in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        try:
            assert table.get_entity(LAYOUT_PARTITION, LAYOUT_ROW)["version"] == 3
            assert_index_exact(stores[0], table)
            assert len(stores[1].list_incidents()) == 120
            assert [i.id for i in stores[2].incidents_with_assignment(ASSIGNMENT)] == [old[4].id]
            assert stores[3].get_settled([old[0].id])[old[0].id].count == old[0].count
            assert [r.kind for r in stores[3].list_audit(old[0].id)] == ["decision"]
            assert any("added index rows" in r.getMessage() for r in caplog.records)
        finally:
            for store in stores:
                store.close()
    later = TableStore(azurite, prefix)  # the marker is there: nothing to index (one point read)
    try:
        calls = record_queries_during(lambda: later.ping())
        assert [(f, p) for _, f, p in calls] == [("PartitionKey eq @p", {"p": "incident"})]  # layout 1's, empty
    finally:
        later.close()


def test_an_incident_written_by_layout_2_after_the_move_is_indexed_by_its_next_write(azurite):
    prefix = unique_table_prefix()
    store = TableStore(azurite, prefix)
    try:
        created = store.put_incident(make_incident(1, status=inc.VERIFYING, verify_due=T0, ticket_pending=True))
        with raw_table(azurite, prefix) as table:
            _as_layout_2(table)  # as an instance of the old version would have written it (the marker stays)
            table.upsert_entity({"PartitionKey": LAYOUT_PARTITION, "RowKey": LAYOUT_ROW, "version": 3})
            fresh = TableStore(azurite, prefix)
            assert fresh.due_verifications(T0) == []  # invisible to the index until written again
            current = fresh.get_incident(created.id)
            fresh.put_incident(replace(current, count=9), expected_etag=current.etag)
            assert [i.count for i in fresh.due_verifications(T0)] == [9]
            assert_index_exact(fresh, table)
            fresh.close()
    finally:
        store.close()


# ---- what the timer cycle and a role-assignment event ask Table Storage ----

RANGE_IN_A_PARTITION = ("PartitionKey eq @p and RowKey ge @low and RowKey lt @high",
                        "PartitionKey eq @p and RowKey ge @low and RowKey le @high")
# Small partitions read whole, by design (docs/state.md): one suppression per target; the grants of the days from
# the cap's window (the daily grant cap bounds them).
SMALL_PARTITIONS = {"PartitionKey eq 'suppression' and until gt @now", "PartitionKey ge @day and at ge @since"}


def record_queries_during(work: Any) -> list[tuple[str, str, dict[str, Any]]]:
    """Every query the store's Table clients send while `work` runs: (table, filter, parameters); a listing of a
    whole table is recorded as the filter "<all>"."""
    calls: list[tuple[str, str, dict[str, Any]]] = []
    query, listing = TableClient.query_entities, TableClient.list_entities

    def recorded_query(self: TableClient, query_filter: str, **kwargs: Any) -> Any:
        calls.append((self.table_name, query_filter, dict(kwargs.get("parameters") or {})))
        return query(self, query_filter, **kwargs)

    def recorded_listing(self: TableClient, **kwargs: Any) -> Any:
        calls.append((self.table_name, "<all>", {}))
        return listing(self, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(TableClient, "query_entities", recorded_query)
        patch.setattr(TableClient, "list_entities", recorded_listing)
        work()
    return calls


def assert_no_scan(calls: list[tuple[str, str, dict[str, Any]]]) -> None:
    incident_partitions = {f"i{n:02x}" for n in range(INCIDENT_PARTITIONS)}
    for table, query_filter, parameters in calls:
        if query_filter in SMALL_PARTITIONS:
            continue
        assert query_filter in RANGE_IN_A_PARTITION, f"a scan of {table}: {query_filter} {parameters}"
        assert table.endswith("Incidents") and parameters["p"] in incident_partitions
        assert parameters["low"] <= parameters["high"]  # index rows, or the incidents many of them name


def test_a_timer_cycle_and_role_assignment_events_read_ranges_and_points_never_a_scan(azurite):
    from shared.engine.events import handle_event_safely
    from shared.engine.scan import run_scan
    from tests.engine.common import (
        ACCOUNT,
        OPENAI_USER,
        ORDERS,
        TRUSTED_TOPIC,
        failure_event,
        role_assignment_event,
        topic_failure_event,
    )
    from tests.support.fakes import FakeEvidence, FakeRoleWriter, FakeSource, ManualClock, RecordingSink, fake_runtime

    clock = ManualClock()
    evidence = FakeEvidence(clock)
    evidence.add_account(ACCOUNT)
    source, sink = FakeSource(clock), RecordingSink()
    store = TableStore(azurite, unique_table_prefix())
    env = {"TRIAGE_PROPAGATION_WINDOW_SECONDS": "120", "TRIAGE_INGESTION_LAG_SECONDS": "60", "TRIAGE_MODE": "enforce",
           "TRIAGE_ALLOWLIST": f'[{{"object_id": "{ORDERS}"}}]', "TRIAGE_TRUSTED_EVENT_TOPICS": TRUSTED_TOPIC}
    rt = fake_runtime(env, clock=clock, store=store, sources=[source], evidence=evidence,
                      roles=FakeRoleWriter(evidence, clock), sinks=[sink])
    try:
        store.ping()  # tables created and the layout checked: not what a cycle costs
        granted = record_queries_during(lambda: handle_event_safely(rt, topic_failure_event("evt-grant")))
        [incident] = store.list_incidents()
        assert incident.assignment_id
        evidence.remove(incident.assignment_id)
        delete_event = role_assignment_event(incident.assignment_id, event_id="delete-own", deleted=True)
        on_delete = record_queries_during(lambda: handle_event_safely(rt, delete_event))
        assert store.get_incident(incident.id).status == inc.TICKETED
        assignment_id = evidence.assign(ORDERS, OPENAI_USER, ACCOUNT, age=timedelta(0))
        on_write = record_queries_during(
            lambda: handle_event_safely(rt, role_assignment_event(assignment_id, event_id="write-1")))
        assert store.get_incident(incident.id).status == inc.VERIFYING  # found by its principal
        handle_event_safely(rt, failure_event("evt-other", object_id=ORDERS))
        clock.advance(hours=1)  # its verification is due
        for _ in range(3):
            source.succeed(ORDERS, ACCOUNT, count=5)
            clock.advance(minutes=1)
        report: list[Any] = []
        cycle = record_queries_during(lambda: report.append(run_scan(rt)))
        assert sum(report[0].verifications.values()) == 1
        for calls in (granted, on_delete, on_write, cycle):
            assert_no_scan(calls)
        kinds = {(p["low"].split("|")[0]) for _, f, p in on_delete + on_write + cycle if "low" in p}
        assert {"~assignment", "~principal", "~due", "~pending", "~status"} <= kinds
    finally:
        store.close()


def test_many_incidents_named_in_one_partition_are_read_by_one_range_not_a_point_read_each(azurite):
    same = [n for n in range(1, 3000) if incident_partition(make_incident(n).id) == "i00"][:90]
    store = TableStore(azurite, unique_table_prefix())
    try:
        created = store.create_incidents([(make_incident(n, ticket_pending=k % 9 != 0), ()) for k, n in
                                          enumerate(same)])
        store.create_incidents([(make_incident(n, ticket_pending=True), ()) for n in (5001, 5002)])  # elsewhere
        reads: list[str] = []
        get_entity = TableClient.get_entity

        def counted(self: TableClient, *args: Any, **kwargs: Any) -> Any:
            reads.append(args[1] if len(args) > 1 else kwargs.get("row_key", ""))
            return get_entity(self, *args, **kwargs)

        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(TableClient, "get_entity", counted)
            calls = record_queries_during(store.list_ticket_pending)
            pending = store.list_ticket_pending()
        assert [i.id for i in pending] == sorted([i.id for i in created if i and i.ticket_pending]
                                                 + [make_incident(n).id for n in (5001, 5002)])
        assert_no_scan(calls)
        ranges = [p for _, f, p in calls if p.get("p") == "i00" and not p["low"].startswith("~")]
        assert len(ranges) == 1 and len(reads) <= 2 * 2  # the two elsewhere are point reads (twice listed)
    finally:
        store.close()
