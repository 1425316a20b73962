"""Fixtures of the fast tier: the engine over in-memory fakes of its ports (tests/support/fakes.py).

Nothing here starts a server or a subprocess or opens a connection; an autouse guard fails any test that tries.
"""

from __future__ import annotations

import json
import socket
import subprocess
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest

from tests.engine.common import ACCOUNT
from tests.support.fakes import (
    FakeEvidence,
    FakeRoleWriter,
    FakeSource,
    ManualClock,
    RecordingPublisher,
    RecordingSink,
    WriteCountingStore,
    fake_runtime,
)

# Compressed like the stand-in suites: a role propagates in 2 minutes and its check is due a minute after that.
BASE_ENV = {
    "TRIAGE_PROPAGATION_WINDOW_SECONDS": "120",
    "TRIAGE_INGESTION_LAG_SECONDS": "60",
}


@pytest.fixture(autouse=True)
def offline(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fast tier runs offline; the stand-in suites beside it (marked slow) are left alone."""
    if request.node.get_closest_marker("slow") is not None:
        return

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the fast tier must not open connections or start processes")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(subprocess.Popen, "__init__", refuse)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
def store() -> Iterator[WriteCountingStore]:
    opened = WriteCountingStore()
    yield opened
    opened.close()


@pytest.fixture
def source(clock: ManualClock) -> FakeSource:
    return FakeSource(clock)


@pytest.fixture
def evidence(clock: ManualClock) -> FakeEvidence:
    fake = FakeEvidence(clock)
    fake.add_account(ACCOUNT)
    return fake


@pytest.fixture
def roles(evidence: FakeEvidence, clock: ManualClock) -> FakeRoleWriter:
    return FakeRoleWriter(evidence, clock)


@pytest.fixture
def sink() -> RecordingSink:
    return RecordingSink()


@pytest.fixture
def publisher() -> RecordingPublisher:
    return RecordingPublisher()


@pytest.fixture
def make_runtime(clock, store, source, evidence, roles, sink, publisher) -> Callable[..., Any]:
    """`make_runtime(mode=..., allowlist=[oid or entry, ...], sinks=[...], sources=[...], telemetry=...,
    TRIAGE_X="...")`: a runtime over the shared fakes and store (several runtimes built in one test are instances of
    one service)."""

    def build(*, mode: str = "enforce", allowlist: Iterable[str | dict[str, Any]] = (),
              sinks: list[Any] | None = None, sources: list[Any] | None = None, telemetry: Any = None,
              **env: str) -> Any:
        entries = [e if isinstance(e, dict) else {"object_id": e} for e in allowlist]
        settings = {**BASE_ENV, "TRIAGE_MODE": mode, "TRIAGE_ALLOWLIST": json.dumps(entries), **env}
        return fake_runtime(settings, clock=clock, store=store, sources=[source] if sources is None else sources,
                            evidence=evidence, roles=roles, sinks=[sink] if sinks is None else sinks,
                            publisher=publisher, telemetry=telemetry)

    return build


@pytest.fixture
def traffic(source: FakeSource, clock: ManualClock) -> Callable[..., int]:
    """`traffic(minutes, failing=[oid], succeeding=[oid])`: each minute every failing caller fails `per_minute`
    requests and every succeeding one succeeds as often, then the clock moves a minute. Returns the failures."""

    def run(minutes: int, *, failing: Iterable[str] = (), succeeding: Iterable[str] = (), per_minute: int = 2,
            resource_id: str = ACCOUNT) -> int:
        failing, succeeding = list(failing), list(succeeding)
        failed = 0
        for _ in range(minutes):
            for oid in failing:
                source.fail(oid, resource_id, count=per_minute)
                failed += per_minute
            for oid in succeeding:
                source.succeed(oid, resource_id, count=per_minute)
            clock.advance(minutes=1)
        return failed

    return run
