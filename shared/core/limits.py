"""Limits on what the entry points accept, so bad input is refused with a reason instead of failing deep inside.

Pure: the translators (core/events.py, core/alerts.py, core/signals.py, engine/inputs.py) call these and turn a
problem into a rejection that is audited and acknowledged.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

MAX_NESTING = 64  # JSON levels: no payload the service reads is nested deeper than about 8
MAX_VALUES = 100_000  # JSON values in one payload (objects, lists, scalars)
MAX_BODY_BYTES = 1_048_576  # an HTTP body; Event Grid refuses events over 1 MB too
MAX_LIST_ITEMS = 1_000  # resource lists in an alert (targets, configuration items)
MAX_ALERT_WINDOW = timedelta(days=7)  # Azure Monitor alert windows are at most 2 days
MAX_CLOCK_SKEW = timedelta(days=1)  # a failure reported this far after the service's now cannot have happened
# Timestamps outside these years are refused: none is real, and near datetime's limits arithmetic overflows.
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)

_GUID = r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
# An ARM scope's segments: no braces (URL templates), no query or fragment, no escapes, no whitespace.
_SEGMENT = r"[A-Za-z0-9._\-()~@:+,;=!$'*]+"
_ROLE_ASSIGNMENT_ID = re.compile(
    rf"^(?:/{_SEGMENT})*/providers/Microsoft\.Authorization/roleAssignments/{_GUID}$", re.IGNORECASE)
MAX_RESOURCE_ID_CHARS = 2_048


class TimeOutOfRange(ValueError):
    """A timestamp that parses but cannot be a real event time (or overflows when converted to UTC)."""


def checked_time(when: datetime, name: str = "time") -> datetime:
    """`when` (naive = UTC) as an aware UTC datetime, or TimeOutOfRange."""
    try:
        utc = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    except (OverflowError, ValueError):
        raise TimeOutOfRange(f"{name} is out of range (it overflows when converted to UTC)") from None
    if not EARLIEST <= utc < LATEST:
        raise TimeOutOfRange(f"{name} is out of range ({EARLIEST.year}..{LATEST.year - 1})")
    return utc


def shape_problem(value: Any, *, max_depth: int = MAX_NESTING, max_values: int = MAX_VALUES) -> str | None:
    """Why a decoded JSON value is too deep or too large to handle, or None. Iterative: any depth is safe."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    seen = 0
    while stack:
        item, depth = stack.pop()
        seen += 1
        if seen > max_values:
            return f"the payload holds more than {max_values} values"
        if isinstance(item, dict | list):
            if depth > max_depth:
                return f"the payload is nested deeper than {max_depth} levels"
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return None


def is_role_assignment_id(value: Any) -> bool:
    """A well-formed role assignment resource id: `{scope}/providers/Microsoft.Authorization/roleAssignments/{guid}`
    whose scope segments carry no braces, query, fragment, escapes or whitespace."""
    return (isinstance(value, str) and len(value) <= MAX_RESOURCE_ID_CHARS
            and _ROLE_ASSIGNMENT_ID.match(value) is not None)


def clipped_text(value: Any, limit: int = 2_000) -> str:
    """A readable rendering of any value for an audit record, at most `limit` characters, built without recursion
    (a value rejected for its depth must still be recorded). Containers show their first 50 entries."""
    parts: list[str] = []
    size = 0
    stack: list[Any] = [value]
    while stack and size < limit:
        item = stack.pop()
        if isinstance(item, _Literal):
            text = item.text
        elif isinstance(item, dict | list | tuple):
            is_dict = isinstance(item, dict)
            entries = (list(item.items())[:50] if isinstance(item, dict)
                       else [(None, child) for child in list(item)[:50]])
            text = "{" if is_dict else "["
            pending: list[Any] = []  # in output order, then pushed reversed
            for n, (key, child) in enumerate(entries):
                if n:
                    pending.append(_Literal(", "))
                if is_dict:
                    pending.append(_Literal(f"{str(key)[:200]!r}: "))
                pending.append(child)
            if len(item) > len(entries):
                pending.append(_Literal(", …"))
            pending.append(_Literal("}" if is_dict else "]"))
            stack.extend(reversed(pending))
        else:
            text = repr(item)[:limit]
        parts.append(text)
        size += len(text)
    return "".join(parts)[:limit]


class _Literal:
    __slots__ = ("text",)

    def __init__(self, text: str):
        self.text = text
