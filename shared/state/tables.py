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

from shared.core.allowlist import normalize_object_id
from shared.core.incidents import Incident
from shared.core.records import EventClaim, SettledView, settled_view
from shared.state import codec, table_index
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
# Layout 3 keeps index rows beside each incident (shared/state/table_index.py); the marker says every incident has
# them. Its RowKey is a row kept beside ("~" + a lower-case letter), so no listing takes it for an incident.
LAYOUT_VERSION = 3
LAYOUT_PARTITION, LAYOUT_ROW = "layout", "~layout"
_INDEX_ROWS = "index_rows"  # on an incident entity: the RowKeys of its index rows, a JSON array ("[]": none)
KNOWN_INDEX_ROWS = 16_384  # incidents whose index rows at an etag this process knows (a replace needs them)
_BESIDE_LOW, _BESIDE_HIGH = "~a", "~{"
_POINT_READS_PER_PARTITION = 3  # more views than this wanted from one partition: one range query reads them all
_POINT_READS_PER_INDEXED = 64  # more incidents than this named by an index in one partition: one range query
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
        self._rows: Recent[tuple[str, tuple[str, ...]]] = Recent(KNOWN_INDEX_ROWS)  # id: (etag, its index rows)
        self._completed: Recent[bool] = Recent(COMPLETED_EVENTS)
        self._claimed: Recent[str] = Recent(COMPLETED_EVENTS)  # claimed here (lease end), not completed or released
        self._completions = _GroupCommit(self._write_completions)
        self._claims = _GroupCommit(self._create_claims)

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
                        with _azure_errors(f"migrate {name} to its indexed layout"):
                            _index_existing_incidents(client)
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
        return self._read_incident(entity) if entity is not None else None

    def _read_incident(self, entity: Any) -> Incident:
        """The incident an entity holds, remembered with the index rows it lists (a layout 2 entity lists none)."""
        incident = _incident(entity)
        self._rows.put(incident.id, (str(incident.etag), _listed_rows(entity)))
        return self._remember(incident)

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
        what = f"write incident {incident.id}" + (" with its audit" if audit else "")
        old_rows = () if expected_etag is None else self._index_rows_at(incident.id, expected_etag, what)
        operations = _incident_operations(incident, expected_etag, audit, old_rows)
        results = self._transaction(operations, what)
        return self._written(incident, results[0])

    def _written(self, incident: Incident, result: Any) -> Incident:
        saved = replace(incident, etag=str(result["etag"]))
        self._rows.put(saved.id, (str(saved.etag), _rows(saved)))
        return self._remember(saved)

    def _index_rows_at(self, incident_id: str, etag: str, what: str) -> tuple[str, ...]:
        """The index rows the incident stored at `etag` has, so a replace removes those it no longer needs: known
        when this process wrote or read it at that etag, else read (one point read). Changed since or gone: the
        replace would lose, so it is a ConflictError now."""
        known = self._rows.get(incident_id)
        if known is not None and known[0] == etag:
            return known[1]
        entity = self._get("Incidents", incident_partition(incident_id), table_key(incident_id))
        if entity is None or _etag(entity.metadata) != etag:  # type: ignore[attr-defined]
            raise ConflictError(f"{what}: changed or vanished since it was read")
        self._read_incident(entity)
        return _listed_rows(entity)

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
        for incident, _, audit in items:
            if any(record.incident_id != incident.id for record in audit):
                raise ValueError(f"audit records written with incident {incident.id} must be about it")
        old_rows = self._index_rows_of([(incident.id, etag) for incident, etag, _ in items if etag is not None])
        prepared: dict[str, list[tuple[int, Incident, list[tuple[Any, ...]], int]]] = {}
        for at, (incident, etag, audit) in enumerate(items):
            incident = codec.normalized_incident(incident)
            if etag is not None and incident.id not in old_rows:
                continue  # changed since it was read, or gone: left out (None), as a lost race would be
            operations = _incident_operations(incident, etag, audit, old_rows.get(incident.id, ()))
            size = sum(_operation_bytes(op) for op in operations)
            prepared.setdefault(incident_partition(incident.id), []).append((at, incident, operations, size))
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
        for results in self._parallel(self._create_batch, [batch for batch in batches if batch]):
            for index, incident in results:
                saved[index] = incident
        return saved

    def _index_rows_of(self, wanted: list[tuple[str, str]]) -> dict[str, tuple[str, ...]]:
        """`_index_rows_at` for many incidents (point reads, 8 in flight, for those not known at their etag); an
        incident changed since its etag, or gone, is left out."""
        def rows_at(item: tuple[str, str]) -> tuple[str, tuple[str, ...]] | None:
            try:
                return item[0], self._index_rows_at(item[0], item[1], f"replace incident {item[0]}")
            except ConflictError:
                return None
        return dict(found for found in self._parallel(rows_at, wanted) if found is not None)

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
            out.append((index, self._written(incident, results[at])))
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
        return self._written(incident, results[0])

    # The timer's and the events' queries read index rows (one RowKey range in each of the 16 partitions, 8 in
    # flight), then the incidents they name by point reads; the incident read back decides. Only the listings of
    # the CLI and the HTTP API (every incident, or a status no hot path lists) read whole partitions.
    def list_incidents(self, status: str | None = None) -> list[Incident]:
        if status is None:  # every incident, not the rows kept beside them ("~audit|...", "~settled|...")
            entities = self._query("Incidents", "RowKey lt @low or RowKey ge @high", low=_BESIDE_LOW,
                                   high=_BESIDE_HIGH)
            return sorted((self._read_incident(e) for e in entities), key=lambda i: i.id)
        if status not in table_index.INDEXED_STATUSES:  # the CLI's and the HTTP API's listing by status
            entities = self._query("Incidents", "status eq @status", status=status)
            return sorted((self._read_incident(e) for e in entities), key=lambda i: i.id)
        found = self._indexed(*table_index.prefix_range(f"{table_index.STATUS}{table_index.short(table_key(status))}|"))
        return sorted((i for i in found if i.status == status), key=lambda i: i.id)

    def due_verifications(self, now: datetime) -> list[Incident]:
        due_by = codec.time_key(now)
        low, _ = table_index.prefix_range(table_index.DUE)
        found = self._indexed(low, table_index.prefix_range(f"{table_index.DUE}{due_by}|")[1])
        due = [i for i in found if i.is_open and i.verify_due is not None and codec.time_key(i.verify_due) <= due_by]
        return sorted(due, key=lambda i: (i.verify_due, i.id))

    def list_ticket_pending(self) -> list[Incident]:
        found = self._indexed(*table_index.prefix_range(table_index.PENDING))
        return sorted((i for i in found if i.ticket_pending), key=lambda i: i.id)

    def incidents_with_assignment(self, assignment_id: str) -> list[Incident]:
        part = table_index.assignment_part(assignment_id, table_key)
        found = self._indexed(*table_index.prefix_range(f"{table_index.ASSIGNMENT}{part}|"))
        wanted = assignment_id.strip().lower()
        return sorted((i for i in found if (i.assignment_id or "").strip().lower() == wanted), key=lambda i: i.id)

    def open_incidents_of_principal(self, principal_id: str) -> list[Incident]:
        part = table_index.principal_part(principal_id, table_key)
        if part is None:
            return []
        found = self._indexed(*table_index.prefix_range(f"{table_index.PRINCIPAL}{part}|"))
        wanted = normalize_object_id(principal_id)
        return sorted((i for i in found if i.is_open and normalize_object_id(i.principal_id) == wanted),
                      key=lambda i: i.id)

    def _indexed(self, low: str, high: str) -> list[Incident]:
        """The incidents whose index rows lie in [low, high) of their partition: a range query in each partition
        (selecting the incident's key alone), then a point read of each incident named (once)."""
        table = self._table("Incidents")

        def named(partition: str) -> list[tuple[str, str]]:
            with _azure_errors(f"query {table.table_name}"):
                rows = table.query_entities("PartitionKey eq @p and RowKey ge @low and RowKey lt @high",
                                            select=["incident"], parameters={"p": partition, "low": low, "high": high})
                return [(partition, str(row["incident"])) for row in rows]

        partitions = [f"i{n:02x}" for n in range(INCIDENT_PARTITIONS)]
        by_partition: dict[str, set[str]] = {}
        for partition, key in (key for found in self._parallel(named, partitions) for key in found):
            by_partition.setdefault(partition, set()).add(key)
        jobs: list[Callable[[], list[Any]]] = []
        for partition, keys in by_partition.items():
            if len(keys) <= _POINT_READS_PER_INDEXED:
                jobs.extend(partial(self._get_one, partition, key) for key in keys)
            else:
                jobs.append(partial(self._incident_range, partition, keys))
        entities = [entity for found in self._parallel(lambda job: job(), jobs) for entity in found]
        return [self._read_incident(entity) for entity in entities]

    def _get_one(self, partition: str, key: str) -> list[Any]:
        entity = self._get("Incidents", partition, key)
        return [] if entity is None else [entity]

    def _incident_range(self, partition: str, keys: set[str]) -> list[Any]:
        """Many incidents of one partition named at once (a storm's ticket queue): one range query from the least
        key to the greatest, keeping the named ones, costs pages instead of a point read each."""
        entities = self._query("Incidents", "PartitionKey eq @p and RowKey ge @low and RowKey le @high",
                               p=partition, low=min(keys), high=max(keys))
        return [entity for entity in entities if entity["RowKey"] in keys]

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
        if self._claims.write(entity):
            self._claimed.put(event_id, entity["lease_until"])
            return EventClaim.CLAIMED
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

    def _create_claims(self, entities: list[dict[str, Any]]) -> list[bool]:
        """New claims that arrive together are created together: True for each when the transaction created them
        all. A transaction fails whole when one key exists already (a redelivery, a lease to take over), so then
        every claim in it is False and goes the single way (create, else read the lease), where its own outcome
        is decided; nothing is claimed twice, since a create of an existing entity never succeeds."""
        if len(entities) == 1:
            return [False]  # alone: the single way costs the same one request and decides every case
        table = self._table("Events")
        with _azure_errors(f"claim {len(entities)} events"):
            try:
                table.submit_transaction([("create", e) for e in entities])
            except TableTransactionError as exc:
                if getattr(exc, "status_code", None) != 409:
                    raise
                return [False] * len(entities)
        return [True] * len(entities)

    def complete_event(self, event_id: str, at: datetime) -> None:
        """Completions that arrive together are written together (one entity-group transaction on the `event`
        partition); each caller returns once its own is written, or raises what writing it raised."""
        entity = {"PartitionKey": "event", "RowKey": table_key(event_id), "at": codec.time_key(at)}
        self._completions.write(entity)
        self._completed.put(event_id, True)
        self._claimed.forget(event_id)

    def _write_completions(self, entities: list[dict[str, Any]]) -> list[bool]:
        if len(entities) == 1:
            self._upsert("Events", entities[0], f"complete event {entities[0]['RowKey']}")
        else:
            table = self._table("Events")
            with _azure_errors(f"complete {len(entities)} events"):
                table.submit_transaction([("upsert", e, {"mode": UpdateMode.REPLACE}) for e in entities])
        return [True] * len(entities)

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


