"""Fault injection per service and route: throttling with Retry-After, server errors, latency, dropped
connections, partial query results and lost answers (the call is carried out, then the answer fails), each
optionally limited to N occurrences. The Azure stand-ins and the ticket-tracker stand-ins share it."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field

_UNSET = object()
SERVICES = ("arm", "logs", "eventgrid", "keyvault")


@dataclass
class Fault:
    service: str
    route: re.Pattern[str]
    status: int | None = 429
    retry_after: float | None = None
    times: int | None = 1  # None: every matching request
    delay: float = 0.0  # seconds before answering (or before failing)
    drop: bool = False  # close the connection without an answer
    partial: bool = False  # logs only: answer with the rows cut short and a PartialError
    method: str | None = None
    after_apply: bool = False  # carry the call out first; only a successful answer is replaced by the failure
    hits: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def matches(self, service: str, method: str, path: str, route_name: str) -> bool:
        if service != self.service or (self.method and self.method.upper() != method.upper()):
            return False
        return bool(self.route.search(path) or self.route.search(route_name))

    def claim(self) -> bool:
        with self._lock:
            if self.times is not None and self.hits >= self.times:
                return False
            self.hits += 1
            return True

    @property
    def exhausted(self) -> bool:
        return self.times is not None and self.hits >= self.times


class Faults:
    def __init__(self, services: tuple[str, ...] = SERVICES) -> None:
        self.services = services  # the service names this set of faults may target
        self._faults: list[Fault] = []
        self._lock = threading.Lock()

    def add(
        self,
        service: str = "arm",
        route: str = ".*",
        status: int | None | object = _UNSET,
        retry_after: float | None = 0.01,
        times: int | None = 1,
        delay: float = 0.0,
        drop: bool = False,
        partial: bool = False,
        method: str | None = None,
        after_apply: bool = False,
    ) -> Fault:
        """Inject a fault. `status` defaults to 429 unless the fault is only a delay, a drop or a partial
        result. `retry_after` is sent as the Retry-After header with 429/503 answers (None: no header).
        With `after_apply` the call is carried out and only its answer fails (a status or a drop): a lost
        response, after which the client cannot tell whether the write happened."""
        if service not in self.services:
            raise ValueError(f"service must be one of {self.services}")
        if status is _UNSET:
            status = None if (delay or drop or partial) else 429
        fault = Fault(service, re.compile(route), status, retry_after, times, delay, drop, partial, method,
                      after_apply=after_apply)
        with self._lock:
            self._faults.append(fault)
        return fault

    def take(self, service: str, method: str, path: str, route_name: str) -> Fault | None:
        with self._lock:
            candidates = [f for f in self._faults if f.matches(service, method, path, route_name)]
        for fault in candidates:
            if fault.claim():
                return fault
        return None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def __iter__(self):
        with self._lock:
            return iter(list(self._faults))
