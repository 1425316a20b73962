"""One scan cycle: read since the watermark → diagnose with live evidence → decide → act → persist, then verify.

Every source stands alone (engine/sources.py): a source that fails (403, 404, 5xx after the SDK's retries) is
recorded with its whole message, the others are read and handled, and the report says so (`sources`); its
watermark does not move, so the next run re-reads the window. A source without its table yet is "no data yet":
recorded, not an error, and its watermark does not move either (nothing was read). A source that returns partial
data is used and reported, and its watermark does not move, so what it missed is read again (the incident counts
are protected from double counting by overlap accounting). Evidence look-ups that failed are reported as
`evidence_errors`; the incidents they concern keep their last good diagnosis (engine/signals.py).

A timer scan that is far behind reads in rounds (sub-windows of TRIAGE_SCAN_WINDOW_MINUTES, oldest first); each
round's incidents are persisted before its watermarks move, so a later round's failure or a cut-off keeps what
the earlier ones finished. Within a round the work goes in chunks recorded before they are handled
(engine/scan_progress.py): a run cut off (the function timeout, the scan's own time budget) is continued by the
next one over the same windows, without reading the same evidence again or counting a row twice.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from shared.core.correlation import join_client_records
from shared.core.incidents import Incident
from shared.core.model import Evidence, FailureSignal, ResourceEvidence
from shared.core.ports import EvidenceKey, FailureSource, evidence_key
from shared.core.resource_ids import account_key
from shared.core.sources import SourceState, advances_watermark, next_watermark
from shared.engine import scan_progress as progress
from shared.engine.checkpoints import checkpoint
from shared.engine.reconcile import reconcile
from shared.engine.runtime import Runtime, new_correlation_id
from shared.engine.signals import (
    SETTLED_READ_BATCH,
    DecisionDue,
    NewIncident,
    Triaged,
    act_on_new,
    handle_signal,
    plan_new,
    settled_signals,
    triage_signal,
    triage_with_evidence,
)
from shared.engine.sources import SourceRead, first_read_anchor, read_source, record_health
from shared.engine.staged import StagedWrites
from shared.engine.telemetry import measure_scan, traced
from shared.engine.ticketing import DeferredRecord, retry_pending_tickets
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
    # A timer scan's rounds and chunks (engine/scan_progress): whether it continued a cut-off run, whether its time
    # budget stopped it (the rest is the next cycle's), the signals left, the evidence pairs a checkpoint supplied.
    resumable: dict[str, Any] = field(default_factory=dict)

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
            "resumable": self.resumable,
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
    """A full cycle (`_scan`), with the young garbage collected less often while it runs."""
    with _spaced_collections():
        return _scan(rt, resource_ids=resource_ids, window=window, correlation_id=correlation_id, verify=verify)


# A scan allocates millions of short-lived objects (rows, signals, records, SDK requests): at CPython's default of a
# young collection every 700 allocations, a 10,000-group first scan ran ~5,000 collections, some of them passes over
# the whole heap, about a tenth of its CPU. Every 10,000 instead: the young objects it keeps longer are a few MB.
SCAN_YOUNG_COLLECTION_EVERY = 10_000
_spacing_lock = threading.Lock()
_spacing: list[tuple[int, int, int]] = []  # the thresholds before the first scan running in this process began


@contextmanager
def _spaced_collections() -> Iterator[None]:
    """Scans may overlap (timer, alerts): the first to begin spaces the collections, the last to end restores them."""
    with _spacing_lock:
        if not _spacing:
            before = gc.get_threshold()
            _spacing.append(before)
            gc.set_threshold(max(before[0], SCAN_YOUNG_COLLECTION_EVERY), before[1], before[2])
        else:
            _spacing.append(_spacing[0])
    try:
        yield
    finally:
        with _spacing_lock:
            before = _spacing.pop()
            if not _spacing:
                gc.set_threshold(*before)


def _scan(
    rt: Runtime,
    *,
    resource_ids: tuple[str, ...] | None,
    window: tuple[datetime, datetime] | None,
    correlation_id: str | None,
    verify: bool,
) -> ScanReport:
    """A full cycle. With `window`, a targeted scan (alerts): it reads that window and leaves watermarks alone;
    it detects and acts at once, and leaves counting to the timer scans so nothing is counted twice.

    A targeted scan answers a delivery that is retried when it raises: after the other sources are handled, the
    first transient source failure is raised again, so Event Grid (or the action group) redelivers. A no-data
    source, or a failure a retry cannot cure (403, 404), is acknowledged: it is in the report and the health.

    A timer scan reads in rounds of at most TRIAGE_SCAN_WINDOW_MINUTES (engine/scan_progress.py): each round's
    incidents are persisted before its watermarks move, a cut-off run is continued by the next one, and the scan
    stops between chunks once TRIAGE_SCAN_TIME_BUDGET_SECONDS are spent, leaving the rest to the next cycle."""
    correlation_id = correlation_id or new_correlation_id()
    run = RunState.begin(rt, correlation_id)
    report = ScanReport(correlation_id=correlation_id, started_at=run.now)
    left = progress.load(rt) if window is None else None
    # Continuing a cut-off round on the same instance: its look-ups (younger than the reuse limit) stay cached.
    keep = left is not None and not rt.evidence.failures()
    book = _EvidenceBook(rt, rt.refresh_evidence(progress.EVIDENCE_REUSE if keep else None))
    if left is not None:
        book.accept_accounts(left.reusable_accounts(run.now))
    budget = progress.Budget(rt.settings.scan_time_budget_seconds if window is None else 0)
    report.resumable = {"resumed": False, "rounds": 0, "stopped": False, "pending": 0, "chunks": 0,
                        "evidence_reused": 0}

    if window is None:
        reads = _timer_rounds(rt, run, report, book, budget, left)
    else:
        reads = [read_source(rt, source, window[0], window[1], resource_ids, rt.store.get_watermark(source.name))
                 for source in rt.sources]
        _handle_round(rt, run, report, reads, book, None, progress.Budget(0), targeted=True)
    report.resumable["evidence_reused"] = book.reused
    report.evidence_errors = book.errors()
    if report.evidence_errors:
        rt.audit("evidence-error", "; ".join(report.evidence_errors), correlation_id=correlation_id,
                 inputs={"errors": len(report.evidence_errors)})

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


def _timer_rounds(rt: Runtime, run: RunState, report: ScanReport, book: _EvidenceBook, budget: progress.Budget,
                  left: progress.RoundProgress | None) -> list[SourceRead]:
    """Read and handle round after round: first the round a cut-off run left (the same windows again), then
    rounds of at most the scan window from each source's watermark, the last one ending now. A round's
    watermarks move only once its incidents are persisted; a source whose read does not move its watermark
    (failed, no data, partial) sits out the rest of the run, so no later window passes over what it missed.
    Returns each source's last read."""
    overlap = timedelta(minutes=rt.settings.lookback_overlap_minutes)
    span = timedelta(minutes=rt.settings.scan_window_minutes)
    last: dict[str, SourceRead] = {}
    active = list(rt.sources)
    resumed = _resumed_reads(rt, left) if left is not None else None
    if left is not None and not resumed:
        left = None  # the watermarks moved since (another instance finished it): nothing to continue
    report.resumable["resumed"] = left is not None
    for _ in range(_MAX_ROUNDS):
        if resumed:
            reads, round_progress, resumed = resumed, left, None
        else:
            reads = _next_round(rt, run, active, overlap, span)
            round_progress = None
        if not reads:
            break
        if round_progress is None:
            round_progress = progress.RoundProgress(new_correlation_id(), {
                read.name: progress.SourceWindow(read.start, _read_end(read), read.watermark)
                for read in reads if _completes(read)})
        last.update((read.name, read) for read in reads)
        done = _handle_round(rt, run, report, reads, book, round_progress, budget, targeted=False)
        if not done:
            report.resumable["stopped"] = True
            break
        # Only now, with every incident of the round persisted, may its watermarks move: those read completely.
        for read in reads:
            if _completes(read):
                # To where the source read through by its own clock (ingestion time), not this instance's.
                rt.store.set_watermark(read.name, _read_end(read))
        if all(_completes(read) for read in reads if read.name in round_progress.windows):
            progress.finish(rt, round_progress)  # else its begun groups still count for the re-read that is due
        checkpoint("scan-round-done")
        report.resumable["rounds"] += 1
        stalled = {read.name for read in reads if not _completes(read) or _read_end(read) <= (
            read.watermark or read.start)}
        active = [source for source in active if source.name not in stalled]
        if all(read.end >= run.now for read in reads) and round_progress is not left:
            break
        if budget.spent():
            report.resumable["stopped"] = True
            break
    return [last[source.name] for source in rt.sources if source.name in last]


