"""The Store contract (shared/state/base.py), run against both backends: SQLite on a real file, and Azure Table
Storage through the real azure-data-tables client against a real Azurite, once with its shared key and once
identity-based (Azurite in OAuth mode over HTTPS, bearer tokens from a token credential). Nothing is mocked."""

from __future__ import annotations

import multiprocessing
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from localazure import JwtCredential
from shared.core.incidents import (
    ASSIGNED,
    DETECTED,
    RESOLVED,
    STATUSES,
    TICKETED,
    VERIFYING,
    Action,
    Incident,
)
from shared.core.model import Diagnosis, FixStep
from shared.core.records import EventClaim, settled_view
from shared.settings import Settings
from shared.state import codec
from shared.state.base import AuditRecord, ConflictError, Store, StoreError, Suppression
from shared.state.codec import MAX_RECORD_UTF16_BYTES
from shared.state.factory import open_store
from shared.state.sqlite import SqliteStore
from shared.state.tables import MAX_KEY_CHARS, TableStore, table_key
from tests.support.azurite import Azurite, free_ports, running_azurite, unique_table_prefix

T0 = datetime(2025, 6, 1, 12, 0, 0, tzinfo=UTC)
IST = timezone(timedelta(hours=5, minutes=30))
STORAGE_IDENTITY = "6d1c0a3e-0000-4000-8000-00000000570e"  # the Function App's managed identity, say
TENANT = "7f1e2d3c-4b5a-4968-8776-000000000002"


def identity_store(emulator: Azurite, prefix: str, credential=None, **options) -> TableStore:
    """A table store on the OAuth-mode Azurite, connected as identity-based storage is: URL plus token."""
    return TableStore(endpoint=emulator.table_endpoint, credential=credential or JwtCredential(STORAGE_IDENTITY,
                      TENANT), prefix=prefix, connection_verify=emulator.ca_path, **options)


@dataclass
class Backend:
    """Opens stores on one shared storage, as several Function instances (or CLI processes) would."""

    kind: str
    open: Callable[[], Store]
    opened: list[Store] = field(default_factory=list)

    def store(self) -> Store:
        store = self.open()
        self.opened.append(store)
        return store


@pytest.fixture(params=["sqlite", pytest.param("table", marks=pytest.mark.azurite),
                        pytest.param("table-identity", marks=pytest.mark.azurite)])
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Backend]:
    prefix = unique_table_prefix()
    if request.param == "sqlite":
        path = str(tmp_path / "state.sqlite3")
        chosen = Backend("sqlite", lambda: SqliteStore(path))
    elif request.param == "table":
        connection = request.getfixturevalue("azurite")
        chosen = Backend("table", lambda: TableStore(connection, prefix))
    else:
        emulator = request.getfixturevalue("azurite_oauth")
        chosen = Backend("table", lambda: identity_store(emulator, prefix))
    yield chosen
    for store in chosen.opened:
        store.close()


@pytest.fixture
def store(backend: Backend) -> Store:
    return backend.store()


def make_incident(number: int = 1, **changes) -> Incident:
    base = Incident(
        id=f"inc-{number:016x}",
        fingerprint=f"sp-{number}|/subscriptions/s/resourcegroups/rg/providers/x/accounts/a|missing-role",
        principal_id=f"00000000-0000-0000-0000-{number:012d}",
        resource_id="/subscriptions/s/resourcegroups/rg/providers/microsoft.cognitiveservices/accounts/a",
        cause="missing_data_role",
        status=DETECTED,
        first_seen=T0,
        last_seen=T0,
        count=3,
        diagnosis=Diagnosis(cause="missing_data_role", role_fixable=True, confidence="high", summary="no data role",
                            evidence=("no data role",)),
        actions=(Action(at=T0, kind="diagnosed", detail="no data-plane role at any scope"),),
    )
    return replace(base, **changes)


# ---- incidents ----


def test_create_then_get_returns_the_incident_with_an_etag(store):
    created = store.put_incident(make_incident())
    assert created.etag
    fetched = store.get_incident(created.id)
    assert fetched == created
    assert fetched.etag == created.etag
    assert store.get_incident("inc-missing") is None


def test_replace_with_the_current_etag_stores_the_change_and_renews_the_etag(store):
    created = store.put_incident(make_incident())
    changed = created.with_action(Action(at=T0 + timedelta(minutes=1), kind="ticketed", detail="#12"))
    changed = replace(changed, status=TICKETED, ticket_refs={"github": "octo/repo#12"}, count=4)
    updated = store.put_incident(changed, expected_etag=created.etag)
    assert updated.etag and updated.etag != created.etag
    assert store.get_incident(created.id) == updated
    assert store.get_incident(created.id).ticket_refs == {"github": "octo/repo#12"}


def test_a_stale_etag_is_a_conflict_and_changes_nothing(store):
    created = store.put_incident(make_incident())
    first = store.put_incident(replace(created, count=10), expected_etag=created.etag)
    with pytest.raises(ConflictError):
        store.put_incident(replace(created, count=99), expected_etag=created.etag)
    assert store.get_incident(created.id).count == 10
    assert store.get_incident(created.id).etag == first.etag


def test_creating_an_existing_incident_is_a_conflict(store):
    store.put_incident(make_incident(count=1))
    with pytest.raises(ConflictError):
        store.put_incident(make_incident(count=2))
    assert store.get_incident(make_incident().id).count == 1


def test_replacing_an_incident_that_was_never_stored_is_a_conflict(store):
    other = store.put_incident(make_incident(1))
    with pytest.raises(ConflictError):
        store.put_incident(make_incident(2), expected_etag=other.etag)
    assert store.get_incident(make_incident(2).id) is None


