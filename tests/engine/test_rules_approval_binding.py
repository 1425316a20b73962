"""An approval grants exactly what the recommendation showed (issue 13, items 3 and 6): a later failure that changes
the role, scope or diagnosis lapses it and the ticket says why; an approval naming another diagnosis is refused;
a project recommendation whose project is unknown is not grantable; observe mode refuses every approval."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.core import incidents as inc
from shared.core.resource_ids import parse
from shared.core.roles import COGNITIVE_SERVICES_OPENAI_USER, COGNITIVE_SERVICES_USER, FOUNDRY_USER
from shared.engine.approvals import ActionRefused, approval_terms, approve
from shared.engine.scan import run_scan
from tests.engine.common import ACCOUNT, ALICE, ORDERS, incident_of

MODELS_ROUTE = "/models/chat/completions"
PROJECTS_ROUTE = "/api/projects/{}/assistants"


@pytest.fixture
def recommend(make_runtime):
    return make_runtime(mode="recommend", allowlist=[ORDERS])


def test_the_approval_shows_and_grants_exactly_the_recommended_terms(recommend, traffic, store, roles, sink):
    traffic(2, failing=[ORDERS])
    run_scan(recommend)
    incident = incident_of(store, ORDERS)
    terms = approval_terms(recommend, incident.id)
    assert (terms.principal_id, terms.role_id, terms.scope.lower()) == (
        ORDERS, COGNITIVE_SERVICES_OPENAI_USER.guid, ACCOUNT.lower())
    hint = sink.ticket_of(incident.id).content.approve_hint
    assert terms.fingerprint in hint and terms.role_name in hint

    result = approve(recommend, incident.id, ALICE, fingerprint=terms.fingerprint)
    assert result.grant == terms and result.to_json()["grant"]["fingerprint"] == terms.fingerprint
    [grant] = roles.grants
    assert (grant.principal_id, grant.role_guid, grant.scope) == (terms.principal_id, terms.role_id, terms.scope)
    assert incident_of(store, ORDERS).approval_terms is None  # an approval authorizes one grant


def test_a_later_failure_that_changes_the_role_lapses_the_approval_and_the_ticket_says_why(recommend, source, clock,
                                                                                           store, roles, sink):
    source.fail(ORDERS, ACCOUNT, count=2)
    clock.advance(minutes=1)
    run_scan(recommend)
    shown = incident_of(store, ORDERS).approval_terms
    assert shown.role_id == COGNITIVE_SERVICES_OPENAI_USER.guid

    # The same caller now fails on /models: the same incident, another role.
    source.fail(ORDERS, ACCOUNT, count=2, route=MODELS_ROUTE, operation=None, message=None)
    clock.advance(minutes=1)
    run_scan(recommend)
    lapsed = incident_of(store, ORDERS)
    assert lapsed.status == inc.RECOMMENDED
    assert lapsed.approval_terms.role_id == COGNITIVE_SERVICES_USER.guid
    assert lapsed.approval_terms.fingerprint != shown.fingerprint
    [note] = [a for a in lapsed.actions if a.kind == "approval-lapsed"]
    assert "Cognitive Services OpenAI User -> Cognitive Services User" in note.detail
    ticket = sink.ticket_of(lapsed.id)
    assert any("lapsed" in c and "new approval is needed" in c for c in ticket.comments)

    with pytest.raises(ActionRefused, match="not diagnosis"):  # the engineer approved what the ticket showed
        approve(recommend, lapsed.id, ALICE, fingerprint=shown.fingerprint)
    assert roles.grants == []
    approve(recommend, lapsed.id, ALICE, fingerprint=lapsed.approval_terms.fingerprint)
    [grant] = roles.grants
    assert grant.role_guid == COGNITIVE_SERVICES_USER.guid


def test_an_approval_raced_by_a_changed_diagnosis_grants_nothing_else(recommend, source, clock, store, roles):
    source.fail(ORDERS, ACCOUNT, count=2)
    clock.advance(minutes=1)
    run_scan(recommend)
    incident = incident_of(store, ORDERS)
    # The stored diagnosis changes under the approval without a decision (another instance merging): the policy's
    # approval_binding rule refuses the grant.
    changed = replace(incident.diagnosis, role_id=COGNITIVE_SERVICES_USER.guid,
                      role_name=COGNITIVE_SERVICES_USER.name)
    store.put_incident(replace(incident, diagnosis=changed), expected_etag=incident.etag)
    with pytest.raises(ActionRefused, match=r"\[approval_binding\]"):
        approve(recommend, incident.id, ALICE)
    assert roles.grants == []


def test_a_project_recommendation_is_bound_to_its_project(recommend, source, clock, store, roles, evidence):
    evidence.add_account(ACCOUNT, kind="AIServices")
    source.fail(ORDERS, ACCOUNT, count=2, route=PROJECTS_ROUTE.format("p1"), operation=None, message=None)
    clock.advance(minutes=1)
    run_scan(recommend)
    p1 = incident_of(store, ORDERS)
    assert p1.approval_terms.scope.lower().endswith("/projects/p1")

    source.fail(ORDERS, ACCOUNT, count=2, route=PROJECTS_ROUTE.format("p2"), operation=None, message=None)
    clock.advance(minutes=1)
    run_scan(recommend)  # p2 is its own incident: p1's recommendation is untouched
    assert store.get_incident(p1.id).approval_terms == p1.approval_terms

    approve(recommend, p1.id, ALICE)
    [grant] = roles.grants
    assert grant.role_guid == FOUNDRY_USER.guid and grant.scope.lower().endswith("/projects/p1")


def test_a_project_call_whose_project_is_unknown_is_not_grantable(make_runtime, source, clock, store, roles,
                                                                  evidence):
    evidence.add_account(ACCOUNT, kind="AIServices")
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    source.fail(ORDERS, ACCOUNT, count=2, route=PROJECTS_ROUTE.format("{projectName}"), operation=None,
                message=None)
    clock.advance(minutes=1)
    run_scan(rt)
    incident = incident_of(store, ORDERS)
    assert incident.status == inc.TICKETED and roles.grants == []
    assert "project_scope" in incident.actions[-1].rules
    assert parse(incident.diagnosis.scope).project_name is None  # no project name is made up


def test_observe_mode_refuses_approvals_with_the_mode_rule(make_runtime, traffic, store, roles):
    recommending = make_runtime(mode="recommend", allowlist=[ORDERS])
    traffic(2, failing=[ORDERS])
    run_scan(recommending)
    incident = incident_of(store, ORDERS)
    observing = make_runtime(mode="observe", allowlist=[ORDERS])  # the operator switched to observe

    with pytest.raises(ActionRefused, match=r"\[mode\].*approvals included"):
        approve(observing, incident.id, ALICE)
    assert roles.grants == []
    [record] = [a for a in store.list_audit(incident.id) if a.kind == "approval"]
    assert record.inputs["refusals"] == ["mode"]


def test_a_ticket_carries_the_full_approve_url_when_the_apps_address_is_known(make_runtime, traffic, store, sink):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS], TRIAGE_PUBLIC_BASE_URL="https://triage.contoso.com/")
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    incident = incident_of(store, ORDERS)
    hint = sink.ticket_of(incident.id).content.approve_hint
    assert f"POST https://triage.contoso.com/api/incidents/{incident.id}/approve" in hint


def test_without_the_apps_address_the_ticket_keeps_the_approve_path(recommend, traffic, store, sink):
    traffic(2, failing=[ORDERS])
    run_scan(recommend)
    incident = incident_of(store, ORDERS)
    assert f"POST /api/incidents/{incident.id}/approve" in sink.ticket_of(incident.id).content.approve_hint