_MAX_ROUNDS = 10_080 // 5 + 2  # the longest look-back in the shortest scan window, the resumed round and the last


def _completes(read: SourceRead) -> bool:
    return read.batch is not None and advances_watermark(read.check)


def _read_end(read: SourceRead) -> datetime:
    assert read.batch is not None
    return next_watermark(read.batch.end, read.batch.read_through)


def _resumed_reads(rt: Runtime, left: progress.RoundProgress) -> list[SourceRead]:
    """The round a cut-off run left, read again over the same windows (ending where the first read said it read
    through, so it holds the same rows) for each source whose watermark is still where that round began."""
    reads = []
    for source in rt.sources:
        recorded = left.windows.get(source.name)
        if recorded is None or rt.store.get_watermark(source.name) != recorded.watermark:
            continue
        reads.append(read_source(rt, source, recorded.start, recorded.end, None, recorded.watermark))
    return reads


def _next_round(rt: Runtime, run: RunState, active: list[FailureSource], overlap: timedelta,
                span: timedelta) -> list[SourceRead]:
    """The next round's reads: every active source whose watermark lies before the round's end, which is one
    scan window after the earliest watermark, or now when that is sooner (then every active source reads)."""
    starts: dict[str, tuple[datetime, datetime, datetime | None]] = {}
    for source in active:
        watermark = rt.store.get_watermark(source.name)
        if watermark is not None:
            starts[source.name] = (watermark, watermark - overlap, watermark)
        else:
            # Never read completely: start where the first attempt did, so failed first runs lose nothing.
            anchor = first_read_anchor(rt, source, run.now, timedelta(minutes=rt.settings.initial_lookback_minutes))
            starts[source.name] = (anchor, anchor, None)
    if not starts:
        return []
    earliest = min(base for base, _, _ in starts.values())
    end = run.now if earliest + span >= run.now else earliest + span
    reads = []
    for source in active:
        base, start, watermark = starts[source.name]
        if end == run.now or base < end:
            # The watermark lets the source count the re-read overlap (FailureSignal.overlap_count).
            reads.append(read_source(rt, source, start, end, None, watermark))
    return reads


