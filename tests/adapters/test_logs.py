"""Failure sources through the real LogsQueryClient against the local stand-in (HTTPS on 127.0.0.1).

Nothing in azure-monitor-query is mocked. The only patch is the transport's `sleep`, so that retries honour a
Retry-After without the test waiting for it (the waits are recorded and asserted instead).
"""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import timedelta

import pytest
from azure.core.pipeline.transport import RequestsTransport
from hypothesis import given, settings
from hypothesis import strategies as st

from localazure import FakeCredential, LogShape
from localazure.logshape import EXTRA_PROPERTIES
from shared.adapters import kql
from shared.adapters.azure import AzureClients
from shared.adapters.logs import NoDataYet, SourceError
from shared.core import lifecycle
from shared.core.model import ENTRA, KEY, Diagnosis
from shared.core.ports import Activity
from shared.settings import Settings

OID = "5a000000-0000-4000-8000-000000000001"
OTHER = "5a000000-0000-4000-8000-000000000002"


def make_clients(az, client_options=None, **settings):
    base = Settings(arm_endpoint=az.arm_url, logs_endpoint=az.logs_url, ca_bundle=az.ca_path,
                    workspace_ids=(az.workspace_id,), subscription_id=az.subscription_id)
    options = {"retry_backoff_factor": 0.01, **(client_options or {})}
    return AzureClients.from_settings(replace(base, **settings), FakeCredential(), client_options=options)


@pytest.fixture
def az(local_azure_factory):
    return local_azure_factory(None)


@pytest.fixture
def sleeps(monkeypatch):
    """Record the retry waits instead of sleeping them."""
    waits: list[float] = []
    monkeypatch.setattr(RequestsTransport, "sleep", lambda self, seconds: waits.append(seconds))
    return waits


def diag_row(at, account_id, status="401", *, oid=OID, code="PermissionDenied", message="lacks the data action",
             path="/openai/deployments/gpt/chat/completions", op="ChatCompletions_Create"):
    props = {"objectId": oid, "errorCode": code, "errorMessage": message, "requestPath": path, "apiName": "x"}
    return {"TimeGenerated": at, "_ResourceId": account_id.lower(), "ResourceId": account_id.upper(),
            "ResourceProvider": "MICROSOFT.COGNITIVESERVICES", "Category": "RequestResponse",
            "OperationName": op, "ResultSignature": status, "properties_s": json.dumps(props)}


def test_read_returns_server_side_groups_with_counts_and_overlap(az):
    account = az.add_account("acct-a")
    now = az.clock.now()
    watermark = now - timedelta(minutes=10)
    az.add_log_rows("AzureDiagnostics", [
        diag_row(now - timedelta(minutes=15), account),  # in the overlap
        diag_row(now - timedelta(minutes=5), account),
        diag_row(now - timedelta(minutes=4), account),
        diag_row(now - timedelta(minutes=3), account, "403", oid="", code="AuthenticationTypeDisabled",
                 message="Key based authentication is disabled for this resource."),
        diag_row(now - timedelta(minutes=2), account, "200", code="", message=""),
        diag_row(now - timedelta(hours=2), account),  # before the window
    ])
    source = make_clients(az).sources[0]
    batch = source.read(watermark - timedelta(minutes=10), now, watermark=watermark)

    assert batch.source == source.name == f"logs:{az.workspace_id}"
    assert batch.partial_errors == () and batch.rejected == ()
    by_status = {s.status: s for s in batch.signals}
    assert set(by_status) == {401, 403}
    rbac = by_status[401]
    assert (rbac.count, rbac.overlap_count, rbac.object_id, rbac.auth) == (3, 1, OID, ENTRA)
    assert rbac.resource_id == account.lower() and rbac.code == "PermissionDenied"
    assert rbac.first_seen == now - timedelta(minutes=15) and rbac.last_seen == now - timedelta(minutes=4)
    assert rbac.route == "/openai/deployments/gpt/chat/completions" and rbac.source == source.name
    keyed = by_status[403]
    assert (keyed.object_id, keyed.auth, keyed.count, keyed.code) == (None, KEY, 1, "AuthenticationTypeDisabled")


