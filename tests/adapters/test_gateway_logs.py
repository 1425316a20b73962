"""The API Management gateway source through the real LogsQueryClient and ARM pipeline against the stand-in.

The gateway's identity is read from its Microsoft.ApiManagement/service resource; the account from the backend host.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from localazure import FakeCredential
from shared.adapters.azure import AzureClients
from shared.adapters.logs import SourceError
from shared.core.model import ENTRA
from shared.core.ports import Activity
from shared.settings import Settings

CLIENT = "5a000000-0000-4000-8000-00000000c11e"  # the gateway's caller: never the failing principal
GATEWAY_OID = "5a000000-0000-4000-8000-0000000000a1"
OTHER_OID = "5a000000-0000-4000-8000-0000000000a2"
CHAT = "/openai/deployments/gpt/chat/completions"


@pytest.fixture
def az(local_azure_factory):
    return local_azure_factory(None)


def gateway_clients(az, **settings):
    base = Settings(arm_endpoint=az.arm_url, logs_endpoint=az.logs_url, ca_bundle=az.ca_path,
                    subscription_id=az.subscription_id, apim_workspace_ids=(az.workspace_id,))
    return AzureClients.from_settings(replace(base, **settings), FakeCredential(),
                                      client_options={"retry_backoff_factor": 0.01})


def window(az, t0):
    return t0 - timedelta(minutes=1), az.clock.now() + timedelta(seconds=1)


def test_settings_build_one_gateway_source_per_workspace():
    clients = AzureClients.from_settings(Settings(workspace_ids=("ws-1",), apim_workspace_ids=("ws-2", "ws-3")),
                                         FakeCredential())
    assert [s.name for s in clients.sources] == ["logs:ws-1", "apim:ws-2", "apim:ws-3"]


def test_backend_failures_are_the_gateways_identity_on_the_backend_account(az):
    account = az.add_account("acct-a", deployments=["gpt"])
    system = az.add_gateway("apim-a", GATEWAY_OID)
    az.add_gateway("apim-b", OTHER_OID, user_assigned=True)
    az.add_traffic("acct-a", CHAT, gateway="apim-a", caller=CLIENT, client_ip="203.0.113.7", per_tick=2)
    az.add_traffic("acct-a", "/openai/deployments/gpt/embeddings", gateway="apim-b", caller=CLIENT)
    t0 = az.clock.now()
    az.simulate(ticks=2)
    clients = gateway_clients(az)
    (source,) = clients.sources
    batch = source.read(*window(az, t0))

    assert source.name == f"apim:{az.workspace_id}" and batch.rejected == () and batch.partial_errors == ()
    by_route = {s.route: s for s in batch.signals}
    chat = by_route[CHAT]
    assert (chat.status, chat.object_id, chat.auth, chat.count) == (401, GATEWAY_OID, ENTRA, 4)
    assert chat.resource_id == account.lower() and chat.endpoint == "https://acct-a.openai.azure.com"
    assert (chat.operation, chat.source) == (f"POST {CHAT}", source.name)
    assert (chat.code, chat.message) == (None, None)  # APIM logs no error of its own for a backend 401
    assert by_route["/openai/deployments/gpt/embeddings"].object_id == OTHER_OID  # its one user-assigned identity
    assert all(s.object_id != CLIENT for s in batch.signals)

    # Each gateway's identity is read from ARM once per run.
    source.read(*window(az, t0))
    assert az.calls.count(service="arm", route="resources.get") == 2
    clients.evidence.new_run()
    source.read(*window(az, t0))
    assert az.calls.count(service="arm", route="resources.get") == 4
    assert system.lower() in {c.path.lower().split("?")[0] for c in az.calls.records if c.route == "resources.get"}


def test_the_backend_body_gives_code_and_message_when_the_gateway_logs_it(az):
    az.add_account("acct-a")
    az.add_gateway("apim-a", GATEWAY_OID, log_backend_body=True)
    az.add_traffic("acct-a", CHAT, gateway="apim-a")
    t0 = az.clock.now()
    az.simulate(ticks=1)
    (signal,) = gateway_clients(az).sources[0].read(*window(az, t0)).signals
    assert signal.code == "PermissionDenied" and f"principal `{GATEWAY_OID}`" in (signal.message or "")


def test_overlap_unknown_gateways_hosts_and_malformed_rows(az):
    account = az.add_account("acct-a")
    gateway = az.add_gateway("apim-a", GATEWAY_OID)
    now = az.clock.now()
    watermark = now - timedelta(minutes=10)

    def row(minutes, *, resource=None, url=f"https://acct-a.openai.azure.com{CHAT}?api-version=1"):
        return {"TimeGenerated": now - timedelta(minutes=minutes),
                "_ResourceId": gateway.lower() if resource is None else resource, "BackendMethod": "POST",
                "BackendUrl": url, "BackendResponseCode": 403, "ResponseCode": 403}

    unknown_gateway = gateway.lower().replace("apim-a", "apim-gone")
    az.add_log_rows("ApiManagementGatewayLogs", [
        row(15), row(5), row(4),
        row(3, resource=unknown_gateway),
        row(3, url=f"https://elsewhere.openai.azure.com{CHAT}"),
        row(2, resource=""),
    ])
    source = gateway_clients(az).sources[0]
    batch = source.read(watermark - timedelta(minutes=10), now, watermark=watermark)
    by_key = {(s.object_id, s.resource_id): s for s in batch.signals}
    known = by_key[(GATEWAY_OID, account.lower())]
    assert (known.count, known.overlap_count, known.status) == (3, 1, 403)
    assert (None, account.lower()) in by_key  # a gateway ARM does not know: the caller stays unknown
    assert (GATEWAY_OID, None) in by_key  # a host of no known account: the resource stays unknown
    (rejected,) = batch.rejected
    assert "missing gateway resource id" in rejected.reason

    only = source.read(watermark - timedelta(minutes=10), now, (account,), watermark=watermark)
    assert {s.resource_id for s in only.signals} == {account.lower()}


def test_activity_counts_the_gateways_backend_calls_once_it_holds_the_role(az):
    account = az.add_account("acct-a")
    az.add_gateway("apim-a", GATEWAY_OID)
    az.add_gateway("apim-b", OTHER_OID)
    az.add_traffic("acct-a", CHAT, gateway="apim-a")
    az.add_traffic("acct-a", CHAT, gateway="apim-b")
    t0 = az.clock.now()
    az.simulate(ticks=2)
    az.add_assignment(GATEWAY_OID, "Cognitive Services OpenAI User", "account:acct-a", created_ago_seconds=3600)
    az.simulate(ticks=3)
    source = gateway_clients(az).sources[0]

    mine = source.activity(GATEWAY_OID.upper(), account, *window(az, t0))
    assert (mine.failures, mine.successes) == (2, 3)
    assert source.activity(OTHER_OID, account, *window(az, t0)).failures == 5
    assert source.activity(None, account, *window(az, t0)) == Activity(0, 0)  # key callers: no gateway identity

    az.faults.add(service="logs", partial=True)
    with pytest.raises(SourceError, match="partial result while verifying"):
        source.activity(GATEWAY_OID, account, *window(az, t0))


def test_a_workspace_without_gateway_logs_is_no_data_yet(az):
    account = az.add_account("acct-a")
    empty = az.add_workspace(missing_tables=["ApiManagementGatewayLogs"])
    az.add_gateway("apim-a", GATEWAY_OID)
    (source,) = gateway_clients(az, apim_workspace_ids=(empty,)).sources
    now = az.clock.now()
    batch = source.read(now - timedelta(hours=1), now)
    assert batch.signals == () and batch.partial_errors == ()
    assert empty in batch.no_data and "SEM0100" in batch.no_data
    assert "table or column expression named 'ApiManagementGatewayLogs'" in batch.no_data
    assert source.activity(GATEWAY_OID, account, now - timedelta(hours=1), now) == Activity(0, 0)
    assert az.calls.count(service="logs", route="logs.query", status=400) == 2  # both answered "no such table"
