"""Witnesses (issue 13, item 5): in enforce mode a grant needs something the failing app cannot write. A custom
event from an untrusted topic, or client-side telemetry alone, opens a ticket and an approvable recommendation and
never writes to ARM; the same failure confirmed by a server-side row, or from a trusted topic, is granted.
Role-assignment events are hints: a forged delete cannot make the service forget its own live assignment."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.core import incidents as inc
from shared.engine.approvals import approve, revoke
from shared.engine.events import handle_event_safely
from shared.engine.scan import run_scan
from tests.engine.common import (
    ACCOUNT,
    ALICE,
    ORDERS,
    STRANGER,
    TRUSTED_TOPIC,
    failure_event,
    incident_of,
    role_assignment_event,
    topic_failure_event,
)
from tests.support.fakes import OPENAI_ROUTE, FakeSource

OTHER_TOPIC = TRUSTED_TOPIC.replace("triage-failures", "anyone-can-publish")


@pytest.fixture
def enforce(make_runtime):
    def build(**env: str):
        return make_runtime(mode="enforce", allowlist=[ORDERS], TRIAGE_TRUSTED_EVENT_TOPICS=TRUSTED_TOPIC, **env)
    return build


@pytest.mark.parametrize("event", [
    failure_event("cloud-1"),  # a CloudEvent: its source is whatever the publisher wrote
    topic_failure_event("eg-1", topic=OTHER_TOPIC),  # an Event Grid topic nobody listed
    {**failure_event("cloud-2"), "topic": TRUSTED_TOPIC},  # a CloudEvent naming the trusted topic in its body
], ids=["cloudevent", "untrusted-topic", "cloudevent-claiming-the-topic"])
def test_an_event_nothing_confirms_opens_an_approvable_recommendation_and_writes_nothing(enforce, store, roles,
                                                                                         sink, event):
    rt = enforce()
    assert handle_event_safely(rt, event).result == "processed"
    incident = incident_of(store, ORDERS)
    assert incident.status == inc.RECOMMENDED and roles.grants == []
    assert incident.actions[-1].rules == ("corroborated",)
    ticket = sink.ticket_of(incident.id)
    assert "log row" in ticket.content.action and "approve" in ticket.content.action
    assert incident.approval_terms.fingerprint in ticket.content.approve_hint

    for n in range(3):  # more claims of the same failure change nothing
        handle_event_safely(rt, failure_event(f"cloud-again-{n}"))
    assert roles.grants == []

    approve(rt, incident.id, ALICE)  # an engineer may approve it
    assert len(roles.grants) == 1


def test_an_event_from_a_trusted_topic_is_granted(enforce, store, roles):
    rt = enforce()
    handle_event_safely(rt, topic_failure_event("eg-trusted"))
    assert len(roles.grants) == 1 and incident_of(store, ORDERS).status == inc.VERIFYING
    [record] = [a for a in store.list_audit() if a.kind == "action"]
    assert record.inputs["outcome"] == "created"


def test_an_untrusted_event_is_granted_when_the_server_logged_the_same_caller_failing(enforce, store, roles, source,
                                                                                      clock):
    rt = enforce()
    source.fail(ORDERS, ACCOUNT, count=2, at=clock.now() - timedelta(minutes=2))  # AzureDiagnostics has the row
    handle_event_safely(rt, failure_event("cloud-witnessed"))
    assert len(roles.grants) == 1
    assert source.activity_calls and source.activity_calls[0][0] == ORDERS


def test_a_server_row_read_after_the_event_confirms_it_and_the_grant_is_made(enforce, store, roles, source,
                                                                              traffic):
    rt = enforce()
    handle_event_safely(rt, failure_event("cloud-early"))  # the row is not ingested yet
    assert incident_of(store, ORDERS).status == inc.RECOMMENDED and roles.grants == []

    traffic(2, failing=[ORDERS])  # now the service's own logs have it
    report = run_scan(rt)
    assert report.actions.get("assign") == 1 and len(roles.grants) == 1
    assert incident_of(store, ORDERS).status == inc.VERIFYING


def test_client_side_telemetry_alone_never_writes_and_the_server_row_makes_the_grant(make_runtime, clock, store,
                                                                                     source, roles):
    client = FakeSource(clock, name="appinsights:fake-workspace")
    rt = make_runtime(mode="enforce", allowlist=[ORDERS], sources=[source, client])
    client.fail(ORDERS, ACCOUNT, count=2, endpoint="https://aoai.openai.azure.com", route=OPENAI_ROUTE,
                operation=f"POST {OPENAI_ROUTE}")
    clock.advance(minutes=1)
    for _ in range(3):
        run_scan(rt)
        clock.advance(minutes=1)
    assert roles.grants == [] and incident_of(store, ORDERS).status == inc.RECOMMENDED

    source.fail(ORDERS, ACCOUNT, count=2)  # the account's own diagnostic log records the same caller failing
    clock.advance(minutes=1)
    run_scan(rt)
    assert len(roles.grants) == 1


def test_a_forged_delete_event_does_not_make_the_service_forget_its_live_assignment(enforce, store, evidence, roles,
                                                                                    sink):
    rt = enforce()
    handle_event_safely(rt, topic_failure_event("eg-grant"))
    granted = incident_of(store, ORDERS)
    assert granted.assignment_id

    outcome = handle_event_safely(rt, role_assignment_event(granted.assignment_id, event_id="forged-delete",
                                                            deleted=True, actor="Mallory"))
    assert outcome.result == "processed" and "still exists" in outcome.detail
    kept = store.get_incident(granted.id)
    assert kept.assignment_id == granted.assignment_id and kept.status == granted.status
    assert [a.kind for a in store.list_audit(granted.id)][-1] == "event-ignored"
    assert sink.tickets == {}
    revoke(rt, granted.id, ALICE)  # still revocable
    assert evidence.of(ORDERS) == []


def test_a_principal_type_the_failure_claims_never_reaches_arm_and_a_mismatch_refuses(enforce, store, roles):
    rt = enforce()
    handle_event_safely(rt, topic_failure_event("eg-user", principal_type="User"))
    incident = incident_of(store, ORDERS)
    assert roles.grants == [] and incident.status == inc.TICKETED
    assert "principal_type_match" in incident.actions[-1].rules

    handle_event_safely(rt, topic_failure_event("eg-other", STRANGER, principal_type="ServicePrincipal"))
    assert roles.grants == []  # not on the allowlist: a claimed type does not help


def test_a_grant_sends_the_allowlists_principal_type(make_runtime, store, roles):
    rt = make_runtime(mode="enforce", allowlist=[{"object_id": ORDERS, "principal_type": "User"}],
                      TRIAGE_ALLOW_USER_GRANTS="true", TRIAGE_TRUSTED_EVENT_TOPICS=TRUSTED_TOPIC)
    handle_event_safely(rt, topic_failure_event("eg-typed"))
    [grant] = roles.grants
    assert grant.principal_type == "User"
