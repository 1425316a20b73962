"""Fault injection against the real SDK clients: throttling with Retry-After, server errors, dropped
connections, latency, partial query results and lost answers."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import RequestsTransport
from azure.mgmt.authorization.models import RoleAssignmentCreateParameters
from azure.monitor.query import LogsQueryPartialResult

from localazure import Clock, LocalAzure
from tests.support.azure import arm_auth_client, logs_client

pytestmark = pytest.mark.slow  # every test talks to a running stand-in

READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"


@pytest.fixture(scope="module")
def az():
    with LocalAzure.start(clock=Clock.frozen("2025-06-01T12:00:00Z")) as stand_in:
        stand_in.add_account("aoai")
        stand_in.add_log_rows("AzureDiagnostics", [{"ResultSignature": str(s)} for s in (401, 401, 403, 200)])
        yield stand_in


@pytest.fixture(autouse=True)
def clean(az):
    az.faults.clear()
    az.calls.reset()
    yield
    az.faults.clear()


@pytest.fixture
def waits(monkeypatch):
    """Record the retry waits azure-core asks the transport for, instead of sleeping them."""
    recorded: list[float] = []
    monkeypatch.setattr(RequestsTransport, "sleep", lambda self, duration: recorded.append(duration))
    return recorded


def test_throttling_is_retried_after_the_advertised_delay(az, waits):
    fault = az.faults.add("arm", route="roleDefinitions", status=429, retry_after=7, times=2)
    definition = arm_auth_client(az).role_definitions.get(az.account_id("aoai"), READER)
    assert definition.role_name == "Reader"
    assert fault.hits == 2 and fault.exhausted
    assert waits == [7, 7]
    assert az.calls.count(service="arm", status=429) == 2 and az.calls.count(service="arm", status=200) == 1


def test_faults_only_hit_matching_routes(az, waits):
    az.faults.add("arm", route="roleDefinitions", status=500, times=None)
    assert list(arm_auth_client(az).role_assignments.list_for_scope(az.account_id("aoai"))) == []
    assert az.calls.count(service="arm", status=500) == 0


def test_persistent_server_errors_surface_after_the_retries(az, waits):
    az.faults.add("arm", route="roleDefinitions", status=503, retry_after=None, times=None)
    client = arm_auth_client(az, retry_total=2)
    with pytest.raises(HttpResponseError) as info:
        client.role_definitions.get(az.account_id("aoai"), READER)
    assert info.value.status_code == 503
    assert az.calls.count(service="arm", status=503) == 3


def test_logs_throttling_and_server_errors_are_retried(az, waits):
    az.faults.add("logs", route="query", status=429, retry_after=0.01, times=1)
    az.faults.add("logs", route="query", status=500, times=1)
    result = logs_client(az).query_workspace(az.workspace_id, "AzureDiagnostics | count", timespan=None)
    assert result.tables[0].rows[0][0] == 4
    assert [c.status for c in az.calls.records] == [429, 500, 200]


def test_a_dropped_connection_is_retried_for_reads(az, waits):
    fault = az.faults.add("arm", route="roleDefinitions", drop=True, times=1)
    assert arm_auth_client(az).role_definitions.get(az.account_id("aoai"), READER).name == READER
    assert fault.hits == 1
    assert [c.status for c in az.calls.records] == [0, 200]


def test_an_after_apply_fault_carries_the_write_out_and_loses_its_answer(az, waits):
    principal = az.add_principal(str(uuid.uuid4())).object_id
    fault = az.faults.add("arm", route="roleAssignments.put", status=500, after_apply=True, times=1)
    params = RoleAssignmentCreateParameters(
        role_definition_id=f"/subscriptions/{az.subscription_id}/providers/Microsoft.Authorization/roleDefinitions/"
                           f"{OPENAI_USER}", principal_id=principal, principal_type="ServicePrincipal")
    with pytest.raises(HttpResponseError) as info:
        arm_auth_client(az, retry_total=0).role_assignments.create(az.account_id("aoai"), str(uuid.uuid4()), params)
    assert info.value.status_code == 500 and fault.hits == 1
    assert [a.principal_id for a in az.assignments()].count(principal) == 1  # applied, though the client saw 500
    assert [c.status for c in az.calls.records] == [500]


def test_latency_faults_delay_but_answer(az):
    fault = az.faults.add("arm", route=".*", delay=0.01, times=None)
    client = arm_auth_client(az)
    for _ in range(3):
        assert client.role_definitions.get(az.account_id("aoai"), READER).name == READER
    assert fault.hits == 3 and fault.status is None


def test_partial_results_come_back_as_a_partial_result(az):
    az.faults.add("logs", partial=True, times=1)
    client = logs_client(az)
    result = client.query_workspace(az.workspace_id, "AzureDiagnostics | project ResultSignature",
                                    timespan=timedelta(hours=1))
    assert isinstance(result, LogsQueryPartialResult)
    assert result.partial_error.code == "PartialError"
    assert len(result.partial_data[0].rows) == 2  # half of the 4 rows
    complete = client.query_workspace(az.workspace_id, "AzureDiagnostics | project ResultSignature",
                                      timespan=timedelta(hours=1))
    assert len(complete.tables[0].rows) == 4


def test_unknown_services_are_refused(az):
    with pytest.raises(ValueError):
        az.faults.add("graph")
