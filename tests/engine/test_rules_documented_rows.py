"""Real-shaped rows over the fakes: server-side rows without error text are decided from the evidence; client-side
records give the URL and the text, join the server rows that confirm their caller, and alone lead only to an
approvable recommendation."""

from __future__ import annotations

import pytest

from shared.core import incidents as inc
from shared.core.roles import COGNITIVE_SERVICES_OPENAI_USER, FOUNDRY_USER
from shared.engine.approvals import approve
from shared.engine.scan import run_scan
from tests.engine.common import ACCOUNT, ALICE, BILLING, ORDERS, SUBSCRIPTION, incident_of
from tests.engine.conftest import BASE_ENV
from tests.support.fakes import OPENAI_ROUTE, FakeSource, fake_runtime, permission_denied, verify_due

OPENAI_API = "Azure OpenAI API version 2024-10-21"
FOUNDRY = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/"
           "accounts/hub")
AGENTS_DENIED = ("The principal `{oid}` lacks the required data action `Microsoft.CognitiveServices/accounts/"
                 "AIServices/agents/read` to perform `GET /api/projects/{{projectName}}/assistants` operation.")


@pytest.fixture
def client(clock) -> FakeSource:
    return FakeSource(clock, name="appinsights:fake-workspace")


@pytest.fixture
def runtime(clock, store, source, client, evidence, roles, sink, publisher):
    def build(*sources: FakeSource, allowlist=(ORDERS, BILLING)):
        env = {**BASE_ENV, "TRIAGE_MODE": "enforce",
               "TRIAGE_ALLOWLIST": "[" + ",".join(f'{{"object_id": "{oid}"}}' for oid in allowlist) + "]"}
        return fake_runtime(env, clock=clock, store=store, sources=list(sources) or [source, client],
                            evidence=evidence, roles=roles, sinks=[sink], publisher=publisher)
    return build


def documented_failure(source: FakeSource, oid: str, resource_id: str = ACCOUNT, **row) -> None:
    """Two failed requests as a RequestResponse row shows them: status, caller, OperationName, apiName."""
    source.fail(oid, resource_id, count=2, code=None, **{"route": OPENAI_API, **row})


def test_documented_rows_alone_grant_a_contributor_only_and_a_roleless_caller(runtime, source, evidence, roles,
                                                                               clock, store):
    rt = runtime(source)
    evidence.assign(BILLING, "Contributor", ACCOUNT)
    documented_failure(source, ORDERS)
    documented_failure(source, BILLING)
    clock.advance(minutes=1)

    assert run_scan(rt).actions == {"assign": 2}
    assert {g.role_guid for g in roles.grants} == {COGNITIVE_SERVICES_OPENAI_USER.guid}
    assert {incident_of(store, oid).cause for oid in (ORDERS, BILLING)} == {"missing_data_role",
                                                                             "control_plane_role_only"}
    assert incident_of(store, BILLING).diagnosis.confidence == "high"

    clock.advance(minutes=3)  # past the window and the lag: the callers now succeed
    for oid in (ORDERS, BILLING):
        source.succeed(oid, ACCOUNT, count=2)
    clock.advance(minutes=1)
    assert verify_due(rt) == {"resolved": 2}


def test_a_caller_named_only_by_client_records_is_recommended_then_granted_on_approval(runtime, client, evidence,
                                                                                        roles, sink, clock, store):
    rt = runtime(client)
    evidence.assign(BILLING, "Contributor", ACCOUNT)
    client.fail(BILLING, ACCOUNT, count=2, endpoint="https://aoai.openai.azure.com", route=OPENAI_ROUTE,
                operation=f"POST {OPENAI_ROUTE}")
    clock.advance(minutes=1)

    run_scan(rt)
    incident = incident_of(store, BILLING)
    assert (incident.status, incident.cause) == (inc.RECOMMENDED, "control_plane_role_only")
    assert roles.grants == []
    [ticket] = sink.tickets.values()
    assert "telemetry" in ticket.content.action and ticket.content.approve_hint

    approve(rt, incident.id, ALICE)
    [grant] = roles.grants
    assert grant.role_guid == COGNITIVE_SERVICES_OPENAI_USER.guid and grant.scope.lower() == ACCOUNT.lower()
    assert incident_of(store, BILLING).status == inc.VERIFYING


def test_a_client_record_that_a_server_row_confirms_names_the_project_and_the_grant_is_made(runtime, source, client,
                                                                                            evidence, roles, clock,
                                                                                            store):
    evidence.add_account(FOUNDRY, kind="AIServices", projects=(f"{FOUNDRY}/projects/p1",))
    rt = runtime()
    documented_failure(source, ORDERS, FOUNDRY, route="Azure AI Foundry Projects API", operation="Assistants_List")
    client.fail(ORDERS, FOUNDRY, count=2, endpoint="https://hub.services.ai.azure.com",
                route="/api/projects/p1/assistants", operation="GET /api/projects/p1/assistants",
                message=AGENTS_DENIED.format(oid=ORDERS))
    clock.advance(minutes=1)

    report = run_scan(rt)
    assert report.signals == 1 and report.actions == {"assign": 1}
    [grant] = roles.grants
    assert grant.role_guid == FOUNDRY_USER.guid and grant.scope.lower() == f"{FOUNDRY}/projects/p1".lower()
    incident = incident_of(store, ORDERS)
    assert incident.count == 2 and incident.diagnosis.confidence == "high"


def test_without_the_client_record_the_project_is_unknown_and_nothing_broader_is_granted(runtime, source, evidence,
                                                                                         roles, clock, store):
    evidence.add_account(FOUNDRY, kind="AIServices", projects=(f"{FOUNDRY}/projects/p1",))
    rt = runtime(source)
    documented_failure(source, ORDERS, FOUNDRY, route="Azure AI Foundry Projects API", operation="Assistants_List")
    clock.advance(minutes=1)

    assert run_scan(rt).actions == {"ticket": 1}
    assert roles.grants == []
    incident = incident_of(store, ORDERS)
    assert incident.diagnosis.confidence == "medium" and incident.diagnosis.role_id == FOUNDRY_USER.guid
    assert any("broader than the call needs" in line for line in incident.diagnosis.evidence)


def test_openai_names_on_a_foundry_account_are_ticketed_with_what_would_decide(runtime, source, evidence, roles,
                                                                              clock, store):
    evidence.add_account(FOUNDRY, kind="AIServices")
    rt = runtime(source)
    documented_failure(source, ORDERS, FOUNDRY)
    clock.advance(minutes=1)

    assert run_scan(rt).actions == {"ticket": 1}
    assert roles.grants == []
    diagnosis = incident_of(store, ORDERS).diagnosis
    assert (diagnosis.confidence, diagnosis.role_id) == ("medium", COGNITIVE_SERVICES_OPENAI_USER.guid)
    assert any("request URL" in line for line in diagnosis.evidence)


def test_the_permission_denied_text_still_decides_when_a_row_has_it(runtime, source, roles, clock):
    rt = runtime(source)
    source.fail(ORDERS, ACCOUNT, count=2, message=permission_denied(ORDERS))  # an opted-in errorMessage
    clock.advance(minutes=1)
    assert run_scan(rt).actions == {"assign": 1} and len(roles.grants) == 1
