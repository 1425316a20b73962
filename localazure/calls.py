"""Per-route call counters for every request the stand-in serves (tests and benchmarks read them)."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

from localazure.https import Request

READ = "read"
WRITE = "write"


@dataclass(frozen=True)
class Call:
    service: str
    method: str
    route: str  # e.g. roleAssignments.list
    path: str
    status: int  # 0 when the connection was dropped
    kind: str  # read | write
    at: datetime
    # The request itself, only when the front door was asked to keep requests (ticket trackers).
    request: Request | None = field(default=None, repr=False, compare=False)


class CallLog:
    def __init__(self) -> None:
        self._calls: list[Call] = []
        self._lock = threading.Lock()

    def record(self, call: Call) -> None:
        with self._lock:
            self._calls.append(call)

    @property
    def records(self) -> list[Call]:
        with self._lock:
            return list(self._calls)

    def count(
        self,
        service: str | None = None,
        method: str | None = None,
        route: str | None = None,
        kind: str | None = None,
        status: int | None = None,
    ) -> int:
        return sum(
            1
            for c in self.records
            if (service is None or c.service == service)
            and (method is None or c.method == method.upper())
            and (route is None or c.route == route)
            and (kind is None or c.kind == kind)
            and (status is None or c.status == status)
        )

    def reads(self, service: str = "arm") -> int:
        return self.count(service=service, kind=READ)

    def writes(self, service: str = "arm") -> int:
        return self.count(service=service, kind=WRITE)

    def by_route(self, service: str | None = None) -> dict[str, int]:
        return dict(Counter(c.route for c in self.records if service is None or c.service == service))

    def reset(self) -> None:
        with self._lock:
            self._calls.clear()
