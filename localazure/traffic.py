"""Traffic simulation: each tick, every active traffic entry makes its requests at the clock's now, and the
outcomes are written to the workspace as the real services would log them."""

from __future__ import annotations

import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from localazure import apim, dataplane, telemetry
from localazure.dataplane import CallSpec, Outcome
from localazure.logstore import INGESTION_DELAY, LogStore
from localazure.state import State


@dataclass
class Traffic:
    spec: CallSpec
    added_at: datetime

    def active(self, now: datetime) -> bool:
        age = (now - self.added_at).total_seconds()
        if self.spec.from_seconds is not None and age < self.spec.from_seconds:
            return False
        return self.spec.until_seconds is None or age < self.spec.until_seconds


class Simulator:
    def __init__(self, state: State, logs: LogStore, seed: int = 0):
        self.state = state
        self.logs = logs
        self.traffic: list[Traffic] = []
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def add(self, spec: CallSpec, added_at: datetime | None = None) -> Traffic:
        state = self.state
        state.require_account(spec.resource)  # fail early on a typo
        if spec.gateway is not None:
            state.require_gateway(spec.gateway)
        entry = Traffic(spec, added_at or state.clock.now())
        with self._lock:
            self.traffic.append(entry)
        return entry

    def clear(self) -> None:
        with self._lock:
            self.traffic.clear()

    def call(self, spec: CallSpec, *, at: datetime | None = None, log: bool = True) -> Outcome:
        """One request, decided now (or at `at`), logged unless `log=False`."""
        outcome = self._decide(spec, at)
        if log:
            self._write([outcome])
        return outcome

    def tick(self) -> list[Outcome]:
        now = self.state.clock.now()
        outcomes: list[Outcome] = []
        with self._lock:
            entries = [t for t in self.traffic if t.active(now)]
        for entry in entries:
            # All requests of a tick happen at the same instant, so a tick never straddles a propagation edge.
            outcomes.extend(self._decide(entry.spec, now) for _ in range(max(0, entry.spec.per_tick)))
        self._write(outcomes)
        return outcomes

    def simulate(self, ticks: int = 1, every_seconds: float | None = None) -> list[Outcome]:
        """`ticks` rounds of traffic; the clock moves `every_seconds` (default: settings.tick_seconds) between
        rounds, not after the last one."""
        step = self.state.settings.tick_seconds if every_seconds is None else every_seconds
        outcomes: list[Outcome] = []
        for n in range(ticks):
            if n:
                self.state.clock.advance(step)
            outcomes.extend(self.tick())
        return outcomes

    def _decide(self, spec: CallSpec, at: datetime | None) -> Outcome:
        """A request through a gateway is decided as the gateway's backend request (its identity, its address)."""
        if spec.gateway is None:
            return dataplane.decide(self.state, spec, at)
        gateway = self.state.require_gateway(spec.gateway)
        outcome = dataplane.decide(self.state, apim.backend_request(gateway, spec), at)
        return replace(outcome, gateway_request=spec)

    def _write(self, outcomes: list[Outcome]) -> None:
        diagnostics, dependencies, exceptions, gateway_logs = [], [], [], []
        shape = self.state.settings.log_shape
        with self._lock:
            for outcome in outcomes:
                late = _late(outcome)
                if telemetry.is_logged(outcome, shape):
                    diagnostics.append(late(telemetry.diagnostics_row(outcome, self._rng, shape)))
                if outcome.gateway_request is not None:
                    gateway = self.state.require_gateway(outcome.gateway_request.gateway or "")
                    gateway_logs.append(late(apim.gateway_row(gateway, outcome.gateway_request, outcome, self._rng)))
                if outcome.spec.app_role_name:
                    dependency, exception = telemetry.app_rows(outcome, self._rng)
                    dependencies.append(late(dependency))
                    if exception:
                        exceptions.append(late(exception))
        self.logs.add_rows("AzureDiagnostics", diagnostics)
        self.logs.add_rows("AppDependencies", dependencies)
        self.logs.add_rows("AppExceptions", exceptions)
        self.logs.add_rows(apim.TABLE, gateway_logs)


def _late(outcome: Outcome) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """The call's rows, marked to arrive `ingestion_delay_seconds` late (the client's, through a gateway)."""
    spec = outcome.gateway_request or outcome.spec
    delay = spec.ingestion_delay_seconds or outcome.spec.ingestion_delay_seconds
    return (lambda row: {**row, INGESTION_DELAY: delay}) if delay else (lambda row: row)


TRAFFIC_FIELDS = frozenset(CallSpec.__dataclass_fields__) - {"extra"}


def spec_from(fields: dict, **overrides) -> CallSpec:
    """A CallSpec from scenario/test fields; unknown names are an error, not silently ignored."""
    unknown = sorted(set(fields) - TRAFFIC_FIELDS)
    if unknown:
        raise ValueError(f"unknown traffic fields {unknown}; known: {sorted(TRAFFIC_FIELDS)}")
    spec = CallSpec(**fields)
    return replace(spec, **overrides) if overrides else spec
