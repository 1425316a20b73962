"""eventgrid_burst_s and eventgrid_burst_duplicate_effects: a burst of custom failure events at the Function App.

1,000 `AOAI.Triage.Failure` events (docs/events.md) go to the `events` function of function_app, called directly
as the Functions host would, one after another, on the SQLite store: 700 distinct failures from 20 apps on 5
accounts (missing roles, expired tokens, bad keys...), and 300 redeliveries of ids already delivered, in random
places after their first delivery. The service runs in enforce mode with the apps' topic trusted: five apps are
allowlisted (their missing roles are granted), the others' incidents are ticketed through the default log sink.

Duplicate effects are measured against a second world that receives the same 700 distinct events in the same
order and no redelivery: incident count increments, role assignment writes (ARM PUT) and ticket operations (log
sink records) beyond that world's are effects caused by redeliveries.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from bench.logrows import RESOURCE_GROUP, account_name, object_id
from bench.results import Metric, median, rounded
from bench.sizes import Sizes
from bench.world import BenchWorld, BenchWorldError, bench_world
from localazure.dataplane import KEY_INVALID, TOKEN_INVALID
from shared.tickets.log_sink import LOGGER

APPS = 20
ACCOUNTS = 5
ALLOWLISTED = 5  # the first five apps may be granted their role
EVENT_TYPE = "AOAI.Triage.Failure"
# The apps' Event Grid topic, listed as trusted: its events confirm a failure (docs/policy.md, `corroborated`).
TOPIC = ("/subscriptions/0e7e0e7e-0000-4000-8000-000000000001/resourceGroups/rg-apps/providers/"
         "Microsoft.EventGrid/topics/triage-failures")


def _failure(app: int, account_id: str, n: int) -> dict[str, Any]:
    oid = object_id(app)
    route = "/openai/deployments/gpt-4o/chat/completions"
    if app % 4 == 3:  # a stale key
        return {"status": 401, "code": "401", "message": KEY_INVALID, "auth": "key", "resource_id": account_id,
                "endpoint": f"https://{account_id.rsplit('/', 1)[-1]}.openai.azure.com{route}"}
    if app % 4 == 2:
        return {"status": 401, "code": "401", "message": TOKEN_INVALID, "auth": "entra", "object_id": oid,
                "resource_id": account_id}
    message = (f"The principal `{oid}` lacks the required data action `Microsoft.CognitiveServices/accounts/OpenAI/"
               f"deployments/chat/completions/action` to perform `POST /openai/deployments/{{deployment-id}}/chat/"
               f"completions` operation.")
    return {"status": 401, "code": "PermissionDenied", "message": message, "auth": "entra", "object_id": oid,
            "resource_id": account_id, "endpoint": f"https://x{n % 3}.openai.azure.com{route}"}


@dataclass(frozen=True)
class Delivery:
    id: str
    data: dict[str, Any]
    time: datetime


def deliveries(world: BenchWorld, total: int, redelivered: float, seed: int = 3) -> tuple[list[Delivery], int]:
    """The burst in delivery order, and how many distinct events it holds."""
    rng = random.Random(seed)
    unique = total - round(total * redelivered)
    now = world.clock.now()
    accounts = [world.az.account_id(account_name(r)) for r in range(ACCOUNTS)]
    firsts = []
    for n in range(unique):
        app = n % APPS
        at = now - timedelta(seconds=unique - n)
        data = {**_failure(app, accounts[(n // APPS) % ACCOUNTS], n), "time": at.isoformat()}
        firsts.append((float(n), Delivery(f"evt-{n:05d}-{rng.getrandbits(32):08x}", data, at)))
    again = []
    for _ in range(total - unique):
        original = rng.randrange(unique)
        again.append((rng.uniform(original + 0.5, unique), firsts[original][1]))
    return [d for _, d in sorted(firsts + again, key=lambda pair: pair[0])], unique


def _event(delivery: Delivery, topic: str):
    import azure.functions as func

    return func.EventGridEvent(id=delivery.id, data=delivery.data, topic=topic, subject="/apps/gateway",
                               event_type=EVENT_TYPE, event_time=delivery.time, data_version="1.0")


def _prepare(world: BenchWorld) -> None:
    for r in range(ACCOUNTS):
        world.az.add_account(account_name(r), resource_group=RESOURCE_GROUP)
    for app in range(APPS):
        world.az.add_principal(object_id(app), display_name=f"app-{app}")


class TicketLog(logging.Handler):
    """Counts the log sink's ticket operations (one record each)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.records = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.records += 1

    @contextmanager
    def attached(self) -> Iterator[TicketLog]:
        logger = logging.getLogger(LOGGER)
        level, propagate = logger.level, logger.propagate
        logger.setLevel(logging.WARNING)
        logger.propagate = False
        logger.addHandler(self)
        try:
            yield self
        finally:
            logger.removeHandler(self)
            logger.setLevel(level)
            logger.propagate = propagate