def test_two_instances_updating_from_the_same_read_exactly_one_wins(backend):
    backend.store().put_incident(make_incident())
    contenders = [backend.store() for _ in range(2)]
    reads = [s.get_incident(make_incident().id) for s in contenders]
    assert reads[0].etag == reads[1].etag
    start = threading.Barrier(len(contenders))
    outcomes: list[object] = [None] * len(contenders)

    def update(n: int) -> None:
        start.wait()
        try:
            outcomes[n] = contenders[n].put_incident(replace(reads[n], status=ASSIGNED, count=100 + n),
                                                     expected_etag=reads[n].etag)
        except ConflictError as exc:
            outcomes[n] = exc

    threads = [threading.Thread(target=update, args=(n,)) for n in range(len(contenders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if isinstance(o, Incident)]
    losers = [o for o in outcomes if isinstance(o, ConflictError)]
    assert len(winners) == 1 and len(losers) == 1
    assert backend.store().get_incident(make_incident().id) == winners[0]


def test_list_incidents_filters_by_status(store):
    store.put_incident(make_incident(1, status=DETECTED))
    store.put_incident(make_incident(2, status=VERIFYING))
    store.put_incident(make_incident(3, status=VERIFYING))
    store.put_incident(make_incident(4, status=RESOLVED))
    assert [i.id for i in store.list_incidents(VERIFYING)] == [make_incident(2).id, make_incident(3).id]
    assert [i.id for i in store.list_incidents(RESOLVED)] == [make_incident(4).id]
    assert store.list_incidents("no-such-status") == []
    assert sorted(i.id for i in store.list_incidents()) == [make_incident(n).id for n in (1, 2, 3, 4)]
    assert all(i.etag for i in store.list_incidents())


def test_list_incidents_follows_a_status_change(store):
    created = store.put_incident(make_incident(status=DETECTED))
    store.put_incident(replace(created, status=VERIFYING), expected_etag=created.etag)
    assert store.list_incidents(DETECTED) == []
    assert [i.status for i in store.list_incidents(VERIFYING)] == [VERIFYING]


def test_get_incidents_reads_many_at_once_and_leaves_out_the_absent(store):
    stored = {n: store.put_incident(make_incident(n, count=n)) for n in range(1, 40)}
    wanted = [make_incident(n).id for n in (3, 1, 39, 17)] + ["inc-missing", make_incident(3).id]
    found = store.get_incidents(wanted)
    assert found == {i.id: i for i in (stored[3], stored[1], stored[39], stored[17])}
    assert all(found[i.id].etag == i.etag for i in found.values())
    assert store.get_incidents([]) == {} and store.get_incidents(iter(["inc-missing"])) == {}


def test_get_incidents_returns_the_current_version(store):
    created = store.put_incident(make_incident(1))
    updated = store.put_incident(replace(created, status=TICKETED, count=9), expected_etag=created.etag)
    assert store.get_incidents([created.id]) == {created.id: updated}


def test_get_incidents_reads_more_ids_than_one_statement_or_filter_holds(store):
    ids = [store.put_incident(make_incident(n)).id for n in range(1, 31)]
    asked = ids + [f"inc-absent-{n}" for n in range(600)]  # over SQLite's 500 per read, over 14 per Tables filter
    assert sorted(store.get_incidents(asked)) == sorted(ids)


def test_list_ticket_pending_lists_exactly_the_incidents_waiting_for_a_ticket_retry(store):
    store.put_incident(make_incident(1, ticket_pending=True))
    settled = store.put_incident(make_incident(2, ticket_pending=True))
    store.put_incident(make_incident(3))
    store.put_incident(replace(settled, ticket_pending=False), expected_etag=settled.etag)
    retried = store.put_incident(make_incident(4, ticket_pending=False))
    store.put_incident(replace(retried, ticket_pending=True), expected_etag=retried.etag)
    pending = store.list_ticket_pending()
    assert [i.id for i in pending] == [make_incident(1).id, make_incident(4).id]
    assert all(i.ticket_pending and i.etag for i in pending)


def test_due_verifications_are_open_incidents_whose_verify_due_has_passed(store):
    now = T0 + timedelta(hours=1)
    store.put_incident(make_incident(1, status=VERIFYING, verify_due=now - timedelta(minutes=5)))
    store.put_incident(make_incident(2, status=VERIFYING, verify_due=now))  # due exactly now
    store.put_incident(make_incident(3, status=VERIFYING, verify_due=now + timedelta(microseconds=1)))
    store.put_incident(make_incident(4, status=RESOLVED, verify_due=now - timedelta(minutes=5)))  # closed
    store.put_incident(make_incident(5, status=VERIFYING))  # no verify_due
    store.put_incident(make_incident(6, status=ASSIGNED, verify_due=(now - timedelta(hours=2)).astimezone(IST)))
    due = store.due_verifications(now)
    assert [i.id for i in due] == [make_incident(n).id for n in (6, 1, 2)]
    assert all(i.etag for i in due)


def test_clearing_verify_due_removes_an_incident_from_due_verifications(store):
    created = store.put_incident(make_incident(status=VERIFYING, verify_due=T0))
    assert [i.id for i in store.due_verifications(T0)] == [created.id]
    store.put_incident(replace(created, verify_due=None), expected_etag=created.etag)
    assert store.due_verifications(T0 + timedelta(days=1)) == []


# ---- watermarks ----


def test_watermarks_are_kept_per_source(store):
    assert store.get_watermark("logs:ws1") is None
    store.set_watermark("logs:ws1", T0)
    store.set_watermark("appinsights:ws/2#x?", T0 + timedelta(minutes=5))
    assert store.get_watermark("logs:ws1") == T0
    assert store.get_watermark("appinsights:ws/2#x?") == T0 + timedelta(minutes=5)
    store.set_watermark("logs:ws1", T0 + timedelta(minutes=10))
    assert store.get_watermark("logs:ws1") == T0 + timedelta(minutes=10)
    assert store.get_watermark("logs:ws2") is None


# ---- processed event ids ----


def test_an_event_id_is_new_once_then_seen(store):
    assert store.mark_event_processed("evt-1", T0) is True
    assert store.mark_event_processed("evt-1", T0 + timedelta(seconds=30)) is False
    assert store.mark_event_processed("evt-2", T0) is True


def test_a_forgotten_event_is_new_again_so_a_redelivery_is_processed(store):
    assert store.mark_event_processed("evt-1", T0) is True
    store.mark_event_processed("evt-2", T0)
    store.forget_event("evt-1")
    store.forget_event("evt-never-seen")  # nothing to forget is not an error
    assert store.mark_event_processed("evt-1", T0) is True
    assert store.mark_event_processed("evt-2", T0) is False


@pytest.mark.parametrize("awkward", ["a/b", "a\\b", "a#b", "a?b", "a\tb\x7f", "ümlaut ✓", "x" * 2000, "", "_global",
                                     "lone \ud800 surrogate"])
def test_event_ids_with_characters_table_keys_refuse_are_kept_apart(store, awkward):
    assert store.mark_event_processed(awkward, T0) is True
    assert store.mark_event_processed(awkward + "!", T0) is True  # a near neighbour is a different id
    assert store.mark_event_processed(awkward, T0) is False


def test_of_many_instances_marking_one_event_exactly_one_sees_it_first(backend):
    contenders = [backend.store() for _ in range(6)]
    start = threading.Barrier(len(contenders))
    results: list[bool | None] = [None] * len(contenders)

    def mark(n: int) -> None:
        start.wait()
        results[n] = contenders[n].mark_event_processed("evt-dup", T0)

    threads = [threading.Thread(target=mark, args=(n,)) for n in range(len(contenders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False] * (len(contenders) - 1) + [True]


def test_ids_from_malformed_input_never_fail_a_read_or_a_claim(store):
    lone = "evt-\ud800"  # JSON can carry a lone surrogate ("\ud800"); UTF-8 cannot encode one
    assert store.claim_event(lone, T0, timedelta(minutes=5)) == EventClaim.CLAIMED
    store.complete_event(lone, T0)
    assert store.claim_event(lone, T0, timedelta(minutes=5)) == EventClaim.DONE
    assert store.get_incident("inc-\udc00") is None and store.get_incidents(["inc-\udc00"]) == {}
    assert store.list_audit("inc-\udc00") == []


def test_a_claimed_delivery_is_held_until_completed_then_done(store):
    lease = timedelta(minutes=5)
    assert store.claim_event("evt-1", T0, lease) == EventClaim.CLAIMED
    assert store.claim_event("evt-1", T0 + timedelta(minutes=1), lease) == EventClaim.HELD
    assert store.mark_event_processed("evt-1", T0) is False  # a claimed delivery is seen
    store.complete_event("evt-1", T0 + timedelta(minutes=2))
    assert store.claim_event("evt-1", T0 + timedelta(hours=1), lease) == EventClaim.DONE
    assert store.mark_event_processed("evt-1", T0) is False
    assert store.claim_event("evt-2", T0, lease) == EventClaim.CLAIMED  # ids stay apart


def test_a_lease_whose_handler_died_expires_and_the_redelivery_claims_it(store):
    lease = timedelta(minutes=5)
    assert store.claim_event("evt-1", T0, lease) == EventClaim.CLAIMED
    # The handler was killed: no completion, no release. The redelivery after the lease claims it again.
    assert store.claim_event("evt-1", T0 + lease + timedelta(seconds=1), lease) == EventClaim.CLAIMED
    assert store.claim_event("evt-1", T0 + lease + timedelta(seconds=2), lease) == EventClaim.HELD


def test_a_released_claim_is_claimed_again_and_an_old_mark_counts_as_done(store):
    lease = timedelta(minutes=5)
    assert store.claim_event("evt-1", T0, lease) == EventClaim.CLAIMED
    store.forget_event("evt-1")  # the handler failed transiently and released it
    assert store.claim_event("evt-1", T0 + timedelta(seconds=1), lease) == EventClaim.CLAIMED
    assert store.mark_event_processed("evt-old", T0) is True  # marked before claims existed
    assert store.claim_event("evt-old", T0, lease) == EventClaim.DONE


def test_of_many_instances_taking_over_one_expired_lease_exactly_one_wins(backend):
    lease = timedelta(minutes=5)
    backend.store().claim_event("evt-dup", T0, lease)
    contenders = [backend.store() for _ in range(6)]
    start = threading.Barrier(len(contenders))
    results: list[EventClaim | None] = [None] * len(contenders)

    def claim(n: int) -> None:
        start.wait()
        results[n] = contenders[n].claim_event("evt-dup", T0 + lease * 2, lease)

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(len(contenders))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == sorted([EventClaim.HELD] * (len(contenders) - 1) + [EventClaim.CLAIMED])


# ---- grants ----


def test_grants_are_counted_from_a_time_inclusive(store):
    for at in (T0 - timedelta(hours=25), T0 - timedelta(hours=2), T0 - timedelta(hours=1), T0, T0):
        store.record_grant("inc-a", at)
    assert store.count_grants_since(T0 - timedelta(hours=24)) == 4
    assert store.count_grants_since(T0) == 2
    assert store.count_grants_since(T0 + timedelta(microseconds=1)) == 0
    assert store.count_grants_since(T0 - timedelta(days=30)) == 5


def test_grant_counting_spans_midnight(store):
    store.record_grant("inc-a", datetime(2025, 6, 1, 23, 59, tzinfo=UTC))
    store.record_grant("inc-b", datetime(2025, 6, 2, 0, 1, tzinfo=UTC))
    store.record_grant("inc-c", datetime(2025, 6, 3, 1, 0, tzinfo=IST))  # 2025-06-02 19:30 UTC
    assert store.count_grants_since(datetime(2025, 6, 1, 23, 58, tzinfo=UTC)) == 3
    assert store.count_grants_since(datetime(2025, 6, 2, 0, 0, tzinfo=UTC)) == 2
    assert store.count_grants_since(datetime(2025, 6, 2, 20, 0, tzinfo=UTC)) == 0


# ---- named values ----


def test_values_use_etags_like_incidents(store):
    assert store.get_value("breaker") == (None, None)
    first = store.put_value("breaker", {"state": "closed", "failures": 0})
    value, etag = store.get_value("breaker")
    assert value == {"state": "closed", "failures": 0} and etag == first
    second = store.put_value("breaker", {"state": "open", "failures": 3, "since": "2025-06-01"}, expected_etag=first)
    assert second != first
    with pytest.raises(ConflictError):
        store.put_value("breaker", {"state": "closed"}, expected_etag=first)
    with pytest.raises(ConflictError):
        store.put_value("breaker", {"state": "closed"})
    with pytest.raises(ConflictError):
        store.put_value("other", {"x": 1}, expected_etag=second)
    assert store.get_value("breaker") == ({"state": "open", "failures": 3, "since": "2025-06-01"}, second)


# ---- suppressions ----


def test_suppressions_expire_and_a_new_one_replaces_the_old(store):
    sp = "00000000-0000-0000-0000-000000000001"
    rg = "/subscriptions/s/resourcegroups/rg"
    store.add_suppression(Suppression(sp, until=T0 + timedelta(hours=1), reason="known", actor="alice",
                                      created_at=T0))
    store.add_suppression(Suppression(rg, until=T0 + timedelta(days=1), reason="migration", actor="bob",
                                      created_at=T0))
    assert [s.target for s in store.active_suppressions(T0)] == [rg, sp]
    assert [s.target for s in store.active_suppressions(T0 + timedelta(hours=1))] == [rg]  # until is exclusive
    assert store.active_suppressions(T0 + timedelta(days=2)) == []
    store.add_suppression(Suppression(sp, until=T0 + timedelta(days=3), reason="extended", actor="carol",
                                      created_at=T0 + timedelta(minutes=1)))
    active = store.active_suppressions(T0 + timedelta(days=2))
    assert active == [Suppression(sp, until=T0 + timedelta(days=3), reason="extended", actor="carol",
                                  created_at=T0 + timedelta(minutes=1))]


# ---- audit ----


def audit(at: datetime, incident_id: str | None, kind: str, **inputs) -> AuditRecord:
    return AuditRecord(at=at, incident_id=incident_id, kind=kind, actor="service", correlation_id="corr-1",
                       detail=f"{kind} detail", inputs=inputs)


def test_audit_lists_in_time_order_and_per_incident(store):
    a, b = make_incident(1).id, make_incident(2).id
    store.append_audit(audit(T0 + timedelta(seconds=2), a, "action", step=2))
    store.append_audit(audit(T0, a, "decision", step=1))
    store.append_audit(audit(T0 + timedelta(seconds=1), b, "refusal", step=1))
    store.append_audit(audit(T0 + timedelta(seconds=3), None, "breaker", step=9))
    everything = store.list_audit()
    assert [(r.incident_id, r.kind) for r in everything] == [(a, "decision"), (b, "refusal"), (a, "action"),
                                                             (None, "breaker")]
    assert [r.kind for r in store.list_audit(a)] == ["decision", "action"]
    assert [r.kind for r in store.list_audit(b)] == ["refusal"]
    assert store.list_audit("inc-none") == []


def test_audit_is_append_only_identical_records_are_all_kept(store):
    record = AuditRecord(at=T0, incident_id="inc-x", kind="approval", actor="alice@contoso.com",
                         correlation_id="c-9", detail="approved 'it'\nnext line", inputs={"handle": "h1", "n": [1, 2]})
    for _ in range(3):
        store.append_audit(record)
    assert store.list_audit("inc-x") == [record, record, record]


def test_audit_keeps_the_trace_id_it_was_written_in_and_none_without_one(store):
    traced = replace(audit(T0, "inc-t", "action"), trace_id="4bf92f3577b34da6a3ce929d0e0e4736")
    store.append_audit(traced)
    store.append_audit(audit(T0 + timedelta(seconds=1), "inc-t", "verification"))
    assert [r.trace_id for r in store.list_audit("inc-t")] == [traced.trace_id, None]
    assert store.list_audit("inc-t")[0] == traced


def test_audit_inputs_that_are_not_json_are_recorded_by_their_text(store):
    store.append_audit(audit(T0, None, "event-rejected", when=T0, tags={"b", "a"}, raw=b"\x00"))
    (record,) = store.list_audit()
    assert record.inputs == {"when": T0.isoformat(), "tags": ["a", "b"], "raw": "b'\\x00'"}


def test_an_incident_and_its_audit_records_are_written_together(store):
    incident = make_incident(1, status=VERIFYING, verify_due=T0)
    created = store.put_incident_audited(incident, None, [audit(T0, incident.id, "decision", step=1)])
    store.append_audit(audit(T0 + timedelta(seconds=1), incident.id, "action", step=2))
    store.append_audit(audit(T0 + timedelta(seconds=1), None, "breaker", step=3))
    resolved = replace(created, status=RESOLVED, verify_due=None)
    saved = store.put_incident_audited(resolved, created.etag, [audit(T0 + timedelta(seconds=2), incident.id,
                                                                      "verification", step=4)])
    assert saved.etag and saved.etag != created.etag
    assert store.get_incident(incident.id).status == RESOLVED
    assert [r.inputs["step"] for r in store.list_audit(incident.id)] == [1, 2, 4]
    assert [r.inputs["step"] for r in store.list_audit()] == [1, 2, 3, 4]
    # The records kept beside the incident are no incidents: every listing shows the one incident only.
    assert [i.id for i in store.list_incidents()] == [incident.id]
    assert [i.id for i in store.list_incidents(RESOLVED)] == [incident.id]
    assert list(store.get_incidents([incident.id, "inc-none"])) == [incident.id]
    assert store.due_verifications(T0 + timedelta(days=1)) == [] and store.list_ticket_pending() == []


def test_a_lost_race_writes_neither_the_incident_nor_its_audit(store):
    incident = make_incident(1)
    first = store.put_incident(incident)
    store.put_incident(replace(first, count=5), expected_etag=first.etag)  # another writer wins
    with pytest.raises(ConflictError):
        store.put_incident_audited(replace(first, status=TICKETED), first.etag,
                                   [audit(T0, incident.id, "revoke")])
    with pytest.raises(ConflictError):
        store.put_incident_audited(incident, None, [audit(T0, incident.id, "decision")])  # it exists already
    assert store.get_incident(incident.id).count == 5
    assert store.list_audit(incident.id) == [] and store.list_audit() == []


def test_audit_written_with_an_incident_must_be_about_it(store):
    with pytest.raises(ValueError):
        store.put_incident_audited(make_incident(1), None, [audit(T0, "inc-other", "decision")])
    assert store.get_incident(make_incident(1).id) is None


# ---- datetimes ----


def test_datetimes_come_back_utc_aware(store):
    local = datetime(2025, 6, 1, 17, 30, tzinfo=IST)
    created = store.put_incident(make_incident(first_seen=local, last_seen=local, verify_due=local,
                                               actions=(Action(at=local, kind="diagnosed"),)))
    fetched = store.get_incident(created.id)
    stamps = [fetched.first_seen, fetched.last_seen, fetched.verify_due, fetched.actions[0].at]
    assert all(s == local and s.tzinfo is not None and s.utcoffset() == timedelta(0) for s in stamps)
    store.set_watermark("src", local)
    assert store.get_watermark("src") == local and store.get_watermark("src").utcoffset() == timedelta(0)
    store.append_audit(audit(local, None, "decision"))
    assert store.list_audit()[0].at.utcoffset() == timedelta(0)


def test_naive_datetimes_are_refused(store):
    with pytest.raises(ValueError, match="timezone-aware"):
        store.put_incident(make_incident(last_seen=datetime(2025, 6, 1, 12, 0)))
    with pytest.raises(ValueError, match="timezone-aware"):
        store.set_watermark("src", datetime(2025, 6, 1, 12, 0))
    assert store.get_incident(make_incident().id) is None


# ---- size ----


def test_an_incident_with_hundreds_of_actions_round_trips(store):
    actions = tuple(
        Action(at=T0 + timedelta(seconds=n), kind="waiting", detail=f"check {n}: «{'ü' * 200}» \"quoted\"\n")
        for n in range(600)
    )
    created = store.put_incident(make_incident(actions=actions))
    fetched = store.get_incident(created.id)
    assert fetched == created
    assert len(fetched.actions) == 600 and fetched.actions[-1].detail.startswith("check 599")


def test_an_incident_over_the_size_limit_is_refused_by_both_backends(store):
    # each action is over 1,000 characters, so over 2,000 bytes in UTF-16
    huge = tuple(Action(at=T0, kind="waiting", detail="x" * 1000) for _ in range(MAX_RECORD_UTF16_BYTES // 2000))
    with pytest.raises(StoreError, match="limit"):
        store.put_incident(make_incident(actions=huge))
    assert store.get_incident(make_incident().id) is None


# ---- failures ----


def test_an_unreachable_table_store_raises_store_error():
    (port,) = free_ports(1)  # nothing listens there
    connection = (f"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey=a2V5;"
                  f"TableEndpoint=http://127.0.0.1:{port}/devstoreaccount1;")
    store = TableStore(connection, unique_table_prefix(), retry_total=0)
    with pytest.raises(StoreError):
        store.ping()
    with pytest.raises(StoreError):
        store.get_incident("inc-1")
    with pytest.raises(StoreError):
        store.put_incident(make_incident())
    store.close()


@pytest.mark.azurite
def test_a_table_store_whose_azurite_stopped_fails_loudly(tmp_path):
    with running_azurite(tmp_path) as emulator:
        store = TableStore(emulator.connection_string, unique_table_prefix(), retry_total=0)
        created = store.put_incident(make_incident())
        store.set_watermark("logs:ws1", T0)
    with pytest.raises(StoreError):
        store.put_incident(replace(created, count=5), expected_etag=created.etag)
    with pytest.raises(StoreError):
        store.set_watermark("logs:ws1", T0 + timedelta(minutes=5))
    with pytest.raises(StoreError):
        store.mark_event_processed("evt-1", T0)
    store.close()


def test_a_bad_connection_string_is_a_store_error_that_does_not_echo_the_key():
    with pytest.raises(StoreError) as info:
        TableStore("AccountKey=c2VjcmV0;nonsense")
    assert "c2VjcmV0" not in str(info.value)


def test_a_sqlite_store_in_a_place_it_cannot_write_raises_store_error(tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("a file where a directory should be")
    with pytest.raises(StoreError):
        SqliteStore(str(blocker / "state.sqlite3"))


def test_a_closed_sqlite_store_raises_store_error(tmp_path):
    store = SqliteStore(str(tmp_path / "state.sqlite3"))
    store.close()
    with pytest.raises(StoreError):
        store.get_incident("inc-1")
    with pytest.raises(StoreError):
        store.set_watermark("src", T0)


# ---- SQLite across processes ----


def _claim_in_process(path: str, queue) -> None:
    queue.put(SqliteStore(path).mark_event_processed("evt-shared", T0))


@pytest.mark.slow  # forks child processes
def test_sqlite_processes_sharing_one_file_see_an_event_first_exactly_once(tmp_path):
    path = str(tmp_path / "shared.sqlite3")
    SqliteStore(path).close()  # the schema exists before the race, as after the first run
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    workers = [context.Process(target=_claim_in_process, args=(path, queue)) for _ in range(4)]
    for w in workers:
        w.start()
    results = sorted(queue.get(timeout=60) for _ in workers)
    for w in workers:
        w.join(timeout=60)
    assert results == [False, False, False, True]


def test_sqlite_memory_store_works_for_tests():
    store = SqliteStore(":memory:")
    created = store.put_incident(make_incident())
    assert store.get_incident(created.id) == created
    assert SqliteStore(":memory:").get_incident(created.id) is None  # each :memory: store is private
    store.close()


# ---- factory ----


def test_open_store_creates_the_sqlite_directory(tmp_path):
    path = tmp_path / "nested" / "deeper" / "triage.sqlite3"
    store = open_store(Settings(state_backend="sqlite", sqlite_path=str(path)))
    store.put_incident(make_incident())
    store.close()
    assert path.exists()
    reopened = open_store(Settings(state_backend="sqlite", sqlite_path=str(path)))
    assert reopened.get_incident(make_incident().id) is not None
    reopened.close()


def test_open_store_fails_loudly_when_the_sqlite_directory_cannot_be_made(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="directory"):
        open_store(Settings(state_backend="sqlite", sqlite_path=str(blocker / "sub" / "triage.sqlite3")))


@pytest.mark.azurite
def test_open_store_opens_the_table_backend_with_its_prefix(azurite):
    prefix = unique_table_prefix()
    store = open_store(Settings(state_backend="table", storage_connection=azurite, table_prefix=prefix))
    assert isinstance(store, TableStore) and store.prefix == prefix
    store.put_incident(make_incident())
    twin = TableStore(azurite, prefix)
    assert twin.get_incident(make_incident().id) is not None
    assert TableStore(azurite, unique_table_prefix()).get_incident(make_incident().id) is None
    twin.close()
    store.close()


@pytest.mark.azurite
def test_open_store_connects_identity_based_with_the_table_service_url_and_a_token(azurite_oauth):
    prefix = unique_table_prefix()
    credential = JwtCredential(STORAGE_IDENTITY, TENANT)
    settings = Settings(state_backend="table", storage_table_service_uri=azurite_oauth.table_endpoint,
                        storage_credential="managedidentity", ca_bundle=azurite_oauth.ca_path, table_prefix=prefix)
    store = open_store(settings, credential=credential)
    assert isinstance(store, TableStore) and store.prefix == prefix
    store.put_incident(make_incident())
    twin = identity_store(azurite_oauth, prefix)
    assert twin.get_incident(make_incident().id) is not None
    assert {scopes for scopes in credential.scopes_requested} == {("https://storage.azure.com/.default",)}
    twin.close()
    store.close()


@pytest.mark.azurite
@pytest.mark.parametrize("claims", [{"aud": "https://management.azure.com"}, {"iss": "https://evil.example/t/"},
                                    {"exp": 1_000_000_000}], ids=["wrong-audience", "wrong-issuer", "expired"])
def test_a_token_storage_refuses_is_a_store_error_naming_the_operation(azurite_oauth, claims):
    store = identity_store(azurite_oauth, unique_table_prefix(), JwtCredential(STORAGE_IDENTITY, TENANT, **claims),
                           retry_total=0)
    with pytest.raises(StoreError, match="create table"):
        store.get_incident("inc-1")
    store.close()


def test_a_credential_that_cannot_get_a_token_is_a_store_error():
    from azure.identity import CredentialUnavailableError

    class NoIdentity:
        def get_token(self, *scopes, **kwargs):
            raise CredentialUnavailableError("ManagedIdentityCredential authentication unavailable, no response")

        get_token_info = get_token

    (port,) = free_ports(1)
    store = TableStore(endpoint=f"https://127.0.0.1:{port}/devstoreaccount1", credential=NoIdentity(),
                       prefix=unique_table_prefix(), retry_total=0)
    with pytest.raises(StoreError, match="ManagedIdentityCredential authentication unavailable"):
        store.ping()
    store.close()


def test_a_table_store_takes_a_connection_string_or_an_endpoint_with_a_credential():
    with pytest.raises(ValueError, match="either"):
        TableStore()
    with pytest.raises(ValueError, match="either"):
        TableStore("UseDevelopmentStorage=true", endpoint="https://a.table.core.windows.net", credential=object())
    with pytest.raises(ValueError, match="credential"):
        TableStore(endpoint="https://a.table.core.windows.net")


def test_storage_credential_follows_the_functions_host_settings():
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    from shared.state.factory import storage_credential

    user_assigned = "0b0b0b0b-0000-4000-8000-000000000001"
    managed = storage_credential(Settings(storage_credential="managedidentity", storage_client_id=user_assigned))
    assert isinstance(managed, ManagedIdentityCredential)
    assert isinstance(storage_credential(Settings(storage_credential="managedidentity")), ManagedIdentityCredential)
    assert isinstance(storage_credential(Settings()), DefaultAzureCredential)


def test_open_store_refuses_the_table_backend_without_a_connection_string():
    with pytest.raises(StoreError, match="AzureWebJobsStorage"):
        open_store(Settings(state_backend="table", storage_connection=""))


# ---- properties ----

# Any Unicode scalar value. (Lone surrogates are covered by their own test: JSON, hence both backends, reads an
# adjacent high+low pair of them back as the one character they encode.)
ANY_TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=60)
AWARE = st.datetimes(
    min_value=datetime(1, 1, 2), max_value=datetime(9999, 12, 30),
    timezones=st.sampled_from([UTC, IST, timezone(timedelta(hours=-8)), timezone(timedelta(hours=14))]),
)
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(ANY_TEXT, inner, max_size=3),
    max_leaves=8,
)
ACTIONS = st.builds(Action, at=AWARE, kind=ANY_TEXT, detail=ANY_TEXT, actor=ANY_TEXT)
OPTIONAL_TEXT = st.none() | ANY_TEXT
OPTIONAL_TIME = st.none() | AWARE
DIAGNOSES = st.builds(
    Diagnosis, cause=ANY_TEXT, role_fixable=st.booleans(), confidence=ANY_TEXT, summary=ANY_TEXT,
    role_name=OPTIONAL_TEXT, role_id=OPTIONAL_TEXT, scope=OPTIONAL_TEXT, surface=OPTIONAL_TEXT,
    evidence=st.lists(ANY_TEXT, max_size=3).map(tuple), fix_command=OPTIONAL_TEXT,
    fix_steps=st.lists(st.builds(FixStep, ANY_TEXT, OPTIONAL_TEXT), max_size=2).map(tuple),
)
INCIDENTS = st.builds(
    Incident,
    id=ANY_TEXT, fingerprint=ANY_TEXT, principal_id=OPTIONAL_TEXT, resource_id=ANY_TEXT, cause=ANY_TEXT,
    status=st.sampled_from(STATUSES), first_seen=AWARE, last_seen=AWARE, count=st.integers(0, 2**63),
    principal_type=OPTIONAL_TEXT, principal_name=OPTIONAL_TEXT,
    diagnosis=st.none() | DIAGNOSES, sample_error=OPTIONAL_TEXT,
    actions=st.lists(ACTIONS, max_size=4).map(tuple), ticket_refs=st.dictionaries(ANY_TEXT, ANY_TEXT, max_size=3),
    ticket_pending=st.booleans(), assignment_id=OPTIONAL_TEXT, approval_handle=OPTIONAL_TEXT,
    approved_by=OPTIONAL_TEXT, etag=st.none(),
    # every optional timestamp the model has, including ones added later
    **{f.name: OPTIONAL_TIME for f in fields(Incident) if f.type == "datetime | None"},
)


def test_lone_surrogates_in_text_do_not_break_a_write(store):
    incident = make_incident(sample_error="bad \ud800 byte", actions=(Action(at=T0, kind="x", detail="\udfff"),))
    created = store.put_incident(incident)
    assert store.get_incident(created.id) == created
    assert created.sample_error == "bad \ud800 byte"
    store.append_audit(audit(T0, None, "event-rejected", raw="\udc80"))
    assert store.list_audit()[0].inputs == {"raw": "\udc80"}


def _round_trip(store: Store, incident: Incident) -> None:
    existing = store.get_incident(incident.id)  # hypothesis may repeat an id: replace it then
    stored = store.put_incident(incident, expected_etag=existing.etag if existing else None)
    fetched = store.get_incident(incident.id)
    assert fetched == stored
    assert replace(fetched, etag=None) == incident  # aware datetimes compare by instant
    stamps = [fetched.first_seen, fetched.last_seen, *(a.at for a in fetched.actions)]
    assert all(s.utcoffset() == timedelta(0) for s in stamps)


_REUSED_STORE = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], deadline=None)


@settings(_REUSED_STORE, max_examples=150)
@given(incident=INCIDENTS)
def test_any_incident_round_trips_exactly_on_sqlite(tmp_path, incident):
    store = SqliteStore(str(tmp_path / "property.sqlite3"))
    try:
        _round_trip(store, incident)
    finally:
        store.close()


@pytest.mark.azurite
@settings(_REUSED_STORE, max_examples=8)
@given(incident=INCIDENTS)
def test_some_incidents_round_trip_exactly_on_tables(azurite, incident):
    store = TableStore(azurite, "prop" + unique_table_prefix())
    try:
        _round_trip(store, incident)
    finally:
        store.close()


@given(a=ANY_TEXT | st.text(min_size=500, max_size=700), b=ANY_TEXT)
def test_table_keys_are_one_to_one_and_use_only_allowed_characters(a, b):
    key = table_key(a)
    assert len(key) <= MAX_KEY_CHARS + 2
    assert not any(ch in "/\\#?" or ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in key)
    assert (table_key(a) == table_key(b)) == (a == b)


@settings(max_examples=200, deadline=None)
@given(incident=INCIDENTS)
def test_the_codec_writes_exactly_the_record_the_model_defines(incident):
    # codec.incident_record skips dataclasses.asdict's deep copies; the JSON must not change by a byte.
    assert codec.dumps(codec.incident_record(incident)) == codec.dumps(incident.to_record())


@settings(max_examples=100, deadline=None)
@given(incident=INCIDENTS)
def test_normalizing_an_incident_gives_utc_everywhere_and_the_same_instants(incident):
    normalized = codec.normalized_incident(incident)
    stamps = [getattr(normalized, f.name) for f in fields(Incident) if f.type == "datetime | None"]
    stamps += [normalized.first_seen, normalized.last_seen, *(a.at for a in normalized.actions)]
    assert all(s.tzinfo is UTC for s in stamps if s is not None)
    assert normalized == incident  # aware datetimes compare by instant
    assert codec.normalized_incident(normalized) is normalized  # already UTC: returned as it is


# ---- the compact settled view and batched creates (every backend) ----


def _view(store: Store, incident: Incident) -> Incident | None:
    return store.get_settled([incident.id]).get(incident.id)


def test_the_settled_view_follows_every_write_of_its_incident(store):
    incident = make_incident(1, status=TICKETED, sample_error="x" * 500)
    created = store.put_incident(incident)
    assert _view(store, created) == settled_view(created)
    assert _view(store, created).etag is None and _view(store, created).diagnosis is None
    replaced = store.put_incident(replace(created, count=9, ticket_pending=True), expected_etag=created.etag)
    assert _view(store, created) == settled_view(replaced)
    audited = store.put_incident_audited(replace(replaced, status=RESOLVED, closed_at=T0), replaced.etag,
                                         [audit(T0, incident.id, "verification")])
    assert _view(store, created) == settled_view(audited)
    (batched,) = store.create_incidents([(make_incident(2, status=ASSIGNED), [])])
    assert batched is not None and _view(store, batched) == settled_view(batched)


def test_a_lost_race_leaves_the_settled_view_as_the_winner_wrote_it(store):
    created = store.put_incident(make_incident(1))
    winner = store.put_incident(replace(created, count=5), expected_etag=created.etag)
    for lost in (lambda: store.put_incident(replace(created, status=TICKETED), expected_etag=created.etag),
                 lambda: store.put_incident_audited(replace(created, status=TICKETED), created.etag,
                                                    [audit(T0, created.id, "decision")]),
                 lambda: store.put_incident(replace(created, status=TICKETED))):
        with pytest.raises(ConflictError):
            lost()
    assert _view(store, created) == settled_view(winner)
    assert store.create_incidents([(replace(created, status=TICKETED), [audit(T0, created.id, "decision")])]) == [None]
    assert _view(store, created) == settled_view(winner) and store.list_audit(created.id) == []


def test_settled_views_of_many_incidents_are_read_at_once_and_the_absent_left_out(store):
    saved = store.create_incidents([(make_incident(n), []) for n in range(1, 260)])
    wanted = [make_incident(n).id for n in range(1, 260, 2)] + ["inc-none"]
    views = store.get_settled(wanted)
    assert sorted(views) == sorted(wanted[:-1])
    assert all(views[i.id] == settled_view(i) for i in saved if i is not None and i.id in views)
    assert store.get_settled([]) == {}
    assert list(store.get_settled([make_incident(3).id])) == [make_incident(3).id]


def test_create_incidents_writes_each_new_incident_with_its_audit_and_leaves_existing_ones(store):
    existing = store.put_incident(make_incident(5, count=42))
    items = [(make_incident(n), [audit(T0, make_incident(n).id, "decision", n=n)]) for n in range(1, 151)]
    saved = store.create_incidents(items)
    assert [s is None for s in saved] == [n == 5 for n in range(1, 151)]
    assert store.get_incident(existing.id) == existing and store.list_audit(existing.id) == []
    for (incident, _), stored in zip(items, saved, strict=True):
        if stored is None:
            continue
        assert stored.etag and store.get_incident(incident.id) == stored
        assert [r.inputs["n"] for r in store.list_audit(incident.id)] == [int(incident.id[4:], 16)]
    assert len(store.list_incidents()) == 150
    # what a batch returned is writable at its etag, as any create's result
    first = saved[0]
    assert first is not None
    assert store.put_incident(replace(first, count=7), expected_etag=first.etag).count == 7


def test_create_incidents_refuses_audit_about_another_incident(store):
    with pytest.raises(ValueError):
        store.create_incidents([(make_incident(1), [audit(T0, "inc-other", "decision")])])
    assert store.get_incident(make_incident(1).id) is None


def test_the_cached_incident_is_what_this_store_last_wrote_and_a_write_at_a_stale_copy_conflicts(backend):
    mine, other = backend.store(), backend.store()
    assert mine.cached_incident(make_incident(1).id) is None
    created = mine.put_incident(make_incident(1))
    assert mine.cached_incident(created.id) in (None, created)  # a store may remember nothing
    changed = other.put_incident(replace(other.get_incident(created.id), count=50), expected_etag=created.etag)
    cached = mine.cached_incident(created.id)
    if cached is not None:
        assert cached == created  # stale: another store wrote since
        with pytest.raises(ConflictError):
            mine.put_incident(replace(cached, count=2), expected_etag=cached.etag)
    assert mine.get_incident(created.id) == changed
    assert mine.cached_incident(created.id) in (None, changed)


def test_deliveries_completed_together_are_all_done_for_every_instance(backend):
    store = backend.store()
    lease = timedelta(minutes=5)
    keys = [f"evt-{n}" for n in range(40)]
    assert all(store.claim_event(k, T0, lease) == EventClaim.CLAIMED for k in keys)
    assert store.claim_event(keys[0], T0 + timedelta(seconds=1), lease) == EventClaim.HELD
    start = threading.Barrier(16)

    def complete(n: int) -> None:
        start.wait()
        for key in keys[n::16]:
            store.complete_event(key, T0)

    threads = [threading.Thread(target=complete, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    later = T0 + lease * 3  # past every lease: only a completion makes a key DONE now
    assert all(store.claim_event(k, later, lease) == EventClaim.DONE for k in keys)
    fresh = backend.store()
    assert all(fresh.claim_event(k, later, lease) == EventClaim.DONE for k in keys)
    assert all(fresh.mark_event_processed(k, later) is False for k in keys)
    store.forget_event(keys[1])  # a forgotten id is new again, for this store and others
    assert store.claim_event(keys[1], later, lease) == EventClaim.CLAIMED


def test_claims_arriving_together_each_get_their_own_answer(backend):
    """Claims that arrive together are created together where they can (Tables: one transaction); a key that
    exists already (done, or leased by another) must still get its own answer, and new keys claimed by two
    instances at once are won by exactly one."""
    lease = timedelta(minutes=5)
    first = backend.store()
    done = [f"evt-done-{n}" for n in range(6)]
    held = [f"evt-held-{n}" for n in range(6)]
    for key in done:
        assert first.claim_event(key, T0, lease) == EventClaim.CLAIMED
        first.complete_event(key, T0)
    for key in held:
        assert first.claim_event(key, T0, lease) == EventClaim.CLAIMED
    new = [f"evt-new-{n}" for n in range(36)]
    expected = {**{k: EventClaim.DONE for k in done}, **{k: EventClaim.HELD for k in held}}
    contenders = [backend.store(), backend.store()]
    keys = done + held + new
    at = T0 + timedelta(seconds=1)
    start = threading.Barrier(16)
    answers: dict[tuple[int, str], EventClaim] = {}
    lock = threading.Lock()

    def claim(n: int) -> None:
        start.wait()
        for key in keys[n % 8::8]:
            store = contenders[n // 8]
            answer = store.claim_event(key, at, lease)
            with lock:
                answers[(n // 8, key)] = answer

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for key, answer in expected.items():
        assert answers[(0, key)] == answer and answers[(1, key)] == answer, key
    for key in new:
        assert sorted((answers[(0, key)], answers[(1, key)])) == sorted((EventClaim.CLAIMED, EventClaim.HELD)), key
# ---- the indexed queries: what the timer and the role-assignment events look incidents up by ----
# (Tables: index rows beside each incident, written in its transaction; SQLite: indexed columns.) Each must follow a
# change of its field, through every kind of write, and stay as it was after a lost race.

ASSIGNMENT = "/subscriptions/s/providers/Microsoft.Authorization/roleAssignments/A1B2"


def ids(incidents) -> list[str]:
    return [i.id for i in incidents]


def lose_a_race(store: Store, stale: Incident, **changes) -> None:
    with pytest.raises(ConflictError):
        store.put_incident(replace(stale, **changes), expected_etag=stale.etag)


def test_due_verifications_follow_verify_due_and_status_and_not_a_lost_race(store):
    created = store.put_incident(make_incident(1, status=VERIFYING, verify_due=T0))
    later = store.put_incident(replace(created, verify_due=T0 + timedelta(hours=2)), expected_etag=created.etag)
    assert store.due_verifications(T0 + timedelta(hours=1)) == []
    assert ids(store.due_verifications(T0 + timedelta(hours=2))) == [created.id]
    lose_a_race(store, created, verify_due=T0 - timedelta(days=1))  # the stale writer's verify_due never lands
    assert store.due_verifications(T0 + timedelta(hours=1)) == []
    store.put_incident(replace(later, status=RESOLVED), expected_etag=later.etag)  # closed: never due
    assert store.due_verifications(T0 + timedelta(days=9)) == []


def test_ticket_pending_follows_its_flag_and_not_a_lost_race(store):
    created = store.put_incident(make_incident(1))
    lose_a_race(store, replace(created, etag="stale"), ticket_pending=True)
    assert store.list_ticket_pending() == []
    pending = store.put_incident(replace(created, ticket_pending=True), expected_etag=created.etag)
    assert ids(store.list_ticket_pending()) == [created.id]
    lose_a_race(store, created, ticket_pending=False)
    assert ids(store.list_ticket_pending()) == [created.id]
    store.put_incident(replace(pending, ticket_pending=False), expected_etag=pending.etag)
    assert store.list_ticket_pending() == []


def test_list_incidents_by_status_is_unchanged_by_a_lost_race(store):
    created = store.put_incident(make_incident(1, status=ASSIGNED))
    moved = store.put_incident(replace(created, status=VERIFYING), expected_etag=created.etag)
    lose_a_race(store, created, status=TICKETED)
    assert store.list_incidents(TICKETED) == [] and store.list_incidents(ASSIGNED) == []
    assert store.list_incidents(VERIFYING) == [moved]


def test_incidents_with_an_assignment_follow_it_case_insensitively(store):
    held = store.put_incident(make_incident(1, status=VERIFYING, assignment_id=ASSIGNMENT))
    store.put_incident(make_incident(2, status=VERIFYING, assignment_id=ASSIGNMENT + "9"))
    store.put_incident(make_incident(3))
    assert ids(store.incidents_with_assignment(ASSIGNMENT.lower())) == [held.id]
    assert ids(store.incidents_with_assignment(ASSIGNMENT.upper())) == [held.id]
    assert store.incidents_with_assignment("/no/such/assignment") == []
    lose_a_race(store, replace(held, etag="stale"), assignment_id=None)
    assert ids(store.incidents_with_assignment(ASSIGNMENT)) == [held.id]
    other = store.put_incident(replace(held, assignment_id=ASSIGNMENT + "-new"), expected_etag=held.etag)
    assert store.incidents_with_assignment(ASSIGNMENT) == []
    assert ids(store.incidents_with_assignment(ASSIGNMENT + "-NEW")) == [held.id]
    lose_a_race(store, held, assignment_id=ASSIGNMENT)
    assert store.incidents_with_assignment(ASSIGNMENT) == []
    store.put_incident(replace(other, assignment_id=None), expected_etag=other.etag)
    assert store.incidents_with_assignment(ASSIGNMENT + "-new") == []


def test_open_incidents_of_a_principal_compare_its_id_normalized_and_leave_closed_ones_out(store):
    first = store.put_incident(make_incident(1, status=TICKETED))
    store.put_incident(make_incident(2, status=DETECTED))  # another principal
    second = store.put_incident(make_incident(3, principal_id=" {" + first.principal_id.upper() + "} "))
    closed = store.put_incident(make_incident(4, principal_id=first.principal_id, status=RESOLVED))
    assert ids(store.open_incidents_of_principal(first.principal_id)) == [first.id, second.id]
    assert ids(store.open_incidents_of_principal("{" + first.principal_id.upper() + "}")) == [first.id, second.id]
    assert store.open_incidents_of_principal("not-a-guid") == [] and closed.id
    resolved = store.put_incident(replace(second, status=RESOLVED), expected_etag=second.etag)
    lose_a_race(store, second, status=TICKETED)
    assert ids(store.open_incidents_of_principal(first.principal_id)) == [first.id]
    store.put_incident(replace(resolved, status=DETECTED), expected_etag=resolved.etag)  # reopened
    assert ids(store.open_incidents_of_principal(first.principal_id)) == [first.id, second.id]


def test_batched_writes_keep_every_index_and_a_changed_incident_keeps_its_own(store):
    items = [(make_incident(n, status=VERIFYING, verify_due=T0, ticket_pending=n % 2 == 0,
                            assignment_id=f"{ASSIGNMENT}{n}"), ()) for n in range(1, 61)]
    created = store.create_incidents(items)
    assert all(created)
    assert len(store.due_verifications(T0)) == 60 and len(store.list_ticket_pending()) == 30
    assert ids(store.incidents_with_assignment(f"{ASSIGNMENT}7")) == [make_incident(7).id]
    changed = store.put_incident(replace(created[0], status=TICKETED), expected_etag=created[0].etag)
    replaced = store.replace_incidents([(replace(i, status=RESOLVED, ticket_pending=False, assignment_id=None,
                                                 verify_due=None), i.etag, ()) for i in created if i])
    assert replaced[0] is None and all(replaced[1:])  # the first changed since its etag
    assert ids(store.due_verifications(T0)) == [changed.id] and store.list_ticket_pending() == []
    assert ids(store.list_incidents(TICKETED)) == [changed.id] and len(store.list_incidents(RESOLVED)) == 59
    assert ids(store.incidents_with_assignment(f"{ASSIGNMENT}1")) == [changed.id]
    assert store.incidents_with_assignment(f"{ASSIGNMENT}7") == []
    assert ids(store.open_incidents_of_principal(changed.principal_id)) == [changed.id]


def test_another_instance_replacing_at_an_etag_it_never_read_keeps_the_indexes(backend):
    mine, theirs = backend.store(), backend.store()
    created = mine.put_incident(make_incident(1, status=VERIFYING, verify_due=T0, assignment_id=ASSIGNMENT))
    theirs.put_incident(replace(created, status=TICKETED, verify_due=None, assignment_id=None),
                        expected_etag=created.etag)
    for store in (mine, theirs):
        assert store.due_verifications(T0) == [] and store.incidents_with_assignment(ASSIGNMENT) == []
        assert ids(store.list_incidents(TICKETED)) == [created.id] and store.list_incidents(VERIFYING) == []
    # and its own stale copy loses, writing nothing
    assert mine.replace_incidents([(replace(created, ticket_pending=True), created.etag, ())]) == [None]
    with pytest.raises(ConflictError):
        mine.put_incident(replace(created, ticket_pending=True), expected_etag=created.etag)
    assert mine.list_ticket_pending() == []