def _incident_operations(incident: Incident, expected_etag: str | None, audit: Sequence[AuditRecord],
                         old_rows: Sequence[str] = ()) -> list[tuple[Any, ...]]:
    """The transaction that writes an incident: the incident first (created, or replaced at its ETag), its view
    (upserted: it follows the incident), the index rows it gains (upserted) and those it no longer has (`old_rows`:
    the ones the replaced entity lists; deleted), then its audit rows."""
    rows = _rows(incident)
    entity = {**_incident_entity(incident), _INDEX_ROWS: json.dumps(rows)}
    first: tuple[Any, ...] = ("create", entity) if expected_etag is None else (
        "update", entity, {"mode": UpdateMode.REPLACE, "etag": expected_etag,
                           "match_condition": MatchConditions.IfNotModified})
    partition = entity["PartitionKey"]
    return [first, ("upsert", _settled_entity(incident), {"mode": UpdateMode.REPLACE}),
            *(("upsert", _index_entity(partition, row, entity["RowKey"]), {"mode": UpdateMode.REPLACE})
              for row in rows if row not in old_rows),
            *(("delete", {"PartitionKey": partition, "RowKey": row}) for row in old_rows if row not in rows),
            *(("create", _incident_audit_entity(record)) for record in audit)]


def _index_entity(partition: str, row: str, incident_key: str) -> dict[str, Any]:
    return {"PartitionKey": partition, "RowKey": row, "incident": incident_key}


