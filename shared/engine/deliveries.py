"""Handling one delivery (an Event Grid event, an alert notification) exactly once in effect, at least once in fact.

The delivery's key is claimed with a lease before it is handled and marked done only after its effects are
durable. A handler that raises releases the claim, so the retry is handled; one that is killed or times out
leaves a lease that expires, so a redelivery after EVENT_LEASE is handled again. A redelivery that arrives while
another handler holds the lease raises `DeliveryInFlight` (transient), so Event Grid or the action group tries
again later instead of having it acknowledged as a duplicate and lost. Handling twice is safe: every side effect
is claimed by a conditional write first (engine/unit_of_work.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import TypeVar

from shared.core.records import EventClaim, StoreError
from shared.engine.checkpoints import checkpoint
from shared.engine.runtime import Runtime

log = logging.getLogger("triage")

# Longer than one delivery takes to handle (a targeted scan is the longest), shorter than Event Grid's later
# retry intervals (10 min, 30 min, 1 h, ...), so a killed handler's event is handled on a later retry.
EVENT_LEASE = timedelta(minutes=5)

T = TypeVar("T")


class DeliveryInFlight(StoreError):
    """Another handler holds this delivery's lease: retry later (a StoreError, so it counts as transient)."""


def handle_once(rt: Runtime, key: str, handle: Callable[[], T]) -> tuple[bool, T | None]:
    """(True, what `handle` returned), or (False, None) for a delivery already handled (a duplicate)."""
    claim = rt.store.claim_event(key, rt.clock(), EVENT_LEASE)
    if claim == EventClaim.DONE:
        return False, None
    if claim == EventClaim.HELD:
        raise DeliveryInFlight(f"delivery {key[:200]} is being handled by another instance; retry later")
    checkpoint("event-claimed")
    try:
        result = handle()
    except BaseException:
        _release(rt, key)
        raise
    checkpoint("event-handled")
    rt.store.complete_event(key, rt.clock())
    return True, result


def _release(rt: Runtime, key: str) -> None:
    """Best effort: a release that fails too leaves the lease, which expires, so nothing is lost either way."""
    try:
        rt.store.forget_event(key)
    except Exception as exc:  # noqa: BLE001 - the handler's own failure is the one to raise
        log.warning("delivery %s not released (%s); it is handled again once its lease expires", key[:200],
                    type(exc).__name__)
