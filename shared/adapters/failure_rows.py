"""Turn summarized query rows into FailureSignals, or RejectedRows with a reason. Pure: no SDK, no I/O.

A malformed row (missing resource id, unparsable status, impossible counts, ...) is rejected, never raised: one
bad row must not hide the others or crash the run. Server-side rows usually have no `ErrorCode`, `SampleMessage`
or path `Route` (real rows carry none, kql.py): those fields are then None, and the row's `OperationName` and
`apiName` (as `Route`) are what tells the surface.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from shared.core.allowlist import normalize_object_id
from shared.core.model import ENTRA, KEY, FailureSignal
from shared.core.ports import RejectedRow

_ARM_ID = re.compile(r"^/subscriptions/[^/]+/resourcegroups/[^/]+/providers/[^/]+/[^/]+/[^/]+", re.IGNORECASE)
_HOST = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)+$")


class _Reject(ValueError):
    pass


def jsonable_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """The row as received, with datetimes as ISO strings, for the audit record."""
    out: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, datetime):
            out[str(key)] = value.isoformat()
        elif value is None or isinstance(value, (str, int, float, bool)):
            out[str(key)] = value
        else:
            out[str(key)] = repr(value)
    return out


def _text(row: Mapping[str, Any], key: str) -> str | None:
    value = row.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Reject(f"{key} is not text")
    value = value.strip()
    return value or None


def _status(row: Mapping[str, Any]) -> int:
    raw = row.get("Status")
    if raw.__class__ is int and 100 <= raw <= 599:  # the usual cell, as the SDK types an int column
        return raw
    try:
        status = int(str(raw).strip()) if not isinstance(raw, bool) else None
    except (TypeError, ValueError):
        status = None
    if status is None or not 100 <= status <= 599:
        raise _Reject(f"unparsable status {raw!r}")
    return status


def _counts(row: Mapping[str, Any]) -> tuple[int, int]:
    count, overlap = row.get("Failures"), row.get("OverlapFailures", 0)
    if overlap is None:
        overlap = 0
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise _Reject(f"failure count {count!r} is not a positive whole number")
    if isinstance(overlap, bool) or not isinstance(overlap, int) or not 0 <= overlap <= count:
        raise _Reject(f"overlap count {overlap!r} is not a whole number from 0 to {count}")
    return count, overlap


def _when(row: Mapping[str, Any], key: str) -> datetime:
    value = row.get(key)
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            raise _Reject(f"{key} {value!r} is not a time") from None
    if not isinstance(value, datetime):
        raise _Reject(f"{key} {value!r} is not a time")
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _times(row: Mapping[str, Any]) -> tuple[datetime, datetime]:
    first, last = _when(row, "FirstSeen"), _when(row, "LastSeen")
    if last < first:
        raise _Reject("LastSeen is before FirstSeen")
    return first, last


def _shared(value: str | None) -> str | None:
    """One string object for each repeated value (accounts, callers, operations, routes, codes): a flood repeats
    few of them over many groups. Interned strings die with their last reference, so nothing accumulates."""
    return None if value is None else sys.intern(value)


def _shared_text(row: Mapping[str, Any], key: str) -> str | None:
    """A checked text cell, interned (`_shared`): a scan reads several such cells from every row. A cell as
    received is checked once per process (`_checked_texts`, bounded like the accounts and callers below)."""
    raw = row.get(key)
    if raw.__class__ is str:
        known = _checked_texts.get(raw, "")  # "" never is a checked cell (an empty one is None): not seen yet
        if known != "":
            return known
        checked = _shared(_text(row, key))
        if len(_checked_texts) < CHECKED_CELLS_KEPT:
            _checked_texts[raw] = checked
        return checked
    return _shared(_text(row, key))


# The checked form of the cells a flood repeats over many groups (accounts, callers), by the cell as received: a
# repeat scan checks each once per process. Bounded; past the bound a cell is checked every time.
CHECKED_CELLS_KEPT = 20_000
_checked_resources: dict[str, str] = {}
_checked_callers: dict[str, str] = {}
_checked_texts: dict[str, str | None] = {}  # codes, routes, operations: the cell as received -> checked


def _resource_id(row: Mapping[str, Any]) -> str:
    raw = row.get("ResourceId")
    if raw.__class__ is str and (known := _checked_resources.get(raw)) is not None:
        return known
    resource_id = _text(row, "ResourceId")
    if not resource_id:
        raise _Reject("missing resource id")
    if not _ARM_ID.match(resource_id):
        raise _Reject(f"resource id {resource_id[:200]!r} is not an ARM resource id")
    checked = sys.intern(resource_id.lower())
    if raw.__class__ is str and len(_checked_resources) < CHECKED_CELLS_KEPT:
        _checked_resources[raw] = checked
    return checked


def _object_id(row: Mapping[str, Any]) -> str | None:
    raw = row.get("ObjectId")
    if raw.__class__ is str and (known := _checked_callers.get(raw)) is not None:
        return known
    raw_oid = _text(row, "ObjectId")
    object_id = normalize_object_id(raw_oid)
    if raw_oid and object_id is None:
        raise _Reject(f"caller object id {raw_oid[:100]!r} is not a GUID")
    if object_id is None:
        return None
    checked = sys.intern(object_id)
    if raw.__class__ is str and len(_checked_callers) < CHECKED_CELLS_KEPT:
        _checked_callers[raw] = checked
    return checked


def diagnostics_signal(row: Mapping[str, Any], source: str) -> FailureSignal:
    """A FailureSignal from one failures_query() row. Raises ValueError (the reject reason) when malformed."""
    resource_id = _resource_id(row)
    status = _status(row)
    count, overlap = _counts(row)
    first, last = _times(row)
    object_id = _object_id(row)
    auth = _text(row, "AuthKind")
    if auth not in (ENTRA, KEY, None):
        raise _Reject(f"unknown auth kind {auth[:50]!r}")
    return FailureSignal(
        status=status,
        code=_shared_text(row, "ErrorCode"),
        message=_shared(_text(row, "SampleMessage")),  # often one per group: not kept (`_checked_texts`)
        object_id=object_id,
        auth=(ENTRA if object_id else KEY) if auth is None else _shared(auth),
        route=_shared_text(row, "Route"),
        operation=_shared_text(row, "OperationName"),
        resource_id=resource_id,
        count=count,
        overlap_count=overlap,
        first_seen=first,
        last_seen=last,
        source=source,
    )


def dependency_signal(
    row: Mapping[str, Any],
    source: str,
    *,
    identity_of: Callable[[str], str | None],
    resource_of: Callable[[str], str | None],
) -> FailureSignal:
    """A FailureSignal from one client_failures_query() row. The caller comes from configuration (the app's
    AppRoleName) and the resource from the endpoint host, when either can be resolved."""
    host = _text(row, "Host")
    if not host:
        raise _Reject("missing endpoint host")
    host = host.lower()
    if not _HOST.match(host):
        raise _Reject(f"endpoint host {host[:200]!r} is not a host name")
    status = _status(row)
    count, overlap = _counts(row)
    first, last = _times(row)
    app = _text(row, "AppRoleName")
    object_id = normalize_object_id(identity_of(app)) if app else None
    name = _text(row, "Name")
    route = name.split(" ", 1)[1] if name and " " in name else name
    return FailureSignal(
        status=status,
        message=_text(row, "SampleMessage"),
        object_id=object_id,
        auth=ENTRA if object_id else None,  # an unmapped app may use a key: unknown
        endpoint=f"https://{host}",
        route=route,
        operation=name,
        resource_id=resource_of(host),
        count=count,
        overlap_count=overlap,
        first_seen=first,
        last_seen=last,
        source=source,
    )


def group_key(signal: FailureSignal) -> tuple:
    """Two signals with this key describe the same group of failures."""
    return (
        signal.resource_id,
        signal.endpoint,
        signal.object_id,
        signal.auth,
        signal.status,
        signal.operation,
        signal.route,
        signal.code,
    )


def merge_groups(signals: Iterable[FailureSignal]) -> tuple[FailureSignal, ...]:
    """Dedupe groups that normalize to the same key (e.g. resource ids differing only in case): counts add up,
    first/last seen widen, the first sample message is kept. Order follows first appearance."""
    merged: dict[tuple, FailureSignal] = {}
    for signal in signals:
        key = group_key(signal)
        seen = merged.get(key)
        if seen is None:
            merged[key] = signal
            continue
        merged[key] = replace(
            seen,
            count=seen.count + signal.count,
            overlap_count=seen.overlap_count + signal.overlap_count,
            first_seen=_min(seen.first_seen, signal.first_seen),
            last_seen=_max(seen.last_seen, signal.last_seen),
            message=seen.message or signal.message,
        )
    return tuple(merged.values())


def _min(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _max(a: datetime | None, b: datetime | None) -> datetime | None:
    return b if a is None else a if b is None else max(a, b)


def map_rows(
    rows: Iterable[Mapping[str, Any]], source: str, to_signal: Callable[[Mapping[str, Any]], FailureSignal]
) -> tuple[tuple[FailureSignal, ...], tuple[RejectedRow, ...]]:
    """Map every row; malformed ones become RejectedRows with the reason. Duplicate groups are merged."""
    signals: list[FailureSignal] = []
    rejected: list[RejectedRow] = []
    for row in rows:
        try:
            signals.append(to_signal(row))
        except _Reject as exc:
            rejected.append(RejectedRow(source=source, reason=str(exc), row=jsonable_row(row)))
    return merge_groups(signals), tuple(rejected)


# ---- the row readers, for the parsers of sources in other modules (gateway_logs.py) --------------------------


class RowRejected(_Reject):
    """Raised by a source's own row parser: map_rows records the row as rejected with this reason."""


def row_text(row: Mapping[str, Any], key: str) -> str | None:
    """A text cell, stripped; None when absent or empty. Rejects a cell that is not text."""
    return _text(row, key)


def row_group(row: Mapping[str, Any]) -> tuple[int, int, int, datetime, datetime]:
    """(status, count, overlap count, first seen, last seen) of one summarized group, each checked."""
    status = _status(row)
    count, overlap = _counts(row)
    first, last = _times(row)
    return status, count, overlap, first, last


def checked_host(host: str) -> str:
    """The host name lower-cased; rejects what is not one."""
    lowered = host.lower()
    if not _HOST.match(lowered):
        raise RowRejected(f"host {host[:200]!r} is not a host name")
    return lowered


def checked_resource_id(resource_id: str, what: str = "resource id") -> str:
    """An ARM resource id lower-cased; rejects what is not one."""
    if not _ARM_ID.match(resource_id):
        raise RowRejected(f"{what} {resource_id[:200]!r} is not an ARM resource id")
    return resource_id.lower()