def _handle_round(rt: Runtime, run: RunState, report: ScanReport, reads: list[SourceRead], book: _EvidenceBook,
                  round_progress: progress.RoundProgress | None, budget: progress.Budget, *,
                  targeted: bool) -> bool:
    """One round's signals: settled ones skipped, the rest handled chunk by chunk, each chunk recorded first.
    False when the budget ran out before every chunk was handled (the round is continued by the next run)."""
    signals: list[FailureSignal] = []
    for read in reads:
        first = report.windows.get(read.name, (read.start.isoformat(), ""))[0]
        report.windows[read.name] = (first, read.end.isoformat())
        report.sources[read.name] = read.to_json()
        if read.batch is not None:
            signals.extend(s for s in _take(rt, report, read, targeted=targeted) if s.resource_id)
    # A client-side group that a server-side row confirms is one failure seen from both sides (core/correlation).
    signals = join_client_records(signals)
    report.signals += len(signals)
    if round_progress is not None and round_progress.begun:
        signals = [progress.as_begun(s) if progress.group_key(s) in round_progress.begun else s for s in signals]
    # Groups an earlier scan already handled, unchanged since: no evidence, no store write, no ticket call.
    text_triage: dict[int, Triaged] = {}  # diagnosed once from the text: reused where no evidence adds to it
    settled = settled_signals(rt, signals, text_triage) if not targeted else {}
    handled: dict[int, str] = dict(settled)
    # One string per incident: each signal's own copy of its incident's id grows with the groups (many share one).
    ids: dict[str, str] = {}
    book.new_round()
    parts = progress.chunks(signals, (i for i in range(len(signals)) if i not in settled))
    known = _KnownIncidents(rt, signals, parts, text_triage) if BATCH_NEW_INCIDENTS and parts else None
    complete = True
    for n, chunk in enumerate(parts):
        if n and budget.spent():  # at least one chunk a run, so every run makes progress
            report.resumable["pending"] += sum(len(rest) for rest in parts[n:])
            complete = False
            break
        pairs = {evidence_key(signals[i].object_id, signals[i].resource_id) for i in chunk}
        evidence, read_now = book.gather(pairs, round_progress)
        if round_progress is not None and round_progress.windows:
            progress.record_chunk(rt, round_progress, (progress.group_key(signals[i]) for i in chunk), read_now,
                                  rt.clock())
        checkpoint("scan-chunk-saved")
        for index, incident_id in _handle_chunk(rt, run, signals, chunk, evidence, text_triage, book, known).items():
            handled[index] = ids.setdefault(incident_id, incident_id)
        report.resumable["chunks"] += 1
        checkpoint("scan-chunk-handled")
    # Each incident once, in the order of its first signal (run_scan keeps the first across rounds too).
    report.incidents.extend(dict.fromkeys(handled[i] for i in sorted(handled)))
    return complete