def test_read_keeps_only_the_requested_resources_and_tenant_mismatch_400s(az):
    a, b = az.add_account("acct-a"), az.add_account("acct-b")
    now = az.clock.now()
    az.add_log_rows("AzureDiagnostics", [
        diag_row(now - timedelta(minutes=1), a),
        diag_row(now - timedelta(minutes=1), b),
        diag_row(now - timedelta(minutes=1), a, "400", code="Tenant provided in token does not match resource token",
                 message="Token tenant x does not match resource tenant."),
        diag_row(now - timedelta(minutes=1), a, "400", code="InvalidPayload", message="bad body"),
    ])
    batch = make_clients(az).sources[0].read(now - timedelta(hours=1), now, resource_ids=(a,))
    assert {(s.resource_id, s.status) for s in batch.signals} == {(a.lower(), 401), (a.lower(), 400)}


def test_malformed_groups_are_rejected_with_a_reason_and_the_rest_is_used(az):
    account = az.add_account("acct-a")
    now = az.clock.now()
    az.add_log_rows("AzureDiagnostics", [
        diag_row(now - timedelta(minutes=1), account),
        {**diag_row(now - timedelta(minutes=1), account), "_ResourceId": ""},
        diag_row(now - timedelta(minutes=1), account, oid="not-a-guid"),
    ])
    batch = make_clients(az).sources[0].read(now - timedelta(hours=1), now)
    assert len(batch.signals) == 1 and batch.signals[0].object_id == OID
    reasons = sorted(r.reason for r in batch.rejected)
    assert len(reasons) == 2
    assert reasons[0].startswith("caller object id") and reasons[1] == "missing resource id"
    assert all(r.source == batch.source for r in batch.rejected)


def test_two_overlapping_windows_never_double_count(az):
    """Scan 1 reads up to W1; scan 2 re-reads the 10 minutes before W1. Combined with the lifecycle rule, every
    row is counted exactly once, including a late-ingested row that scan 1 could not see."""
    account = az.add_account("acct-a")
    start = az.clock.now()
    times = [start + timedelta(minutes=m) for m in (1, 12, 25, 28)]
    az.add_log_rows("AzureDiagnostics", [diag_row(t, account) for t in times])
    w1 = start + timedelta(minutes=30)
    az.clock.set_now(w1)
    source = make_clients(az).sources[0]
    diagnosis = Diagnosis(cause="missing_data_role", role_fixable=True, confidence="high", summary="s")

    first = source.read(start, w1)
    assert [s.count for s in first.signals] == [4]
    incident = lifecycle.open_or_update(None, first.signals[0], diagnosis, w1)

    az.add_log_rows("AzureDiagnostics", [diag_row(start + timedelta(minutes=40), account)])
    w2 = start + timedelta(minutes=45)
    az.clock.set_now(w2)
    overlap = timedelta(minutes=10)
    second = source.read(w1 - overlap, w2, watermark=w1)
    (signal,) = second.signals
    assert (signal.count, signal.overlap_count) == (3, 2)  # 25 and 28 re-read, 40 is new
    incident = lifecycle.open_or_update(incident, signal, diagnosis, w2)
    assert incident.count == 5

    # A third window over the same span adds nothing.
    third = source.read(w2 - overlap, w2, watermark=w2)
    incident = lifecycle.open_or_update(incident, third.signals[0], diagnosis, w2)
    assert incident.count == 5


