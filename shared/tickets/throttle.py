"""The recurrence-comment throttle (pure): the engine asks before passing `comment` to a sink."""

from __future__ import annotations

from datetime import datetime, timedelta


def should_comment(last_comment_at: datetime | None, now: datetime, interval: timedelta) -> bool:
    """True when no comment was added yet, or at least `interval` has passed since the last one.

    A last comment "in the future" (clock skew between instances) counts as recent, so skew can delay a
    comment by at most the skew, never cause two.
    """
    if last_comment_at is None:
        return True
    return now - last_comment_at >= interval
