"""ARM's request throttling and Resource Graph's query quota, as Azure documents them.

ARM (learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling, "Regional
throttling and token bucket algorithm"): a token bucket per subscription, security principal and operation type:
reads 250 tokens refilled at 25/s, writes and deletes 200 at 10/s (tenant-level requests have buckets of the same
sizes per tenant). Over the limit ARM answers 429 with `Retry-After` (seconds to wait) and does not process the
request; every answer carries `x-ms-ratelimit-remaining-subscription-reads` (or `-writes`, `-deletes`; `-tenant-`
for tenant requests). The stand-in has one region, so the region part of the key is constant.

Resource Graph (learn.microsoft.com/azure/governance/resource-graph/concepts/guidance-for-throttled-requests):
a quota per user in a time window, e.g. 15 queries every 5 seconds, reported on every answer as
`x-ms-user-quota-remaining` and `x-ms-user-quota-resets-after` (hh:mm:ss).

Buckets run on real (monotonic) time, not the stand-in clock: throttling is about how fast a client calls.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

READS, WRITES, DELETES = "reads", "writes", "deletes"


@dataclass(frozen=True)
class BucketSize:
    burst: float
    refill_per_second: float


@dataclass(frozen=True)
class ThrottleLimits:
    """The documented sizes by default; smaller ones (free and trial subscriptions have lower limits) let tests
    reach the limit with a handful of calls."""

    reads: BucketSize = BucketSize(250, 25)
    writes: BucketSize = BucketSize(200, 10)
    deletes: BucketSize = BucketSize(200, 10)
    graph_queries: int = 15
    graph_window_seconds: float = 5.0

    def size(self, operation: str) -> BucketSize:
        return {READS: self.reads, WRITES: self.writes, DELETES: self.deletes}[operation]


@dataclass(frozen=True)
class Admission:
    allowed: bool
    remaining: int
    retry_after_seconds: int  # 0 when allowed


@dataclass
class _Bucket:
    size: BucketSize
    tokens: float
    updated: float

    def take(self, now: float) -> Admission:
        self.tokens = min(self.size.burst, self.tokens + (now - self.updated) * self.size.refill_per_second)
        self.updated = now
        if self.tokens >= 1:
            self.tokens -= 1
            return Admission(True, int(self.tokens), 0)
        wait = (1 - self.tokens) / self.size.refill_per_second
        return Admission(False, 0, max(1, math.ceil(wait)))


@dataclass
class ArmThrottle:
    limits: ThrottleLimits = field(default_factory=ThrottleLimits)
    now: Callable[[], float] = time.monotonic
    _buckets: dict[tuple[str, str, str], _Bucket] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, scope: str, principal: str, operation: str) -> Admission:
        """One request of `operation` (reads | writes | deletes) by `principal` in `scope` (a subscription id,
        or "tenant")."""
        key = (scope.lower(), principal.lower(), operation)
        with self._lock:
            now = self.now()
            bucket = self._buckets.get(key)
            if bucket is None:
                size = self.limits.size(operation)
                bucket = self._buckets[key] = _Bucket(size, size.burst, now)
            return bucket.take(now)


@dataclass
class GraphQuota:
    """A fixed window per user: `limits.graph_queries` queries, then 429 until the window resets."""

    limits: ThrottleLimits = field(default_factory=ThrottleLimits)
    now: Callable[[], float] = time.monotonic
    _windows: dict[str, tuple[float, int]] = field(default_factory=dict)  # user -> (window start, queries used)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def admit(self, user: str) -> tuple[Admission, float]:
        """(admission, seconds until the user's window resets)."""
        with self._lock:
            now = self.now()
            start, used = self._windows.get(user.lower(), (now, 0))
            if now - start >= self.limits.graph_window_seconds:
                start, used = now, 0
            resets_after = max(0.0, start + self.limits.graph_window_seconds - now)
            if used >= self.limits.graph_queries:
                self._windows[user.lower()] = (start, used)
                return Admission(False, 0, max(1, math.ceil(resets_after))), resets_after
            self._windows[user.lower()] = (start, used + 1)
            return Admission(True, self.limits.graph_queries - used - 1, 0), resets_after


def hhmmss(seconds: float) -> str:
    whole = max(0, math.ceil(seconds))
    return f"{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}"