def _rows(incident: Incident) -> tuple[str, ...]:
    return table_index.rows_of(incident, table_key(incident.id), table_key)


def _listed_rows(entity: Any) -> tuple[str, ...]:
    """The index rows an incident entity says it has (a layout 2 entity, written before them, says none)."""
    listed = entity.get(_INDEX_ROWS)
    return tuple(json.loads(listed)) if listed else ()


def _operation_bytes(operation: tuple[Any, ...]) -> int:
    entity = operation[1]
    return 2 * len(_json_text(entity)) if "json_parts" in entity else 2 * sum(len(str(v)) for v in entity.values())


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


def _index_existing_incidents(table: TableClient) -> None:
    """Layout 2 had no index rows: each incident without them gets them, in one entity-group transaction with a
    merge of the list into the incident at its ETag (per partition, up to 100 operations a transaction), then the
    layout marker says it is done. Run by every process on first use of the table until the marker is there (one
    point read after); several processes at once are safe: one that lost an incident's ETag race reads it again
    and indexes it only if it still lacks the rows (another writer of this version wrote them)."""
    try:
        marker = table.get_entity(LAYOUT_PARTITION, LAYOUT_ROW)
        if int(marker.get("version", 0)) >= LAYOUT_VERSION:
            return
    except ResourceNotFoundError:
        pass
    partitions = [f"i{n:02x}" for n in range(INCIDENT_PARTITIONS)]
    with ThreadPoolExecutor(max_workers=_PARALLEL_QUERIES) as pool:
        indexed = sum(pool.map(partial(_index_partition, table), partitions))
    if indexed:
        log.warning("added index rows to %d incidents of %s (layout %d)", indexed, table.table_name, LAYOUT_VERSION)
    table.upsert_entity({"PartitionKey": LAYOUT_PARTITION, "RowKey": LAYOUT_ROW, "version": LAYOUT_VERSION},
                        mode=UpdateMode.REPLACE)


