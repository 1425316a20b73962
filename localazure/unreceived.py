"""What a workspace has not received yet: tables (and columns of a table) that do not exist until their first data.

Log Analytics creates `AzureDiagnostics` when the first Azure-diagnostics-mode record arrives (the first data can
take up to about two hours after a diagnostic setting is created), and a column such as `properties_s` when the
first record that carries it arrives. Until then a query that names one answers 400:

    {"error": {"message": "The request had some invalid properties", "code": "BadArgumentError",
               "correlationId": "...",
               "innererror": {"code": "SemanticError", "message": "A semantic error occurred.",
                              "innererror": {"code": "SEM0100", "message": "'where' operator: Failed to resolve
                                             table or column expression named 'AzureDiagnostics'"}}}}

(the body as a real answer is quoted in CDCgov/prime-reportstream#11773; the table case is also
MicrosoftDocs/azure-docs#47036, and the column case dolevshor/Azure-OpenAI-Insights#5: "'extend' operator:
Failed to resolve scalar expression named 'properties_s'"). The operator named is the one the query applies to
the name first.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping

MISSING_CODE = "SEM0100"
_LITERALS = re.compile(r'@?"(?:[^"\\]|\\.)*"|@?\'(?:[^\'\\]|\\.)*\'')
_OPERATOR = re.compile(r"\s*([A-Za-z][A-Za-z-]*)")


class Missing(Exception):
    """A query names a table or column the workspace has not received: `message` is Log Analytics' own."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class Unreceived:
    def __init__(self, tables: Iterable[str] = (), columns: Mapping[str, Iterable[str]] | None = None):
        self._lock = threading.Lock()
        self.tables: set[str] = set(tables)
        self.columns: dict[str, set[str]] = {t: set(c) for t, c in (columns or {}).items() if c}

    def mark(self, tables: Iterable[str] = (), columns: Mapping[str, Iterable[str]] | None = None) -> None:
        """The workspace has not received these tables and columns (yet)."""
        with self._lock:
            self.tables |= set(tables)
            for table, names in (columns or {}).items():
                self.columns.setdefault(table, set()).update(names)

    def hidden_columns(self, table: str) -> frozenset[str]:
        with self._lock:
            return frozenset(self.columns.get(table, ()))

    def is_missing(self, table: str) -> bool:
        with self._lock:
            return table in self.tables

    def received(self, table: str, columns: Iterable[str] | None = None) -> None:
        """Rows arrived in `table`: it exists from now on, and so do the `columns` they carry (None: all)."""
        with self._lock:
            self.tables.discard(table)
            if columns is None:
                self.columns.pop(table, None)
            elif table in self.columns:
                self.columns[table] -= set(columns)

    def check(self, kql: str) -> None:
        """Raise `Missing` when the query names a table or column not received yet."""
        with self._lock:
            tables, columns = set(self.tables), {c for names in self.columns.values() for c in names}
        if not tables and not columns:
            return
        text = _LITERALS.sub('""', kql)
        for name in sorted(tables):
            at = _word(name).search(text)
            if at:
                raise Missing(f"{_operator_after(text, at.end())}Failed to resolve table or column expression "
                              f"named '{name}'")
        for name in sorted(columns):
            at = _word(name).search(text)
            if at:
                raise Missing(f"{_operator_of(text, at.start())}Failed to resolve scalar expression named '{name}'")


def _word(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w.]){re.escape(name)}(?!\w)")


def _operator_after(text: str, end: int) -> str:
    """"'where' operator: " for `Table | where ...`; "" when the table is not piped into anything."""
    rest = text[end:].lstrip()
    if not rest.startswith("|"):
        return ""
    found = _OPERATOR.match(rest[1:])
    return f"'{found.group(1)}' operator: " if found else ""


def _operator_of(text: str, start: int) -> str:
    """The operator of the pipe segment the name appears in: "'extend' operator: "."""
    pipe = text.rfind("|", 0, start)
    if pipe < 0:
        return ""
    found = _OPERATOR.match(text[pipe + 1:])
    return f"'{found.group(1)}' operator: " if found else ""