BATCH_NEW_INCIDENTS = True  # False: every signal the per-signal way (the tests compare both ways)


class _KnownIncidents:
    """Which of a round's incidents exist. A round with many pending signals reads the compact views of their
    incidents (by the text's diagnosis) once at its start, in sorted batches: each partition's views about once,
    however many chunks follow, and fewer requests than a point read each. A smaller round reads each chunk's
    incidents by point reads (8 in flight), which the per-signal way of an existing one then finds in the store's
    cache instead of reading it again. Then the round's own writes; an id live evidence changed is looked up when its
    chunk comes. Another instance's create since is not seen: that create is lost here and goes the per-signal way."""

    def __init__(self, rt: Runtime, signals: list[FailureSignal], parts: list[list[int]],
                 text_triage: dict[int, Triaged]):
        self._rt = rt
        self._looked_up: set[str] = set()
        self._existing: set[str] = set()
        if sum(len(chunk) for chunk in parts) >= ROUND_VIEWS_FROM:
            now = rt.clock()
            ids = {(text_triage.get(i) or triage_signal(rt, signals[i], None, now)).incident_id
                   for chunk in parts for i in chunk}
            wanted = sorted(ids)
            for at in range(0, len(wanted), SETTLED_READ_BATCH):
                self._existing.update(rt.store.get_settled(wanted[at : at + SETTLED_READ_BATCH]))
            self._looked_up.update(wanted)

    def existing(self, ids: set[str]) -> set[str]:
        unknown = ids - self._looked_up
        if unknown:
            self._existing.update(self._rt.store.get_incidents(sorted(unknown)))
            self._looked_up.update(unknown)
        return ids & self._existing

    def written(self, ids: Iterable[str]) -> None:
        self._existing.update(ids)
        self._looked_up.update(ids)


ROUND_VIEWS_FROM = 1_000  # pending signals from which a round reads its incidents' views at once


