"""One scan cycle: read since the watermark → diagnose with live evidence → decide → act → persist, then verify.

A source that fails raises: the run fails loudly and its watermark does not move, so the next run re-reads the
window. A source that returns partial data is used and reported, and its watermark does not move either, so what
it missed is read again (the incident counts are protected from double counting by overlap accounting).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.core.correlation import join_client_records
from shared.core.model import FailureSignal
from shared.core.ports import evidence_key
from shared.engine.runtime import Runtime, new_correlation_id
from shared.engine.signals import Triaged, handle_signal, settled_signals
from shared.engine.ticketing import retry_pending_tickets
from shared.engine.unit_of_work import RunState
from shared.engine.verify import run_verifications

log = logging.getLogger("triage")


@dataclass
class ScanReport:
    correlation_id: str
    started_at: datetime
    windows: dict[str, tuple[str, str]] = field(default_factory=dict)
    signals: int = 0
    rejected: int = 0
    partial: list[str] = field(default_factory=list)
    actions: dict[str, int] = field(default_factory=dict)
    incidents: list[str] = field(default_factory=list)
    verifications: dict[str, int] = field(default_factory=dict)
    grants: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "correlation_id": self.correlation_id,
            "started_at": self.started_at.isoformat(),
            "windows": {k: {"start": a, "end": b} for k, (a, b) in self.windows.items()},
            "signals": self.signals,
            "rejected": self.rejected,
            "partial": self.partial,
            "actions": self.actions,
            "incidents": self.incidents,
            "verifications": self.verifications,
            "grants": self.grants,
        }


def run_scan(
    rt: Runtime,
    *,
    resource_ids: tuple[str, ...] | None = None,
    window: tuple[datetime, datetime] | None = None,
    correlation_id: str | None = None,
    verify: bool = True,
) -> ScanReport:
    """A full cycle. With `window`, a targeted scan (alerts): it reads that window and leaves watermarks alone;
    it detects and acts at once, and leaves counting to the timer scans so nothing is counted twice."""
    correlation_id = correlation_id or new_correlation_id()
    run = RunState.begin(rt, correlation_id)
    report = ScanReport(correlation_id=correlation_id, started_at=run.now)
    rt.refresh_evidence()

    batches = []
    overlap = timedelta(minutes=rt.settings.lookback_overlap_minutes)
    for source in rt.sources:
        if window is None:
            watermark = rt.store.get_watermark(source.name)
            start = (watermark - overlap) if watermark else run.now - timedelta(
                minutes=rt.settings.initial_lookback_minutes)
            end = run.now
        else:
            start, end = window
            watermark = rt.store.get_watermark(source.name)
        # The watermark lets the source count the re-read overlap (FailureSignal.overlap_count).
        batch = source.read(start, end, resource_ids, watermark=watermark)
        # A partial answer keeps the watermark, so the next scan counts these rows again: like a targeted scan, it
        # acts on what it got but leaves the counting to that scan (a group in it was counted twice before).
        if window is not None or batch.partial_errors:
            batch = replace(batch, signals=tuple(_targeted_counts(s, watermark) for s in batch.signals))
        report.windows[source.name] = (start.isoformat(), end.isoformat())
        for rejected in batch.rejected:
            rt.audit("row-rejected", rejected.reason, correlation_id=correlation_id,
                     inputs={"source": rejected.source, "row": _clip(rejected.row)})
        if batch.partial_errors:
            report.partial.extend(f"{source.name}: {e}" for e in batch.partial_errors)
            rt.audit("partial-result", "; ".join(batch.partial_errors), correlation_id=correlation_id,
                     inputs={"source": source.name})
        report.rejected += len(batch.rejected)
        batches.append((source, batch))

    # A client-side group that a server-side row confirms is one failure seen from both sides (core/correlation).
    signals = join_client_records(s for _, b in batches for s in b.signals if s.resource_id)
    report.signals = len(signals)
    # Groups an earlier scan already handled, unchanged since: no evidence, no store write, no ticket call.
    text_triage: dict[int, Triaged] = {}  # diagnosed once from the text: reused where no evidence adds to it
    settled = settled_signals(rt, signals, text_triage) if window is None else {}
    pairs = {evidence_key(s.object_id, s.resource_id) for i, s in enumerate(signals) if i not in settled}
    evidence = rt.evidence.gather_evidence(pairs) if pairs else {}

    for index, signal in enumerate(signals):
        if index in settled:
            report.incidents.append(settled[index])
            continue
        ev = evidence.get(evidence_key(signal.object_id, signal.resource_id))
        incident = handle_signal(rt, run, signal, ev, text_triage.get(index))
        report.incidents.append(incident.id)

    # Only now, with every incident persisted, may the watermarks move.
    if window is None:
        for source, batch in batches:
            if not batch.partial_errors:
                rt.store.set_watermark(source.name, batch.end)

    for outcome in run.outcomes:
        report.actions[outcome["action"]] = report.actions.get(outcome["action"], 0) + 1
    report.incidents = list(dict.fromkeys(report.incidents))
    report.grants = run.grants_this_run
    if verify:
        report.verifications = run_verifications(rt, run)
        report.grants = run.grants_this_run
    if window is None:
        # Failed ticket operations of incidents no signal brought back this cycle (e.g. a resolved one's close).
        retry_pending_tickets(rt, run, set(report.incidents))
    return report


def _targeted_counts(signal: FailureSignal, watermark: datetime | None) -> FailureSignal:
    """A targeted (alert) scan must not count rows the timer scans count. Rows after the watermark belong to the
    next timer scan; rows before it were counted already, except for a group no earlier scan saw, which the
    lifecycle counts in full only when the incident is new (count == overlap_count makes an update add 0)."""
    before = signal.overlap_count if watermark is not None else 0
    return replace(signal, count=before, overlap_count=before)


def _clip(row: dict) -> dict:
    return {str(k)[:100]: (v[:500] if isinstance(v, str) else v) for k, v in list(row.items())[:40]}