def test_partial_results_are_used_and_reported(az):
    account = az.add_account("acct-a")
    other = az.add_account("acct-b")
    now = az.clock.now()
    az.add_log_rows("AzureDiagnostics", [diag_row(now - timedelta(minutes=1), account),
                                         diag_row(now - timedelta(minutes=1), other)])
    az.faults.add(service="logs", partial=True)
    batch = make_clients(az).sources[0].read(now - timedelta(hours=1), now)
    assert len(batch.signals) == 1  # the stand-in cuts the rows in half
    assert batch.partial_errors and "PartialError" in batch.partial_errors[0]
    assert "shards did not answer" in batch.partial_errors[0]


def test_throttling_is_retried_honouring_retry_after(az, sleeps):
    account = az.add_account("acct-a")
    now = az.clock.now()
    az.add_log_rows("AzureDiagnostics", [diag_row(now - timedelta(minutes=1), account)])
    az.faults.add(service="logs", route="logs.query", status=429, retry_after=7, times=2)
    clients = make_clients(az)
    batch = clients.sources[0].read(now - timedelta(hours=1), now)
    assert [s.count for s in batch.signals] == [1]
    assert sleeps.count(7) == 2
    assert az.calls.count(service="logs", route="logs.query") == 3
    assert clients.calls.count(service="logs") == 3


def test_exhausted_retries_raise_a_clear_error(az, sleeps):
    az.faults.add(service="logs", status=503, retry_after=1, times=None)
    now = az.clock.now()
    source = make_clients(az, client_options={"retry_total": 2}).sources[0]
    with pytest.raises(SourceError) as caught:
        source.read(now - timedelta(hours=1), now)
    text = str(caught.value)
    assert az.workspace_id in text and "503" in text
    assert az.calls.count(service="logs") == 3


def test_an_unknown_workspace_fails_loudly(az):
    settings_ws = ("00000000-0000-0000-0000-00000000dead",)
    source = make_clients(az, workspace_ids=settings_ws).sources[0]
    now = az.clock.now()
    with pytest.raises(SourceError, match="WorkspaceNotFound|404"):
        source.read(now - timedelta(hours=1), now)


@pytest.mark.parametrize(("missing", "named"), [
    ({"missing_tables": ["AzureDiagnostics"]}, "table or column expression named 'AzureDiagnostics'"),
    ({"missing_columns": {"AzureDiagnostics": ["properties_s"]}}, "scalar expression named 'properties_s'"),
])
def test_a_workspace_that_has_not_received_the_table_or_column_is_no_data_yet(az, missing, named):
    account = az.add_account("acct-a")
    empty = az.add_workspace("22222222-0000-4000-8000-0000000000e2", **missing)
    source = make_clients(az, workspace_ids=(empty,)).sources[0]
    now = az.clock.now()
    batch = source.read(now - timedelta(hours=1), now)
    assert batch.signals == () and batch.partial_errors == ()
    # The whole answer: the workspace, every code of the error chain and the innermost message.
    assert empty in batch.no_data and "HTTP 400 BadArgumentError" in batch.no_data
    assert "SemanticError" in batch.no_data and "SEM0100" in batch.no_data and named in batch.no_data
    assert source.activity(OID, account, now - timedelta(hours=1), now) == Activity(0, 0)


def test_app_insights_without_its_tables_is_no_data_yet(az):
    empty = az.add_workspace(missing_tables=["AppDependencies", "AppExceptions"])
    source = make_clients(az, workspace_ids=(), appinsights_workspace_ids=(empty,)).sources[0]
    now = az.clock.now()
    batch = source.read(now - timedelta(hours=1), now)
    assert batch.signals == () and "named 'AppDependencies'" in batch.no_data


