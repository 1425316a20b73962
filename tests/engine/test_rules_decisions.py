"""First decisions on new failures: assign, recommend, ticket, observe, suppress; what each writes and calls."""

from __future__ import annotations

from datetime import timedelta

import pytest

from shared.core import incidents as inc
from shared.engine.approvals import suppress
from shared.engine.scan import run_scan
from tests.engine.common import (
    ACCOUNT,
    ALICE,
    NETWORK_DENIED,
    OPENAI_USER,
    ORDERS,
    STRANGER,
    audit_kinds,
    incident_of,
    refusals,
)


def test_a_first_failure_of_an_allowlisted_service_principal_is_granted_once_and_verification_scheduled(
        make_runtime, traffic, store, evidence, roles, sink, publisher, clock):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    failed = traffic(3, failing=[ORDERS])

    report = run_scan(rt)

    assert report.actions == {"assign": 1} and report.grants == 1
    [grant] = roles.grants
    assert (grant.principal_id, grant.role_guid, grant.principal_type) == (ORDERS, OPENAI_USER, "ServicePrincipal")
    assert grant.scope.lower() == ACCOUNT.lower()
    incident = incident_of(store, ORDERS)
    assert incident.status == inc.VERIFYING and incident.count == failed
    assert incident.cause == "missing_data_role"
    [assignment] = evidence.of(ORDERS)
    assert incident.assignment_id == assignment.id
    # Checked once the role has propagated (2 min) and its logs have arrived (1 min).
    assert incident.verify_due == clock.now() + timedelta(minutes=3)
    assert audit_kinds(store, incident.id, correlation_id=report.correlation_id) == ["decision", "action"]
    assert store.count_grants_since(clock.now() - timedelta(hours=1)) == 1
    assert publisher.types() == ["aoai.triage.assignment.created"]
    assert sink.calls == []  # a grant that works needs no ticket


def test_recommend_mode_tickets_the_fix_with_how_to_approve_and_grants_nothing(make_runtime, traffic, store, roles,
                                                                               sink):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    traffic(3, failing=[ORDERS])

    report = run_scan(rt)

    assert report.actions == {"recommend": 1}
    incident = incident_of(store, ORDERS)
    assert incident.status == inc.RECOMMENDED and incident.approval_handle == incident.id
    assert roles.grants == []
    ticket = sink.ticket_of(incident.id)
    assert ticket.is_open and f"approve {incident.id}" in ticket.content.approve_hint
    assert f"--assignee-object-id {ORDERS}" in ticket.content.fix_command
    assert OPENAI_USER in ticket.content.fix_command
    assert incident.ticket_refs == {sink.name: f"https://tracker.example/{sink.name}/{ticket.ref}"}
    assert refusals(store, incident.id) == [["mode"]]


def test_a_cause_no_role_fixes_is_ticketed_and_never_granted(make_runtime, source, clock, store, roles, sink):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    source.fail(ORDERS, ACCOUNT, count=3, status=403, code="403", message=NETWORK_DENIED)
    clock.advance(minutes=1)

    assert run_scan(rt).actions == {"ticket": 1}

    incident = incident_of(store, ORDERS)
    assert incident.status == inc.TICKETED and incident.cause == "network_denied"
    assert "role_fixable" in refusals(store, incident.id)[0]
    assert roles.grants == []
    assert sink.ticket_of(incident.id).content.fix_command is None


def test_a_principal_not_on_the_allowlist_is_ticketed_naming_the_rule(make_runtime, traffic, store, roles, sink):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    traffic(3, failing=[STRANGER])

    assert run_scan(rt).actions == {"ticket": 1}

    incident = incident_of(store, STRANGER)
    assert incident.status == inc.TICKETED
    [rules] = refusals(store, incident.id)
    assert "allowlist" in rules
    assert roles.grants == [] and len(sink.tickets) == 1


def test_observe_mode_diagnoses_only(make_runtime, traffic, store, roles, sink):
    rt = make_runtime(mode="observe", allowlist=[ORDERS])
    for _ in range(2):
        traffic(5, failing=[ORDERS])
        assert run_scan(rt).actions == {"observe": 1}

    incident = incident_of(store, ORDERS)
    assert incident.status == inc.DIAGNOSED and incident.count == 20
    assert roles.grants == [] and sink.calls == []
    [decision] = store.list_audit(incident.id)
    assert decision.inputs["mode"] == "observe" and decision.inputs["refusals"] == ["mode"]


@pytest.mark.parametrize("allow_users", [False, True])
def test_a_user_is_granted_only_with_the_user_setting(make_runtime, traffic, store, roles, allow_users):
    rt = make_runtime(mode="enforce", allowlist=[{"object_id": ORDERS, "principal_type": "User"}],
                      TRIAGE_ALLOW_USER_GRANTS=str(allow_users).lower())
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    incident = incident_of(store, ORDERS)
    if allow_users:
        assert incident.status == inc.VERIFYING
        [grant] = roles.grants
        assert grant.principal_type == "User"
    else:
        assert incident.status == inc.TICKETED
        assert refusals(store, incident.id) == [["principal_type"]]
        assert roles.grants == []


def test_a_suppressed_principal_gets_no_ticket_and_no_grant_until_the_suppression_ends(make_runtime, traffic, store,
                                                                                        roles, sink):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    suppress(rt, ORDERS.upper(), timedelta(minutes=30), "load test", ALICE)
    traffic(3, failing=[ORDERS])
    assert run_scan(rt).actions == {"suppressed": 1}
    traffic(5, failing=[ORDERS])
    run_scan(rt)
    assert incident_of(store, ORDERS).status == inc.SUPPRESSED
    assert roles.grants == [] and sink.calls == []
    [record] = [a for a in store.list_audit() if a.kind == "suppress"]
    assert record.actor == ALICE and record.inputs["target"] == ORDERS

    traffic(25, failing=[ORDERS])  # the suppression has expired
    run_scan(rt)
    assert len(roles.grants) == 1
    assert incident_of(store, ORDERS).status == inc.VERIFYING


def test_key_callers_are_never_granted(make_runtime, source, clock, store, roles):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    source.fail(None, ACCOUNT, count=4, code="401", message=None)
    clock.advance(minutes=1)
    run_scan(rt)
    [incident] = store.list_incidents()
    assert incident.principal_id is None and incident.status == inc.TICKETED
    assert "entra_principal" in refusals(store, incident.id)[0]
    assert roles.grants == []
