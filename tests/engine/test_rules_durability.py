"""Issue 13, nothing lost and nothing orphaned, over the fakes: a delivery is done only once its effects are
durable, a grant whose instance died is reconciled, late rows are read once, a clock ahead skips nothing, an
evidence outage never leaves a permanent manual ticket, and incident and audit are written together."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.core import incidents as inc
from shared.core.events import parse_alert
from shared.core.incidents import Action
from shared.core.records import EventClaim
from shared.engine import http_api
from shared.engine.approvals import revoke
from shared.engine.deliveries import EVENT_LEASE, DeliveryInFlight
from shared.engine.events import handle_event_safely
from shared.engine.inputs import alert_key
from shared.engine.scan import run_scan
from tests.engine.common import ACCOUNT, ALICE, ORDERS, TRUSTED_TOPIC, incident_of, topic_failure_event
from tests.support.fakes import verify_due

# ---- deliveries ---------------------------------------------------------------------------------------------


def test_an_event_whose_handler_was_killed_is_handled_on_a_redelivery_after_the_lease(make_runtime, store, clock,
                                                                                     roles):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS], TRIAGE_TRUSTED_EVENT_TOPICS=TRUSTED_TOPIC)
    event = topic_failure_event("evt-killed")  # from a trusted topic: in enforce mode a grant needs a witness
    # The first handler claimed the delivery and was killed before anything durable happened.
    assert store.claim_event(event["id"], clock.now(), EVENT_LEASE) == EventClaim.CLAIMED
    # Event Grid retries while the lease runs: retried again later, never acknowledged as a duplicate.
    clock.advance(seconds=30)
    with pytest.raises(DeliveryInFlight):
        handle_event_safely(rt, event)
    assert store.list_incidents() == []
    clock.advance(minutes=10)  # Event Grid's next retry, after the lease
    assert handle_event_safely(rt, event).result == "processed"
    assert incident_of(store, ORDERS).status == inc.VERIFYING and len(roles.grants) == 1
    assert handle_event_safely(rt, event).result == "duplicate"  # done now, for good
    assert len(roles.grants) == 1


def test_a_handler_that_failed_releases_the_delivery_and_a_second_handling_has_no_second_effect(
        make_runtime, store, roles, clock):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS], TRIAGE_TRUSTED_EVENT_TOPICS=TRUSTED_TOPIC)
    event = topic_failure_event("evt-twice")
    roles.lose_next_result = True  # ARM wrote the assignment; the handler died before hearing of it
    with pytest.raises(ConnectionError):
        handle_event_safely(rt, event)
    assert store.claim_event(event["id"], clock.now(), EVENT_LEASE) == EventClaim.CLAIMED  # it was released
    store.forget_event(event["id"])
    assert handle_event_safely(rt, event).result == "processed"  # the redelivery: counted, no second grant claim
    assert incident_of(store, ORDERS).status == inc.ASSIGNED and len(roles.grants) == 1
    clock.advance(minutes=3)  # the claim is stale: the next scan finds the assignment by its name
    assert run_scan(rt).reconciled == {"adopted": 1}
    saved = incident_of(store, ORDERS)
    assert saved.status == inc.VERIFYING and saved.assignment_id  # recorded as the service's own: revocable
    assert len(roles.grants) == 1  # one ARM write in all
    assert len([a for a in store.list_audit(saved.id) if a.inputs.get("outcome") == "reconciled"]) == 1


# ---- grants claimed by an instance that died ----------------------------------------------------------------


def _claim_and_die(store, incident, clock, *, actor: str = "service"):
    now = clock.now()
    claim = replace(incident, status=inc.ASSIGNED, assignment_id=None, updated_at=now).with_action(
        Action(now, "grant-claimed", "Cognitive Services OpenAI User at the account", actor))
    return store.put_incident(claim, expected_etag=incident.etag)


def test_a_grant_made_by_an_instance_that_died_before_recording_it_is_adopted_as_its_own(make_runtime, traffic,
                                                                                        store, roles, evidence,
                                                                                        clock):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS], TRIAGE_MAX_GRANTS_PER_DAY="5")
    roles.answer_next("retry_later", message="ARM kept failing after retries: 503")
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    deferred = incident_of(store, ORDERS)
    # Another instance claims the grant, writes the assignment, and dies before recording it.
    _claim_and_die(store, deferred, clock)
    roles.lose_next_result = True
    with pytest.raises(ConnectionError):
        roles.create(scope=deferred.diagnosis.scope, principal_id=ORDERS, principal_type="ServicePrincipal",
                     role_guid=deferred.diagnosis.role_id, incident_id=deferred.id)
    calls = len(roles.grants)

    clock.advance(minutes=1)
    assert run_scan(rt).reconciled == {}  # a fresh claim is respected: its owner may still be at work
    clock.advance(minutes=2)
    report = run_scan(rt)
    assert report.reconciled == {"adopted": 1}
    adopted = incident_of(store, ORDERS)
    [assignment] = evidence.of(ORDERS)
    assert adopted.status == inc.VERIFYING and adopted.assignment_id == assignment.id
    assert len(roles.grants) == calls  # looked up, not written again
    [record] = [a for a in store.list_audit(adopted.id) if a.inputs.get("outcome") == "reconciled"]
    assert record.inputs["assignment_id"] == assignment.id
    assert store.count_grants_since(clock.now() - timedelta(hours=1)) == 1  # counted in the caps
    revoke(rt, adopted.id, ALICE)  # and it is the service's own to revoke
    assert evidence.of(ORDERS) == []


def test_a_claim_whose_instance_died_before_arm_lapses_and_the_incident_is_decided_again(make_runtime, traffic,
                                                                                         store, roles, clock):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    roles.answer_next("retry_later", message="ARM kept failing after retries: 503")
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    _claim_and_die(store, incident_of(store, ORDERS), clock)
    clock.advance(hours=2)  # the caller gave up: no failure brings it back
    report = run_scan(rt)
    assert report.reconciled == {"lapsed": 1} and report.grants == 1
    granted = incident_of(store, ORDERS)
    assert granted.status == inc.VERIFYING and granted.assignment_id
    assert [a.kind for a in granted.actions][-4:-1] == ["grant-claimed", "grant-claim-lapsed", "grant-claimed"]


def test_a_claim_is_not_reconciled_while_arm_cannot_be_read(make_runtime, traffic, store, roles, evidence, clock):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    roles.answer_next("retry_later", message="ARM kept failing after retries: 503")
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    _claim_and_die(store, incident_of(store, ORDERS), clock)
    clock.advance(hours=1)
    evidence.arm_down()
    assert run_scan(rt).reconciled == {"deferred": 1}
    assert incident_of(store, ORDERS).status == inc.ASSIGNED
    evidence.arm_up()
    assert run_scan(rt).reconciled == {"lapsed": 1}
    assert incident_of(store, ORDERS).status == inc.VERIFYING


# ---- decisions made without evidence ------------------------------------------------------------------------


def test_an_incident_first_seen_during_a_long_arm_outage_is_granted_once_evidence_is_back(make_runtime, traffic,
                                                                                           store, roles, evidence):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    evidence.arm_down()
    for _ in range(8):  # 40 minutes of an outage while the caller keeps failing: longer than the re-read overlap
        traffic(5, failing=[ORDERS])
        assert run_scan(rt).failed
    ticketed = incident_of(store, ORDERS)
    assert ticketed.status == inc.TICKETED and "evidence_complete" in ticketed.actions[-1].rules
    assert roles.grants == []
    evidence.arm_up()
    traffic(1, failing=[ORDERS])
    run_scan(rt)  # no permanent manual ticket: decided again with evidence, and granted
    assert incident_of(store, ORDERS).status == inc.VERIFYING and len(roles.grants) == 1


def test_a_caller_that_stopped_during_the_outage_is_granted_when_it_fails_again(make_runtime, traffic, store,
                                                                                 roles, evidence, clock):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    evidence.arm_down()
    traffic(2, failing=[ORDERS])
    for _ in range(4):  # the caller stops; its rows age out of the re-read window while ARM is down
        run_scan(rt)
        clock.advance(minutes=5)
    evidence.arm_up()
    clock.advance(hours=48)
    run_scan(rt)  # nothing read: the ticket waits, still open to a new decision
    assert incident_of(store, ORDERS).status == inc.TICKETED and roles.grants == []
    traffic(1, failing=[ORDERS])
    run_scan(rt)
    assert incident_of(store, ORDERS).status == inc.VERIFYING and len(roles.grants) == 1


# ---- late rows and a clock ahead ----------------------------------------------------------------------------


def test_rows_that_arrive_late_are_read_once_and_counted_once(make_runtime, source, store, clock):
    rt = make_runtime(mode="observe")
    source.fail(ORDERS, ACCOUNT, count=5, ingestion_delay=timedelta(minutes=30))
    clock.advance(minutes=1)
    run_scan(rt)
    assert store.list_incidents() == []  # nothing has arrived
    for _ in range(12):
        clock.advance(minutes=5)
        run_scan(rt)
    assert incident_of(store, ORDERS).count == 5


def test_an_instance_whose_clock_runs_ahead_moves_its_watermark_only_to_the_workspaces_clock(make_runtime, source,
                                                                                           store, clock):
    ahead = make_runtime(mode="observe")
    ahead.clock = lambda: clock.now() + timedelta(minutes=20)  # this instance's clock runs 20 minutes ahead
    failed = 0
    for _ in range(6):
        source.fail(ORDERS, ACCOUNT, count=2)
        failed += 2
        clock.advance(minutes=5)
        run_scan(ahead)
        assert store.get_watermark(source.name) == clock.now()  # the workspace's clock
    clock.advance(minutes=1)
    run_scan(ahead)
    assert incident_of(store, ORDERS).count == failed


# ---- incident and audit together ----------------------------------------------------------------------------


def test_a_verification_outcome_and_its_audit_record_are_one_write(make_runtime, traffic, store, clock):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    clock.advance(minutes=5)
    traffic(10, succeeding=[ORDERS])  # the role works
    before = store.writes["put_incident_audited"]
    assert verify_due(rt)  # the failures stopped: resolved
    assert store.writes["put_incident_audited"] == before + 1
    [record] = [a for a in store.list_audit(incident_of(store, ORDERS).id) if a.kind == "verification"]
    assert record.detail.startswith("resolved")


def test_a_revoke_that_died_after_arms_delete_is_completed_by_the_next_request(make_runtime, traffic, store,
                                                                              evidence, clock):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    granted = incident_of(store, ORDERS)
    evidence.remove(granted.assignment_id)  # ARM's delete happened; the revoking instance died before recording
    result = revoke(rt, granted.id, ALICE)
    assert result.detail.startswith("already gone")
    revoked = incident_of(store, ORDERS)
    assert revoked.status == inc.TICKETED and revoked.assignment_id is None
    [record] = [a for a in store.list_audit(granted.id) if a.kind == "revoke"]
    assert record.actor == ALICE and "already gone" in record.detail


def test_an_alert_notification_being_handled_elsewhere_is_answered_503_so_the_action_group_retries(
        make_runtime, store, clock):
    rt = make_runtime(mode="observe")
    alert = {"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {
        "alertId": "a-1", "alertTargetIDs": [ACCOUNT], "firedDateTime": clock.now().isoformat(),
        "monitorCondition": "Fired"}, "alertContext": {}}}
    parsed = parse_alert(alert, now=clock.now())
    store.claim_event(alert_key(parsed), clock.now(), EVENT_LEASE)  # another instance is at it
    status, reply = http_api.alerts_request(rt, json.dumps(alert).encode())
    assert status == 503 and "retry later" in reply["error"]
    clock.advance(minutes=10)  # its lease ran out: the retry is handled
    assert http_api.alerts_request(rt, json.dumps(alert).encode())[1]["result"] == "processed"
