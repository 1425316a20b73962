"""Azure Table Storage backend: the production store, in the Function App's own storage account.

Imported only when TRIAGE_STATE_BACKEND=table, so the SDK import stays off the default path. It connects with a
connection string (Azurite, local use) or, identity-based, with the Table service URL and a token credential (the
Function App's managed identity; shared keys may be off on the account). Layout (see
docs/state.md): five tables named `<prefix>Incidents|Events|Grants|State|Audit`, created lazily and
idempotently on first use. Every conditional write uses the entity ETag, so several Function instances never
act twice on one incident: a lost race surfaces as `ConflictError` (HTTP 409 on create, 412 on replace).

Records are compact JSON split over `json_0..json_<n-1>` string properties (`json_parts` = n) of at most
16,000 characters each: a character is at most 4 bytes in UTF-16, so a part stays under the 64 KiB limit.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
import string
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from azure.core import MatchConditions
from azure.core.exceptions import (
    AzureError,
    ResourceExistsError,
    ResourceNotFoundError,
    ServiceRequestError,
    ServiceResponseError,
)
from azure.data.tables import TableClient, TableServiceClient, TableTransactionError, UpdateMode

from shared.core.incidents import Incident
from shared.core.records import EventClaim, SettledView, settled_view
from shared.state import codec
from shared.state.base import AuditRecord, ConflictError, StoreError, Suppression
from shared.state.recent import Recent

JSON_PART_CHARS = 16_000
MAX_KEY_CHARS = 512  # keys may be 1 KiB in UTF-16; escaped keys are ASCII
GLOBAL_AUDIT_PARTITION = "_global"  # "_" is always escaped in keys, so no incident id maps here
_INCIDENT_AUDIT = "~audit|"  # RowKey prefix of audit records kept in their incident's partition
_SETTLED = "~settled|"  # RowKey prefix of an incident's compact view (records.settled_view), beside it
# What a range read of views selects: a view is one part (`json_1` shows one that is not; ints cost the SDK an eval).
_VIEW_PROPERTIES = ["RowKey", "json_0", "json_1"]
# Incidents live in INCIDENT_PARTITIONS partitions by a hash of their id. Escaped keys start with a letter, a digit,
# "-.:@", "~" + an upper-case hex digit, or "~~": the rows beside an incident ("~" + a lower-case letter) sort
# between the two, so RowKey lt "~a" or ge "~{" is exactly the incidents.
INCIDENT_PARTITIONS = 16  # fixed: changing it is a layout change (a migration)
LEGACY_INCIDENT_PARTITION = "incident"  # layout 1: every incident in one partition (migrated on first use)
_BESIDE_LOW, _BESIDE_HIGH = "~a", "~{"
_POINT_READS_PER_PARTITION = 3  # more views than this wanted from one partition: one range query reads them all
_TRANSACTION_OPERATIONS = 100  # Azure's limit per entity-group transaction
_TRANSACTION_BYTES = 3_000_000  # of the 4 MiB a transaction's body may hold, leaving room for the envelope

RECENT_INCIDENTS = 1024  # incidents remembered as last written or read (cached_incident): a burst, a chunk
# (~5 KB each: 4096 of them were 20 MB of a 100k-group first scan's peak)
COMPLETED_EVENTS = 100_000  # event ids this process completed: a redelivery to it costs no request
COMPLETION_LINGER_S = 0.015  # a lone completion waits this long for others to write with (see _GroupCommit)

log = logging.getLogger("triage")

_SAFE_KEY_CHARS = frozenset(string.ascii_letters + string.digits + "-.:@")
_PREFIX = re.compile(r"[A-Za-z][A-Za-z0-9]{0,49}")
_TABLES = ("Incidents", "Events", "Grants", "State", "Audit")
_PARALLEL_QUERIES = 8  # point reads and queries in flight at once (bounded: the SDK pool holds 10)


def table_key(text: str) -> str:
    """A PartitionKey/RowKey for any text. Table keys refuse / \\ # ? and control characters, so every
    byte outside a small safe set is written as ~XX (UTF-8, hex); the mapping is one-to-one. Keys that would
    be long (or empty) become `~~` + SHA-256, which no escaped key can start with."""
    escaped = "".join(
        ch if ch in _SAFE_KEY_CHARS else "".join(f"~{b:02X}" for b in ch.encode("utf-8", "surrogatepass"))
        for ch in text
    )
    if not escaped or len(escaped) > MAX_KEY_CHARS:
        return "~~" + hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return escaped


def incident_partition(incident_id: str) -> str:
    """The partition of an incident and everything kept beside it: `i` + two hex digits of its id's hash."""
    digest = hashlib.sha256(incident_id.encode("utf-8", "surrogatepass")).digest()
    return f"i{digest[0] % INCIDENT_PARTITIONS:02x}"


