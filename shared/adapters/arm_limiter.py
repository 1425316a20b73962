"""One client-side limiter for every ARM call of the process: a token bucket per subscription (or the tenant) and
operation type, sized like ARM's own (reads 250 then 25/s, writes 200 then 10/s by default; TRIAGE_ARM_*), so
concurrent evidence look-ups wait their turn instead of drawing 429s. Each answer's
`x-ms-ratelimit-remaining-subscription-reads` (`-writes`, `-deletes`, `-tenant-`) lowers the local bucket to
what ARM says is left, so calls made by other instances of the same identity count too. A 429 that still happens
is retried by azure-core's RetryPolicy after its `Retry-After` (the policy honours that header by default).

Resource Graph queries are not subscription requests and have their own quota: they pass untouched.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

READS, WRITES = "reads", "writes"
_GRAPH_PATH = "/providers/microsoft.resourcegraph/"


@dataclass(frozen=True)
class Rate:
    burst: int
    per_second: float  # 0: no limit


class TokenBucket:
    """Reservations: `acquire` takes a token now and sleeps until the bucket would have held it, so waiting
    callers are served in the order they asked."""

    def __init__(self, rate: Rate, *, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self.rate = rate
        self._now = now
        self._sleep = sleep
        self._tokens = float(rate.burst)
        self._updated = now()
        self._lock = threading.Lock()
        self.waited_seconds = 0.0

    def _refill(self, now: float) -> None:
        self._tokens = min(float(self.rate.burst), self._tokens + (now - self._updated) * self.rate.per_second)
        self._updated = now

    def acquire(self) -> float:
        """Take one token, sleeping as long as needed; returns the seconds slept."""
        if self.rate.per_second <= 0:
            return 0.0
        with self._lock:
            self._refill(self._now())
            self._tokens -= 1
            wait = -self._tokens / self.rate.per_second if self._tokens < 0 else 0.0
            self.waited_seconds += wait
        if wait > 0:
            self._sleep(wait)
        return wait

    def observe_remaining(self, remaining: int) -> None:
        """ARM said this many requests are left: never believe we have more."""
        with self._lock:
            self._refill(self._now())
            self._tokens = min(self._tokens, float(remaining))


class ArmLimiter:
    def __init__(self, reads: Rate, writes: Rate, *, now: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep):
        self._rates = {READS: reads, WRITES: writes}
        self._now, self._sleep = now, sleep
        self._buckets: dict[tuple[str, str], TokenBucket] = {}
        self._lock = threading.Lock()

    def bucket(self, scope: str, operation: str) -> TokenBucket:
        key = (scope.lower(), operation)
        with self._lock:
            found = self._buckets.get(key)
            if found is None:
                found = self._buckets[key] = TokenBucket(self._rates[operation], now=self._now, sleep=self._sleep)
            return found

    @property
    def waited_seconds(self) -> float:
        with self._lock:
            return sum(b.waited_seconds for b in self._buckets.values())

    def policy(self) -> Any:
        """An azure-core per-retry policy: every attempt (retries too) takes a token first."""
        from azure.core.pipeline.policies import SansIOHTTPPolicy

        limiter = self

        class _ArmLimitPolicy(SansIOHTTPPolicy):
            def on_request(self, request: Any) -> None:
                target = _target(request.http_request.url, request.http_request.method)
                if target is not None:
                    limiter.bucket(*target).acquire()

            def on_response(self, request: Any, response: Any) -> None:
                target = _target(request.http_request.url, request.http_request.method)
                if target is None:
                    return
                level = "tenant" if target[0] == "tenant" else "subscription"
                headers = response.http_response.headers
                if response.http_response.status_code == 429:  # ARM's bucket is empty: so is ours, from now
                    limiter.bucket(*target).observe_remaining(0)
                for operation in ("reads", "writes", "deletes"):
                    value = headers.get(f"x-ms-ratelimit-remaining-{level}-{operation}")
                    if value is not None and value.strip().isdigit():
                        limiter.bucket(target[0], READS if operation == "reads" else WRITES).observe_remaining(
                            int(value))

        return _ArmLimitPolicy()


def _target(url: str, method: str) -> tuple[str, str] | None:
    """(subscription id or "tenant", reads | writes) of an ARM request; None for Resource Graph."""
    path = urlsplit(url).path
    if path.lower().startswith(_GRAPH_PATH):
        return None
    segs = [p for p in path.split("/") if p]
    scope = segs[1] if len(segs) >= 2 and segs[0].lower() == "subscriptions" else "tenant"
    return scope, READS if method.upper() in ("GET", "HEAD") else WRITES
