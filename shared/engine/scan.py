"""One scan cycle: read since the watermark → diagnose with live evidence → decide → act → persist, then verify.

Every source stands alone (engine/sources.py): a source that fails (403, 404, 5xx after the SDK's retries) is
recorded with its whole message, the others are read and handled, and the report says so (`sources`); its
watermark does not move, so the next run re-reads the window. A source without its table yet is "no data yet":
recorded, not an error, and its watermark does not move either (nothing was read). A source that returns partial
data is used and reported, and its watermark does not move, so what it missed is read again (the incident counts
are protected from double counting by overlap accounting). Evidence look-ups that failed are reported as
`evidence_errors`; the incidents they concern keep their last good diagnosis (engine/signals.py).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.core.correlation import join_client_records
from shared.core.model import FailureSignal
from shared.core.ports import evidence_key
from shared.core.sources import SourceState, advances_watermark, next_watermark
from shared.engine.reconcile import reconcile
from shared.engine.runtime import Runtime, new_correlation_id
from shared.engine.signals import Triaged, handle_signal, settled_signals
from shared.engine.sources import SourceRead, first_read_anchor, read_source, record_health
from shared.engine.telemetry import measure_scan, traced
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
    # Per source: this read's state, detail, transient, partial; and from its health: since, last_success,
    # last_error, last_error_at.
    sources: dict[str, dict[str, Any]] = field(default_factory=dict)
    evidence_errors: list[str] = field(default_factory=list)  # evidence look-ups that failed, whole messages
    reconciled: dict[str, int] = field(default_factory=dict)  # stale grant claims the sweep settled (engine/reconcile)

    @property
    def failed_sources(self) -> list[str]:
        return [name for name, read in self.sources.items() if read["state"] == SourceState.FAILED]

    @property
    def failed(self) -> bool:
        """A source could not be read or evidence could not be: the CLI exits non-zero."""
        return bool(self.failed_sources or self.evidence_errors)

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
            "sources": self.sources,
            "failed_sources": self.failed_sources,
            "evidence_errors": self.evidence_errors,
            "reconciled": self.reconciled,
        }


@traced("scan")
def run_scan(
    rt: Runtime,
    *,
    resource_ids: tuple[str, ...] | None = None,
    window: tuple[datetime, datetime] | None = None,
    correlation_id: str | None = None,
    verify: bool = True,
) -> ScanReport:
    """A full cycle. With `window`, a targeted scan (alerts): it reads that window and leaves watermarks alone;
    it detects and acts at once, and leaves counting to the timer scans so nothing is counted twice.

    A targeted scan answers a delivery that is retried when it raises: after the other sources are handled, the
    first transient source failure is raised again, so Event Grid (or the action group) redelivers. A no-data
    source, or a failure a retry cannot cure (403, 404), is acknowledged: it is in the report and the health."""
    correlation_id = correlation_id or new_correlation_id()
    run = RunState.begin(rt, correlation_id)
    report = ScanReport(correlation_id=correlation_id, started_at=run.now)
    rt.refresh_evidence()

    reads: list[SourceRead] = []
    signals: list[FailureSignal] = []
    overlap = timedelta(minutes=rt.settings.lookback_overlap_minutes)
    for source in rt.sources:
        watermark = rt.store.get_watermark(source.name)
        if window is None:
            # Never read completely: start where the first attempt did, so failed first runs lose nothing.
            start = (watermark - overlap) if watermark else first_read_anchor(
                rt, source, run.now, timedelta(minutes=rt.settings.initial_lookback_minutes))
            end = run.now
        else:
            start, end = window
        # The watermark lets the source count the re-read overlap (FailureSignal.overlap_count).
        read = read_source(rt, source, start, end, resource_ids, watermark)
        reads.append(read)
        report.windows[source.name] = (start.isoformat(), end.isoformat())
        report.sources[source.name] = read.to_json()
        if read.batch is not None:
            signals.extend(s for s in _take(rt, report, read, targeted=window is not None) if s.resource_id)

    # A client-side group that a server-side row confirms is one failure seen from both sides (core/correlation).
    signals = join_client_records(signals)
    report.signals = len(signals)
    # Groups an earlier scan already handled, unchanged since: no evidence, no store write, no ticket call.
    text_triage: dict[int, Triaged] = {}  # diagnosed once from the text: reused where no evidence adds to it
    settled = settled_signals(rt, signals, text_triage) if window is None else {}
    pairs = {evidence_key(s.object_id, s.resource_id) for i, s in enumerate(signals) if i not in settled}
    with rt.telemetry.span("evidence", pairs=len(pairs)):
        evidence = rt.evidence.gather_evidence(pairs) if pairs else {}

    for index, signal in enumerate(signals):
        if index in settled:
            report.incidents.append(settled[index])
            continue
        ev = evidence.get(evidence_key(signal.object_id, signal.resource_id))
        incident = handle_signal(rt, run, signal, ev, text_triage.get(index))
        report.incidents.append(incident.id)
    report.evidence_errors = list(dict.fromkeys(rt.evidence.failures()))
    if report.evidence_errors:
        rt.audit("evidence-error", "; ".join(report.evidence_errors), correlation_id=correlation_id,
                 inputs={"errors": len(report.evidence_errors)})

    # Only now, with every incident persisted, may the watermarks move: those of the sources read completely.
    if window is None:
        for read in reads:
            if read.batch is not None and advances_watermark(read.check):
                # To where the source read through by its own clock (ingestion time), not this instance's.
                rt.store.set_watermark(read.name, next_watermark(read.batch.end, read.batch.read_through))
    for name, health in record_health(rt, reads, correlation_id).items():
        report.sources[name].update({key: value for key, value in health.to_dict().items()
                                     if key in ("since", "last_success", "last_error", "last_error_at")})

    for outcome in run.outcomes:
        report.actions[outcome["action"]] = report.actions.get(outcome["action"], 0) + 1
    report.incidents = list(dict.fromkeys(report.incidents))
    report.grants = run.grants_this_run
    if verify:
        report.verifications = run_verifications(rt, run)
        report.grants = run.grants_this_run
    measure_scan(rt, run, report, reads, targeted=window is not None)
    if window is None:
        # Failed ticket operations of incidents no signal brought back this cycle (e.g. a resolved one's close).
        retry_pending_tickets(rt, run, set(report.incidents))
        # Grant claims whose instance died, before or after ARM's write (engine/reconcile).
        report.reconciled = reconcile(rt, run)
        report.grants = run.grants_this_run
    else:
        retry = next((read.error for read in reads if read.check.transient and read.error is not None), None)
        if retry is not None:
            raise retry
    return report


def _take(rt: Runtime, report: ScanReport, read: SourceRead, *, targeted: bool) -> tuple[FailureSignal, ...]:
    """What a source answered, counted the way this scan may count it; its rejected rows and partial answer are
    audited and reported."""
    batch = read.batch
    assert batch is not None
    # A partial answer keeps the watermark, so the next scan counts these rows again: like a targeted scan, it
    # acts on what it got but leaves the counting to that scan (a group in it was counted twice before).
    if targeted or batch.partial_errors:
        batch = replace(batch, signals=tuple(_targeted_counts(s, read.watermark) for s in batch.signals))
    for rejected in batch.rejected:
        rt.audit("row-rejected", rejected.reason, correlation_id=report.correlation_id,
                 inputs={"source": rejected.source, "row": _clip(rejected.row)})
    if batch.partial_errors:
        report.partial.extend(f"{read.name}: {e}" for e in batch.partial_errors)
        rt.audit("partial-result", "; ".join(batch.partial_errors), correlation_id=report.correlation_id,
                 inputs={"source": read.name})
    report.rejected += len(batch.rejected)
    return batch.signals


def _targeted_counts(signal: FailureSignal, watermark: datetime | None) -> FailureSignal:
    """A targeted (alert) scan must not count rows the timer scans count. Rows after the watermark belong to the
    next timer scan; rows before it were counted already, except for a group no earlier scan saw, which the
    lifecycle counts in full only when the incident is new (count == overlap_count makes an update add 0)."""
    before = signal.overlap_count if watermark is not None else 0
    return replace(signal, count=before, overlap_count=before)


def _clip(row: dict) -> dict:
    return {str(k)[:100]: (v[:500] if isinstance(v, str) else v) for k, v in list(row.items())[:40]}
