"""Chat messages name the caller, not its object id, where the service can tell its name without Microsoft Graph:
Resource Graph finds the managed identity's ARM resource (a user-assigned identity, or the resource a system-assigned
one belongs to) in the scan's evidence batch; an Application Insights caller is named by its AppRoleName. A caller
with neither keeps its object id. A name from ARM is untrusted text: the sinks escape it."""

from __future__ import annotations

import pytest

from localazure import LogShape
from localazure.trackers.slack import block_problems
from shared.tickets.markup.adaptive_card import card_texts
from tests.support.engine import service_world

pytestmark = pytest.mark.slow  # a service world on the local Azure stand-in

UAMI = "7d3e9a10-2b4c-4f5e-8a6b-00000000aa01"  # a user-assigned identity "orders-identity"
SITE = "7d3e9a10-2b4c-4f5e-8a6b-00000000aa02"  # the system-assigned identity of the web app "billing-api"
PLAIN = "7d3e9a10-2b4c-4f5e-8a6b-00000000aa03"  # an app registration's service principal: no ARM resource
GRAPH = "resourceGraph.resources"


def _identities(world) -> None:
    world.az.add_managed_identity("orders-identity", UAMI)
    world.az.add_managed_identity("billing-api", SITE, resource_group="rg-apps", resource_type="Microsoft.Web/sites")
    for oid in (UAMI, SITE, PLAIN):
        world.failing_caller(oid)
    world.run_traffic(3)
    world.scan()


def test_slack_names_managed_identities_by_their_resources_and_others_by_object_id(tmp_path):
    with service_world(tmp_path, mode="recommend", sinks="slack", TRIAGE_RESOURCE_GRAPH="true") as world:
        _identities(world)
        assert {oid: world.incident_of(oid).principal_name for oid in (UAMI, SITE, PLAIN)} == {
            UAMI: "orders-identity", SITE: "billing-api", PLAIN: None}
        headers = sorted(m.blocks[0]["text"]["text"] for m in world.trackers.app("slack").channel_messages())
        assert headers == ["[missing_data_role] 7d3e9a10-2b4c-4f5e-8a6b-00000000aa03 on aoai",
                           "[missing_data_role] billing-api on aoai",
                           "[missing_data_role] orders-identity on aoai"]
        # The names cost one Resource Graph query for the scan's principals, and no ARM read.
        reads = world.az.calls.count(service="arm", kind="read") - world.az.calls.count(service="arm", route=GRAPH)
        assert reads == 0


def test_teams_cards_name_the_identity(tmp_path):
    with service_world(tmp_path, mode="recommend", sinks="teams", TRIAGE_RESOURCE_GRAPH="true") as world:
        _identities(world)
        cards = [" ".join(text for _, text in card_texts(run.card)) for run in world.trackers.app("teams").runs]
        assert len(cards) == 3
        assert sum("orders-identity" in c for c in cards) == 1 and sum("billing-api" in c for c in cards) == 1
        assert sum(PLAIN in c for c in cards) == 1


def test_without_resource_graph_no_name_is_read_and_titles_keep_object_ids(tmp_path):
    with service_world(tmp_path, mode="recommend", sinks="slack") as world:
        _identities(world)
        assert all(world.incident_of(oid).principal_name is None for oid in (UAMI, SITE, PLAIN))
        assert world.az.calls.count(service="arm", route=GRAPH) == 0
        assert world.az.calls.count(service="arm", route="resources.get") == 0


def test_an_application_insights_caller_is_named_by_its_app_role_name(tmp_path):
    with service_world(tmp_path, mode="recommend", sinks="slack", log_shape=LogShape(rejections_logged=False),
                       apps={"checkout-web": PLAIN}) as world:
        world.failing_caller(PLAIN, app="checkout-web")
        world.run_traffic(3)
        world.scan()
        assert world.incident_of(PLAIN).principal_name == "checkout-web"
        (message,) = world.trackers.app("slack").channel_messages()
        assert message.blocks[0]["text"]["text"] == "[missing_data_role] checkout-web on aoai"


def test_a_hostile_name_from_arm_is_escaped_by_the_sink(tmp_path):
    hostile = "<!channel> *urgent* <https://evil.example|click>"
    with service_world(tmp_path, mode="recommend", sinks="slack", TRIAGE_RESOURCE_GRAPH="true") as world:
        # A resource name Azure would refuse, served as the stand-in's ARM body: the service must not trust names.
        world.az.add_principal(UAMI, managed_identity=True)
        resource = (f"/subscriptions/{world.az.subscription_id}/resourceGroups/rg/providers/"
                    "Microsoft.ManagedIdentity/userAssignedIdentities/x")
        world.az.state.put_app_resource(resource, UAMI)["name"] = hostile
        world.failing_caller(UAMI)
        world.failing_caller(PLAIN)  # two callers: the scan's batch reads Resource Graph
        world.run_traffic(3)
        world.scan()
        assert world.incident_of(UAMI).principal_name == hostile
        messages = world.trackers.app("slack").channel_messages()
        (message,) = [m for m in messages if "channel" in m.text]
        assert not block_problems(message.blocks)
        assert "<!channel>" not in str(message.blocks) and "<!channel>" not in message.text
        assert "&lt;!channel&gt;" in message.blocks[0]["text"]["text"]
