"""Suppressions (opt-outs with an expiry) of a principal or a resource, and the duration syntax operators type."""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Protocol

from shared.core.allowlist import normalize_object_id
from shared.core.resource_ids import normalize_scope, scope_within

# A suppression is an opt-out that must lapse: longer than a year is almost surely a typo for "forever".
MAX_DURATION = timedelta(days=365)
_DURATION = re.compile(r"([0-9]{1,6})([dhm])")
_UNITS = {"d": "days", "h": "hours", "m": "minutes"}


class SuppressionLike(Protocol):
    @property
    def target(self) -> str: ...

    @property
    def until(self) -> datetime: ...


def normalize_target(target: str | None) -> str | None:
    """An object id (lower-case GUID) or a resource id (normalize_scope); None when it is neither."""
    if not isinstance(target, str) or not target.strip():
        return None
    oid = normalize_object_id(target)
    if oid is not None:
        return oid
    if target.strip().startswith("/"):
        scope = normalize_scope(target)
        return scope if scope != "/" else None
    return None


def suppressed_targets(suppressions: Iterable[SuppressionLike], now: datetime) -> frozenset[str]:
    """Normalized targets of the suppressions still active at `now` (a suppression ends at its `until`)."""
    active = set()
    for suppression in suppressions:
        target = normalize_target(suppression.target)
        if target is not None and suppression.until > now:
            active.add(target)
    return frozenset(active)


def is_suppressed(principal_id: str | None, resource_ids: Iterable[str | None], targets: frozenset[str]) -> bool:
    """True when the principal, or any resource or a parent of it (project → account → resource group), is
    under an active suppression."""
    oid = normalize_object_id(principal_id)
    if oid is not None and oid in targets:
        return True
    scopes = [t for t in targets if t.startswith("/")]
    for resource_id in resource_ids:
        if not isinstance(resource_id, str) or not resource_id.strip():
            continue
        resource = normalize_scope(resource_id)
        if any(scope_within(resource, s) for s in scopes):
            return True
    return False


def parse_duration(text: str) -> timedelta:
    """Parse "7d", "12h" or "30m" (a positive whole number and one unit). Anything else is a ValueError."""
    match = _DURATION.fullmatch(text.strip()) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"invalid duration {text!r}: expected a whole number and a unit d, h or m, e.g. 7d, 12h, 30m")
    amount = int(match.group(1))
    if amount == 0:
        raise ValueError(f"invalid duration {text!r}: must be longer than zero")
    duration = timedelta(**{_UNITS[match.group(2)]: amount})
    if duration > MAX_DURATION:
        raise ValueError(f"invalid duration {text!r}: at most {MAX_DURATION.days}d; suppressions must expire")
    return duration
