"""The Log Analytics workspace: DuckDB tables queried with real KQL through duckdb-kql.

Each query runs on its own cursor, where temporary views with the tables' names shadow the stored tables and
apply the request's `timespan` (and, for resource-centric queries, the `_ResourceId`), the way Log Analytics
limits what a query can see.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb_kql

from localazure.apim import GATEWAY_LOG_COLUMNS
from localazure.apim import TABLE as GATEWAY_LOGS
from localazure.bulkload import write_rows
from localazure.clock import as_utc
from localazure.unreceived import MISSING_CODE, Missing, Unreceived

# Column order follows the Azure Monitor table references; types are DuckDB types.
TABLES: dict[str, tuple[tuple[str, str], ...]] = {
    "AzureDiagnostics": (
        ("TenantId", "VARCHAR"), ("TimeGenerated", "TIMESTAMP"), ("ResourceId", "VARCHAR"),
        ("Category", "VARCHAR"), ("ResourceGroup", "VARCHAR"), ("SubscriptionId", "VARCHAR"),
        ("ResourceProvider", "VARCHAR"), ("Resource", "VARCHAR"), ("ResourceType", "VARCHAR"),
        ("OperationName", "VARCHAR"), ("ResultType", "VARCHAR"), ("CorrelationId", "VARCHAR"),
        ("ResultSignature", "VARCHAR"), ("DurationMs", "BIGINT"), ("CallerIPAddress", "VARCHAR"),
        ("properties_s", "VARCHAR"), ("SourceSystem", "VARCHAR"), ("Type", "VARCHAR"), ("_ResourceId", "VARCHAR"),
    ),
    "AppDependencies": (
        ("TenantId", "VARCHAR"), ("TimeGenerated", "TIMESTAMP"), ("Id", "VARCHAR"), ("Target", "VARCHAR"),
        ("DependencyType", "VARCHAR"), ("Name", "VARCHAR"), ("Data", "VARCHAR"), ("Success", "BOOLEAN"),
        ("ResultCode", "VARCHAR"), ("DurationMs", "DOUBLE"), ("Properties", "JSON"), ("OperationName", "VARCHAR"),
        ("OperationId", "VARCHAR"), ("ParentId", "VARCHAR"), ("AppRoleName", "VARCHAR"),
        ("AppRoleInstance", "VARCHAR"), ("ItemCount", "INTEGER"), ("SDKVersion", "VARCHAR"), ("Type", "VARCHAR"),
        ("_ResourceId", "VARCHAR"),
    ),
    "AppExceptions": (
        ("TenantId", "VARCHAR"), ("TimeGenerated", "TIMESTAMP"), ("ProblemId", "VARCHAR"), ("HandledAt", "VARCHAR"),
        ("ExceptionType", "VARCHAR"), ("Message", "VARCHAR"), ("OuterType", "VARCHAR"),
        ("OuterMessage", "VARCHAR"), ("InnermostType", "VARCHAR"), ("InnermostMessage", "VARCHAR"),
        ("SeverityLevel", "INTEGER"), ("Details", "JSON"), ("Properties", "JSON"), ("OperationName", "VARCHAR"),
        ("OperationId", "VARCHAR"), ("ParentId", "VARCHAR"), ("AppRoleName", "VARCHAR"),
        ("AppRoleInstance", "VARCHAR"), ("ItemCount", "INTEGER"), ("Type", "VARCHAR"), ("_ResourceId", "VARCHAR"),
    ),
    GATEWAY_LOGS: GATEWAY_LOG_COLUMNS,
}


class QueryError(Exception):
    """A query the stand-in cannot run: `code` is the Log Analytics inner error code; `inner` the (code, message) of
    the error inside that one, when Log Analytics nests one (e.g. SEM0100 under SemanticError)."""

    def __init__(self, code: str, message: str, inner: tuple[str, str] | None = None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.inner = inner


@dataclass(frozen=True)
class QueryResult:
    columns: list[tuple[str, str]]  # (name, Log Analytics type)
    rows: list[list[Any]]  # JSON-ready values
    truncated: bool = False


def _naive_utc(value: datetime | str) -> datetime:
    return as_utc(value).replace(tzinfo=None)


def _sql_timestamp(value: datetime) -> str:
    return "TIMESTAMP '" + _naive_utc(value).isoformat(sep=" ") + "'"


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class LogStore:
    """One workspace. `missing_tables` / `missing_columns` ({table: [column]}) are what it has not received yet:
    a query naming one answers as Log Analytics does (localazure/unreceived.py) until rows carrying it are added."""

    def __init__(self, tenant_id: str = "", *, missing_tables: Iterable[str] = (),
                 missing_columns: Mapping[str, Iterable[str]] | None = None):
        self.tenant_id = tenant_id
        for table in [*missing_tables, *(missing_columns or {})]:
            self.columns(table)
        self.unreceived = Unreceived(missing_tables, missing_columns)
        self._con = duckdb_kql.connect()
        # DuckDB connections are not thread-safe: the shared one is touched only under this lock; each query
        # then runs on its own cursor.
        self._lock = threading.RLock()
        self._catalog = self._con.execute("SELECT current_database()").fetchone()[0]
        for table, columns in TABLES.items():
            cols = ", ".join(f"{_quote(c)} {t}{self._default(table, c, t)}" for c, t in columns)
            self._con.execute(f"CREATE TABLE {_quote(table)} ({cols})")

    def _default(self, table: str, column: str, kind: str) -> str:
        # Log Analytics string columns are never null: a column a loader leaves out reads as "".
        if kind != "VARCHAR":
            return ""
        value = {"Type": table, "TenantId": self.tenant_id}.get(column, "")
        return " DEFAULT '" + value.replace("'", "''") + "'"

    # ------------------------------------------------------------ loading
    def columns(self, table: str) -> tuple[tuple[str, str], ...]:
        if table not in TABLES:
            raise KeyError(f"unknown table {table!r}; known: {', '.join(TABLES)}")
        return TABLES[table]

    def add_rows(self, table: str, rows: Iterable[Mapping[str, Any]]) -> int:
        """Insert dict rows (missing string columns become "", others null; datetimes may be ISO strings)."""
        columns = self.columns(table)
        rows = list(rows)
        tuples = [tuple(self._cell(row.get(name), kind, name, table) for name, kind in columns) for row in rows]
        if not tuples:
            return 0
        self.unreceived.received(table, {name for row in rows for name, value in row.items()
                                         if value not in (None, "")})
        if len(tuples) > 500:
            return self._insert_bulk(table, [c for c, _ in columns], tuples)
        marks = ", ".join("?" for _ in columns)
        with self._lock:
            self._con.executemany(f"INSERT INTO {_quote(table)} VALUES ({marks})", tuples)
        return len(tuples)

    def _cell(self, value: Any, kind: str, name: str, table: str) -> Any:
        if value is None:
            if name == "TenantId":
                return self.tenant_id
            if name == "Type":
                return table
            return "" if kind == "VARCHAR" else None
        if kind == "TIMESTAMP":
            return _naive_utc(value)
        if kind == "JSON" and not isinstance(value, str):
            return json.dumps(value)
        return value

    def load_bulk(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]] | str | Path) -> int:
        """Load many rows through DuckDB's CSV reader (or straight from a CSV/Parquet file path).

        Datetime cells may be datetimes (naive = UTC) or ISO strings; empty string cells stay empty strings.
        """
        self.unreceived.received(table, columns)
        return self._insert_bulk(table, columns, rows)

    def _insert_bulk(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]] | str | Path) -> int:
        known = dict(self.columns(table))
        unknown = [c for c in columns if c not in known]
        if unknown:
            raise KeyError(f"unknown columns for {table}: {unknown}")
        # Offsets in the text are honoured by reading timestamps as TIMESTAMPTZ, then storing UTC.
        read_types = {c: ("TIMESTAMPTZ" if known[c] == "TIMESTAMP" else known[c]) for c in columns}
        strings = [c for c in columns if known[c] == "VARCHAR"]
        spec = "{" + ", ".join(f"'{c}': '{t}'" for c, t in read_types.items()) + "}"
        if isinstance(rows, str | Path) and str(rows).endswith(".parquet"):
            source, path, cleanup = f"read_parquet('{rows}')", None, False
        elif isinstance(rows, str | Path):
            path, cleanup = str(rows), False
            source, options = None, "delim=',', quote='\"', escape='\"'"
        else:
            fd, path = tempfile.mkstemp(prefix="localazure-", suffix=".txt")
            os.close(fd)
            cleanup = True
            source = None
            options = write_rows(rows, path, len(columns))
        if source is None:
            not_null = "[" + ", ".join(f"'{c}'" for c in strings) + "]"
            source = (
                f"read_csv('{path}', header=false, columns={spec}, {options}, "
                f"force_not_null={not_null}, auto_detect=false)"
            )
        select = ", ".join(
            f"CAST({_quote(c)} AS TIMESTAMP)" if known[c] == "TIMESTAMP" else _quote(c) for c in columns
        )
        try:
            with self._lock:
                before = self.count(table)
                names = ", ".join(_quote(c) for c in columns)
                self._con.execute(f"INSERT INTO {_quote(table)} ({names}) SELECT {select} FROM {source}")
                return self.count(table) - before
        finally:
            if cleanup and path:
                os.unlink(path)

    def load_sql(self, table: str, select_sql: str) -> int:
        """Insert the rows of a DuckDB SELECT whose columns are named like the table's (benchmarks)."""
        self.columns(table)
        self.unreceived.received(table)
        with self._lock:
            before = self.count(table)
            self._con.execute(f"INSERT INTO {_quote(table)} BY NAME ({select_sql})")
            return self.count(table) - before

    def close(self) -> None:
        with self._lock:
            self._con.close()

    def count(self, table: str) -> int:
        with self._lock:
            return self._con.execute(f"SELECT count(*) FROM {_quote(table)}").fetchone()[0]

    def clear(self, table: str | None = None) -> None:
        with self._lock:
            for name in [table] if table else list(TABLES):
                self._con.execute(f"DELETE FROM {_quote(name)}")

    # ------------------------------------------------------------ querying
    def query(
        self,
        kql: str,
        *,
        now: datetime,
        start: datetime | None = None,
        end: datetime | None = None,
        resource_id: str | None = None,
        max_rows: int = 500_000,
    ) -> QueryResult:
        from localazure.kqltypes import la_type, la_value

        try:
            self.unreceived.check(kql)
        except Missing as missing:
            raise QueryError("SemanticError", "A semantic error occurred.", (MISSING_CODE, missing.message)) from None
        with self._lock:
            cursor = self._con.cursor()
        try:
            cursor.execute("SET TimeZone='UTC'")
            for table in TABLES:
                if self.unreceived.is_missing(table):
                    continue
                where = []
                if start is not None:
                    where.append(f"TimeGenerated >= {_sql_timestamp(start)}")
                if end is not None:
                    where.append(f"TimeGenerated <= {_sql_timestamp(end)}")
                if resource_id:
                    prefix = resource_id.lower().rstrip("/").replace("'", "''")
                    where.append(f"(lower(_ResourceId) = '{prefix}' OR starts_with(lower(_ResourceId), '{prefix}/'))")
                clause = (" WHERE " + " AND ".join(where)) if where else ""
                hidden = self.unreceived.hidden_columns(table)
                exclude = f" EXCLUDE ({', '.join(_quote(c) for c in sorted(hidden))})" if hidden else ""
                cursor.execute(
                    f"CREATE TEMP VIEW {_quote(table)} AS SELECT *{exclude} FROM "
                    f"{_quote(self._catalog)}.main.{_quote(table)}{clause}"
                )
            relation = self._run(cursor, kql, now)
            if relation is None:
                return QueryResult([], [])
            names = list(relation.columns)
            types = [la_type(str(t)) for t in relation.types]
            fetched = self._fetch(relation, max_rows + 1)
            truncated = len(fetched) > max_rows
            rows = [[la_value(v, t) for v, t in zip(row, types, strict=True)] for row in fetched[:max_rows]]
            return QueryResult(list(zip(names, types, strict=True)), rows, truncated)
        finally:
            cursor.close()

    @staticmethod
    def _fetch(relation: Any, limit: int) -> list[tuple[Any, ...]]:
        import duckdb

        try:
            return relation.limit(limit).fetchall()
        except duckdb.Error as exc:
            raise QueryError("SemanticError", f"The query failed while running: {exc}") from exc

    @staticmethod
    def _run(cursor: Any, kql: str, now: datetime) -> Any:
        import duckdb

        try:
            return duckdb_kql.kql(cursor, kql, allow_write=False, query_now=_naive_utc(now))
        except duckdb_kql.KqlSyntaxError as exc:
            raise QueryError("SyntaxError", f"A recognition error occurred in the query: {exc}") from exc
        except duckdb_kql.KqlUnsupportedError as exc:
            raise QueryError("SemanticError", f"The local stand-in cannot translate this query: {exc}") from exc
        except duckdb_kql.KqlError as exc:
            raise QueryError("SemanticError", f"A semantic error occurred: {exc}") from exc
        except duckdb.Error as exc:
            raise QueryError("SemanticError", f"A semantic error occurred: {exc}") from exc
