"""Issue 13, kill at every step: the service runs as a child process (tests/support/kill_driver.py) on a SQLite
store file, the ARM and Log Analytics stand-in and the GitHub tracker stand-in, and kills itself with SIGKILL at a
named step of event handling, grant, ticket and verification (TRIAGE_TEST_KILL_AT, shared/engine/checkpoints.py).
After the next run: no lost failure, no orphaned grant, no duplicate ticket and no audit gap."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from shared.core import incidents as inc
from shared.engine import approvals
from shared.engine.checkpoints import KILL_AT
from tests.engine.common import TRUSTED_TOPIC
from tests.support.engine import World, service_world
from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.slow  # child processes against the local Azure stand-in

ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"
ALICE = "alice@contoso.example"
KILLED = -signal.SIGKILL


def child(world: World, tmp_path: Path, action: str, *, kill_at: str | None = None,
          event: dict | None = None) -> subprocess.CompletedProcess:
    """One engine step in a child process, at the stand-in's current time."""
    settings = tmp_path / "settings.json"
    settings.write_text(json.dumps(world.env), encoding="utf-8")
    args = [sys.executable, "-m", "tests.support.kill_driver", str(settings), world.clock.now().isoformat(), action]
    if event is not None:
        event_file = tmp_path / "event.json"
        event_file.write_text(json.dumps(event), encoding="utf-8")
        args.append(str(event_file))
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    if kill_at:
        env[KILL_AT] = kill_at
    return subprocess.run(args, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=180, check=False)


def killed(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == KILLED, f"the step was never reached: {result.returncode} {result.stderr[-2000:]}"


def completed(result: subprocess.CompletedProcess) -> dict:
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def no_orphaned_grant(world: World) -> inc.Incident:
    """Exactly one assignment exists, it is the incident's own (revocable), and the audit trail names it."""
    incident = world.incident_of(ORDERS)
    [assignment] = world.role_assignments_of(ORDERS)
    assert incident.assignment_id and incident.assignment_id.lower() == assignment.id.lower()
    audited = [a for a in world.rt.store.list_audit(incident.id)
               if str(a.inputs.get("assignment_id") or "").lower() == assignment.id.lower()]
    assert audited, "no audit record of the grant"
    return incident


def one_ticket(world: World, incident: inc.Incident, *, is_open: bool = True) -> None:
    """One ticket, recorded on the incident, nothing pending, and its opening audited once."""
    [ticket] = world.github_issues()
    assert ticket.is_open is is_open
    assert incident.ticket_refs and not incident.ticket_pending
    opened = [a for a in world.rt.store.list_audit(incident.id) if a.detail.startswith("ticket opened")]
    assert len(opened) == 1


@pytest.mark.parametrize("step", ["grant-claimed", "grant-written"])
def test_a_scan_killed_during_its_grant_leaves_nothing_orphaned(tmp_path, step):
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}]) as world:
        world.failing_caller(ORDERS)
        failed = world.run_traffic(3)
        killed(child(world, tmp_path, "scan", kill_at=step))
        world.advance(180)  # the claim is stale
        report = completed(child(world, tmp_path, "scan"))
        # Died before ARM's write: the claim lapses and the grant is made; after it: the assignment is adopted.
        assert report["reconciled"] == {"lapsed" if step == "grant-claimed" else "adopted": 1}
        incident = no_orphaned_grant(world)
        assert incident.status == inc.VERIFYING and incident.count >= failed  # no failure lost


@pytest.mark.parametrize("step", ["ticket-claimed", "ticket-sent"])
def test_a_scan_killed_during_its_ticket_opens_it_once(tmp_path, step):
    with service_world(tmp_path, mode="recommend", allowlist=[{"object_id": ORDERS}], sinks="github") as world:
        world.failing_caller(ORDERS)
        failed = world.run_traffic(3)
        killed(child(world, tmp_path, "scan", kill_at=step))
        world.advance(180)  # the ticket claim is stale
        completed(child(world, tmp_path, "scan"))
        incident = world.incident_of(ORDERS)
        assert incident.status == inc.RECOMMENDED and incident.count >= failed
        one_ticket(world, incident)
        assert world.github_issue_creates() == 1  # found again by its marker, never created twice


@pytest.mark.parametrize("step", ["event-claimed", "event-handled", "grant-claimed", "grant-written"])
def test_an_event_whose_handler_was_killed_is_handled_on_redelivery(tmp_path, step):
    # From a topic the operator trusts: in enforce mode a grant needs a witness the failing app cannot write.
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}],
                       TRIAGE_TRUSTED_EVENT_TOPICS=TRUSTED_TOPIC) as world:
        account = world.failing_caller(ORDERS)
        event = failure_event("evt-killed", account)
        killed(child(world, tmp_path, "event", kill_at=step, event=event))
        # Event Grid retries while the lease runs: the delivery is retried later, not dropped as a duplicate.
        assert child(world, tmp_path, "event", event=event).returncode == 1
        world.advance(360)  # Event Grid's later retry, after the lease (and the claim is stale)
        outcome = completed(child(world, tmp_path, "event", event=event))
        assert outcome["result"] == "processed"
        assert completed(child(world, tmp_path, "event", event=event))["result"] == "duplicate"
        completed(child(world, tmp_path, "scan"))  # the next timer scan reconciles a grant claim left behind
        incident = no_orphaned_grant(world)
        assert incident.count >= 3  # the failure is not lost (a crash after it was counted may count it twice)


def test_a_verification_killed_after_recording_its_outcome_closes_the_ticket_on_the_next_scan(tmp_path):
    with service_world(tmp_path, mode="recommend", allowlist=[{"object_id": ORDERS}], sinks="github") as world:
        world.failing_caller(ORDERS)
        world.run_traffic(3)
        world.scan()
        approvals.approve(world.rt, world.incident_of(ORDERS).id, ALICE)
        world.advance(700)  # the role propagates; the caller succeeds from now on
        world.run_traffic(3)
        killed(child(world, tmp_path, "verify", kill_at="verification-recorded"))
        resolved = world.incident_of(ORDERS)
        assert resolved.status == inc.RESOLVED and resolved.ticket_pending  # the close is claimed, not done
        [record] = [a for a in world.rt.store.list_audit(resolved.id) if a.kind == "verification"]
        assert record.detail.startswith("resolved")  # written with the outcome: no gap
        world.advance(180)
        completed(child(world, tmp_path, "scan"))  # retries the pending close
        incident = world.incident_of(ORDERS)
        assert incident.status == inc.RESOLVED
        one_ticket(world, incident, is_open=False)
        no_orphaned_grant(world)


def failure_event(event_id: str, account: str) -> dict:
    """The custom failure event in the Event Grid schema, with the `topic` Event Grid sets."""
    return {"id": event_id, "topic": TRUSTED_TOPIC, "subject": "/apps/orders", "eventType": "AOAI.Triage.Failure",
            "eventTime": "2026-11-22T10:00:31Z", "dataVersion": "1", "metadataVersion": "1",
            "data": {"status": 401, "code": "PermissionDenied", "auth": "entra", "object_id": ORDERS,
                     "resource_id": account, "count": 3,
                     "message": f"The principal `{ORDERS}` lacks the required data action "
                                "`Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action` "
                                "to perform `POST /openai/deployments/{deployment-id}/chat/completions` operation.",
                     "endpoint": "https://aoai.openai.azure.com/openai/deployments/gpt-4o/chat/completions"}}
