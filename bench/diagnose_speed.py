"""diagnose_per_s: failure signals diagnosed per second on one core, live evidence supplied.

The corpus repeats the real error texts of shared/samples/failures.jsonl and tests/data/error_texts.jsonl (every
cause, every message wrapper) with a fresh caller object id per signal, written into the text wherever the text
names the caller, so per-text caches help only as much as they would in a flood of distinct callers. Signals
without evidence in their case get "looked up, nothing found" evidence for their resource.
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bench.results import Metric, median
from bench.sizes import Sizes
from shared.core import diagnose as diagnose_module
from shared.core import messages
from shared.core.diagnose import diagnose
from shared.core.model import Evidence, FailureSignal, ResourceEvidence
from shared.core.signals import parse_evidence, parse_failure, parse_time

ROOT = Path(__file__).resolve().parents[1]
CORPORA = (ROOT / "shared" / "samples" / "failures.jsonl", ROOT / "tests" / "data" / "error_texts.jsonl")
DEFAULT_NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
_NAMED_PRINCIPAL = re.compile(r"(principal\s+[`'\"]?)([0-9a-fA-F-]{36})", re.IGNORECASE)

Case = tuple[FailureSignal, Evidence, datetime]


def load_cases() -> list[Case]:
    cases: list[Case] = []
    for path in CORPORA:
        for line in path.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            raw = json.loads(line)
            signal = parse_failure(raw)
            evidence = parse_evidence(raw["evidence"]) if raw.get("evidence") is not None else None
            if evidence is None and signal.resource_id:
                evidence = Evidence(assignments=(), resource=ResourceEvidence(resource_id=signal.resource_id))
            now = parse_time(raw["now"]) if raw.get("now") else signal.last_seen or DEFAULT_NOW
            cases.append((signal, evidence, now))
    return cases


def _with_caller(case: Case, oid: str) -> Case:
    signal, evidence, now = case
    old = (signal.object_id or "").lower()
    message = signal.message
    if message:
        if old:
            message = re.sub(re.escape(old), oid, message, flags=re.IGNORECASE)
        message = _NAMED_PRINCIPAL.sub(lambda m: m.group(1) + oid, message)
    changed = replace(signal, object_id=oid if signal.object_id else None, message=message)
    if evidence is not None and evidence.assignments and old:
        assignments = tuple(replace(a, principal_id=oid) if (a.principal_id or "").lower() == old else a
                            for a in evidence.assignments)
        evidence = replace(evidence, assignments=assignments)
    return changed, evidence, now


def corpus(size: int, seed: int = 7) -> list[Case]:
    """`size` signals cycling through every case, each with its own caller."""
    rng = random.Random(seed)
    cases = load_cases()
    return [_with_caller(cases[n % len(cases)], str(uuid.UUID(int=rng.getrandbits(128), version=4)))
            for n in range(size)]


def _clear_caches() -> None:
    # Every pass starts cold: the per-text and per-id caches fill within the pass as they would in production.
    for cached in (getattr(diagnose_module, "_read_text", None), getattr(diagnose_module, "_object_id", None),
                   getattr(messages, "analyze", None)):
        if hasattr(cached, "cache_clear"):
            cached.cache_clear()


def one_pass(signals: list[Case]) -> float:
    _clear_caches()
    started = time.perf_counter()
    for signal, evidence, now in signals:
        diagnose(signal, evidence, now=now)
    return time.perf_counter() - started


def run(sizes: Sizes, workdir: Path) -> list[Metric]:
    signals = corpus(sizes.diagnose_signals)
    causes = {diagnose(s, e, now=n).cause for s, e, n in signals[: len(load_cases())]}
    rates = [len(signals) / one_pass(signals) for _ in range(sizes.repeats)]
    return [Metric("diagnose_per_s", round(median(rates)), "signals/s", ">= 100000",
                   note=f"{len(signals):,} signals, {len(causes)} causes, median of {len(rates)} passes")]
