"""What a long scan has done so far, kept in the store so a run cut off (the function timeout, a lost instance, the
scan's own time budget) is continued by the next one where it stopped.

A scan reads its sources in rounds (sub-windows, engine/scan.py); a round's unsettled signals are handled in chunks
of whole principals (all of a principal's pairs in one chunk, so its role assignments are read in one chunk).
Before a chunk's signals are handled, one named value (`scan-progress:<n>`) records:

- the round (in chunk 0: each source's window and the watermark it was read from), so the next run reads exactly
  the same rows again (ingestion-time windows end where the first read said it read through);
- the chunk's group keys ("begun"): a group handled, or perhaps handled, by a cut run. On the re-read its rows all
  count as overlap (`FailureSignal.overlap_count = count`): the lifecycle adds none of them to an incident that
  already saw them, counts them in full for an incident that does not exist yet, and the steady-state skip
  (`signals.settled_signals`) passes over the group without evidence, write or ticket call when its incident is
  settled. A kill in the middle of a chunk may thus under-count a group of that chunk not handled yet whose
  incident had already seen failures of its window (another group of the chunk, or the re-read overlap of an
  earlier scan); it never counts a row twice (tests/engine/test_rules_resume.py);
- the evidence the chunk read from ARM (complete evidence only), with the time it was read; each account's
  settings once in the whole round (in the first chunk that read them, with that chunk's time), whatever the
  completeness of the pairs on it, so a fresh instance continuing the round reads no account again
  (`RoundProgress.reusable_accounts`, given to the evidence provider by the scan).

Checkpointed evidence is reused for `EVIDENCE_REUSE` (long enough for a run cut off by the 10-minute timeout to be
continued on the next 5-minute tick), and only for what it is safe for: the diagnosis, the incident and its
ticket. A decision that would grant on it is made again on evidence read from ARM at that moment
(`signals.handle_signal(read_again=...)`), so no grant relies on evidence older than a run's own; approvals,
reconciliation, events and verification never read the checkpoint.

When the round completes, the watermarks move and chunk 0 is marked done. Pure helpers and the store's named
values only: nothing here reads Azure.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterable, Sequence
from dataclasses import MISSING, dataclass, field, fields, replace
from datetime import datetime, timedelta
from typing import Any

from shared.core.allowlist import normalize_object_id
from shared.core.model import (
    Evidence,
    FailureSignal,
    ResourceEvidence,
    RoleAssignmentEvidence,
    RoleDefinitionEvidence,
)
from shared.core.ports import EvidenceKey, evidence_key
from shared.core.records import ConflictError, StoreError
from shared.engine.runtime import Runtime

log = logging.getLogger("triage")

PROGRESS_KEY_PREFIX = "scan-progress:"
CHUNK_PAIRS = 500  # evidence pairs per chunk: a kill repeats at most one chunk's ARM reads (fewer, fuller batches)
EVIDENCE_REUSE = timedelta(minutes=15)
_SLOT_CHARS = 300_000  # a chunk's record stays well under Table Storage's 1 MiB entity (UTF-16)


def slot_key(n: int) -> str:
    return f"{PROGRESS_KEY_PREFIX}{n}"


def group_key(signal: FailureSignal) -> str:
    """A failure group's identity across re-reads of one window (what the sources group rows by)."""
    parts = (signal.source, signal.status, signal.code, normalize_object_id(signal.object_id), signal.auth,
             signal.endpoint, signal.route, signal.operation, (signal.resource_id or "").lower())
    return hashlib.sha1(repr(parts).encode("utf-8"), usedforsecurity=False).hexdigest()[:20]


def as_begun(signal: FailureSignal) -> FailureSignal:
    """The signal of a group a cut run began: every row may have been counted (see the module docstring)."""
    return replace(signal, overlap_count=max(0, signal.count))


def chunks(signals: Sequence[FailureSignal], pending: Iterable[int], size: int | None = None) -> list[list[int]]:
    """The pending signals (by index) in chunks of about `size` (CHUNK_PAIRS) evidence pairs, whole principals
    each (key callers, which need no role look-up, by account), in a stable order."""
    size = size or CHUNK_PAIRS
    by_principal: dict[str, list[int]] = {}
    for index in pending:
        signal = signals[index]
        oid = normalize_object_id(signal.object_id)
        by_principal.setdefault(oid or f"key:{(signal.resource_id or '').lower()}", []).append(index)
    out: list[list[int]] = []
    current: list[int] = []
    pairs: set[EvidenceKey] = set()
    for principal in sorted(by_principal):
        members = by_principal[principal]
        own = {evidence_key(signals[i].object_id, signals[i].resource_id) for i in members}
        if current and len(pairs) + len(own) > size:
            out.append(current)
            current, pairs = [], set()
        current.extend(members)
        pairs |= own
    if current:
        out.append(current)
    return out


