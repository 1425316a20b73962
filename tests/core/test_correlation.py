"""Client-side records joined to server-side ones (shared/core/correlation.py)."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.core.correlation import identity_from_client_records, is_client_record, join_client_records
from shared.core.model import FailureSignal

ACCOUNT = ("/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/"
           "Microsoft.CognitiveServices/accounts/hub")
OID = "0a1b2c3d-4e5f-4061-8273-9485a6b7c8d9"
AT = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
DENIED = "Error code: 401 - {'error': {'code': 'PermissionDenied', 'message': 'The principal ... lacks ...'}}"

SERVER = FailureSignal(status=401, object_id=OID, auth="entra", operation="Assistants_List",
                       route="Azure AI Foundry Projects API", resource_id=ACCOUNT.upper(), count=4, first_seen=AT,
                       last_seen=AT + timedelta(minutes=3), source="logs:ws")
CLIENT = FailureSignal(status=401, message=DENIED, object_id=OID, auth="entra", endpoint="https://hub.services.ai.azure.com",
                       route="/api/projects/p1/assistants", operation="GET /api/projects/p1/assistants",
                       resource_id=ACCOUNT.lower(), count=4, first_seen=AT, last_seen=AT + timedelta(minutes=3),
                       source="appinsights:ws")


def test_a_confirmed_client_group_gives_the_server_group_its_url_and_text_and_is_absorbed():
    [joined] = join_client_records([SERVER, CLIENT])
    assert joined.source == "logs:ws" and joined.object_id == OID and joined.count == 4
    assert joined.endpoint == "https://hub.services.ai.azure.com/api/projects/p1/assistants"
    assert joined.message == DENIED and joined.route == SERVER.route and joined.operation == SERVER.operation
    assert not identity_from_client_records(joined)


def test_the_order_of_the_sources_does_not_matter():
    assert join_client_records([CLIENT, SERVER]) == join_client_records([SERVER, CLIENT])


def test_nothing_joins_across_callers_accounts_statuses_or_times():
    other_caller = replace(CLIENT, object_id="5d4c3b2a-1908-4776-a655-443322110f04")
    other_account = replace(CLIENT, resource_id=ACCOUNT.replace("/hub", "/other"))
    other_status = replace(CLIENT, status=403)
    later = replace(CLIENT, first_seen=AT + timedelta(minutes=10), last_seen=AT + timedelta(minutes=12))
    for client in (other_caller, other_account, other_status, later):
        assert join_client_records([SERVER, client]) == [SERVER, client]


def test_a_server_row_without_a_logged_caller_joins_nothing():
    anonymous = replace(SERVER, object_id=None, auth="key")
    assert join_client_records([anonymous, CLIENT]) == [anonymous, CLIENT]
    assert identity_from_client_records(CLIENT) and is_client_record(CLIENT)


def test_times_within_the_slack_still_join():
    close = replace(CLIENT, first_seen=AT + timedelta(minutes=7), last_seen=AT + timedelta(minutes=8))
    assert len(join_client_records([SERVER, close])) == 1


def test_client_groups_that_called_different_urls_are_absorbed_without_speaking_for_the_server_group():
    models = replace(CLIENT, route="/models/chat/completions", operation="POST /models/chat/completions")
    [joined] = join_client_records([SERVER, CLIENT, models])
    assert joined == SERVER


def test_a_text_the_server_row_has_is_kept():
    own_text = replace(SERVER, message="server text")
    [joined] = join_client_records([own_text, CLIENT])
    assert joined.message == "server text" and joined.endpoint.endswith("/api/projects/p1/assistants")


def test_a_client_signal_without_a_caller_is_not_named_by_telemetry():
    assert not identity_from_client_records(replace(CLIENT, object_id=None))
    assert not identity_from_client_records(None)


GATEWAY = replace(CLIENT, message="Principal does not have access to API/Operation.", code="PermissionDenied",
                  endpoint="https://hub.openai.azure.com", route="/openai/deployments/gpt/chat/completions",
                  operation="POST /openai/deployments/gpt/chat/completions", source="apim:ws")


def test_a_gateway_group_that_the_accounts_row_confirms_is_the_same_failures_counted_once():
    [joined] = join_client_records([SERVER, GATEWAY])
    assert joined.source == "logs:ws" and joined.count == SERVER.count
    assert joined.endpoint == "https://hub.openai.azure.com/openai/deployments/gpt/chat/completions"
    assert joined.message == GATEWAY.message and not identity_from_client_records(joined)


def test_a_gateway_group_alone_is_not_named_by_telemetry():
    # Its caller is the gateway's identity, read from the ARM resource Azure names in the row.
    assert join_client_records([GATEWAY]) == [GATEWAY]
    assert not is_client_record(GATEWAY) and not identity_from_client_records(GATEWAY)