def test_app_insights_without_app_exceptions_still_reads_the_failures(az):
    # An app that never logged an exception: its workspace has AppDependencies but no AppExceptions table.
    account = az.add_account("acct-a")
    workspace = az.add_workspace(missing_tables=["AppExceptions"])
    now = az.clock.now()
    az.add_log_rows("AppDependencies", [
        {"TimeGenerated": now - timedelta(minutes=m), "Target": "acct-a.openai.azure.com",
         "Name": "POST /openai/deployments/gpt/chat/completions", "ResultCode": "403", "OperationId": f"op-{m}",
         "AppRoleName": "web", "Success": False} for m in (5, 3)], workspace=workspace)
    clients = make_clients(az, workspace_ids=(), appinsights_workspace_ids=(workspace,), app_identities={"web": OID})
    (source,) = clients.sources
    batch = source.read(now - timedelta(hours=1), now)

    assert batch.no_data == "" and batch.partial_errors == () and batch.rejected == ()
    (signal,) = batch.signals
    assert (signal.object_id, signal.status, signal.count, signal.message) == (OID, 403, 2, None)
    assert signal.resource_id == account.lower()
    # The messages query named the missing table and got Log Analytics' answer: 400, no messages.
    assert az.calls.count(service="logs", route="logs.query", status=200) == 1
    assert az.calls.count(service="logs", route="logs.query", status=400) == 1


def test_app_insights_messages_are_read_once_exceptions_arrive(az):
    az.add_account("acct-a")
    workspace = az.add_workspace(missing_tables=["AppExceptions"])
    now = az.clock.now()
    az.add_log_rows("AppDependencies", [
        {"TimeGenerated": now - timedelta(minutes=5), "Target": "acct-a.openai.azure.com",
         "Name": "POST /openai/deployments/gpt/chat/completions", "ResultCode": "401", "OperationId": "op-5",
         "AppRoleName": "web"}], workspace=workspace)
    az.add_log_rows("AppExceptions", [{"TimeGenerated": now - timedelta(minutes=5), "OperationId": "op-5",
                                       "OuterMessage": "Error code: 401 - PermissionDenied"}], workspace=workspace)
    source = make_clients(az, workspace_ids=(), appinsights_workspace_ids=(workspace,),
                          app_identities={"web": OID}).sources[0]
    (signal,) = source.read(now - timedelta(hours=1), now).signals
    assert signal.message == "Error code: 401 - PermissionDenied"


def test_app_insights_without_failures_sends_one_query(az):
    az.add_account("acct-a")
    source = make_clients(az, workspace_ids=(), appinsights_workspace_ids=(az.workspace_id,),
                          app_identities={"web": OID}).sources[0]
    now = az.clock.now()
    assert source.read(now - timedelta(hours=1), now).signals == ()
    assert az.calls.count(service="logs", route="logs.query") == 1  # no failures: no messages to look up


def test_a_forbidden_workspace_raises_with_the_whole_message(az):
    az.faults.add(service="logs", status=403, times=None)
    source = make_clients(az).sources[0]
    now = az.clock.now()
    with pytest.raises(SourceError) as caught:
        source.read(now - timedelta(hours=1), now)
    text = str(caught.value)
    assert not isinstance(caught.value, NoDataYet)
    assert az.workspace_id in text and "HTTP 403 InsufficientAccessError" in text
    assert "insufficient access to perform the requested operation" in text and "Injected fault (403)" in text


def test_several_workspaces_make_one_source_each():
    clients = AzureClients.from_settings(
        Settings(workspace_ids=("ws-1", "ws-2"), appinsights_workspace_ids=("ws-3",)), FakeCredential())
    assert [s.name for s in clients.sources] == ["logs:ws-1", "logs:ws-2", "appinsights:ws-3"]


def test_activity_counts_failures_and_successes_of_one_caller(az):
    account = az.add_account("acct-a")
    now = az.clock.now()
    az.add_log_rows("AzureDiagnostics", [
        diag_row(now - timedelta(minutes=5), account),
        diag_row(now - timedelta(minutes=4), account, "200"),
        diag_row(now - timedelta(minutes=3), account, "200"),
        diag_row(now - timedelta(minutes=3), account, oid=OTHER),
        diag_row(now - timedelta(minutes=2), account, "403", oid=""),
        diag_row(now - timedelta(hours=3), account),  # before `since`
    ])
    source = make_clients(az).sources[0]
    since = now - timedelta(hours=1)
    mine = source.activity(OID, account + "/projects/p1", since, now)
    keys = source.activity(None, account, since, now)
    assert (mine.failures, mine.successes) == (1, 2)
    assert (keys.failures, keys.successes) == (1, 0)