def _index_partition(table: TableClient, partition: str) -> int:
    """Once per partition, at migration: every incident of the partition is read (a scan, once, not a hot path)."""
    entities = table.query_entities("PartitionKey eq @p and ( RowKey lt @low or RowKey ge @high )",
                                    parameters={"p": partition, "low": _BESIDE_LOW, "high": _BESIDE_HIGH})
    batch: list[tuple[Any, ...]] = []
    unindexed: list[Any] = []
    indexed = 0
    for entity in entities:
        if _INDEX_ROWS in entity:
            continue
        operations = _indexing_operations(entity)
        if len(batch) + len(operations) > _TRANSACTION_OPERATIONS:
            indexed += _submit_indexing(table, batch, unindexed)
            batch, unindexed = [], []
        batch.extend(operations)
        unindexed.append(entity)
    return indexed + (_submit_indexing(table, batch, unindexed) if batch else 0)


def _indexing_operations(entity: Any) -> list[tuple[Any, ...]]:
    rows = _rows(_incident(entity))
    merged = {"PartitionKey": entity["PartitionKey"], "RowKey": entity["RowKey"], _INDEX_ROWS: json.dumps(rows)}
    return [("update", merged, {"mode": UpdateMode.MERGE, "etag": _etag(entity.metadata),
                                "match_condition": MatchConditions.IfNotModified}),
            *(("upsert", _index_entity(entity["PartitionKey"], row, entity["RowKey"]), {"mode": UpdateMode.REPLACE})
              for row in rows)]


def _submit_indexing(table: TableClient, operations: list[tuple[Any, ...]], entities: list[Any]) -> int:
    try:
        table.submit_transaction(operations)
        return len(entities)
    except TableTransactionError as exc:
        if exc.status_code not in (404, 412):
            raise
    return sum(_index_alone(table, entity) for entity in entities)  # one was written since: each on its own


def _index_alone(table: TableClient, entity: Any) -> int:
    for _ in range(5):  # each lost race means another writer wrote it meanwhile, which usually indexes it too
        try:
            table.submit_transaction(_indexing_operations(entity))
            return 1
        except TableTransactionError as exc:
            if exc.status_code not in (404, 412):
                raise
        try:
            entity = table.get_entity(entity["PartitionKey"], entity["RowKey"])
        except ResourceNotFoundError:
            return 0
        if _INDEX_ROWS in entity:
            return 0
    raise StoreError(f"incident {entity['RowKey']} kept changing while it was indexed: start again")


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

    def __init__(self, submit: Callable[[list[dict[str, Any]]], list[bool]]):
        self._submit = submit
        self._changed = threading.Condition()
        self._pending: list[_Waiting] = []
        self._writing = False

    def write(self, entity: dict[str, Any]) -> bool:
        """What `submit` answered for this entity."""
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
                results: list[bool] = [False] * len(batch)
                try:
                    results = self._submit([waiting.entity for waiting in batch])
                except BaseException as exc:  # noqa: BLE001 - handed to every caller in the batch
                    error = exc
                finally:
                    self._changed.acquire()
                    self._writing = False
                for waiting, result in zip(batch, results, strict=True):
                    waiting.done, waiting.error, waiting.result = True, error, result
                self._changed.notify_all()
        if mine.error is not None:
            raise mine.error
        return mine.result

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
        self.result = False