def _json_properties(text: str) -> dict[str, Any]:
    parts = [text[i : i + JSON_PART_CHARS] for i in range(0, len(text), JSON_PART_CHARS)] or [""]
    return {"json_parts": len(parts), **{f"json_{n}": part for n, part in enumerate(parts)}}


def _json_text(entity: dict[str, Any]) -> str:
    return "".join(entity[f"json_{n}"] for n in range(int(entity["json_parts"])))


def _etag(metadata: Any) -> str:
    return str(metadata["etag"])


@contextmanager
def _azure_errors(what: str) -> Iterator[None]:
    """SDK failures become StoreError; a lost optimistic-concurrency race becomes ConflictError."""
    try:
        yield
    except AzureError as exc:
        status = getattr(exc, "status_code", None)
        summary = (getattr(exc, "message", None) or str(exc)).splitlines()[0]
        if status in (409, 412):
            raise ConflictError(f"{what}: {summary}") from exc
        raise StoreError(f"{what}: {summary}") from exc


class TableStore:
    def __init__(self, connection_string: str | None = None, prefix: str = "triage", *, endpoint: str | None = None,
                 credential: Any = None, **client_options: Any):
        """Either a connection string (Azurite, local use) or the Table service `endpoint` with a token
        `credential` (identity-based access: a managed identity in Azure). `client_options` go to the SDK client
        (retry_total, connection_timeout, connection_verify, ...)."""
        if not _PREFIX.fullmatch(prefix):
            raise ValueError(f"table prefix {prefix!r}: expected a letter then up to 49 letters or digits")
        if (connection_string is None) == (endpoint is None):
            raise ValueError("give either a connection string or an endpoint with a credential")
        if endpoint is not None:
            if credential is None:
                raise ValueError("an endpoint needs a token credential")
            try:
                self._service = TableServiceClient(endpoint=endpoint, credential=credential, **client_options)
            except (ValueError, AzureError) as exc:
                raise StoreError(f"the Table service URL {endpoint!r} is not valid: {exc}") from exc
        else:
            try:
                self._service = TableServiceClient.from_connection_string(str(connection_string), **client_options)
            except (ValueError, AzureError) as exc:
                # The SDK's message may quote the connection string; never echo the account key.
                raise StoreError("the storage connection string (AzureWebJobsStorage) is not valid") from exc
        self.prefix = prefix
        self._clients: dict[str, TableClient] = {}
        self._lock = threading.Lock()
        self._recent: Recent[Incident] = Recent(RECENT_INCIDENTS)
        self._completed: Recent[bool] = Recent(COMPLETED_EVENTS)
        self._claimed: Recent[str] = Recent(COMPLETED_EVENTS)  # claimed here (lease end), not completed or released
        self._completions = _GroupCommit(self._write_completions)

    # ---- plumbing ----

    def _table(self, kind: str) -> TableClient:
        client = self._clients.get(kind)
        if client is None:
            with self._lock:
                client = self._clients.get(kind)
                if client is None:
                    name = self.prefix + kind
                    with _azure_errors(f"create table {name}"):
                        client = self._service.create_table_if_not_exists(name)
                    if kind == "Incidents":
                        with _azure_errors(f"migrate {name} to its partitioned layout"):
                            _migrate_legacy_partition(client)
                    self._clients[kind] = client
        return client

    def _get(self, kind: str, partition: str, row: str) -> dict[str, Any] | None:
        table = self._table(kind)
        with _azure_errors(f"read {table.table_name}"):
            try:
                return table.get_entity(partition, row)
            except ResourceNotFoundError:
                return None

    def _query(self, kind: str, query: str, **parameters: Any) -> list[dict[str, Any]]:
        table = self._table(kind)
        with _azure_errors(f"query {table.table_name}"):
            return list(table.query_entities(query, parameters=parameters))

    def _create(self, kind: str, entity: dict[str, Any], what: str) -> str:
        table = self._table(kind)
        with _azure_errors(what):
            try:
                return _etag(table.create_entity(entity))
            except ResourceExistsError as exc:
                raise ConflictError(f"{what}: it already exists") from exc

    def _replace_if_unchanged(self, kind: str, entity: dict[str, Any], etag: str, what: str) -> str:
        table = self._table(kind)
        with _azure_errors(what):
            try:
                metadata = table.update_entity(
                    entity, mode=UpdateMode.REPLACE, etag=etag, match_condition=MatchConditions.IfNotModified
                )
            except ResourceNotFoundError as exc:
                raise ConflictError(f"{what}: it no longer exists") from exc
        return _etag(metadata)

    def _upsert(self, kind: str, entity: dict[str, Any], what: str) -> None:
        table = self._table(kind)
        with _azure_errors(what):
            table.upsert_entity(entity, mode=UpdateMode.REPLACE)

    # ---- incidents: partitioned by a hash of the id; the compact view and the audit written with it beside ----

    def get_incident(self, incident_id: str) -> Incident | None:
        entity = self._get("Incidents", incident_partition(incident_id), table_key(incident_id))
        return self._remember(_incident(entity)) if entity is not None else None

    def cached_incident(self, incident_id: str) -> Incident | None:
        return self._recent.get(incident_id)

    def _remember(self, incident: Incident) -> Incident:
        self._recent.put(incident.id, incident)
        return incident

    def get_incidents(self, incident_ids: Iterable[str]) -> dict[str, Incident]:
        """Point reads (PartitionKey + RowKey), a few at once: Tables has no batch read, and an OR of RowKeys is
        a partition scan."""
        found = self._parallel(self.get_incident, list(dict.fromkeys(incident_ids)))
        return {incident.id: incident for incident in found if incident is not None}

    def get_settled(self, incident_ids: Iterable[str]) -> dict[str, SettledView]:
        """The compact views, by partition: a point read each where a partition holds few of the ids wanted, else
        one range query over the partition's views (`~settled|...`, small and contiguous) from the least to the
        greatest key wanted."""
        wanted = set(incident_ids)
        by_partition: dict[str, list[str]] = {}
        for incident_id in wanted:
            by_partition.setdefault(incident_partition(incident_id), []).append(incident_id)
        jobs: list[Callable[[], list[SettledView]]] = []
        for partition, ids in by_partition.items():
            if len(ids) <= _POINT_READS_PER_PARTITION:
                jobs.extend(partial(self._settled_point, partition, incident_id) for incident_id in ids)
            else:
                jobs.append(partial(self._settled_range, partition, [table_key(i) for i in ids]))
        views = [view for found in self._parallel(lambda job: job(), jobs) for view in found]
        return {view.id: view for view in views if view.id in wanted}

    def _settled_point(self, partition: str, incident_id: str) -> list[SettledView]:
        entity = self._get("Incidents", partition, _SETTLED + table_key(incident_id))
        return [] if entity is None else [codec.settled_from_json(_json_text(entity))]

    def _settled_range(self, partition: str, keys: list[str]) -> list[SettledView]:
        """The views in the partition from the least to the greatest key wanted: callers that ask for ids in
        sorted batches (settled_signals) read each view once."""
        table = self._table("Incidents")
        with _azure_errors(f"query {table.table_name}"):
            # Only the view's text: no Timestamp, whose parse was most of the SDK's work on an entity this small.
            entities = list(table.query_entities(
                "PartitionKey eq @p and RowKey ge @low and RowKey le @high", select=_VIEW_PROPERTIES,
                parameters={"p": partition, "low": _SETTLED + min(keys), "high": _SETTLED + max(keys)}))
        texts = (self._view_text(partition, e) for e in entities)
        return [codec.settled_from_json(text) for text in texts if text is not None]

    def _view_text(self, partition: str, entity: dict[str, Any]) -> str | None:
        if entity.get("json_1") is None:
            return str(entity["json_0"])
        whole = self._get("Incidents", partition, entity["RowKey"])  # never, at a view's size: all its parts
        return None if whole is None else _json_text(whole)

    def _parallel(self, work: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1:
            return [work(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(_PARALLEL_QUERIES, len(items))) as pool:
            return list(pool.map(work, items))

    def put_incident(self, incident: Incident, expected_etag: str | None = None) -> Incident:
        return self.put_incident_audited(incident, expected_etag, ())

    def put_incident_audited(self, incident: Incident, expected_etag: str | None,
                             audit: Sequence[AuditRecord]) -> Incident:
        """One entity-group transaction on the incident's partition: the incident (created, or replaced at its
        ETag), its compact view, and its audit records as `~audit|<incident key>|<row>` rows (list_audit reads
        them with the Audit table's). A lost race writes none of them."""
        if any(record.incident_id != incident.id for record in audit):
            raise ValueError(f"audit records written with incident {incident.id} must be about it")
        incident = codec.normalized_incident(incident)
        operations = _incident_operations(incident, expected_etag, audit)
        what = f"write incident {incident.id}" + (" with its audit" if audit else "")
        results = self._transaction(operations, what)
        return self._remember(replace(incident, etag=str(results[0]["etag"])))

    def _transaction(self, operations: list[tuple[Any, ...]], what: str) -> list[Any]:
        table = self._table("Incidents")
        with _azure_errors(what):
            try:
                return list(table.submit_transaction(operations))
            except TableTransactionError as exc:
                if exc.status_code in (404, 409, 412):  # exists, vanished, or changed since read
                    raise ConflictError(f"{what}: {exc.status_code}") from exc
                raise

    def create_incidents(self, items: Sequence[tuple[Incident, Sequence[AuditRecord]]]) -> list[Incident | None]:
        """New incidents (each with its view and audit) in entity-group transactions per partition, of at most
        100 operations and 3 MB. A transaction that meets an existing incident writes nothing; its incidents are
        then created one by one, so only the existing ones are left out (None)."""
        return self._write_incidents([(incident, None, audit) for incident, audit in items])

    def replace_incidents(self, items: Sequence[tuple[Incident, str, Sequence[AuditRecord]]]
                          ) -> list[Incident | None]:
        """Incidents replaced at the ETags they were read at (each with its view and audit), batched as
        `create_incidents`; one changed since (or gone) is left out (None), and its transaction's others are then
        written one by one."""
        return self._write_incidents(items)

    def _write_incidents(self, items: Sequence[tuple[Incident, str | None, Sequence[AuditRecord]]]
                         ) -> list[Incident | None]:
        prepared: dict[str, list[tuple[int, Incident, list[tuple[Any, ...]], int]]] = {}
        for index, (incident, etag, audit) in enumerate(items):
            if any(record.incident_id != incident.id for record in audit):
                raise ValueError(f"audit records written with incident {incident.id} must be about it")
            incident = codec.normalized_incident(incident)
            operations = _incident_operations(incident, etag, audit)
            size = sum(2 * len(_json_text(op[1])) for op in operations)
            prepared.setdefault(incident_partition(incident.id), []).append((index, incident, operations, size))
        batches: list[list[tuple[int, Incident, list[tuple[Any, ...]], int]]] = []
        for members in prepared.values():
            batch: list[tuple[int, Incident, list[tuple[Any, ...]], int]] = []
            for member in members:
                if batch and (sum(len(m[2]) for m in batch) + len(member[2]) > _TRANSACTION_OPERATIONS
                              or sum(m[3] for m in batch) + member[3] > _TRANSACTION_BYTES):
                    batches.append(batch)
                    batch = []
                batch.append(member)
            batches.append(batch)
        saved: list[Incident | None] = [None] * len(items)
        for results in self._parallel(self._create_batch, batches):
            for index, incident in results:
                saved[index] = incident
        return saved

    def _create_batch(self, batch: list[tuple[int, Incident, list[tuple[Any, ...]], int]]
                      ) -> list[tuple[int, Incident | None]]:
        operations = [op for _, _, ops, _ in batch for op in ops]
        try:
            results = self._transaction(operations, f"write {len(batch)} incidents")
        except ConflictError:
            return [(index, self._create_alone(incident, ops)) for index, incident, ops, _ in batch]
        except StoreError as exc:
            if not isinstance(exc.__cause__, ServiceRequestError | ServiceResponseError):
                raise
            # The connection failed and the transaction's outcome is unknown (a POST is not retried): what it
            # wrote, if anything, is read back; a create that was not applied is made alone.
            return [(index, self._written_or_alone(incident, ops)) for index, incident, ops, _ in batch]
        out: list[tuple[int, Incident | None]] = []
        at = 0
        for index, incident, ops, _ in batch:
            out.append((index, self._remember(replace(incident, etag=str(results[at]["etag"])))))
            at += len(ops)
        return out

    def _written_or_alone(self, incident: Incident, operations: list[tuple[Any, ...]]) -> Incident | None:
        stored = self.get_incident(incident.id)
        if stored is not None and codec.incident_to_json(stored) == codec.incident_to_json(incident):
            return stored  # applied (atomically: its view and audit rows too), only its answer was lost
        if stored is None and operations[0][0] == "create":
            return self._create_alone(incident, operations)
        return None  # another writer's, or a replace that did not apply: nothing of it was written

    def _create_alone(self, incident: Incident, operations: list[tuple[Any, ...]]) -> Incident | None:
        try:
            results = self._transaction(operations, f"write incident {incident.id}")
        except ConflictError:
            return None
        return self._remember(replace(incident, etag=str(results[0]["etag"])))

    # Listing queries read every partition (a table scan, filtered server-side): the CLI, the HTTP API and the
    # once-per-cycle sweeps use them, never the per-signal path.
    def list_incidents(self, status: str | None = None) -> list[Incident]:
        if status is None:  # every incident, not the rows kept beside them ("~audit|...", "~settled|...")
            entities = self._query("Incidents", "RowKey lt @low or RowKey ge @high", low=_BESIDE_LOW,
                                   high=_BESIDE_HIGH)
        else:
            entities = self._query("Incidents", "status eq @status", status=status)
        return sorted((_incident(e) for e in entities), key=lambda i: i.id)

    def due_verifications(self, now: datetime) -> list[Incident]:
        entities = self._query("Incidents", "verify_due le @now", now=codec.time_key(now))
        due = [i for i in (_incident(e) for e in entities) if i.is_open]
        return sorted(due, key=lambda i: (i.verify_due, i.id))

    def list_ticket_pending(self) -> list[Incident]:
        entities = self._query("Incidents", "ticket_pending eq true")
        return sorted((_incident(e) for e in entities), key=lambda i: i.id)

    # ---- watermarks ----

    def get_watermark(self, source: str) -> datetime | None:
        entity = self._get("State", "watermark", table_key(source))
        return codec.from_time_key(entity["value"]) if entity is not None else None

    def set_watermark(self, source: str, value: datetime) -> None:
        entity = {"PartitionKey": "watermark", "RowKey": table_key(source), "source": source,
                  "value": codec.time_key(value)}
        self._upsert("State", entity, f"write watermark {source}")

    # ---- events ----

    def mark_event_processed(self, event_id: str, at: datetime) -> bool:
        if self._completed.get(event_id):
            return False
        entity = {"PartitionKey": "event", "RowKey": table_key(event_id), "at": codec.time_key(at)}
        table = self._table("Events")
        with _azure_errors(f"record event {event_id}"):
            try:
                table.create_entity(entity)
            except ResourceExistsError:
                return False
        return True

    def forget_event(self, event_id: str) -> None:
        self._completed.forget(event_id)
        self._claimed.forget(event_id)
        table = self._table("Events")
        with _azure_errors(f"forget event {event_id}"):
            table.delete_entity("event", table_key(event_id))  # absent already: nothing to do

    # A claimed delivery is the event's entity with `lease_until`; a completed one (or one marked the old way)
    # has none. Taking over an expired lease replaces the entity at its ETag, so one caller wins.
    def claim_event(self, event_id: str, at: datetime, lease: timedelta) -> EventClaim:
        if self._completed.get(event_id):
            return EventClaim.DONE  # completed here: done for good (only its own failed handler forgets a claim)
        entity = {"PartitionKey": "event", "RowKey": table_key(event_id), "at": codec.time_key(at),
                  "lease_until": codec.time_key(at + lease)}
        held_here = self._claimed.get(event_id)
        if held_here is not None and held_here > entity["at"]:
            return EventClaim.HELD  # a handler in this process holds its unexpired lease: retry later
        table = self._table("Events")
        with _azure_errors(f"claim event {event_id}"):
            try:
                table.create_entity(entity)
                self._claimed.put(event_id, entity["lease_until"])
                return EventClaim.CLAIMED
            except ResourceExistsError:
                pass
            try:
                found = table.get_entity("event", entity["RowKey"])
            except ResourceNotFoundError:
                return EventClaim.HELD  # forgotten between the two calls: the next delivery claims it
            if "lease_until" not in found:
                return EventClaim.DONE
            if found["lease_until"] > entity["at"]:
                return EventClaim.HELD
            try:
                table.update_entity(entity, mode=UpdateMode.REPLACE, etag=_etag(found.metadata),
                                    match_condition=MatchConditions.IfNotModified)
            except AzureError as exc:
                if getattr(exc, "status_code", None) in (404, 412):
                    return EventClaim.HELD  # another caller took the expired lease over (or completed it) first
                raise
        self._claimed.put(event_id, entity["lease_until"])
        return EventClaim.CLAIMED

    def complete_event(self, event_id: str, at: datetime) -> None:
        """Completions that arrive together are written together (one entity-group transaction on the `event`
        partition); each caller returns once its own is written, or raises what writing it raised."""
        entity = {"PartitionKey": "event", "RowKey": table_key(event_id), "at": codec.time_key(at)}
        self._completions.write(entity)
        self._completed.put(event_id, True)
        self._claimed.forget(event_id)

    def _write_completions(self, entities: list[dict[str, Any]]) -> None:
        if len(entities) == 1:
            self._upsert("Events", entities[0], f"complete event {entities[0]['RowKey']}")
            return
        table = self._table("Events")
        with _azure_errors(f"complete {len(entities)} events"):
            table.submit_transaction([("upsert", e, {"mode": UpdateMode.REPLACE}) for e in entities])

    # ---- grants: one partition per UTC day, so counting a window reads only its days ----

    def record_grant(self, incident_id: str, at: datetime) -> None:
        key = codec.time_key(at)
        entity = {"PartitionKey": key[:10], "RowKey": f"{key}|{uuid.uuid4().hex}", "incident_id": incident_id,
                  "at": key}
        self._create("Grants", entity, f"record grant for {incident_id}")

    def count_grants_since(self, since: datetime) -> int:
        key = codec.time_key(since)
        table = self._table("Grants")
        with _azure_errors(f"query {table.table_name}"):
            rows = table.query_entities(
                "PartitionKey ge @day and at ge @since",
                parameters={"day": key[:10], "since": key},
                select=["at"],
            )
            return sum(1 for _ in rows)

    # ---- named values ----

    def get_value(self, key: str) -> tuple[dict[str, Any] | None, str | None]:
        entity = self._get("State", "value", table_key(key))
        if entity is None:
            return None, None
        return json.loads(_json_text(entity)), _etag(entity.metadata)  # type: ignore[attr-defined]

    def put_value(self, key: str, value: dict[str, Any], expected_etag: str | None = None) -> str:
        entity = {"PartitionKey": "value", "RowKey": table_key(key), "key": key,
                  **_json_properties(codec.dumps(value))}
        what = f"write value {key!r}"
        if expected_etag is None:
            return self._create("State", entity, what)
        return self._replace_if_unchanged("State", entity, expected_etag, what)

    # ---- suppressions: one per target; a new one replaces the old ----

    def add_suppression(self, suppression: Suppression) -> None:
        entity = {"PartitionKey": "suppression", "RowKey": table_key(suppression.target),
                  "until": codec.time_key(suppression.until),
                  **_json_properties(codec.suppression_to_json(suppression))}
        self._upsert("State", entity, f"write suppression of {suppression.target}")

    def active_suppressions(self, now: datetime) -> list[Suppression]:
        entities = self._query(
            "State", "PartitionKey eq 'suppression' and until gt @now", now=codec.time_key(now)
        )
        return sorted((codec.suppression_from_json(_json_text(e)) for e in entities), key=lambda s: s.target)

    # ---- audit: append-only; RowKey = time, then a wall-clock tie-breaker, then randomness ----

    def append_audit(self, record: AuditRecord) -> None:
        partition = GLOBAL_AUDIT_PARTITION if record.incident_id is None else table_key(record.incident_id)
        row = _audit_row(record)
        entity = {"PartitionKey": partition, "RowKey": row, "kind": record.kind,
                  **_json_properties(codec.audit_to_json(record))}
        self._create("Audit", entity, f"append audit {record.kind}")

    def list_audit(self, incident_id: str | None = None) -> list[AuditRecord]:
        if incident_id is None:
            table = self._table("Audit")
            with _azure_errors(f"list {table.table_name}"):
                entities: Iterable[dict[str, Any]] = list(table.list_entities())
        else:
            entities = self._query("Audit", "PartitionKey eq @partition", partition=table_key(incident_id))
        # And the records written together with their incident (put_incident_audited), in its partition.
        prefix = _INCIDENT_AUDIT + ("" if incident_id is None else table_key(incident_id) + "|")
        high = prefix[:-1] + chr(ord(prefix[-1]) + 1)
        if incident_id is None:
            beside = self._query("Incidents", "RowKey ge @low and RowKey lt @high", low=prefix, high=high)
        else:
            beside = self._query("Incidents", "PartitionKey eq @p and RowKey ge @low and RowKey lt @high",
                                 p=incident_partition(incident_id), low=prefix, high=high)
        ordered = sorted([*entities, *beside], key=lambda e: e.get("audit_row") or e["RowKey"])
        return [codec.audit_from_json(_json_text(e)) for e in ordered]

    # ---- lifecycle ----

    def ping(self) -> None:
        for kind in _TABLES:
            self._table(kind)
        self._get("State", "ping", "ping")  # a round trip even when every table is already known

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
            self._service.close()


def _incident_operations(incident: Incident, expected_etag: str | None,
                         audit: Sequence[AuditRecord]) -> list[tuple[Any, ...]]:
    """The transaction that writes an incident: the incident first (created, or replaced at its ETag), its view
    (upserted: it follows the incident), then its audit rows."""
    entity = _incident_entity(incident)
    first: tuple[Any, ...] = ("create", entity) if expected_etag is None else (
        "update", entity, {"mode": UpdateMode.REPLACE, "etag": expected_etag,
                           "match_condition": MatchConditions.IfNotModified})
    return [first, ("upsert", _settled_entity(incident), {"mode": UpdateMode.REPLACE}),
            *(("create", _incident_audit_entity(record)) for record in audit)]


def _settled_entity(incident: Incident) -> dict[str, Any]:
    return {"PartitionKey": incident_partition(incident.id), "RowKey": _SETTLED + table_key(incident.id),
            **_json_properties(codec.settled_to_json(settled_view(incident)))}


def _incident_entity(incident: Incident) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "PartitionKey": incident_partition(incident.id),
        "RowKey": table_key(incident.id),
        "status": incident.status,
        "ticket_pending": incident.ticket_pending,  # lets list_ticket_pending filter server-side
        **_json_properties(codec.incident_to_json(incident)),
    }
    if incident.verify_due is not None:
        entity["verify_due"] = codec.time_key(incident.verify_due)
    return entity


def _audit_row(record: AuditRecord) -> str:
    """Time first, then a wall-clock tie-breaker, then randomness: RowKey order is time order."""
    return f"{codec.time_key(record.at)}|{time.time_ns():020d}|{uuid.uuid4().hex[:12]}"


def _incident_audit_entity(record: AuditRecord) -> dict[str, Any]:
    """An audit record kept in its incident's partition. Escaped keys never start with "~a" ("~" is followed by
    two hex digits, or by "~" for a hashed key), so these rows never collide with an incident's."""
    row = _audit_row(record)
    incident_id = record.incident_id or ""
    return {"PartitionKey": incident_partition(incident_id),
            "RowKey": f"{_INCIDENT_AUDIT}{table_key(incident_id)}|{row}", "kind": record.kind,
            "audit_row": row, **_json_properties(codec.audit_to_json(record))}


def _incident(entity: Any) -> Incident:
    return codec.incident_from_json(_json_text(entity), _etag(entity.metadata))


def _migrate_legacy_partition(table: TableClient) -> None:
    """Layout 1 kept every incident, and the audit rows written with one, in the partition `incident`. Each is
    moved to its partition: created there (an incident with its view) unless that key exists already (a copy this
    version wrote or moved wins), then deleted from the old partition. Run by every process on first use of the
    table: one partition query when there is nothing to move; several processes moving at once is safe."""
    legacy = list(table.query_entities("PartitionKey eq @p", parameters={"p": LEGACY_INCIDENT_PARTITION}))
    if not legacy:
        return
    log.warning("moving %d rows of %s from the single `incident` partition to the partitioned layout",
                len(legacy), table.table_name)
    for entity in legacy:
        if entity["RowKey"].startswith(_INCIDENT_AUDIT):
            record = codec.audit_from_json(_json_text(entity))
            moved = {**entity, "PartitionKey": incident_partition(record.incident_id or "")}
            operations: list[tuple[Any, ...]] = [("create", moved)]
        else:
            incident = _incident(entity)
            operations = _incident_operations(replace(incident, etag=None), None, ())
        try:
            table.submit_transaction(operations)
        except TableTransactionError as exc:
            if exc.status_code != 409:
                raise
        try:
            table.delete_entity(LEGACY_INCIDENT_PARTITION, entity["RowKey"])
        except ResourceNotFoundError:
            pass  # another process moved it first


class _GroupCommit:
    """Entities written together when their writers arrive together: each caller's entity joins the next
    transaction (at most 100 entities, each RowKey once), written by whichever caller finds no write under way
    (after COMPLETION_LINGER_S when it is alone); every caller returns once the transaction holding its entity
    succeeded, or raises what it raised."""

    def __init__(self, submit: Callable[[list[dict[str, Any]]], None]):
        self._submit = submit
        self._changed = threading.Condition()
        self._pending: list[_Waiting] = []
        self._writing = False

    def write(self, entity: dict[str, Any]) -> None:
        mine = _Waiting(entity)
        with self._changed:
            self._pending.append(mine)
            while not mine.done:
                if self._writing:
                    self._changed.wait()
                    continue
                self._writing = True
                if len(self._pending) == 1:  # alone so far: let the writers arriving with it join (group commit)
                    self._changed.wait(COMPLETION_LINGER_S)
                batch = self._take()
                self._changed.release()
                error: BaseException | None = None
                try:
                    self._submit([waiting.entity for waiting in batch])
                except BaseException as exc:  # noqa: BLE001 - handed to every caller in the batch
                    error = exc
                finally:
                    self._changed.acquire()
                    self._writing = False
                for waiting in batch:
                    waiting.done, waiting.error = True, error
                self._changed.notify_all()
        if mine.error is not None:
            raise mine.error

    def _take(self) -> list[_Waiting]:
        batch: list[_Waiting] = []
        keys: set[str] = set()
        for waiting in self._pending:
            key = waiting.entity["RowKey"]
            if key not in keys and len(batch) < _TRANSACTION_OPERATIONS:
                keys.add(key)
                batch.append(waiting)
        self._pending = [waiting for waiting in self._pending if waiting not in batch]
        return batch


class _Waiting:
    def __init__(self, entity: dict[str, Any]):
        self.entity = entity
        self.done = False
        self.error: BaseException | None = None