def _handle_chunk(rt: Runtime, run: RunState, signals: list[FailureSignal], chunk: list[int],
                  evidence: dict[EvidenceKey, Evidence], text_triage: dict[int, Triaged],
                  book: _EvidenceBook, known: _KnownIncidents | None = None) -> dict[int, str]:
    """Each signal of the chunk, in order; the incident ids, by index. Failures with no incident yet whose decision
    writes nothing to ARM are decided first and created together (`Store.create_incidents`, their decision's audit
    in the same transactions), then acted on (tickets) in order, each only once its create won; a create that lost
    (another instance created the incident meanwhile) goes the per-signal way. Everything else (an existing
    incident, a decision that would grant) goes the per-signal way, after the new incidents before it are written,
    so the chunk's order, and with it the ticket budget's, is the per-signal one."""

    def one(index: int) -> Incident:
        signal = signals[index]
        pair = evidence_key(signal.object_id, signal.resource_id)
        return handle_signal(rt, run, signal, evidence.get(pair), text_triage.get(index),
                             read_again=book.read_again(pair))

    def later(staged: StagedWrites, index: int) -> str:
        """A later failure of an incident the batch created: handled on the held incident where it is a recurrence,
        else (after the incident is written) the per-signal way."""
        incident_id = triaged[index].incident_id
        if staged.holds(incident_id):
            signal = signals[index]
            pair = evidence_key(signal.object_id, signal.resource_id)
            try:
                found = handle_signal(staged.runtime, run, signal, evidence.get(pair), text_triage.get(index),
                                      read_again=book.read_again(pair), decide=False)
            except DecisionDue:
                staged.release(incident_id)
            else:
                staged.handled(incident_id, index)
                return found.id
        return one(index).id

    if not BATCH_NEW_INCIDENTS or known is None:
        return {index: one(index).id for index in chunk}
    now = rt.clock()
    triaged = {index: triage_with_evidence(rt, signals[index], evidence.get(evidence_key(
        signals[index].object_id, signals[index].resource_id)), text_triage.get(index), now) for index in chunk}
    # The compact views say which incidents exist; one missing there that exists after all (created meanwhile, or
    # never given a view) only loses its create, which writes nothing.
    existing = known.existing({t.incident_id for t in triaged.values()})
    handled: dict[int, str] = {}
    batch: list[tuple[int, NewIncident]] = []
    batched: set[str] = set()
    # Later failures of an incident the batch creates: they update it the per-signal way, on the incident held in
    # memory until all is written together (engine/staged.py). No new ticket can come of them (their incident's
    # first ticket was opened or queued just before), so handling them after the batch's other incidents leaves
    # the ticket budget's order as it was.
    after: list[int] = []
    tickets_ahead = 0  # the batch's new tickets, sent before the next one's (a running count: batches hold hundreds)

    def flush() -> None:
        nonlocal tickets_ahead
        if not batch:
            return  # nothing held (`after` follows a batch member)
        # The batch's incidents are held (engine/staged.py) from their create until their tickets' outcomes and
        # their later failures are written together.
        staged = StagedWrites(rt, one)
        created = rt.store.create_incidents([(planned.incident, planned.audit) for _, planned in batch])
        checkpoint("scan-batch-created")
        slot_lost = False  # a planned ticket's create lost: the slots counted for it may be free after all
        for (index, planned), incident in zip(batch, created, strict=True):
            if incident is None:
                slot_lost |= planned.ticket is not None and not planned.incident.ticket_queued
                handled[index] = one(index).id
            else:
                outcome: list[DeferredRecord] = []  # the ticket's outcome, written with the rest
                result = act_on_new(rt, run, planned, incident, queue_again=slot_lost, deferred=outcome)
                staged.hold(result, incident, outcome)
                handled[index] = result.id
        for index in after:
            handled[index] = later(staged, index)
        staged.write()
        existing.update(batched)
        batch.clear()
        batched.clear()
        after.clear()
        tickets_ahead = 0

    for index in chunk:
        signal = signals[index]
        found = triaged[index]
        if found.incident_id in batched:
            after.append(index)
            continue
        planned = None
        if found.incident_id not in existing:
            planned = plan_new(rt, run, found, evidence.get(evidence_key(signal.object_id, signal.resource_id)),
                               tickets_ahead=tickets_ahead)
        if planned is not None:
            batch.append((index, planned))
            tickets_ahead += planned.ticket is not None and not planned.incident.ticket_queued
            batched.add(found.incident_id)
        else:
            flush()  # what comes before it is written first, as the per-signal way would have
            handled[index] = one(index).id
            existing.add(found.incident_id)
    flush()
    known.written(handled.values())
    return handled


