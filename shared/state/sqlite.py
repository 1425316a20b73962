"""SQLite backend: the embedded default for the CLI, the demo and single-machine use.

Concurrency: one connection per store, guarded by a lock, so threads share it safely; several processes
(or several stores) on one file are kept apart by SQLite itself: WAL journal, a busy timeout, and
`BEGIN IMMEDIATE` around every write so a check-and-set holds the write lock from check to set. Etags are
random tokens renewed on every write. `":memory:"` gives a private in-process database (tests).
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any, ClassVar

from shared.core.allowlist import normalize_object_id
from shared.core.incidents import OPEN_STATUSES, Incident
from shared.core.records import EventClaim, SettledView, settled_view
from shared.state import codec
from shared.state.base import AuditRecord, ConflictError, StoreError, Suppression
from shared.state.recent import Recent

SCHEMA_VERSION = 3  # 2: incidents.settled, the compact view a repeat scan reads; 3: the indexed columns (1, 2 migrate)
BUSY_TIMEOUT_SECONDS = 30.0
RECENT_INCIDENTS = 1024  # incidents remembered as last written or read (cached_incident): a burst, a chunk
# (~5 KB each: 4096 of them were 20 MB of a 100k-group first scan's peak)
_IDS_PER_READ = 500  # bound variables per statement (SQLite builds before 3.32 allow 999)

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS incidents (
        id TEXT PRIMARY KEY, status TEXT NOT NULL, verify_due TEXT,
        record TEXT NOT NULL, etag TEXT NOT NULL, settled TEXT,
        ticket_pending INTEGER NOT NULL DEFAULT 0, assignment TEXT, principal TEXT)""",
    "CREATE INDEX IF NOT EXISTS incidents_by_status ON incidents (status)",
    "CREATE INDEX IF NOT EXISTS incidents_by_verify_due ON incidents (verify_due)",
    "CREATE TABLE IF NOT EXISTS watermarks (source TEXT PRIMARY KEY, value TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS processed_events (event_id TEXT PRIMARY KEY, at TEXT NOT NULL)",
    # deliveries being handled: a lease that expires, so a killed handler's event is handled again
    "CREATE TABLE IF NOT EXISTS event_leases (event_id TEXT PRIMARY KEY, until TEXT NOT NULL)",
    """CREATE TABLE IF NOT EXISTS grants (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, incident_id TEXT NOT NULL, at TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS grants_by_time ON grants (at)",
    """CREATE TABLE IF NOT EXISTS named_values (
        key TEXT PRIMARY KEY, value TEXT NOT NULL, etag TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS suppressions (
        target TEXT PRIMARY KEY, until TEXT NOT NULL, record TEXT NOT NULL)""",
    """CREATE TABLE IF NOT EXISTS audit (
        seq INTEGER PRIMARY KEY AUTOINCREMENT, at TEXT NOT NULL, incident_id TEXT, record TEXT NOT NULL)""",
    "CREATE INDEX IF NOT EXISTS audit_by_incident ON audit (incident_id, at, seq)",
)
# Version 3: what the timer and the role-assignment events look incidents up by, each a column with an index.
_INDEXED_COLUMNS = {"ticket_pending": "INTEGER NOT NULL DEFAULT 0", "assignment": "TEXT", "principal": "TEXT"}
_INDEXES = (
    "CREATE INDEX IF NOT EXISTS incidents_by_ticket_pending ON incidents (ticket_pending) WHERE ticket_pending = 1",
    "CREATE INDEX IF NOT EXISTS incidents_by_assignment ON incidents (assignment) WHERE assignment IS NOT NULL",
    "CREATE INDEX IF NOT EXISTS incidents_by_principal ON incidents (principal, status) WHERE principal IS NOT NULL",
)
_INSERT_INCIDENT = ("INTO incidents (id, status, verify_due, ticket_pending, assignment, principal, record, etag, "
                    "settled) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
_UPDATE_INCIDENT = ("UPDATE incidents SET status = ?, verify_due = ?, ticket_pending = ?, assignment = ?, "
                    "principal = ?, record = ?, etag = ?, settled = ? WHERE id = ? AND etag = ?")


def _new_etag() -> str:
    return uuid.uuid4().hex


_key = codec.text_key  # every id bound as a key: a lone surrogate in malformed input must not fail the write


def _own_audit(incident: Incident, audit: Sequence[AuditRecord]) -> Sequence[AuditRecord]:
    if any(record.incident_id != incident.id for record in audit):
        raise ValueError(f"audit records written with incident {incident.id} must be about it")
    return audit


def _migrate(db: sqlite3.Connection, path: str) -> None:
    """Create the schema, or bring an older file up to it; a file from a newer version is refused, not guessed at."""
    found = int(db.execute("PRAGMA user_version").fetchone()[0])
    if found > SCHEMA_VERSION:
        raise StoreError(f"SQLite state at {path!r} has schema version {found}, newer than this version of the "
                         f"service understands ({SCHEMA_VERSION}): run the newer version, or start a new file")
    for statement in _SCHEMA:
        db.execute(statement)
    columns = {row[1] for row in db.execute("PRAGMA table_info(incidents)")}
    if "settled" not in columns:  # version 1: every incident gets its view now
        db.execute("ALTER TABLE incidents ADD COLUMN settled TEXT")
    rows = db.execute("SELECT id, record FROM incidents WHERE settled IS NULL").fetchall()
    db.executemany("UPDATE incidents SET settled = ? WHERE id = ?",
                   [(_settled_json(codec.incident_from_json(record, None)), key) for key, record in rows])
    for name, declaration in _INDEXED_COLUMNS.items():
        if name not in columns:  # versions 1 and 2: filled from each record below
            db.execute(f"ALTER TABLE incidents ADD COLUMN {name} {declaration}")
    if 0 < found < 3:
        rows = db.execute("SELECT id, record FROM incidents").fetchall()
        db.executemany("UPDATE incidents SET ticket_pending = ?, assignment = ?, principal = ? WHERE id = ?",
                       [(*_indexed(codec.incident_from_json(record, None)), key) for key, record in rows])
    for statement in _INDEXES:
        db.execute(statement)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def _indexed(incident: Incident) -> tuple[int, str | None, str | None]:
    """The version 3 columns: ticket pending, the assignment id (lower-case), the normalized principal id."""
    assignment = incident.assignment_id.strip().lower() if incident.assignment_id else None
    principal = normalize_object_id(incident.principal_id)
    return int(incident.ticket_pending), None if assignment is None else _key(assignment), principal


def _columns(incident: Incident, record: str, etag: str, settled: str) -> tuple[Any, ...]:
    """An incident's row after its id, in the order of _INSERT_INCIDENT and _UPDATE_INCIDENT."""
    verify_due = codec.time_key(incident.verify_due) if incident.verify_due else None
    return (incident.status, verify_due, *_indexed(incident), record, etag, settled)


def _settled_json(incident: Incident) -> str:
    return codec.settled_to_json(settled_view(incident))


class SqliteStore:
    def __init__(self, path: str):
        self.path = path
        self._lock = threading.Lock()
        self._recent: Recent[Incident] = Recent(RECENT_INCIDENTS)
        try:
            # isolation_level=None: we issue BEGIN/COMMIT ourselves; timeout is SQLite's busy timeout.
            self._db = sqlite3.connect(
                path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
            )
        except sqlite3.Error as exc:
            raise StoreError(f"cannot open SQLite state at {path!r}: {exc}") from exc
        try:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            with self._write() as db:
                _migrate(db, path)
        except StoreError:
            self._db.close()
            raise
        except sqlite3.Error as exc:
            self._db.close()
            raise StoreError(f"cannot initialise SQLite state at {path!r}: {exc}") from exc

    # ---- plumbing ----

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction holding the database write lock from its first statement."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite state {self.path!r}: cannot begin a write: {exc}") from exc
            try:
                yield self._db
                self._db.execute("COMMIT")
            except BaseException as exc:
                self._rollback()
                if isinstance(exc, sqlite3.Error):
                    raise StoreError(f"SQLite state {self.path!r}: write failed: {exc}") from exc
                raise

    def _rollback(self) -> None:
        try:
            self._db.execute("ROLLBACK")
        except sqlite3.Error:
            pass  # the transaction was already rolled back by SQLite; the original error is what matters

    def _read(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._db.execute(sql, params).fetchall()
            except sqlite3.Error as exc:
                raise StoreError(f"SQLite state {self.path!r}: read failed: {exc}") from exc

    # ---- incidents ----

    def get_incident(self, incident_id: str) -> Incident | None:
        rows = self._read("SELECT record, etag FROM incidents WHERE id = ?", (_key(incident_id),))
        if not rows:
            return None
        incident = codec.incident_from_json(rows[0][0], rows[0][1])
        self._recent.put(incident.id, incident)
        return incident

    def cached_incident(self, incident_id: str) -> Incident | None:
        return self._recent.get(incident_id)

    def get_incidents(self, incident_ids: Iterable[str]) -> dict[str, Incident]:
        rows = self._read_by_ids("record, etag", incident_ids)
        return {incident.id: incident for incident in (codec.incident_from_json(record, etag)
                                                       for record, etag in rows)}

    def put_incident(self, incident: Incident, expected_etag: str | None = None) -> Incident:
        return self._put_incident(incident, expected_etag, ())

    def put_incident_audited(self, incident: Incident, expected_etag: str | None,
                             audit: Sequence[AuditRecord]) -> Incident:
        return self._put_incident(incident, expected_etag, audit)

    def _put_incident(self, incident: Incident, expected_etag: str | None,
                      audit: Sequence[AuditRecord]) -> Incident:
        """The incident and its audit records in one transaction: a lost race writes neither."""
        incident = codec.normalized_incident(incident)
        records = [(codec.time_key(r.at), _key(r.incident_id or ""), codec.audit_to_json(r))
                   for r in _own_audit(incident, audit)]
        etag = _new_etag()
        columns = _columns(incident, codec.incident_to_json(incident), etag, _settled_json(incident))
        with self._write() as db:
            db.executemany("INSERT INTO audit (at, incident_id, record) VALUES (?, ?, ?)", records)
            if expected_etag is None:
                try:
                    db.execute("INSERT " + _INSERT_INCIDENT, (_key(incident.id), *columns))
                except sqlite3.IntegrityError as exc:
                    raise ConflictError(f"incident {incident.id} already exists") from exc
            else:
                changed = db.execute(_UPDATE_INCIDENT, (*columns, _key(incident.id), expected_etag)).rowcount
                if changed != 1:
                    raise ConflictError(f"incident {incident.id} changed or vanished since it was read")
        saved = replace(incident, etag=etag)
        self._recent.put(saved.id, saved)
        return saved

    # Views as decoded, by their stored text, for every store of the process (a view is a function of its text): a
    # repeat scan reads the same texts again. Bounded: emptied when full, so texts of old writes do not pile up.
    _views_by_text: ClassVar[dict[str, SettledView]] = {}
    VIEWS_KEPT: ClassVar[int] = 20_000

    def get_settled(self, incident_ids: Iterable[str]) -> dict[str, SettledView]:
        known = self._views_by_text
        views: dict[str, SettledView] = {}
        for (text,) in self._read_by_ids("settled", incident_ids):
            view = known.get(text)
            if view is None:
                view = codec.settled_from_json(text)
                if len(known) >= self.VIEWS_KEPT:
                    known.clear()
                known[text] = view
            views[view.id] = view
        return views

    def _read_by_ids(self, columns: str, incident_ids: Iterable[str]) -> list[tuple]:
        """`columns` of the incidents with these ids, in reads of at most _IDS_PER_READ ids each."""
        wanted = list(dict.fromkeys(map(_key, incident_ids)))
        rows: list[tuple] = []
        for at in range(0, len(wanted), _IDS_PER_READ):
            chunk = wanted[at : at + _IDS_PER_READ]
            marks = ", ".join("?" for _ in chunk)  # placeholders only: the ids are bound, never spliced in
            rows.extend(self._read(f"SELECT {columns} FROM incidents WHERE id IN ({marks})", tuple(chunk)))  # noqa: S608
        return rows

    def create_incidents(self, items: Sequence[tuple[Incident, Sequence[AuditRecord]]]) -> list[Incident | None]:
        """Every new incident and its audit records in one write transaction; an id that exists is left as it is."""
        prepared = []
        for incident, audit in items:
            incident = codec.normalized_incident(incident)
            records = [(codec.time_key(r.at), _key(r.incident_id or ""), codec.audit_to_json(r))
                       for r in _own_audit(incident, audit)]
            prepared.append((incident, codec.incident_to_json(incident), _settled_json(incident), records))
        saved: list[Incident | None] = []
        with self._write() as db:
            for incident, record, settled, records in prepared:
                etag = _new_etag()
                created = db.execute("INSERT OR IGNORE " + _INSERT_INCIDENT,
                                     (_key(incident.id), *_columns(incident, record, etag, settled))).rowcount
                if created != 1:
                    saved.append(None)
                    continue
                db.executemany("INSERT INTO audit (at, incident_id, record) VALUES (?, ?, ?)", records)
                saved.append(replace(incident, etag=etag))
        return saved

    def replace_incidents(self, items: Sequence[tuple[Incident, str, Sequence[AuditRecord]]]
                          ) -> list[Incident | None]:
        """Every incident replaced at its etag, with its audit records, in one write transaction; one that changed
        since (or vanished) is left as it is (None)."""
        prepared = []
        for incident, expected_etag, audit in items:
            incident = codec.normalized_incident(incident)
            records = [(codec.time_key(r.at), _key(r.incident_id or ""), codec.audit_to_json(r))
                       for r in _own_audit(incident, audit)]
            prepared.append((incident, expected_etag, codec.incident_to_json(incident), _settled_json(incident),
                             records))
        saved: list[Incident | None] = []
        with self._write() as db:
            for incident, expected_etag, record, settled, records in prepared:
                etag = _new_etag()
                changed = db.execute(_UPDATE_INCIDENT, (*_columns(incident, record, etag, settled),
                                                        _key(incident.id), expected_etag)).rowcount
                if changed != 1:
                    saved.append(None)
                    continue
                db.executemany("INSERT INTO audit (at, incident_id, record) VALUES (?, ?, ?)", records)
                saved.append(replace(incident, etag=etag))
        for written in saved:
            if written is not None:
                self._recent.put(written.id, written)
        return saved

    def list_incidents(self, status: str | None = None) -> list[Incident]:
        if status is None:
            rows = self._read("SELECT record, etag FROM incidents ORDER BY id")
        else:
            rows = self._read("SELECT record, etag FROM incidents WHERE status = ? ORDER BY id", (status,))
        return [codec.incident_from_json(record, etag) for record, etag in rows]

    def due_verifications(self, now: datetime) -> list[Incident]:
        rows = self._read(
            "SELECT record, etag FROM incidents WHERE verify_due IS NOT NULL AND verify_due <= ? "
            "AND status IN (SELECT value FROM json_each(?)) ORDER BY verify_due, id",
            (codec.time_key(now), json.dumps(sorted(OPEN_STATUSES))),
        )
        return [codec.incident_from_json(record, etag) for record, etag in rows]

    def list_ticket_pending(self) -> list[Incident]:
        rows = self._read("SELECT record, etag FROM incidents WHERE ticket_pending = 1 ORDER BY id")
        return [codec.incident_from_json(record, etag) for record, etag in rows]

    def incidents_with_assignment(self, assignment_id: str) -> list[Incident]:
        rows = self._read("SELECT record, etag FROM incidents WHERE assignment = ? ORDER BY id",
                          (_key(assignment_id.strip().lower()),))
        return [codec.incident_from_json(record, etag) for record, etag in rows]

    def open_incidents_of_principal(self, principal_id: str) -> list[Incident]:
        principal = normalize_object_id(principal_id)
        if principal is None:
            return []
        rows = self._read(
            "SELECT record, etag FROM incidents WHERE principal = ? AND status IN (SELECT value FROM json_each(?)) "
            "ORDER BY id", (principal, json.dumps(sorted(OPEN_STATUSES))))
        return [codec.incident_from_json(record, etag) for record, etag in rows]

    # ---- watermarks ----

    def get_watermark(self, source: str) -> datetime | None:
        rows = self._read("SELECT value FROM watermarks WHERE source = ?", (_key(source),))
        return codec.from_time_key(rows[0][0]) if rows else None

    def set_watermark(self, source: str, value: datetime) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO watermarks (source, value) VALUES (?, ?) "
                "ON CONFLICT (source) DO UPDATE SET value = excluded.value",
                (_key(source), codec.time_key(value)),
            )

    # ---- events ----

    def mark_event_processed(self, event_id: str, at: datetime) -> bool:
        event_id = _key(event_id)
        with self._write() as db:
            if db.execute("SELECT 1 FROM event_leases WHERE event_id = ?", (event_id,)).fetchone():
                return False  # a claimed delivery is seen, as on Tables (one entity per event)
            inserted = db.execute(
                "INSERT OR IGNORE INTO processed_events (event_id, at) VALUES (?, ?)",
                (event_id, codec.time_key(at)),
            ).rowcount
        return inserted == 1

    def forget_event(self, event_id: str) -> None:
        event_id = _key(event_id)
        with self._write() as db:
            db.execute("DELETE FROM processed_events WHERE event_id = ?", (event_id,))
            db.execute("DELETE FROM event_leases WHERE event_id = ?", (event_id,))

    def claim_event(self, event_id: str, at: datetime, lease: timedelta) -> EventClaim:
        event_id = _key(event_id)
        with self._write() as db:
            if db.execute("SELECT 1 FROM processed_events WHERE event_id = ?", (event_id,)).fetchone():
                return EventClaim.DONE
            held = db.execute("SELECT until FROM event_leases WHERE event_id = ?", (event_id,)).fetchone()
            if held is not None and held[0] > codec.time_key(at):
                return EventClaim.HELD
            db.execute(
                "INSERT INTO event_leases (event_id, until) VALUES (?, ?) "
                "ON CONFLICT (event_id) DO UPDATE SET until = excluded.until",
                (event_id, codec.time_key(at + lease)),
            )
        return EventClaim.CLAIMED

    def complete_event(self, event_id: str, at: datetime) -> None:
        event_id = _key(event_id)
        with self._write() as db:
            db.execute("INSERT OR IGNORE INTO processed_events (event_id, at) VALUES (?, ?)",
                       (event_id, codec.time_key(at)))
            db.execute("DELETE FROM event_leases WHERE event_id = ?", (event_id,))

    # ---- grants ----

    def record_grant(self, incident_id: str, at: datetime) -> None:
        incident_id = _key(incident_id)
        with self._write() as db:
            db.execute(
                "INSERT INTO grants (incident_id, at) VALUES (?, ?)", (incident_id, codec.time_key(at))
            )

    def count_grants_since(self, since: datetime) -> int:
        rows = self._read("SELECT COUNT(*) FROM grants WHERE at >= ?", (codec.time_key(since),))
        return int(rows[0][0])

    # ---- named values ----

    def get_value(self, key: str) -> tuple[dict[str, Any] | None, str | None]:
        key = _key(key)
        rows = self._read("SELECT value, etag FROM named_values WHERE key = ?", (key,))
        if not rows:
            return None, None
        return json.loads(rows[0][0]), rows[0][1]

    def put_value(self, key: str, value: dict[str, Any], expected_etag: str | None = None) -> str:
        key = _key(key)
        text = codec.dumps(value)
        etag = _new_etag()
        with self._write() as db:
            if expected_etag is None:
                try:
                    db.execute(
                        "INSERT INTO named_values (key, value, etag) VALUES (?, ?, ?)", (key, text, etag)
                    )
                except sqlite3.IntegrityError as exc:
                    raise ConflictError(f"value {key!r} already exists") from exc
            else:
                changed = db.execute(
                    "UPDATE named_values SET value = ?, etag = ? WHERE key = ? AND etag = ?",
                    (text, etag, key, expected_etag),
                ).rowcount
                if changed != 1:
                    raise ConflictError(f"value {key!r} changed or vanished since it was read")
        return etag

    # ---- suppressions ----

    def add_suppression(self, suppression: Suppression) -> None:
        with self._write() as db:
            db.execute(
                "INSERT INTO suppressions (target, until, record) VALUES (?, ?, ?) "
                "ON CONFLICT (target) DO UPDATE SET until = excluded.until, record = excluded.record",
                (_key(suppression.target), codec.time_key(suppression.until),
                 codec.suppression_to_json(suppression)),
            )

    def active_suppressions(self, now: datetime) -> list[Suppression]:
        rows = self._read(
            "SELECT record FROM suppressions WHERE until > ? ORDER BY target", (codec.time_key(now),)
        )
        return [codec.suppression_from_json(record) for (record,) in rows]

    # ---- audit ----

    def append_audit(self, record: AuditRecord) -> None:
        text = codec.audit_to_json(record)
        with self._write() as db:
            db.execute(
                "INSERT INTO audit (at, incident_id, record) VALUES (?, ?, ?)",
                (codec.time_key(record.at), None if record.incident_id is None else _key(record.incident_id), text),
            )

    def list_audit(self, incident_id: str | None = None) -> list[AuditRecord]:
        incident_id = None if incident_id is None else _key(incident_id)
        if incident_id is None:
            rows = self._read("SELECT record FROM audit ORDER BY at, seq")
        else:
            rows = self._read(
                "SELECT record FROM audit WHERE incident_id = ? ORDER BY at, seq", (incident_id,)
            )
        return [codec.audit_from_json(record) for (record,) in rows]

    # ---- lifecycle ----

    def ping(self) -> None:
        self._read("SELECT 1 FROM incidents LIMIT 1")

    def close(self) -> None:
        with self._lock:
            self._db.close()
