"""Event Grid deliveries: failure events are diagnosed and counted once, role-assignment writes and deletes move
the matching incident, and malformed events are recorded and acknowledged."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.core import incidents as inc
from shared.engine.events import handle_event_safely
from tests.engine.common import (
    ACCOUNT,
    OPENAI_USER,
    ORDERS,
    STRANGER,
    TRUSTED_TOPIC,
    failure_event,
    incident_of,
    role_assignment_event,
    topic_failure_event,
)


def rejections(store) -> list:
    return [a for a in store.list_audit() if a.kind == "event-rejected"]


def test_a_failure_event_is_diagnosed_and_a_redelivery_counted_once(make_runtime, store, roles):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    event = failure_event("evt-1", count=4)
    assert handle_event_safely(rt, event).result == "processed"
    incident = incident_of(store, ORDERS)
    assert (incident.cause, incident.status, incident.count) == ("missing_data_role", inc.RECOMMENDED, 4)

    assert handle_event_safely(rt, event).result == "duplicate"  # Event Grid delivers at least once
    assert incident_of(store, ORDERS).count == 4
    handle_event_safely(rt, failure_event("evt-2", count=2))  # a new event does count
    assert incident_of(store, ORDERS).count == 6
    assert roles.grants == []


def test_a_redelivered_failure_event_grants_once_in_enforce_mode(make_runtime, store, evidence, roles):
    # From a trusted topic: an event the failing app could have written itself grants nothing (test_rules_witness).
    rt = make_runtime(mode="enforce", allowlist=[ORDERS], TRIAGE_TRUSTED_EVENT_TOPICS=TRUSTED_TOPIC)
    event = topic_failure_event("evt-grant")
    handle_event_safely(rt, event)
    handle_event_safely(rt, event)
    assert len(roles.grants) == 1
    [assignment] = evidence.of(ORDERS)
    assert incident_of(store, ORDERS).assignment_id == assignment.id


def test_a_role_assigned_by_hand_moves_the_recommended_incident_to_verifying(make_runtime, store, evidence, clock):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    handle_event_safely(rt, failure_event("evt-3"))
    incident = incident_of(store, ORDERS)
    assert incident.status == inc.RECOMMENDED

    assignment_id = evidence.assign(ORDERS, OPENAI_USER, ACCOUNT, age=timedelta(0))
    event = role_assignment_event(assignment_id, event_id="write-1")
    assert handle_event_safely(rt, event).result == "processed"

    moved = store.get_incident(incident.id)
    assert moved.status == inc.VERIFYING
    assert moved.verify_due is not None and moved.verify_due > clock.now()  # after propagation
    trail = store.list_audit(incident.id)
    assert any(a.actor == "Alex Oncall" and a.inputs.get("assignment_id") == assignment_id for a in trail)

    assert handle_event_safely(rt, event).result == "duplicate"  # the redelivery changes nothing
    assert len(store.list_audit(incident.id)) == len(trail)
    assert store.get_incident(incident.id).actions == moved.actions


@pytest.mark.parametrize(("principal", "role", "scope"), [
    (ORDERS, "Reader", ACCOUNT),  # grants no data actions
    (STRANGER, OPENAI_USER, ACCOUNT),  # someone else
    (ORDERS, OPENAI_USER, ACCOUNT + "-west"),  # an account whose name the incident's extends
], ids=["reader", "other-principal", "prefix-account"])
def test_a_role_assignment_that_does_not_cover_the_incident_leaves_it_open(make_runtime, store, evidence,
                                                                           principal, role, scope):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    handle_event_safely(rt, failure_event("evt-4"))
    incident = incident_of(store, ORDERS)
    assignment_id = evidence.assign(principal, role, scope, age=timedelta(0))
    handle_event_safely(rt, role_assignment_event(assignment_id, event_id="write-other"))
    assert store.get_incident(incident.id).status == inc.RECOMMENDED
    if role == "Reader":
        assert any("does not grant the data access" in a.detail for a in store.list_audit(incident.id))


def test_an_assignment_at_the_resource_group_covers_the_incident(make_runtime, store, evidence):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    handle_event_safely(rt, failure_event("evt-5"))
    incident = incident_of(store, ORDERS)
    group_scope = ACCOUNT.split("/providers/")[0]
    assignment_id = evidence.assign(ORDERS, "Cognitive Services User", group_scope, age=timedelta(0))
    handle_event_safely(rt, role_assignment_event(assignment_id, event_id="write-rg"))
    assert store.get_incident(incident.id).status == inc.VERIFYING


def test_deleting_the_services_own_assignment_reopens_the_incident_as_ticketed(make_runtime, store, evidence, roles,
                                                                              sink):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS], TRIAGE_TRUSTED_EVENT_TOPICS=TRUSTED_TOPIC)
    handle_event_safely(rt, topic_failure_event("evt-6"))
    incident = incident_of(store, ORDERS)
    assert incident.assignment_id and sink.tickets == {}

    evidence.remove(incident.assignment_id)  # someone deletes it
    outcome = handle_event_safely(rt, role_assignment_event(incident.assignment_id, event_id="delete-own",
                                                            deleted=True, actor="Sam Cleanup"))
    assert outcome.result == "processed"
    reopened = store.get_incident(incident.id)
    assert reopened.status == inc.TICKETED and reopened.assignment_id is None and reopened.verify_due is None
    ticket = sink.ticket_of(incident.id)
    assert ticket.is_open and "Sam Cleanup" in ticket.content.action
    assert reopened.ticket_refs and not reopened.ticket_pending
    assert len(roles.grants) == 1


def test_deleting_an_assignment_the_service_did_not_create_does_nothing(make_runtime, store, evidence, roles, sink):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    handle_event_safely(rt, failure_event("evt-7"))
    incident = incident_of(store, ORDERS)
    calls = len(sink.calls)
    foreign = evidence.assign(ORDERS, "Contributor", ACCOUNT)
    handle_event_safely(rt, role_assignment_event(foreign, event_id="delete-foreign", deleted=True))
    assert store.get_incident(incident.id) == incident
    assert len(sink.calls) == calls and roles.deletes == []


@pytest.mark.parametrize(("event", "reason"), [
    (failure_event("bad-1", status=None), "status"),
    (failure_event("bad-2", resource_id=None), "resource_id"),
    (failure_event("bad-3", count=0), "count"),
    (failure_event("bad-4", time="yesterday"), "time"),
    ({**failure_event("bad-5"), "data": "status=401"}, "JSON object"),
    (role_assignment_event(ACCOUNT, event_id="bad-6"), "roleAssignments"),
], ids=["no-status", "no-resource", "zero-count", "bad-time", "data-not-object", "ra-without-id"])
def test_a_malformed_event_is_rejected_with_its_reason_and_acknowledged(make_runtime, store, event, reason):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    outcome = handle_event_safely(rt, event)  # returns: Event Grid must not redeliver a poison event for a day
    assert outcome.result == "rejected" and reason in outcome.detail
    [record] = rejections(store)
    assert reason in record.detail and record.inputs["event_id"] == event["id"]
    assert store.list_incidents() == []


def test_an_event_without_an_id_is_rejected_and_never_marked_processed(make_runtime, store):
    rt = make_runtime(mode="recommend")
    outcome = handle_event_safely(rt, {**failure_event("x"), "id": ""})
    assert outcome.result == "rejected" and "no id" in outcome.detail
    assert store.writes["mark_event_processed"] == 0


def test_an_unknown_event_type_is_acknowledged_and_ignored(make_runtime, store):
    rt = make_runtime(mode="recommend")
    event = {"specversion": "1.0", "id": "u-1", "source": "/apps/x", "type": "Contoso.Something", "data": {"a": 1}}
    assert handle_event_safely(rt, event).result == "unknown"
    assert rejections(store) == [] and store.list_incidents() == []


def test_a_transient_failure_raises_and_releases_the_event_id_for_the_redelivery(make_runtime, store, source,
                                                                                 clock):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    source.fail(ORDERS, ACCOUNT, count=3, at=clock.now() - timedelta(minutes=2))
    alert = {"schemaId": "azureMonitorCommonAlertSchema", "data": {"essentials": {
        "alertId": "alert-1", "alertRule": "aoai-401-403", "monitorCondition": "Fired",
        "firedDateTime": clock.now().isoformat(), "alertTargetIDs": [ACCOUNT.lower()]}}}
    event = {"id": "alert-evt", "eventType": "Contoso.Monitoring.AlertFired", "subject": "aoai-401-403",
             "eventTime": clock.now().isoformat(), "data": alert}
    source.fail_reads(ConnectionError("Log Analytics unreachable"))
    with pytest.raises(ConnectionError):
        handle_event_safely(rt, event)
    assert store.list_incidents() == [] and rejections(store) == []

    assert handle_event_safely(rt, event).result == "processed"  # the retry is processed, not a duplicate
    assert len(store.list_incidents()) == 1
    assert source.reads[-1].resource_ids == (ACCOUNT.lower(),)


def test_a_burst_of_events_shares_evidence_until_a_role_changes(make_runtime, store, evidence, clock):
    rt = make_runtime(mode="observe", allowlist=[ORDERS])
    handle_event_safely(rt, failure_event("burst-1"))
    assert evidence.new_runs == 1
    clock.advance(seconds=30)
    handle_event_safely(rt, failure_event("burst-2"))
    assert evidence.new_runs == 1  # evidence reused

    # Someone writes a role: the next event must look again.
    assignment_id = evidence.assign(ORDERS, "Reader", ACCOUNT, age=timedelta(0))
    handle_event_safely(rt, role_assignment_event(assignment_id, event_id="write-invalidates"))
    handle_event_safely(rt, failure_event("burst-3"))
    assert evidence.new_runs == 2

    clock.advance(seconds=61)  # and evidence older than a minute is never reused
    handle_event_safely(rt, failure_event("burst-4"))
    assert evidence.new_runs == 3
    assert incident_of(store, ORDERS).count == 4