def test_assign_then_wait_out_propagation(local_azure_factory):
    """Grant through the role adapter, drive traffic, and read failures before and after the stand-in clock
    passes the propagation delay."""
    az = local_azure_factory(None, propagation_seconds=300)
    az.add_principal(OID, type="ServicePrincipal")
    account = az.add_account("acct-a", deployments=["gpt"])
    az.add_traffic(resource="acct-a", route="/openai/deployments/gpt/chat/completions", caller=OID, per_tick=2)
    clients = make_clients(az)
    source = clients.sources[0]
    t0 = az.clock.now()

    az.simulate(ticks=2)
    az.clock.advance(1)  # issue 13: a read reaches the workspace's clock; rows of its instant are the next read's
    before = source.read(t0 - timedelta(minutes=1), az.clock.now() + timedelta(seconds=1))
    # Real-shaped rows: the status, the logged caller and the apiName, no error code or text.
    assert [(s.status, s.code, s.message, s.object_id, s.count) for s in before.signals] == [(401, None, None, OID, 4)]
    assert before.signals[0].route == "Azure OpenAI API version 2024-10-21"

    outcome = clients.roles.create(scope=account, principal_id=OID, principal_type="ServicePrincipal",
                                   role_guid="5e0bd9bd-7b93-4f28-af87-19fc36ad61bd", incident_id="inc-1")
    assert outcome.status == "created"
    granted_at = az.clock.now()
    az.clock.advance(60)
    az.simulate(ticks=2)  # still inside the propagation window
    still = source.activity(OID, account, granted_at + timedelta(seconds=1), az.clock.now() + timedelta(seconds=1))
    assert (still.failures, still.successes) == (4, 0)

    az.clock.advance(300)
    effective = az.clock.now()
    az.simulate(ticks=3)
    after = source.activity(OID, account, effective - timedelta(seconds=1), az.clock.now() + timedelta(seconds=1))
    assert (after.failures, after.successes) == (0, 6)
    late = source.read(effective - timedelta(seconds=1), az.clock.now() + timedelta(seconds=1))
    assert late.signals == ()


@pytest.mark.parametrize("extra", [(), EXTRA_PROPERTIES], ids=["documented rows", "undocumented keys too"])
def test_the_failures_query_relies_on_documented_keys_and_tolerates_undocumented_ones(local_azure_factory, extra):
    az = local_azure_factory(None, log_shape=LogShape(extra_properties=extra))
    az.add_principal(OID, type="ServicePrincipal")
    account = az.add_account("acct-a", deployments=["gpt"])
    chat = "/openai/deployments/gpt/chat/completions"
    az.add_traffic(resource="acct-a", route=chat, caller=OID)  # 401 PermissionDenied
    az.add_traffic(resource="acct-a", route=chat, caller=OTHER, tenant="99999999-0000-4000-8000-000000000001")
    az.add_traffic(resource="acct-a", route=chat, auth="key", key="wrong")
    t0 = az.clock.now()
    az.simulate(ticks=2)
    az.clock.advance(1)  # issue 13: a read reaches the workspace's clock; rows of its instant are the next read's
    batch = make_clients(az).sources[0].read(t0 - timedelta(minutes=1), az.clock.now() + timedelta(seconds=1))

    assert batch.rejected == ()
    [role] = [s for s in batch.signals if s.object_id == OID]
    [key] = [s for s in batch.signals if s.object_id is None and s.status == 401]
    assert [(s.count, s.auth, s.operation, s.resource_id) for s in (role, key)] == [
        (2, ENTRA, "ChatCompletions_Create", account.lower()), (2, KEY, "ChatCompletions_Create", account.lower())]
    tenant = [s for s in batch.signals if s.status == 400]
    if extra:  # the text, the path, and the 400 that only its text makes an auth failure
        assert (role.code, role.route) == ("PermissionDenied", chat) and "lacks" in role.message
        assert [s.object_id for s in tenant] == [None]
    else:
        assert (role.code, role.message, role.route) == (None, None, "Azure OpenAI API version 2024-10-21")
        assert tenant == []