@dataclass(frozen=True)
class Effects:
    counts: dict[str, int]  # incident id -> failures counted
    grants: int  # ARM role assignment writes
    tickets: int  # ticket operations (log sink records)

    def beyond(self, reference: Effects) -> tuple[int, int]:
        """(effects this world has beyond the reference, effects it lacks)."""
        extra = missing = 0
        for iid in self.counts.keys() | reference.counts.keys():
            diff = self.counts.get(iid, 0) - reference.counts.get(iid, 0)
            extra, missing = extra + max(diff, 0), missing + max(-diff, 0)
        for mine, theirs in ((self.grants, reference.grants), (self.tickets, reference.tickets)):
            extra, missing = extra + max(mine - theirs, 0), missing + max(theirs - mine, 0)
        return extra, missing


def _deliver(world: BenchWorld, burst: list[Delivery]) -> tuple[float, Effects]:
    import function_app
    from shared.bootstrap import set_runtime

    handler = function_app.events.build().get_user_function()
    events = [_event(d, TOPIC) for d in burst]
    set_runtime(world.rt)
    try:
        with TicketLog().attached() as tickets:
            started = time.perf_counter()
            for event in events:
                handler(event)
            elapsed = time.perf_counter() - started
    finally:
        set_runtime(None)
    effects = Effects(counts={i.id: i.count for i in world.rt.store.list_incidents()},
                      grants=world.az.calls.count(service="arm", method="PUT"), tickets=tickets.records)
    return elapsed, effects


def _world(workdir: Path):
    allowlist = json.dumps([{"object_id": object_id(app)} for app in range(ALLOWLISTED)])
    return bench_world(workdir, mode="enforce", TRIAGE_ALLOWLIST=allowlist, TRIAGE_TRUSTED_EVENT_TOPICS=TOPIC)


def one_burst(sizes: Sizes, workdir: Path) -> tuple[float, int, int, int]:
    """(wall seconds for the burst, duplicate effects, distinct events, incidents)."""
    (workdir / "burst").mkdir()
    (workdir / "reference").mkdir()
    with _world(workdir / "burst") as world:
        _prepare(world)
        burst, unique = deliveries(world, sizes.burst_events, sizes.burst_redelivered)
        elapsed, effects = _deliver(world, burst)
    with _world(workdir / "reference") as world:
        _prepare(world)
        firsts = list({d.id: d for d in deliveries(world, sizes.burst_events, sizes.burst_redelivered)[0]}.values())
        _, reference = _deliver(world, firsts)
    extra, missing = effects.beyond(reference)
    if missing:
        raise BenchWorldError(f"the burst lacks {missing} effect(s) the reference world has: events were lost")
    if sum(reference.counts.values()) != unique:
        raise BenchWorldError(f"the reference world counted {sum(reference.counts.values())} failures of {unique}")
    return elapsed, extra, unique, len(effects.counts)


def run(sizes: Sizes, workdir: Path) -> list[Metric]:
    walls, duplicates = [], []
    unique = incidents = 0
    for n in range(sizes.repeats):
        run_dir = workdir / f"run-{n}"
        run_dir.mkdir()
        wall, extra, unique, incidents = one_burst(sizes, run_dir)
        walls.append(wall)
        duplicates.append(extra)
    where = (f"{sizes.burst_events:,} events ({unique:,} distinct, {sizes.burst_events - unique:,} redeliveries) "
             f"-> {incidents} incidents")
    return [
        Metric("eventgrid_burst_s", rounded(median(walls)), "s", "<= 2",
               note=f"{where}, SQLite store, enforce mode, log sink; median of {len(walls)}"),
        Metric("eventgrid_burst_duplicate_effects", max(duplicates), "effects", "== 0",
               note=f"{where}: incident count increments, grants and ticket operations beyond a world without the "
                    f"redeliveries; the most in any run"),
    ]