# ---- evidence as JSON ---------------------------------------------------------------------------------------


def evidence_to_json(evidence: Evidence) -> dict[str, Any]:
    return {f.name: _plain(getattr(evidence, f.name)) for f in fields(evidence)}


def evidence_from_json(value: dict[str, Any]) -> Evidence:
    assignments = value.get("assignments")
    return Evidence(
        assignments=None if assignments is None else tuple(_build(RoleAssignmentEvidence, a) for a in assignments),
        resource=_build(ResourceEvidence, value["resource"]) if value.get("resource") else None,
        principal_type=value.get("principal_type"),
        principal_name=value.get("principal_name"),
        failed=tuple(value.get("failed") or ()),
        role_definitions=tuple(_build(RoleDefinitionEvidence, d) for d in value.get("role_definitions") or ()),
    )


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):  # a flat evidence record: fields left at their default are left out
        return {f.name: _plain(getattr(value, f.name)) for f in fields(value)
                if f.default is MISSING or getattr(value, f.name) != f.default}
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def _build(cls: Any, value: dict[str, Any]) -> Any:
    """A flat evidence dataclass from its JSON: lists become tuples, `created_on` a datetime; unknown keys (a
    newer writer's) are left out."""
    names = {f.name for f in fields(cls)}
    args: dict[str, Any] = {}
    for name, item in value.items():
        if name not in names:
            continue
        if isinstance(item, list):
            item = tuple(tuple(pair) if name == "tags" else pair for pair in item)
        elif name == "created_on" and item is not None:
            item = datetime.fromisoformat(item)
        args[name] = item
    return cls(**args)


# ---- the durable record -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceWindow:
    """One source's part of a round: the window read and the watermark it was read from."""

    start: datetime
    end: datetime
    watermark: datetime | None

    def to_json(self) -> dict[str, Any]:
        return {"start": self.start.isoformat(), "end": self.end.isoformat(),
                "watermark": self.watermark.isoformat() if self.watermark else None}

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> SourceWindow:
        mark = value.get("watermark")
        return cls(datetime.fromisoformat(value["start"]), datetime.fromisoformat(value["end"]),
                   datetime.fromisoformat(mark) if mark else None)


@dataclass
class RoundProgress:
    """One round's durable progress: what chunk 0 says, and what the chunks after it add."""

    round_id: str
    windows: dict[str, SourceWindow]
    begun: set[str] = field(default_factory=set)
    evidence: dict[EvidenceKey, tuple[Evidence, datetime]] = field(default_factory=dict)  # with when it was read
    chunks: int = 0  # chunks recorded so far
    resumed: bool = False  # a cut run left it; this run continues it
    etags: dict[int, str | None] = field(default_factory=dict)
    # Each account's settings as recorded in the round, by account id, with when they were read.
    accounts: dict[str, tuple[ResourceEvidence, datetime]] = field(default_factory=dict)

    def reusable(self, pair: EvidenceKey, now: datetime) -> Evidence | None:
        found = self.evidence.get(pair)
        if found is None or now - found[1] > EVIDENCE_REUSE:
            return None
        return found[0]

    def reusable_accounts(self, now: datetime) -> dict[str, ResourceEvidence]:
        """The recorded account settings still young enough to reuse (for the diagnosis only, as evidence is)."""
        return {account: settings for account, (settings, read_at) in self.accounts.items()
                if now - read_at <= EVIDENCE_REUSE}


def load(rt: Runtime) -> RoundProgress | None:
    """The round a cut run left unfinished, or None (none was, or its record is unreadable: start afresh)."""
    try:
        first, etag = rt.store.get_value(slot_key(0))
    except StoreError as exc:
        log.warning("scan progress not read: %s", exc)
        return None
    if not first or first.get("done") or "windows" not in first:
        return None
    try:
        progress = RoundProgress(str(first["round"]), {name: SourceWindow.from_json(w)
                                                        for name, w in first["windows"].items()}, resumed=True)
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    progress.etags[0] = etag
    value: dict[str, Any] | None = first
    n = 0
    while value is not None and value.get("round") == progress.round_id:
        _absorb(progress, value)
        progress.chunks = n + 1
        n += 1
        value, progress.etags[n] = rt.store.get_value(slot_key(n))
    return progress