class _EvidenceBook:
    """The evidence of one run: what it read, what it took from a cut-off run's checkpoint, and which pairs were
    read from ARM by this run (only those may back a grant; the others are read again first)."""

    def __init__(self, rt: Runtime, caches_fresh: bool):
        self._rt = rt
        self._caches_fresh = caches_fresh  # False: the provider still holds look-ups of an earlier run
        self._held: dict[EvidenceKey, Evidence] = {}
        self._fresh: set[EvidenceKey] = set()
        self._failures: list[str] = []
        self.reused = 0
        self._accepted: set[str] = set()  # accounts whose settings came from a cut-off run's checkpoint

    def accept_accounts(self, settings: dict[str, ResourceEvidence]) -> None:
        """A cut-off run's account settings, for a provider that no longer holds its look-ups (a fresh instance):
        not read again for the diagnosis, but a pair on one of them backs no grant (it is read again first), and
        no event shares them (the evidence counts as stale)."""
        if not self._caches_fresh or not settings:
            return  # the provider still holds the cut run's own look-ups
        self._rt.evidence.accept_accounts(settings)
        self._rt.invalidate_evidence()
        self._accepted = {account_key(account) for account in settings}

    def new_round(self) -> None:
        self._held.clear()

    def gather(self, pairs: set[EvidenceKey], round_progress: progress.RoundProgress | None
               ) -> tuple[dict[EvidenceKey, Evidence], dict[EvidenceKey, Evidence]]:
        """(the evidence of every pair, what of it was read from ARM just now)."""
        now = self._rt.clock()
        out: dict[EvidenceKey, Evidence] = {}
        needed: set[EvidenceKey] = set()
        for pair in pairs:
            kept = self._held.get(pair)
            if kept is None and round_progress is not None:
                kept = round_progress.reusable(pair, now)
                self.reused += kept is not None
            if kept is None:
                needed.add(pair)
            else:
                out[pair] = kept
        read_now: dict[EvidenceKey, Evidence] = {}
        if needed:
            with self._rt.telemetry.span("evidence", pairs=len(needed)):
                read_now = self._rt.evidence.gather_evidence(needed)
            if self._caches_fresh:
                self._fresh.update(pair for pair in read_now if account_key(pair[1]) not in self._accepted)
        out.update(read_now)
        # Only the last chunk's: a chunk holds whole principals, so a later one asks for none of an earlier one's
        # pairs (and would find them in the provider's caches); holding every pair of a round grows with it.
        self._held = dict(out)
        return out, read_now

    def read_again(self, pair: EvidenceKey) -> Callable[[], Evidence | None] | None:
        """None when this run read the pair from ARM; else how to read it now, with every cache emptied."""
        if pair in self._fresh:
            return None

        def again() -> Evidence | None:
            self._failures.extend(self._rt.evidence.failures())  # a new evidence run forgets them
            self._rt.refresh_evidence()
            self._caches_fresh = True
            self._accepted = set()  # the new evidence run forgot them
            found = self._rt.evidence.gather_evidence({pair}).get(pair)
            if found is not None:
                self._held[pair] = found
                self._fresh.add(pair)
            return found

        return again

    def errors(self) -> list[str]:
        return list(dict.fromkeys([*self._failures, *self._rt.evidence.failures()]))


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
