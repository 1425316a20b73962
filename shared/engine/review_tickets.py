"""Reviews become tickets on request (`python -m shared review ... --ticket`): one ticket per account and review,
found again by its fingerprint (`tickets.content.review_fingerprint`) and updated on the next run, closed when the
review has nothing left to say. The tickets are the only writes a review makes, and only to the trackers."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from shared.core.ports import TicketSink
from shared.core.reviews.model import AccessReview, Readiness
from shared.core.sources import error_text
from shared.tickets.content import review_closed_comment, review_content


def _readiness_ticket(r: Readiness, at: datetime, mode: str) -> tuple[Any, bool]:
    """(content, open it): a readiness needs a ticket while it is not ready or could not be checked."""
    evidence = tuple(f"[{x.rule}] {'blocking: ' if x.blocking else ''}{x.text}" for x in r.reasons)
    commands = tuple(c.command for c in r.entra_callers if c.command)
    if r.verdict == "ready":
        commands = (r.disable_command, *commands)
    content = review_content("readiness", r.account_id, summary=f"local-auth readiness: {r.verdict}",
                             evidence=evidence, commands=commands, at=at, mode=mode)
    return content, r.verdict == "not_ready"


def _access_ticket(review: AccessReview, at: datetime, mode: str) -> tuple[Any, bool]:
    kind = "upgrade" if review.pre_upgrade else "access"
    evidence = tuple(f"[{f.rule}] {f.role} for {f.principal_name or f.principal} at {f.scope}: {f.text}; "
                     f"{f.recommendation}" for f in review.findings)
    evidence += tuple(f"could not check {line}" for line in review.could_not_check)
    commands = tuple(c for f in review.findings for c in f.commands)
    content = review_content(kind, review.account_id, summary=f"{len(review.findings)} access finding(s)",
                             evidence=evidence, commands=commands, at=at, mode=mode)
    return content, bool(review.findings or review.could_not_check)


def ticket_reviews(sinks: Sequence[TicketSink], *, at: datetime, mode: str,
                   readiness: Sequence[Readiness] = (), access: Sequence[AccessReview] = ()) -> list[dict[str, Any]]:
    """Open or update each review's ticket in every sink, or close it when the review is clean. A sink that fails
    is reported in the answer, never raised: the others go on."""
    planned = [_readiness_ticket(r, at, mode) for r in readiness] + [_access_ticket(a, at, mode) for a in access]
    # Chat sinks say `takes_reviews = False`: they could not find a review's message again, so every run would post
    # (and every clean review "resolve") anew; reviews go to trackers only.
    sinks = [sink for sink in sinks if getattr(sink, "takes_reviews", True)]
    outcomes = []
    for content, needed in planned:
        for sink in sinks:
            try:
                if needed:
                    ref = sink.open_or_update(content)
                    outcomes.append({"account": content.resource_id, "review": content.cause, "sink": sink.name,
                                     "result": "opened" if ref.created else "updated", "ref": ref.ref})
                else:
                    closed = sink.resolve(content, comment=review_closed_comment(content.cause.removeprefix("review_")))
                    outcomes.append({"account": content.resource_id, "review": content.cause, "sink": sink.name,
                                     "result": "closed" if closed else "none", "ref": closed.ref if closed else ""})
            except Exception as exc:  # noqa: BLE001 - one tracker's failure is reported, the others go on
                outcomes.append({"account": content.resource_id, "review": content.cause, "sink": sink.name,
                                 "result": "failed", "ref": "", "error": f"{type(exc).__name__}: {error_text(exc)}"})
    return outcomes
