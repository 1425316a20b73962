"""diagnose_per_s and diagnose_per_s_uncached: failure signals diagnosed per second on one core, live evidence
supplied.

The corpus repeats the real error texts of shared/samples/failures.jsonl and tests/data/error_texts.jsonl (every
cause, every message wrapper) with a fresh caller object id per signal, written into the text wherever the text
names the caller, so per-text caches help only as much as they would in a flood of distinct callers. Signals
without evidence in their case get "looked up, nothing found" evidence for their resource.

The uncached corpus goes further: in every signal every id of the text is new (every GUID, whatever it names:
caller, request, correlation, tenant, app, subscription; every ISO timestamp; every number of six digits or more
that ends a name, as in `User1-60548584@...`; numbers that do not vary between failures, such as a documentation
link's id or a line number, stay), and a text that names no id gets a request id of its own appended where that
leaves its diagnosis as it was, so no two texts are the same and no per-text cache ever hits. What is left to
share is the text's shape (its ids masked: shared/core/text_ids.py).
"""

from __future__ import annotations

import json
import random
import re
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

from bench.results import Metric, median
from bench.sizes import Sizes
from shared.core import diagnose as diagnose_module
from shared.core import messages, text_ids
from shared.core.diagnose import diagnose
from shared.core.model import Diagnosis, Evidence, FailureSignal, ResourceEvidence
from shared.core.signals import parse_evidence, parse_failure, parse_time

ROOT = Path(__file__).resolve().parents[1]
CORPORA = (ROOT / "shared" / "samples" / "failures.jsonl", ROOT / "tests" / "data" / "error_texts.jsonl")
DEFAULT_NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
_NAMED_PRINCIPAL = re.compile(r"(principal\s+[`'\"]?)([0-9a-fA-F-]{36})", re.IGNORECASE)

Case = tuple[FailureSignal, Evidence | None, datetime]


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
    # Every pass starts cold: the per-text, per-shape and per-id caches fill within the pass as they would in
    # production.
    for module in (diagnose_module, messages):
        for cached in vars(module).values():
            if hasattr(cached, "cache_clear"):
                cached.cache_clear()


_ANY_GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d")
_NAME_NUMBER = re.compile(r"(?<=[A-Za-z0-9]-)\d{6,}(?![0-9A-Za-z])")  # User1-60548584@..., project-56085343
_ANY_ID = re.compile(f"(?P<guid>{_ANY_GUID.pattern})|(?P<time>{_TIMESTAMP.pattern})|(?P<number>{_NAME_NUMBER.pattern})")


def _new_ids(text: str, rng: random.Random) -> str:
    """`text` with every GUID, timestamp and name's number replaced by a random one of the same form (one GUID named
    twice stays one GUID)."""
    chosen: dict[str, str] = {}

    def guid(found: re.Match) -> str:
        old = found.group()
        if old.lower() not in chosen:
            chosen[old.lower()] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        new = chosen[old.lower()]
        return new.upper() if old.isupper() else new

    def timestamp(found: re.Match) -> str:
        return (f"{rng.randint(2023, 2027)}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}{found.group()[10]}"
                f"{rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}")

    def number(found: re.Match) -> str:
        return str(rng.randint(10 ** (len(found.group()) - 1), 10 ** len(found.group()) - 1))

    return _ANY_ID.sub(lambda m: guid(m) if m.lastgroup == "guid" else timestamp(m) if m.lastgroup == "time"
                       else number(m), text)


def _request_id_neutral(case: Case) -> bool:
    """Whether a request id appended to the case's text leaves its diagnosis as it was."""
    signal, evidence, now = case
    if not signal.message or _ANY_GUID.search(signal.message):
        return False
    tagged = replace(signal, message=signal.message + f"\nRequest ID: {uuid.UUID(int=1, version=4)}")
    return _verdict(diagnose(tagged, evidence, now=now)) == _verdict(diagnose(signal, evidence, now=now))


