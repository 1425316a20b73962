"""The scheduled access reviews (TRIAGE_REVIEW_SCHEDULE, off by default): on each hourly tick of the `reviews`
timer, when a slot has come round that no run took, the readiness and access reviews of every account run and
become tickets (engine/review_tickets.py), as `python -m shared review ... --ticket` would make them.

One instance runs a slot: the tick claims it in the store with a conditional write first (core/review_schedule.py
decides from the record); the loser of that race, and every later tick, leaves it. A run that raises gives the
slot back, so the next tick tries again; one that is killed holds it until its lease expires.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from shared.core.ports import ReviewReader, TicketSink
from shared.core.records import ConflictError
from shared.core.review_schedule import ReviewSlot, finished, plan_tick
from shared.engine.review_tickets import ticket_reviews
from shared.engine.reviews import DEFAULT_DAYS, review_both

log = logging.getLogger("triage")

REVIEW_RUN_KEY = "review-schedule"


def run_scheduled_reviews(store: Any, reader: ReviewReader, sinks: Sequence[TicketSink], *,
                          slot: ReviewSlot | None, now: datetime, mode: str,
                          names: Mapping[str, str] | None = None, days: int = DEFAULT_DAYS) -> dict[str, Any]:
    """What the tick did: `{"ran": bool, "reason": ..., and when it ran "slot", "readiness", "access",
    "tickets", "problems"}`. The reviews themselves write nothing to Azure; the tickets are their only writes."""
    record, etag = store.get_value(REVIEW_RUN_KEY)
    tick = plan_tick(slot, record, now)
    if not tick.run:
        return {"ran": False, "reason": tick.reason}
    assert tick.claim is not None and tick.slot is not None
    try:
        claimed = store.put_value(REVIEW_RUN_KEY, tick.claim, etag)
    except ConflictError:
        return {"ran": False, "reason": "another instance took this slot first"}
    try:
        readiness, access, listing = review_both(reader, now=now, days=days, names=names)
        tickets = ticket_reviews(sinks, at=now, mode=mode, readiness=readiness, access=access)
    except Exception:
        _give_back(store, record, claimed)
        raise
    _record_done(store, tick, now, claimed)
    problems = [listing] if listing else []
    return {"ran": True, "reason": tick.reason, "slot": tick.slot.isoformat(),
            "readiness": {r.account_id: r.verdict for r in readiness},
            "access": {a.account_id: len(a.findings) for a in access},
            "could_not_check": sum(bool(r.could_not_check) for r in readiness)
            + sum(bool(a.could_not_check) for a in access),
            "tickets": tickets, "problems": problems}


def _record_done(store: Any, tick: Any, now: datetime, claimed: str) -> None:
    """Mark the slot done at the claim's etag; a failure to do so only means a later tick may review again once
    the lease expires (the tickets dedupe by their fingerprint)."""
    try:
        store.put_value(REVIEW_RUN_KEY, finished(tick, now), claimed)
    except Exception as exc:  # noqa: BLE001 - the reviews ran; see docstring
        log.warning("scheduled review ran but its record was not marked done (%s): it may run again after the "
                    "lease", type(exc).__name__)


def _give_back(store: Any, before: Mapping[str, Any] | None, claimed: str) -> None:
    """Best effort: the slot's claim is released to what it was, so the next tick runs it (else the lease does)."""
    try:
        store.put_value(REVIEW_RUN_KEY, dict(before) if before else {"slot": "", "state": "released", "until": None},
                        claimed)
    except Exception as exc:  # noqa: BLE001 - the run's own failure is the one raised
        log.warning("scheduled review failed and its slot was not released (%s): it runs again after the lease",
                    type(exc).__name__)