# ---- Application Insights (client-side) ---------------------------------------------------------------------


def test_app_insights_failures_carry_the_configured_identity_and_the_account(az):
    az.add_principal(OID, type="ServicePrincipal")
    az.add_principal(OTHER, type="ServicePrincipal")
    account = az.add_account("acct-a", deployments=["gpt"])
    app_id = f"/subscriptions/{az.subscription_id}/resourceGroups/rg/providers/Microsoft.Web/sites/web-b"
    az.add_app_resource(app_id, OTHER)
    az.add_traffic(resource="acct-a", route="/openai/deployments/gpt/chat/completions", caller=OID,
                   app_role_name="web-a")
    az.add_traffic(resource="acct-a", route="/openai/deployments/gpt/embeddings", caller=OTHER,
                   app_role_name="web-b")
    az.add_traffic(resource="acct-a", route="/openai/deployments/gpt/completions", caller=OTHER,
                   app_role_name="unmapped")
    t0 = az.clock.now()
    az.simulate(ticks=2)
    clients = make_clients(az, workspace_ids=(), appinsights_workspace_ids=(az.workspace_id,),
                           app_identities={"web-a": OID.upper(), "web-b": app_id})
    (source,) = clients.sources
    batch = source.read(t0 - timedelta(minutes=1), az.clock.now() + timedelta(seconds=1))

    assert source.name == f"appinsights:{az.workspace_id}" and batch.rejected == ()
    by_op = {s.operation: s for s in batch.signals}
    chat = by_op["POST /openai/deployments/gpt/chat/completions"]
    assert (chat.object_id, chat.auth, chat.status, chat.count) == (OID, ENTRA, 401, 2)
    assert chat.resource_id == account.lower() and chat.endpoint == "https://acct-a.openai.azure.com"
    assert chat.message and "PermissionDenied" in chat.message
    assert by_op["POST /openai/deployments/gpt/embeddings"].object_id == OTHER  # read from the app's identity
    assert by_op["POST /openai/deployments/gpt/completions"].object_id is None

    activity = source.activity(OID, account, t0 - timedelta(minutes=1), az.clock.now() + timedelta(seconds=1))
    assert (activity.failures, activity.successes) == (2, 0)

    # The app's identity is read from ARM once per run (the engine starts runs with evidence.new_run()).
    source.read(t0 - timedelta(minutes=1), az.clock.now() + timedelta(seconds=1))
    assert az.calls.count(service="arm", route="resources.get") == 1
    clients.evidence.new_run()
    source.read(t0 - timedelta(minutes=1), az.clock.now() + timedelta(seconds=1))
    assert az.calls.count(service="arm", route="resources.get") == 2


def test_app_insights_overlap_is_counted_server_side(az):
    az.add_account("acct-a")
    now = az.clock.now()
    watermark = now - timedelta(minutes=10)
    rows = [{"TimeGenerated": now - timedelta(minutes=m), "Target": "acct-a.openai.azure.com",
             "Name": "POST /openai/deployments/gpt/chat/completions", "ResultCode": "403", "OperationId": f"op-{m}",
             "AppRoleName": "web"} for m in (15, 12, 5)]
    az.add_log_rows("AppDependencies", rows)
    az.add_log_rows("AppExceptions", [{"TimeGenerated": now - timedelta(minutes=5), "OperationId": "op-5",
                                       "OuterMessage": "Error code: 403 - Access denied due to Virtual Network"}])
    clients = make_clients(az, workspace_ids=(), appinsights_workspace_ids=(az.workspace_id,),
                           app_identities={"web": OID})
    batch = clients.sources[0].read(watermark - timedelta(minutes=10), now, watermark=watermark)
    (signal,) = batch.signals
    assert (signal.count, signal.overlap_count, signal.status) == (3, 2, 403)
    assert signal.message == "Error code: 403 - Access denied due to Virtual Network"


