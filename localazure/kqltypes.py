"""DuckDB result types and values as the Log Analytics query API returns them (column types and JSON cells)."""

from __future__ import annotations

import json
import math
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

_EXACT = {
    "VARCHAR": "string",
    "BOOLEAN": "bool",
    "BIGINT": "long",
    "HUGEINT": "long",
    "UBIGINT": "long",
    "UINTEGER": "long",
    "INTEGER": "int",
    "SMALLINT": "int",
    "TINYINT": "int",
    "USMALLINT": "int",
    "UTINYINT": "int",
    "DOUBLE": "real",
    "FLOAT": "real",
    "TIMESTAMP": "datetime",
    "TIMESTAMP WITH TIME ZONE": "datetime",
    "TIMESTAMP_NS": "datetime",
    "TIMESTAMP_MS": "datetime",
    "TIMESTAMP_S": "datetime",
    "DATE": "datetime",
    "UUID": "guid",
    "INTERVAL": "timespan",
    "JSON": "dynamic",
}


def la_type(duckdb_type: str) -> str:
    upper = duckdb_type.upper()
    if upper in _EXACT:
        return _EXACT[upper]
    if upper.startswith("DECIMAL"):
        return "decimal"
    if upper.endswith("[]") or upper.startswith(("STRUCT", "MAP", "LIST", "UNION")):
        return "dynamic"
    return "string"


def format_datetime(value: datetime | date) -> str:
    if not isinstance(value, datetime):
        value = datetime(value.year, value.month, value.day)
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    text = value.isoformat(timespec="microseconds" if value.microsecond else "seconds")
    return text + "Z"


def format_timespan(value: timedelta) -> str:
    """Kusto's timespan text: [-][d.]hh:mm:ss[.fffffff]."""
    total_us = (value.days * 86400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if total_us < 0 else ""
    total_us = abs(total_us)
    days, rem = divmod(total_us, 86_400_000_000)
    hours, rem = divmod(rem, 3_600_000_000)
    minutes, rem = divmod(rem, 60_000_000)
    seconds, micros = divmod(rem, 1_000_000)
    text = f"{sign}{f'{days}.' if days else ''}{hours:02d}:{minutes:02d}:{seconds:02d}"
    return text + (f".{micros:06d}0" if micros else "")


def la_value(value: Any, la_kind: str) -> Any:
    if value is None:
        return None
    if la_kind == "datetime" and isinstance(value, datetime | date):
        return format_datetime(value)
    if la_kind == "timespan" and isinstance(value, timedelta):
        return format_timespan(value)
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if la_kind == "dynamic" and not isinstance(value, str):
        return json.dumps(value, default=str)
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    return value
