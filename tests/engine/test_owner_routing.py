"""Owner-tag routing end to end: the account's `owner` tag (read by ARM with the account's settings) picks the
route in TRIAGE_TICKET_ROUTES, and the new ServiceNow incident and Jira issue land with that route's fields;
an untagged account's tickets keep the sinks' own routing settings."""

from __future__ import annotations

import json
import uuid

import pytest

from tests.support.engine import service_world

pytestmark = pytest.mark.slow  # a service world on the local Azure stand-in and the tracker stand-ins

PAYMENTS_CALLER = str(uuid.UUID(int=0x0A4E_0000_4000_8000_000000000001))
OTHER_CALLER = str(uuid.UUID(int=0x0A4E_0000_4000_8000_000000000002))
ROUTES = {"payments": {"servicenow": {"assignment_group": "Payments Ops"}, "jira": {"components": ["payments"],
                                                                                    "labels": ["team-payments"]}}}


@pytest.mark.parametrize("resource_graph", ["false", "true"])  # the tags from ARM's GET, or Resource Graph's
def test_an_account_tagged_owner_payments_routes_its_tickets_to_payments_ops(tmp_path, resource_graph):
    with service_world(tmp_path, mode="recommend", sinks="servicenow,jira", TRIAGE_ROUTING_TAG="owner",
                       TRIAGE_TICKET_ROUTES=json.dumps(ROUTES), TRIAGE_SERVICENOW_ASSIGNMENT_GROUP="Service Desk",
                       TRIAGE_JIRA_COMPONENTS="platform", TRIAGE_RESOURCE_GRAPH=resource_graph) as world:
        servicenow = world.trackers.app("servicenow")
        payments_ops, service_desk = servicenow.add_group("Payments Ops"), servicenow.add_group("Service Desk")
        # Azure tag names are case-insensitive: "Owner" is the `owner` tag.
        payments = world.az.add_account("aoai-payments", tags={"Owner": "payments", "env": "prod"})
        other = world.az.add_account("aoai-other")
        world.failing_caller(PAYMENTS_CALLER, account="aoai-payments")
        world.failing_caller(OTHER_CALLER, account="aoai-other")
        world.run_traffic(3)
        report = world.scan()
        assert report.evidence_errors == []
        assert (world.az.calls.count(service="arm", route="resourceGraph.resources") > 0) == (resource_graph == "true")

        routed, unrouted = world.incident_of(PAYMENTS_CALLER), world.incident_of(OTHER_CALLER)
        assert (routed.resource_id, routed.owner) == (payments.lower(), "payments")
        assert (unrouted.resource_id, unrouted.owner) == (other.lower(), None)

        def ticket(tracker, incident):  # the incident keeps each ticket's URL
            (found,) = [t for t in world.trackers.tickets(tracker) if incident.ticket_refs[tracker].endswith(
                t.raw["sys_id"] if tracker == "servicenow" else "/browse/" + t.ref)]
            return found

        assert ticket("servicenow", routed).raw["assignment_group"] == payments_ops
        assert ticket("servicenow", unrouted).raw["assignment_group"] == service_desk

        payments_issue, other_issue = ticket("jira", routed), ticket("jira", unrouted)
        assert [c["name"] for c in payments_issue.raw["fields"]["components"]] == ["payments"]
        assert "team-payments" in payments_issue.markers
        assert [c["name"] for c in other_issue.raw["fields"]["components"]] == ["platform"]
        assert "team-payments" not in other_issue.markers


def test_a_route_applies_on_create_only_so_a_person_s_reassignment_stays(tmp_path):
    with service_world(tmp_path, mode="recommend", sinks="servicenow", TRIAGE_ROUTING_TAG="owner",
                       TRIAGE_TICKET_ROUTES=json.dumps(ROUTES), TRIAGE_TICKET_COMMENT_INTERVAL_MINUTES="0") as world:
        servicenow = world.trackers.app("servicenow")
        payments_ops, triage_team = servicenow.add_group("Payments Ops"), servicenow.add_group("Triage")
        world.az.add_account("aoai-payments", tags={"owner": "payments"})
        world.failing_caller(PAYMENTS_CALLER, account="aoai-payments")
        world.run_traffic(3)
        world.scan()
        (incident,) = servicenow.records.values()
        assert incident["assignment_group"] == payments_ops
        incident["assignment_group"] = triage_team  # a person re-routes it
        world.run_traffic(2)
        world.scan()
        (incident,) = servicenow.records.values()
        assert incident["assignment_group"] == triage_team
        assert servicenow.journal[incident["sys_id"]], "the recurrence reached the incident"