# ---- a flood of distinct groups: read in hash buckets, each response bounded -------------------------------


class RecordingLogsClient:
    """The real LogsQueryClient, with the query texts it was asked to run written down."""

    def __init__(self, client):
        self.client = client
        self.queries: list[str] = []

    def query_workspace(self, workspace_id, query, **kwargs):
        self.queries.append(query)
        return self.client.query_workspace(workspace_id, query, **kwargs)


def _flood(az, groups):
    account = az.add_account("acct-a")
    now = az.clock.now()
    rows = []
    for n in range(groups):
        caller = f"5a000000-0000-4000-8000-{n:012x}"
        rows += [diag_row(now - timedelta(minutes=12), account, oid=caller),  # in the overlap
                 diag_row(now - timedelta(minutes=2 + n % 3), account, oid=caller)]
    az.add_log_rows("AzureDiagnostics", rows)
    return now


def _groups(batch):
    return sorted((s.object_id, s.count, s.overlap_count, s.first_seen, s.last_seen) for s in batch.signals)


def test_more_groups_than_one_response_holds_are_read_in_buckets_each_exactly_once(az, monkeypatch):
    from shared.adapters import logs

    now = _flood(az, 23)
    window = (now - timedelta(minutes=20), now)
    whole = make_clients(az).sources[0].read(*window, watermark=now - timedelta(minutes=10))
    assert len(whole.signals) == 23

    monkeypatch.setattr(logs, "GROUPS_PER_RESPONSE", 4)
    recording = RecordingLogsClient(make_clients(az)._logs)
    source = logs.LogAnalyticsSource(recording, az.workspace_id)
    first = source.read(*window, watermark=now - timedelta(minutes=10))
    assert _groups(first) == _groups(whole) and first.partial_errors == () and first.rejected == ()
    # Capped first attempt, then the groups counted per account bucket plan the pages; the one account's page is
    # read in hash buckets of its groups, every response holding at most 4 + 1 groups.
    assert "| take 5" in recording.queries[0]
    assert recording.queries[1].rstrip().endswith(f"| summarize Groups = count() by Bucket = {kql.ACCOUNT_BUCKET}")
    assert len(recording.queries) >= 2 + logs.buckets_for(23)
    first_queries = len(recording.queries)

    recording.queries.clear()
    again = source.read(*window, watermark=now - timedelta(minutes=10))
    assert _groups(again) == _groups(whole)
    # The next read starts with the pages the last one ended with: no capped attempt, no count, no split.
    assert all("hash_md5(GroupKey)" in q and "hash_md5(_ResourceId)" in q for q in recording.queries)
    assert len(recording.queries) <= first_queries - 2


