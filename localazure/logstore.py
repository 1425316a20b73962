"""The Log Analytics workspace: DuckDB tables queried with real KQL through duckdb-kql.

Each query runs on its own cursor, where temporary views with the tables' names shadow the stored tables and
apply the request's `timespan` (and, for resource-centric queries, the `_ResourceId`), the way Log Analytics
limits what a query can see.

Ingestion time: every table has a hidden column INGESTED_AT. A row added with an `ingestion_delay` (a timedelta
or seconds) is ingested that long after its TimeGenerated and is invisible to every query until the stand-in's
clock reaches it; a row without one is ingested at its TimeGenerated (the column stays null). duckdb-kql does not
translate `ingestion_time()`, so a query's `ingestion_time()` calls (outside string literals) are rewritten to
that column before it runs (`with_ingestion_column`); the column is never part of an answer.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import threading
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
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


INGESTED_AT = "__IngestedAt"
INGESTION_DELAY = "ingestion_delay"  # a row key (not a column): how late the row is ingested
_INGESTION_TIME = re.compile(r"ingestion_time\s*\(\s*\)")
# KQL comments and string literals: '...' and "..." with backslash escapes, verbatim @'...' / @"..." (doubled
# quotes), so a call to ingestion_time() is found only where it is one.
_KQL_STRING = re.compile("|".join((
    r"//[^\n]*", r"@'(?:[^']|'')*'", r'@"(?:[^"]|"")*"', r"'(?:[^'\\\n]|\\.)*'", r'"(?:[^"\\\n]|\\.)*"')))


def with_ingestion_column(kql: str, column: str = INGESTED_AT) -> str:
    """`kql` with every `ingestion_time()` outside string literals read from `column` instead."""
    out: list[str] = []
    at = 0
    for literal in _KQL_STRING.finditer(kql):
        out.append(_INGESTION_TIME.sub(column, kql[at:literal.start()]))
        out.append(literal.group(0))
        at = literal.end()
    out.append(_INGESTION_TIME.sub(column, kql[at:]))
    return "".join(out)


def _delay(value: Any) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


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
            self._con.execute(f"CREATE TABLE {_quote(table)} ({cols}, {_quote(INGESTED_AT)} TIMESTAMP)")

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
        """Insert dict rows (missing string columns become "", others null; datetimes may be ISO strings). A row's
        `ingestion_delay` (timedelta or seconds) makes it arrive that long after its TimeGenerated."""
        columns = self.columns(table)
        rows = list(rows)
        tuples = [tuple(self._cell(row.get(name), kind, name, table) for name, kind in columns) for row in rows]
        if not tuples:
            return 0
        self.unreceived.received(table, {name for row in rows for name, value in row.items()
                                         if value not in (None, "") and name != INGESTION_DELAY})
        late = [self._ingested_at(row) for row in rows]
        if len(tuples) > 500 and not any(late):
            return self._insert_bulk(table, [c for c, _ in columns], tuples)
        names = ", ".join(_quote(c) for c in [*(c for c, _ in columns), INGESTED_AT])
        marks = ", ".join("?" for _ in range(len(columns) + 1))
        with self._lock:
            self._con.executemany(f"INSERT INTO {_quote(table)} ({names}) VALUES ({marks})",
                                  [(*cells, at) for cells, at in zip(tuples, late, strict=True)])
        return len(tuples)

    @staticmethod
    def _ingested_at(row: Mapping[str, Any]) -> datetime | None:
        delay = row.get(INGESTION_DELAY)
        if not delay or row.get("TimeGenerated") is None:
            return None
        return _naive_utc(row["TimeGenerated"]) + _delay(delay)

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
        translated = with_ingestion_column(kql)
        with self._lock:
            cursor = self._con.cursor()
        try:
            cursor.execute("SET TimeZone='UTC'")
            for table in TABLES:
                if self.unreceived.is_missing(table):
                    continue
                # Not yet ingested: invisible, whatever the query. Rows without an ingestion time arrived on time.
                where = [f"({_quote(INGESTED_AT)} IS NULL OR {_quote(INGESTED_AT)} <= {_sql_timestamp(now)})"]
                if start is not None:
                    where.append(f"TimeGenerated >= {_sql_timestamp(start)}")
                if end is not None:
                    where.append(f"TimeGenerated <= {_sql_timestamp(end)}")
                if resource_id:
                    prefix = resource_id.lower().rstrip("/").replace("'", "''")
                    where.append(f"(lower(_ResourceId) = '{prefix}' OR starts_with(lower(_ResourceId), '{prefix}/'))")
                clause = " WHERE " + " AND ".join(where)
                hidden = {*self.unreceived.hidden_columns(table), INGESTED_AT}
                exclude = f" EXCLUDE ({', '.join(_quote(c) for c in sorted(hidden))})"
                # Kept last, as in the stored table: duckdb-kql reads the columns from the stored table's schema.
                ingested = f", coalesce({_quote(INGESTED_AT)}, TimeGenerated) AS {_quote(INGESTED_AT)}"
                cursor.execute(
                    f"CREATE TEMP VIEW {_quote(table)} AS SELECT *{exclude}{ingested} FROM "
                    f"{_quote(self._catalog)}.main.{_quote(table)}{clause}"
                )
            relation = self._run(cursor, translated, now)
            if relation is None:
                return QueryResult([], [])
            names = list(relation.columns)
            types = [la_type(str(t)) for t in relation.types]
            fetched = self._fetch(relation, max_rows + 1)
            truncated = len(fetched) > max_rows
            shown = [n for n, name in enumerate(names) if name != INGESTED_AT]  # never a column of the answer
            rows = [[la_value(row[n], types[n]) for n in shown] for row in fetched[:max_rows]]
            return QueryResult([(names[n], types[n]) for n in shown], rows, truncated)
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
