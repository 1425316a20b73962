"""How both backends encode what they store, so a record written by one reads back the same from the other.

- Datetimes are normalized to UTC; naive datetimes are refused (the Store contract is UTC-aware in and out).
- `time_key` is a fixed-width ISO-8601 UTC string: it sorts lexically in time order (SQLite TEXT columns and
  Table Storage string properties compare it server-side) and parses back exactly.
- Records are compact JSON. Text stays as written (Table Storage counts UTF-16, so escaping non-ASCII would
  triple its size), except lone surrogates, which are escaped so no text can make a record unencodable.
"""

from __future__ import annotations

import json
import re
from dataclasses import fields, is_dataclass, replace
from datetime import UTC, datetime
from typing import Any

from shared.core.incidents import Incident
from shared.core.records import SettledAction, SettledView, settled_view
from shared.state.base import AuditRecord, StoreError, Suppression

# Table Storage caps an entity at 1 MiB, counting strings in UTF-16; both backends enforce the same cap so the
# demo (SQLite) never accepts an incident that production (Tables) would refuse.
MAX_RECORD_UTF16_BYTES = 960_000
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def utc(value: datetime, what: str = "datetime") -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware (UTC), got naive {value.isoformat()}")
    return value.astimezone(UTC)


def time_key(value: datetime) -> str:
    """'YYYY-MM-DDTHH:MM:SS.ffffffZ' in UTC: fixed width, so string order is time order."""
    return utc(value).replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"


def from_time_key(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


def _escape_surrogates(text: str) -> str:
    # Only inside JSON strings can they occur, where \uXXXX is the JSON way to write them.
    return _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def text_key(text: str) -> str:
    """A key (an incident, event or value id) any SQLite binding accepts: lone surrogates, which only malformed
    input carries and UTF-8 cannot encode, are written as \\uXXXX; every other text is kept as it is."""
    return _escape_surrogates(text)


def dumps(value: Any, default: Any = None) -> str:
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False, default=default)
    return _escape_surrogates(text)


def utf16_bytes(text: str) -> int:
    return len(text.encode("utf-16-le", "surrogatepass"))


_INCIDENT_FIELDS = tuple(f.name for f in fields(Incident))
_TIME_FIELDS = tuple(f.name for f in fields(Incident) if "datetime" in str(f.type))


def _all_utc(incident: Incident) -> bool:
    for name in _TIME_FIELDS:
        value = getattr(incident, name)
        if value is not None and getattr(value, "tzinfo", None) is not UTC:
            return False
    return all(a.at.tzinfo is UTC for a in incident.actions)


def normalized_incident(incident: Incident) -> Incident:
    """The same incident with every datetime (actions included) in UTC."""
    if _all_utc(incident):
        return incident  # the usual case (records read back, the engine's clock): no copy
    changes: dict[str, Any] = {}
    for spec in fields(incident):
        value = getattr(incident, spec.name)
        if isinstance(value, datetime):
            changes[spec.name] = utc(value, f"Incident.{spec.name}")
    changes["actions"] = tuple(replace(a, at=utc(a.at, "Action.at")) for a in incident.actions)
    return replace(incident, **changes)


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)}
    return value


def incident_record(incident: Incident) -> dict[str, Any]:
    """`Incident.to_record()` (the same dict, key order included) without `dataclasses.asdict`'s deep copies,
    which were a third of the cost of writing an incident."""
    record = {name: _plain(getattr(incident, name)) for name in _INCIDENT_FIELDS if name != "etag"}
    record["diagnosis"] = incident.diagnosis.to_json() if incident.diagnosis is not None else {}
    return record


def incident_to_json(incident: Incident) -> str:
    text = dumps(incident_record(incident))
    size = utf16_bytes(text)
    if size > MAX_RECORD_UTF16_BYTES:
        raise StoreError(
            f"incident {incident.id} record is {size} bytes (UTF-16), over the {MAX_RECORD_UTF16_BYTES} limit "
            "(Table Storage entities are at most 1 MiB): trim its action list"
        )
    return text


def incident_from_json(text: str, etag: str | None) -> Incident:
    return normalized_incident(Incident.from_record(json.loads(text), etag=etag))


# The settled view (records.SettledView) is stored as a JSON array, its fields in this order after the format
# number: a repeat scan decodes one per known group, and an array is a fifth of the incident's record to parse.
_SETTLED_FORMAT = 1


def _iso(value: datetime | None) -> str | None:
    return None if value is None else utc(value).isoformat()


def _time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text).astimezone(UTC)


def settled_to_json(view: SettledView) -> str:
    return dumps([_SETTLED_FORMAT, view.id, view.status, _iso(view.last_seen), view.count, view.ticket_pending,
                  list(view.ticket_queued), view.assignment_id, _iso(view.approval_expires_at), _iso(view.closed_at),
                  [[a.kind, list(a.rules)] for a in view.actions]])


def settled_from_json(text: str) -> SettledView:
    """A view as `settled_to_json` wrote it; one written as a whole incident record (the first layout of the
    view) is read as the view of that incident."""
    data = json.loads(text)
    if isinstance(data, dict):
        return settled_view(Incident.from_record(data))
    (_, incident_id, status, last_seen, count, ticket_pending, ticket_queued, assignment_id, approval_expires_at,
     closed_at, actions) = data
    return SettledView(incident_id, status, datetime.fromisoformat(last_seen).astimezone(UTC), count,
                       ticket_pending, tuple(ticket_queued), assignment_id, _time(approval_expires_at),
                       _time(closed_at), tuple([SettledAction(kind, tuple(rules)) for kind, rules in actions]))


def _audit_default(value: Any) -> Any:
    # Audit inputs are evidence, not state: an odd value is recorded by its text rather than failing the run.
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=str)
    return str(value)


def audit_to_json(record: AuditRecord) -> str:
    body = {
        "at": time_key(record.at),
        "incident_id": record.incident_id,
        "kind": record.kind,
        "actor": record.actor,
        "correlation_id": record.correlation_id,
        "detail": record.detail,
        "inputs": record.inputs,
    }
    if record.trace_id is not None:  # records written with telemetry off stay as they were
        body["trace_id"] = record.trace_id
    return dumps(body, default=_audit_default)


def audit_from_json(text: str) -> AuditRecord:
    body = json.loads(text)
    return AuditRecord(
        at=from_time_key(body["at"]),
        incident_id=body["incident_id"],
        kind=body["kind"],
        actor=body["actor"],
        correlation_id=body["correlation_id"],
        detail=body["detail"],
        inputs=body["inputs"],
        trace_id=body.get("trace_id"),
    )


def suppression_to_json(suppression: Suppression) -> str:
    return dumps({
        "target": suppression.target,
        "until": time_key(suppression.until),
        "reason": suppression.reason,
        "actor": suppression.actor,
        "created_at": time_key(suppression.created_at),
    })


def suppression_from_json(text: str) -> Suppression:
    body = json.loads(text)
    return Suppression(
        target=body["target"],
        until=from_time_key(body["until"]),
        reason=body["reason"],
        actor=body["actor"],
        created_at=from_time_key(body["created_at"]),
    )
