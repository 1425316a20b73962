"""The index rows kept beside each incident in Table Storage, so the timer and event paths read ranges, never scans.

Every index row lives in its incident's partition, its RowKey `~<kind>|<value>|<incident key>` (a part over 200
characters is hashed), and holds only the incident's RowKey (`incident`): a query of the timer or an event reads
one RowKey range per partition (16 in all), then the incidents it names by point reads. An incident's index rows
are written, replaced and removed in the entity-group transaction that writes the incident, and the incident
entity lists them (`index_rows`), so the next write knows which to remove. The incident read back decides: a row
is only a hint.

Kinds (each key ASCII without "|", so a prefix is a range):
- `~due|<verify_due>|<key>`: an open incident with `verify_due` set (due_verifications: RowKey up to now).
- `~pending|<key>`: an incident whose ticket waits (ticket_pending: list_ticket_pending).
- `~status|<status>|<key>`: an incident in a status a hot path lists (INDEXED_STATUSES: the reconciliation's
  `assigned`); other statuses are listed only by the CLI and HTTP API, which read the partitions.
- `~assignment|<assignment id, lower-case, escaped>|<key>`: an incident that holds an assignment id.
- `~principal|<object id, normalized>|<key>`: an open incident of a principal (role-assignment events).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

from shared.core.allowlist import normalize_object_id
from shared.core.incidents import ASSIGNED, Incident
from shared.state import codec

# Each index row is one more operation in every transaction that writes its incident: only what a hot path reads.
INDEXED_STATUSES = frozenset({ASSIGNED})
DUE = "~due|"
PENDING = "~pending|"
STATUS = "~status|"
ASSIGNMENT = "~assignment|"
PRINCIPAL = "~principal|"
SEPARATOR = "|"
MAX_PART_CHARS = 200  # escaped keys are ASCII: a row key is at most 12 + 200 + 1 + 200 characters
_AFTER_SEPARATOR = chr(ord(SEPARATOR) + 1)  # "}": every key that starts with "<prefix>|" sorts below "<prefix>}"


def rows_of(incident: Incident, incident_key: str, escape: Callable[[str], str]) -> tuple[str, ...]:
    """The RowKeys of the incident's index rows (`incident_key`: its escaped RowKey; `escape`: the key escaping)."""
    tail = SEPARATOR + short(incident_key)
    rows = [f"{STATUS}{short(escape(incident.status))}{tail}"] if incident.status in INDEXED_STATUSES else []
    if incident.is_open and incident.verify_due is not None:
        rows.append(f"{DUE}{codec.time_key(incident.verify_due)}{tail}")
    if incident.ticket_pending:
        rows.append(f"{PENDING}{short(incident_key)}")
    if incident.assignment_id:
        rows.append(f"{ASSIGNMENT}{assignment_part(incident.assignment_id, escape)}{tail}")
    principal = principal_part(incident.principal_id, escape)
    if incident.is_open and principal is not None:
        rows.append(f"{PRINCIPAL}{principal}{tail}")
    return tuple(rows)


def assignment_part(assignment_id: str, escape: Callable[[str], str]) -> str:
    """How an assignment id is written in its index rows: ARM ids compare case-insensitively."""
    return short(escape(assignment_id.strip().lower()))


def principal_part(object_id: str | None, escape: Callable[[str], str]) -> str | None:
    normalized = normalize_object_id(object_id)
    return None if normalized is None else short(escape(normalized))


def short(part: str) -> str:
    """A key part short enough that a row's key stays far under the 1 KiB a RowKey may hold (the incident's own
    key is in the row's `incident` property, so a hashed part loses nothing)."""
    if len(part) <= MAX_PART_CHARS:
        return part
    return "~~" + hashlib.sha256(part.encode("ascii")).hexdigest()


def prefix_range(prefix: str) -> tuple[str, str]:
    """[low, high) of every RowKey that starts with `prefix` (which ends with the separator)."""
    return prefix, prefix[:-1] + _AFTER_SEPARATOR
