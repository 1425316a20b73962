"""KQL literals: the one escaping every query text uses (shared/adapters/kql.py sends queries; the Log Analytics
links of tickets and chat messages carry one). Pure."""

from __future__ import annotations

from datetime import UTC, datetime


def literal(value: str) -> str:
    """A KQL double-quoted string literal."""
    escaped = (
        value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r").replace("\t", "\\t")
    )
    return f'"{escaped}"'


def datetime_literal(value: datetime) -> str:
    """`datetime(...)` in UTC with microseconds, so the text is the same for the same instant."""
    if value.tzinfo is None:
        raise ValueError("KQL datetimes must be timezone-aware")
    utc = value.astimezone(UTC)
    return f"datetime({utc.strftime('%Y-%m-%dT%H:%M:%S.%f')}Z)"