def _absorb(progress: RoundProgress, value: dict[str, Any]) -> None:
    """One chunk's record into the round's progress. Its evidence names accounts by id: those the chunk recorded
    (an older writer recorded them in every chunk), else those of an earlier chunk of the round."""
    progress.begun.update(str(k) for k in value.get("begun") or ())
    try:
        read_at = datetime.fromisoformat(value["read_at"])
        for account, settings in (value.get("accounts") or {}).items():
            progress.accounts[account] = (_build(ResourceEvidence, settings), read_at)
        for principal, resource, body in value.get("evidence") or ():
            if "account" in body:
                entry = replace(evidence_from_json({**body, "resource": None}),
                                resource=progress.accounts[body["account"]][0])
            else:
                entry = evidence_from_json(body)
            progress.evidence[(principal, resource)] = (entry, read_at)
    except (KeyError, TypeError, ValueError):
        return  # unreadable evidence is read again


def record_chunk(rt: Runtime, progress: RoundProgress, begun: Iterable[str],
                 evidence: dict[EvidenceKey, Evidence], read_at: datetime) -> None:
    """Record the next chunk before its signals are handled (chunk 0 also names the round)."""
    n = progress.chunks
    # Each account's settings once in the round: those no earlier chunk recorded (or recorded otherwise). An
    # account read well is kept even where its pairs' evidence is degraded (an assignments list failed).
    new_accounts = {found.resource.resource_id: found.resource for found in evidence.values()
                    if found.resource is not None
                    and _kept_settings(progress, found.resource.resource_id) != found.resource}
    entries = []
    for (principal, resource), found in evidence.items():
        if not found.complete:
            continue  # degraded evidence is never reused: it is read again
        body = evidence_to_json(found)
        account = found.resource.resource_id if found.resource is not None else None
        if account is not None and found.resource == new_accounts.get(account, _kept_settings(progress, account)):
            del body["resource"]
            body["account"] = account  # else (settings read again since) they stay inline
        entries.append([principal, resource, body])
    value: dict[str, Any] = {"round": progress.round_id, "read_at": read_at.isoformat(), "begun": sorted(begun),
                             "accounts": {key: _plain(settings) for key, settings in new_accounts.items()},
                             "evidence": entries}
    if n == 0:
        value["windows"] = {name: w.to_json() for name, w in progress.windows.items()}
    if len(json.dumps(value)) > _SLOT_CHARS:
        value["evidence"] = []  # too big to keep: read again after a cut (begun marks stay)
        if len(json.dumps(value)) > _SLOT_CHARS:
            value["accounts"], new_accounts = {}, {}
    _put(rt, progress, n, value)
    progress.chunks = n + 1
    progress.accounts.update((key, (settings, read_at)) for key, settings in new_accounts.items())


def _kept_settings(progress: RoundProgress, account: str) -> ResourceEvidence | None:
    kept = progress.accounts.get(account)
    return kept[0] if kept is not None else None


def finish(rt: Runtime, progress: RoundProgress) -> None:
    """The round is complete and its watermarks moved: nothing is left to continue."""
    if progress.chunks:
        _put(rt, progress, 0, {"round": progress.round_id, "done": True})


def _put(rt: Runtime, progress: RoundProgress, n: int, value: dict[str, Any]) -> None:
    key = slot_key(n)
    for _ in range(3):
        if n not in progress.etags:
            _, progress.etags[n] = rt.store.get_value(key)
        try:
            progress.etags[n] = rt.store.put_value(key, value, expected_etag=progress.etags[n])
            return
        except ConflictError:
            progress.etags.pop(n, None)  # another writer (or a stale etag): read it again
    raise StoreError(f"scan progress {key} kept changing under other writers")


class Budget:
    """The scan's own time budget (monotonic time, not the service's clock): 0 seconds means none."""

    def __init__(self, seconds: float):
        self._deadline = time.monotonic() + seconds if seconds > 0 else None

    def spent(self) -> bool:
        return self._deadline is not None and time.monotonic() >= self._deadline