def test_a_warm_source_pays_no_probe_and_a_page_that_grows_past_the_limit_splits(az, monkeypatch):
    from shared.adapters import logs

    accounts = [az.add_account(f"acct-{n:02d}") for n in range(12)]
    now = az.clock.now()
    az.add_log_rows("AzureDiagnostics", [
        diag_row(now - timedelta(minutes=3), account, oid=f"5a000000-0000-4000-8000-{a:04x}{n:08x}")
        for a, account in enumerate(accounts) for n in range(3)])
    monkeypatch.setattr(logs, "GROUPS_PER_RESPONSE", 10)
    recording = RecordingLogsClient(make_clients(az)._logs)
    source = logs.LogAnalyticsSource(recording, az.workspace_id)
    window = (now - timedelta(minutes=20), now)
    assert len(source.read(*window).signals) == 36
    planned = len(recording.queries)

    recording.queries.clear()
    assert len(source.read(*window).signals) == 36
    assert len(recording.queries) == planned - 2  # the same pages: no capped attempt, no count
    assert all("hash_md5(_ResourceId)" in q and "summarize Groups" not in q for q in recording.queries)

    # More callers on every account: pages that come back over the limit split; no group is lost or doubled.
    az.add_log_rows("AzureDiagnostics", [
        diag_row(now - timedelta(minutes=2), account, oid=f"5b000000-0000-4000-8000-{a:04x}{n:08x}")
        for a, account in enumerate(accounts) for n in range(4)])
    recording.queries.clear()
    batch = source.read(*window)
    assert len(batch.signals) == 36 + 48 and len({s.object_id for s in batch.signals}) == 84
    assert "summarize Groups" not in "".join(recording.queries)


def test_one_query_while_the_groups_fit_in_one_response(az):
    from shared.adapters import logs

    now = _flood(az, 6)
    recording = RecordingLogsClient(make_clients(az)._logs)
    batch = logs.LogAnalyticsSource(recording, az.workspace_id).read(now - timedelta(minutes=20), now)
    assert len(batch.signals) == 6 and len(recording.queries) == 1
    assert "hash_md5" not in recording.queries[0]
    assert recording.queries[0].endswith(f"| take {logs.GROUPS_PER_RESPONSE + 1}")


@given(count=st.integers(min_value=-3, max_value=400), depth=st.integers(min_value=0, max_value=3))
def test_buckets_cover_every_key_hash_exactly_once_however_they_are_split(count, depth):
    from shared.adapters.logs import buckets, split_bucket

    parts = buckets(count)
    assert 1 <= len(parts) <= 256
    for _ in range(depth):  # split the first bucket again and again, down to longer prefixes
        parts = split_bucket(parts[0]) + parts[1:]
    width = max(len(p) for bucket in parts for p in bucket)
    covered = [p + "".join(rest) for bucket in parts for p in bucket
               for rest in itertools.product("0123456789abcdef", repeat=width - len(p))]
    assert sorted(covered) == sorted("".join(d) for d in itertools.product("0123456789abcdef", repeat=width))


@settings(max_examples=40, deadline=None)
@given(counts=st.dictionaries(st.sampled_from(tuple(a + b for a in "0123456789abcdef" for b in "0123456789abcdef")),
                              st.integers(min_value=0, max_value=60_000), max_size=40))
def test_planned_pages_cover_every_account_bucket_once_and_fit_a_response(counts):
    from shared.adapters import logs

    pages = logs.plan_pages(counts)
    if pages == logs.WHOLE_WINDOW:
        assert sum(counts.values()) <= logs.GROUPS_PER_RESPONSE
        return
    hashes = [a + b for a in "0123456789abcdef" for b in "0123456789abcdef"]
    covered = [(account, group) for page in pages for account in page.accounts
               for group in (page.buckets or hashes)]  # two-digit group buckets: what a plan makes
    assert sorted(covered) == [(a, g) for a in logs.ACCOUNT_PREFIXES for g in hashes]
    for page in pages:
        assert page.groups <= logs.GROUPS_PER_RESPONSE
        if page.buckets is None:
            assert page.groups == sum(counts.get(p, 0) for p in page.accounts)
    assert set(logs.replan(list(pages))) == set(pages)  # a plan read as planned plans itself again
    for page in pages:  # a split page covers exactly what it did
        halves = page.split()
        assert sorted((a, g) for half in halves for a in half.accounts for g in (half.buckets or hashes)
                      if len(g) == 2) == sorted((a, g) for a in page.accounts for g in (page.buckets or hashes))
