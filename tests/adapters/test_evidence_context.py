"""The evidence pool's threads run in the invocation's context (issue 15): what the caller's contextvars hold (the
OpenTelemetry trace, the Functions worker's invocation id) is what every look-up sees, and its logs carry it."""

from __future__ import annotations

import contextvars
import threading

from shared.adapters.evidence import AzureEvidenceProvider

INVOCATION = contextvars.ContextVar("invocation", default=None)
SUBSCRIPTION = "11111111-1111-1111-1111-111111111111"
ACCOUNTS = [f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a{n}"
            for n in range(4)]
CALLERS = [f"7c000000-0000-4000-8000-00000000000{n}" for n in range(1, 5)]


class Seen:
    """What each look-up saw of the caller's context, and in which thread."""

    def __init__(self) -> None:
        self.values: list[tuple[str | None, str]] = []
        self._lock = threading.Lock()

    def note(self) -> None:
        with self._lock:
            self.values.append((INVOCATION.get(), threading.current_thread().name))


class Assignments:
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    def list_for(self, principal_id: str, scope: str) -> tuple:
        self.seen.note()
        return ()

    def new_run(self) -> None:
        pass


class Accounts:
    def __init__(self, seen: Seen) -> None:
        self.seen = seen

    def get(self, account: str) -> None:
        self.seen.note()
        return None


def test_every_look_up_in_the_pool_sees_the_callers_context():
    seen = Seen()
    provider = AzureEvidenceProvider(Assignments(seen), Accounts(seen), concurrency=3)
    pairs = {(caller, account) for caller in CALLERS for account in ACCOUNTS}
    for invocation in ("invocation-1", "invocation-2"):  # the pool's threads outlive an invocation
        provider.new_run()
        token = INVOCATION.set(invocation)
        try:
            provider.gather_evidence(pairs)
        finally:
            INVOCATION.reset(token)
    threads = {thread for _, thread in seen.values}
    assert threads and all(name.startswith("evidence") for name in threads)
    first, second = seen.values[:len(seen.values) // 2], seen.values[len(seen.values) // 2:]
    assert {value for value, _ in first} == {"invocation-1"}
    assert {value for value, _ in second} == {"invocation-2"}
    assert INVOCATION.get() is None  # the caller's own context is left as it was
