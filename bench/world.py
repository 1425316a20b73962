"""The service wired to the local stand-in for benchmarks: real adapters, a real store, one frozen clock shared by
the service and the stand-in (the few lines of tests/support/engine.py, without pytest)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from localazure import Clock, FakeCredential, LocalAzure
from shared import bootstrap
from shared.engine.runtime import Runtime
from shared.settings import load_settings

START = "2026-11-22T10:00:00Z"


class BenchWorldError(RuntimeError):
    """The world is not the one the benchmark describes: its numbers would mean nothing."""


@dataclass
class BenchWorld:
    az: LocalAzure
    clock: Clock
    rt: Runtime
    env: dict[str, str]
    trackers: Any = None  # localazure.trackers.TrackerStandIns when a tracker sink is configured

    def runtime(self, **changes: str) -> Runtime:
        """Another service instance on the same store and stand-in, with some settings changed."""
        return build_runtime({**self.env, **changes}, self.clock)

    def github_calls(self) -> int:
        return len(self.trackers.received("github")) if self.trackers is not None else 0


def build_runtime(env: dict[str, str], clock: Clock) -> Runtime:
    return bootstrap.build_runtime(load_settings(env), credential=FakeCredential(), clock=clock.now)


@contextmanager
def quiet_logs() -> Iterator[None]:
    """The log ticket sink writes one line per ticket and the SDKs log every retry: keep the table readable.
    The loggers are put back as they were afterwards (the smoke test runs inside pytest)."""
    saved = []
    for name in ("triage", "azure", "urllib3"):
        logger = logging.getLogger(name)
        saved.append((logger, logger.level, logger.propagate))
        logger.setLevel(logging.CRITICAL)
        logger.propagate = False
    try:
        yield
    finally:
        for logger, level, propagate in saved:
            logger.setLevel(level)
            logger.propagate = propagate


@contextmanager
def bench_world(
    workdir: Path,
    *,
    mode: str = "recommend",
    sinks: str = "log",
    with_trackers: bool = False,
    **settings: str,
) -> Iterator[BenchWorld]:
    """A running stand-in and a Runtime against it. With `with_trackers` (or a sink other than "log") the tracker
    stand-ins run too and every tracker setting points at them."""
    with quiet_logs():
        yield from _world(workdir, mode, sinks, with_trackers, settings)


def _world(workdir: Path, mode: str, sinks: str, with_trackers: bool, settings: dict[str, str]
           ) -> Iterator[BenchWorld]:
    clock = Clock.frozen(START)
    az = LocalAzure.start(None, clock=clock, propagation_seconds=600)
    trackers = None
    rt = None
    try:
        env = {
            "TRIAGE_MODE": mode,
            "TRIAGE_ALLOWLIST": json.dumps([]),
            "TRIAGE_WORKSPACE_IDS": az.workspace_id,
            "TRIAGE_ARM_ENDPOINT": az.arm_url,
            "TRIAGE_LOGS_ENDPOINT": az.logs_url,
            "TRIAGE_SUBSCRIPTION_ID": az.subscription_id,
            "TRIAGE_CA_BUNDLE": az.ca_path,
            "TRIAGE_PROPAGATION_WINDOW_SECONDS": "600",
            "TRIAGE_INGESTION_LAG_SECONDS": "60",
            "TRIAGE_STATE_BACKEND": "sqlite",
            "TRIAGE_SQLITE_PATH": str(workdir / "state.sqlite3"),
            "TRIAGE_TICKET_SINKS": sinks,
            # The stand-in throttles ARM only when a benchmark turns it on (bench/first_scan_scale.py, which turns
            # this limiter back on too): the others measure the service, not ARM's refill rate.
            "TRIAGE_ARM_READS_PER_SECOND": "0",
        }
        if with_trackers or sinks != "log":
            from localazure.trackers import TrackerStandIns

            trackers = TrackerStandIns.start(az.ca)
            env.update(trackers.settings_env())
        env.update(settings)
        rt = build_runtime(env, clock)
        yield BenchWorld(az=az, clock=clock, rt=rt, env=env, trackers=trackers)
    finally:
        if rt is not None:
            rt.close()
        if trackers is not None:
            trackers.stop()
        az.stop()
