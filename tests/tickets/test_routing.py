"""Routing of new tickets: TRIAGE_TICKET_ROUTES' validation, and the pure resolver (a sink's settings with the
owner's route over them) that every sink's create uses."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from shared.core.incidents import Incident
from shared.core.model import Evidence, FailureSignal, ResourceEvidence
from shared.core.triage import owner_of, with_evidence_identity
from shared.settings import SettingsError, load_settings
from shared.tickets.routing import route_for, sink_routing

ROUTES = {"payments": {"servicenow": {"assignment_group": "Payments Ops"}, "jira": {"components": ["payments"]},
                       "github": {"assignees": ["alice"]}, "azuredevops": {"area_path": "Proj\\Payments"}},
          "Search": {"jira": {"labels": "team-search", "issue_type": "Bug"}}}


def _settings(**env: str):
    return load_settings({"TRIAGE_ROUTING_TAG": "owner", "TRIAGE_TICKET_ROUTES": json.dumps(ROUTES),
                          "TRIAGE_SERVICENOW_ASSIGNMENT_GROUP": "Service Desk",
                          "TRIAGE_SERVICENOW_CATEGORY": "software",
                          "TRIAGE_JIRA_COMPONENTS": "platform", "TRIAGE_JIRA_LABELS": "aoai"} | env)


def test_a_route_replaces_the_fields_it_names_and_keeps_the_sinks_other_settings():
    s = _settings()
    assert route_for("servicenow", "payments", s) == {"assignment_group": "Payments Ops", "category": "software"}
    assert route_for("jira", "payments", s) == {"components": ("payments",), "labels": ("aoai",),
                                                "issue_type": "Task"}
    assert route_for("github", "payments", s) == {"assignees": ("alice",)}
    assert route_for("azuredevops", "payments", s) == {"area_path": "Proj\\Payments"}


def test_without_an_owner_or_a_route_for_it_the_sinks_settings_apply():
    s = _settings()
    for owner in (None, "", "nobody"):
        assert route_for("servicenow", owner, s) == {"assignment_group": "Service Desk", "category": "software"}
        assert route_for("github", owner, s) == {}
    assert route_for("jira", "search", s) == {"components": ("platform",), "labels": ("team-search",),
                                              "issue_type": "Bug"}  # exact first, else ignoring case
    assert route_for("log", "payments", s) == {} and route_for("webhook", "payments", s) == {}


def test_an_exact_owner_match_wins_over_a_case_insensitive_one():
    routes = {"Ops": {"servicenow": {"assignment_group": "A"}}, "ops": {"servicenow": {"assignment_group": "B"}}}
    s = _settings(TRIAGE_TICKET_ROUTES=json.dumps(routes))
    assert route_for("servicenow", "ops", s)["assignment_group"] == "B"
    assert route_for("servicenow", "Ops", s)["assignment_group"] == "A"
    assert sink_routing("jira", s).by_owner == {}


@pytest.mark.parametrize(("routes", "says"), [
    ("not json", "not JSON"),
    ("[]", "expected a JSON object"),
    ('{"payments": ["servicenow"]}', "route 'payments': expected an object of sink name -> fields"),
    ('{"payments": {"slack": {}}}', "unknown sink 'slack'"),
    ('{"payments": {"jira": ["payments"]}}', "route 'payments' -> jira: expected an object of fields"),
    ('{"payments": {"jira": {"component": ["x"]}}}', "unknown field(s) component; expected: components"),
    ('{"payments": {"servicenow": {"assignment_group": ""}}}', "servicenow.assignment_group: expected a non-empty"),
    ('{"payments": {"jira": {"components": [1]}}}', "jira.components: expected a list of non-empty strings"),
    ('{"payments": {"jira": {"labels": ["two words"]}}}', "Jira labels cannot contain spaces"),
    ('{" ": {"jira": {"labels": ["x"]}}}', "an owner tag value (a key) is empty"),
])
def test_routes_with_the_wrong_shape_are_refused_with_what_is_wrong_and_where(routes, says):
    with pytest.raises(SettingsError) as info:
        _settings(TRIAGE_TICKET_ROUTES=routes)
    assert "TRIAGE_TICKET_ROUTES" in str(info.value) and says in str(info.value)


def test_routes_need_the_routing_tag():
    with pytest.raises(SettingsError) as info:
        _settings(TRIAGE_ROUTING_TAG="")
    assert "set TRIAGE_ROUTING_TAG too" in str(info.value)
    assert load_settings({"TRIAGE_ROUTING_TAG": "owner"}).ticket_routes == {}  # a tag alone: owner recorded


def test_jira_labels_setting_refuses_spaces():
    with pytest.raises(SettingsError) as info:
        load_settings({"TRIAGE_JIRA_LABELS": "ok,not ok"})
    assert "TRIAGE_JIRA_LABELS" in str(info.value)


def test_the_owner_is_the_tag_value_with_the_tag_name_matched_ignoring_case():
    tags = (("Env", "prod"), ("OWNER", " payments "))
    assert owner_of(tags, "owner") == "payments"
    assert owner_of(tags, "team") is None and owner_of((), "owner") is None
    assert owner_of((("owner", " "),), "owner") is None and owner_of(tags, "") is None


def test_the_incident_keeps_its_owner_when_the_account_could_not_be_read():
    now = datetime(2026, 3, 1, tzinfo=UTC)
    incident = Incident(id="i", fingerprint="f", principal_id=None, resource_id="/x", cause="c", status="diagnosed",
                        first_seen=now, last_seen=now)
    signal = FailureSignal(status=401, resource_id="/x")
    tagged = Evidence(resource=ResourceEvidence(resource_id="/x", tags=(("owner", "payments"),)))
    owned = with_evidence_identity(incident, tagged, signal, routing_tag="owner")
    assert owned.owner == "payments"
    assert with_evidence_identity(owned, Evidence(failed=("account",)), signal, routing_tag="owner").owner == \
        "payments"
    untagged = Evidence(resource=ResourceEvidence(resource_id="/x"))
    assert with_evidence_identity(owned, untagged, signal, routing_tag="owner").owner is None  # tag removed
    assert with_evidence_identity(replace(incident), tagged, signal).owner is None  # no routing tag set