def _verdict(diagnosis: Diagnosis) -> tuple:
    """What a diagnosis concludes (its evidence lines quote the text, and so the request id)."""
    return (diagnosis.cause, diagnosis.confidence, diagnosis.role_name, diagnosis.scope, diagnosis.fix_command,
            diagnosis.surface)


def uncached_corpus(size: int, seed: int = 11) -> list[Case]:
    """`size` signals cycling through every case, each with its own caller and every id of its text new."""
    rng = random.Random(seed)
    cases = load_cases()
    neutral = [_request_id_neutral(case) for case in cases]
    signals = []
    for n in range(size):
        index = n % len(cases)
        signal, evidence, now = _with_caller(cases[index], str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        if signal.message:
            message = _new_ids(signal.message, rng)
            if neutral[index]:
                message += f"\nRequest ID: {uuid.UUID(int=rng.getrandbits(128), version=4)}"
            signal = replace(signal, message=message)
        signals.append((signal, evidence, now))
    return signals


def one_pass(signals: list[Case]) -> float:
    _clear_caches()
    started = time.perf_counter()
    for signal, evidence, now in signals:
        diagnose(signal, evidence, now=now)
    return time.perf_counter() - started


def _shape_reads(signals: list[Case]) -> tuple[int, int, int]:
    """(texts, texts read through a shape already seen, distinct texts) in one cold pass (the per-shape templates
    off: a text filled from one is not read at all, so the shape cache would not count it)."""
    _clear_caches()
    with _templates_off():
        for signal, evidence, now in signals:
            diagnose(signal, evidence, now=now)
    shapes = diagnose_module._read_shape.cache_info()
    texts = [s.message for s, _, _ in signals if s.message]
    return len(texts), shapes.hits, len(set(texts))


@contextmanager
def _templates_off() -> Iterator[None]:
    diagnose_module.use_templates(False)
    try:
        yield
    finally:
        diagnose_module.use_templates(True)


def templates_ab(signals: list[Case], rounds: int = 2) -> list[tuple[bool, float]]:
    """Cold passes with the per-shape templates off and on, alternately (a same-minute A/B on a shared machine):
    (templates on, signals/s) per pass."""
    rates = []
    for _ in range(rounds):
        for enabled in (False, True):
            diagnose_module.use_templates(enabled)
            rates.append((enabled, len(signals) / one_pass(signals)))
    diagnose_module.use_templates(True)
    return rates


def _timed(signals: list[Case]) -> float:
    started = time.perf_counter()
    for signal, evidence, now in signals:
        diagnose(signal, evidence, now=now)
    return time.perf_counter() - started


def new_shape_us(signals: list[Case]) -> float:
    """What a text of a shape never seen costs, in us: every text gets a word of its own (a new shape each); a pass
    with only the per-text and per-shape caches cleared, against the same pass with them warm (they hold them all),
    per text. The per-id and per-scope caches are warm in both; the per-shape templates are off (with them a new
    shape also costs its template: the rules run twice and the result checked)."""
    fresh = [(replace(s, message=f"{s.message} zq{n}x") if s.message else s, e, now)
             for n, (s, e, now) in enumerate(signals)]
    with _templates_off():
        one_pass(fresh)
        for cached in (diagnose_module._read_text, diagnose_module._read_shape, messages.analyze):
            cached.cache_clear()
        cold = _timed(fresh)
        warm = _timed(fresh)
    return (cold - warm) / sum(1 for s, _, _ in fresh if s.message) * 1e6


def run(sizes: Sizes, workdir: Path) -> list[Metric]:
    signals = corpus(sizes.diagnose_signals)
    causes = {diagnose(s, e, now=n).cause for s, e, n in signals[: len(load_cases())]}
    rates = [len(signals) / one_pass(signals) for _ in range(sizes.repeats)]
    distinct = uncached_corpus(sizes.diagnose_signals)
    texts, shape_hits, unique = _shape_reads(distinct)
    uncached = [len(distinct) / one_pass(distinct) for _ in range(sizes.repeats)]
    per_new_shape = median([new_shape_us(distinct[n * sizes.diagnose_new_shapes:(n + 1) * sizes.diagnose_new_shapes])
                            for n in range(sizes.repeats)])
    return [Metric("diagnose_per_s", round(median(rates)), "signals/s", ">= 100000",
                   note=f"{len(signals):,} signals, {len(causes)} causes, median of {len(rates)} passes"),
            Metric("diagnose_per_s_uncached", round(median(uncached)), "signals/s", ">= 100000",
                   note=f"{len(distinct):,} signals, {texts:,} with a text, {unique:,} distinct texts; "
                        f"{shape_hits / max(texts, 1):.1%} of texts read through a shape already seen in the pass; "
                        f"a new shape costs {per_new_shape:.1f} us of text analysis "
                        f"(target <= 8); median of {len(uncached)} passes")]


_SHAPE_DISPLAY = messages.DISPLAY + text_ids.MAX_ID_LENGTH  # what a shape's analysis is asked for


def stage_us(signals: list[Case], chunk: int = 1000) -> dict[str, float]:
    """What each stage of a diagnosis costs, in us per text: the best chunk of `chunk` texts over three passes (the
    best, as a shared machine slows some chunks down). Not a metric: `python -m bench.diagnose_speed` prints it to
    tell where the time of diagnose_per_s_uncached goes."""
    texts = [s for s, _, _ in signals if s.message]
    reads = [(s.status, s.code, s.message, s.endpoint, s.route, s.operation) for s in texts]
    masked = [(s.status, s.code, text_ids.mask(s.message or "")[0]) for s in texts]

    def best(run: Callable[[list], object], items: list, prepare: Callable[[list], object] = lambda part: None
             ) -> float:
        fastest = float("inf")
        for _ in range(3):
            for start in range(0, len(items) - chunk + 1, chunk):
                part = items[start:start + chunk]
                prepare(part)
                started = time.perf_counter()
                run(part)
                fastest = min(fastest, (time.perf_counter() - started) / len(part))
        return fastest * 1e6

    def diagnose_all(part: list) -> None:
        for signal, evidence, now in part:
            diagnose(signal, evidence, now=now)

    def read_all(part: list) -> None:
        for read in part:
            diagnose_module._read_text(*read)

    def forget_texts(part: list) -> None:
        diagnose_module._read_text.cache_clear()

    def without_templates(part: list) -> None:
        diagnose_module.use_templates(False)
        try:
            diagnose_all(part)
        finally:
            diagnose_module.use_templates(True)

    one_pass(signals)  # every shape seen: what follows reads through shapes already seen
    stages = {
        "mask": best(lambda part: [text_ids.mask(s.message or "") for s in part], texts),
        "read through a known shape": best(read_all, reads, forget_texts),
        "diagnose, known shape": best(diagnose_all, signals, forget_texts),
    }
    one_pass(signals)  # the templates (turned off above, which clears them) built again
    return {
        **stages,
        "diagnose, known shape, no templates": best(without_templates, signals, forget_texts),
        "diagnose, per-text hit": best(diagnose_all, signals, diagnose_all),
        "analysis of a new shape": best(lambda part: [messages.analyze_uncut(status, code, text, _SHAPE_DISPLAY)
                                                      for status, code, text in part], masked),
    }


if __name__ == "__main__":
    for stage, cost in stage_us(uncached_corpus(20_000)).items():
        print(f"{stage:28s} {cost:6.2f} us")
    for name, signals in (("uncached", uncached_corpus(50_000)), ("cache-friendly", corpus(50_000))):
        for enabled, rate in templates_ab(signals):
            print(f"{name:15s} templates {'on ' if enabled else 'off'} {rate:9,.0f} signals/s")
