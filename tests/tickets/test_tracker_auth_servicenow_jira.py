"""Tracker credentials other than the defaults, over HTTPS against the stand-ins through factory-built sinks:
ServiceNow's OAuth client credentials grant (minted, reused, refreshed before expiry and after a 401, refused)
and Jira Data Center (REST v2, wiki markup, a personal access token as a Bearer token)."""

from __future__ import annotations

import base64
import logging
from collections.abc import Iterator
from dataclasses import replace

import pytest

from shared.settings import load_settings
from shared.tickets.base import TicketAuthError, TicketError
from shared.tickets.factory import build_sinks
from shared.tickets.http import HttpResult
from shared.tickets.markup.wiki import wiki_plain_text
from shared.tickets.oauth import REFRESH_MARGIN
from shared.tickets.sanitize import ZWSP
from tests.support.trackers import CREDENTIALS, FAST, make_content, new_sink, tickets_for


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _oauth_sink(standins, clock=None, **overrides: str):
    env = standins.settings_env() | standins.servicenow_oauth_env() | {
        "TRIAGE_TICKET_SINKS": "servicenow", "TRIAGE_CA_BUNDLE": standins.ca_path} | overrides
    (sink,) = build_sinks(load_settings(env), http_options=FAST, token_clock=clock)
    return sink


def _received_since(standins, tracker: str, before: int):
    return standins.received(tracker)[before:]


# ---- ServiceNow OAuth client credentials ----


def test_settings_pick_oauth_when_only_a_client_is_configured_and_basic_when_a_user_is(standins):
    env = standins.settings_env() | {"TRIAGE_TICKET_SINKS": "servicenow"}
    assert load_settings(env).servicenow_auth == "basic"
    oauth = env | {"TRIAGE_SERVICENOW_USER": "", "TRIAGE_SERVICENOW_PASSWORD": "",
                   "TRIAGE_SERVICENOW_CLIENT_ID": "id", "TRIAGE_SERVICENOW_CLIENT_SECRET": "secret"}
    assert load_settings(oauth).servicenow_auth == "oauth"
    with pytest.raises(ValueError) as info:
        load_settings(oauth | {"TRIAGE_SERVICENOW_CLIENT_SECRET": ""})
    assert "TRIAGE_SERVICENOW_CLIENT_SECRET: required" in str(info.value)
    with pytest.raises(ValueError) as info:
        load_settings(env | {"TRIAGE_SERVICENOW_AUTH": "oauth"})
    assert "TRIAGE_SERVICENOW_CLIENT_ID: required" in str(info.value)


def test_a_token_is_minted_once_and_reused_for_every_table_call(standins):
    app = standins.app("servicenow")
    issued, before = app.tokens_issued, len(standins.received("servicenow"))
    sink = _oauth_sink(standins)
    content = make_content()
    assert sink.open_or_update(content).created
    sink.open_or_update(replace(content, count=9), comment="Still failing.")
    assert sink.resolve(content, comment="Resolved: role assigned.") is not None
    assert app.tokens_issued == issued + 1
    sent = _received_since(standins, "servicenow", before)
    token_calls = [r for r in sent if r.path == "/oauth_token.do"]
    assert len(token_calls) == 1 and token_calls[0].method == "POST"
    assert token_calls[0].headers["content-type"] == "application/x-www-form-urlencoded"
    assert "grant_type=client_credentials" in token_calls[0].text
    assert "authorization" not in token_calls[0].headers  # the client authenticates in the form
    table_calls = [r for r in sent if r.path.startswith("/api/now/table/")]
    assert len(table_calls) >= 5
    headers = {r.headers["authorization"] for r in table_calls}
    (header,) = headers
    assert header.startswith("Bearer ") and header[7:] in app.tokens
    (ticket,) = tickets_for(standins, "servicenow", content)
    assert not ticket.is_open and len(ticket.comments) >= 2


def test_the_token_is_refreshed_before_it_expires_not_after(standins):
    app = standins.app("servicenow")
    clock = FakeClock()
    sink = _oauth_sink(standins, clock)
    issued = app.tokens_issued
    sink.probe()
    lifetime = app.token_lifespan - 1  # expires_in as the instance answers it
    clock.now += lifetime - REFRESH_MARGIN - 1  # still comfortably valid: reused
    sink.probe()
    assert app.tokens_issued == issued + 1
    clock.now += 2  # inside the margin: replaced while the old one would still be accepted
    before = len(standins.received("servicenow"))
    sink.probe()
    assert app.tokens_issued == issued + 2
    assert [r.path for r in _received_since(standins, "servicenow", before)][0] == "/oauth_token.do"
    assert all(r.status < 400 for r in standins.calls.records[-2:])  # no 401 was needed


def test_a_401_drops_the_token_and_the_call_is_made_once_more_with_a_new_one(standins):
    app = standins.app("servicenow")
    sink = _oauth_sink(standins)
    content = make_content()
    sink.open_or_update(content)
    issued = app.tokens_issued
    app.expire_tokens()  # revoked, or its lifespan shortened by an admin: the cache still thinks it valid
    before = len(standins.received("servicenow"))
    assert not sink.open_or_update(replace(content, count=5)).created
    assert app.tokens_issued == issued + 1
    calls = [(c.request.path, c.status) for c in standins.calls.records if c.service == "servicenow"][before:]
    assert calls[0] == ("/api/now/table/incident", 401)
    assert calls[1] == ("/oauth_token.do", 200)
    assert calls[2] == ("/api/now/table/incident", 200)
    assert len(tickets_for(standins, "servicenow", content)) == 1


def test_a_token_refused_twice_is_the_credentials_fault_not_a_loop(standins, monkeypatch):
    app = standins.app("servicenow")
    sink = _oauth_sink(standins)
    sink.probe()
    monkeypatch.setattr(app, "token_lifespan", 0)  # every new token is already expired when it is used
    app.expire_tokens()
    issued = app.tokens_issued
    with pytest.raises(TicketAuthError) as info:
        sink.probe()
    assert app.tokens_issued == issued + 1  # one refresh, then the error
    assert "credentials rejected (HTTP 401" in str(info.value)
    assert "TRIAGE_SERVICENOW_CLIENT_ID" in str(info.value)


@pytest.mark.parametrize("problem", ["wrong secret", "unknown client", "grant disabled"])
def test_a_refused_token_request_is_an_auth_error_naming_the_settings_and_no_secret(standins, problem,
                                                                                     monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    app = standins.app("servicenow")
    overrides = {}
    if problem == "wrong secret":
        overrides["TRIAGE_SERVICENOW_CLIENT_SECRET"] = "LEAKCANARYwrongsecret"
    elif problem == "unknown client":
        overrides["TRIAGE_SERVICENOW_CLIENT_ID"] = "someone-else"
    else:
        monkeypatch.setattr(app, "client_credentials_enabled", False)
    sink = _oauth_sink(standins, **overrides)
    with pytest.raises(TicketAuthError) as info:
        sink.open_or_update(make_content())
    message = str(info.value)
    assert "credentials rejected (HTTP 401" in message
    assert "TRIAGE_SERVICENOW_CLIENT_ID / TRIAGE_SERVICENOW_CLIENT_SECRET" in message
    for secret in ("LEAKCANARY", CREDENTIALS.servicenow_client_secret):
        assert secret not in message and secret not in caplog.text


def test_issued_tokens_and_the_client_secret_never_reach_messages_logs_or_tickets(standins, caplog):
    caplog.set_level(logging.DEBUG)
    app = standins.app("servicenow")
    sink = _oauth_sink(standins)
    content = make_content()
    sink.open_or_update(content)
    sink.open_or_update(replace(content, escalated=True), comment="still failing")
    app.expire_tokens()
    sink.resolve(content, comment="Resolved.")
    standins.faults.add("servicenow", status=503, times=FAST.retry_total + 1, retry_after=0.01)
    with pytest.raises(TicketError) as info:
        sink.open_or_update(make_content())
    tokens = list(app.tokens)
    assert tokens
    # An answer that echoes the token (a proxy's error page, a verbose instance) is redacted too.
    echoed = HttpResult(400, {}, f'{{"error": {{"message": "bad token {tokens[-1]}"}}}}'.encode())
    outputs = [str(info.value), str(sink._http.error_for(echoed)), caplog.text]
    outputs += [t.title + t.body + "".join(t.comments) for t in standins.tickets("servicenow")]
    outputs += [r.path + repr(r.query) for r in standins.received("servicenow")]
    everything = "\n".join(outputs)
    assert "Request URL" in caplog.text
    for secret in (*tokens, CREDENTIALS.servicenow_client_secret, "LEAKCANARY"):
        assert secret not in everything


def test_basic_auth_still_works_and_sends_no_token_request(standins):
    before = len(standins.received("servicenow"))
    assert new_sink(standins, "servicenow").open_or_update(make_content()).created
    sent = _received_since(standins, "servicenow", before)
    assert all(r.path != "/oauth_token.do" and r.headers["authorization"].startswith("Basic ") for r in sent)


# ---- ServiceNow routing ----


def test_assignment_group_by_name_or_sys_id_and_category_land_on_created_incidents_only(standins):
    app = standins.app("servicenow")
    network = app.add_group("Network Ops")
    by_name = new_sink(standins, "servicenow", TRIAGE_SERVICENOW_ASSIGNMENT_GROUP="Network Ops",
                       TRIAGE_SERVICENOW_CATEGORY="software")
    content = make_content()
    by_name.open_or_update(content)
    (ticket,) = tickets_for(standins, "servicenow", content)
    assert (ticket.raw["assignment_group"], ticket.raw["category"]) == (network, "software")
    app.records[ticket.raw["sys_id"]]["assignment_group"] = ""  # a person takes it off the group
    by_name.open_or_update(replace(content, count=8), comment="again")
    (ticket,) = tickets_for(standins, "servicenow", content)
    assert ticket.raw["assignment_group"] == ""  # updates do not route again
    by_id = new_sink(standins, "servicenow", TRIAGE_SERVICENOW_ASSIGNMENT_GROUP=network)
    other = make_content()
    before = len(standins.received("servicenow"))
    by_id.open_or_update(other)
    (ticket,) = tickets_for(standins, "servicenow", other)
    assert (ticket.raw["assignment_group"], ticket.raw["category"]) == (network, "inquiry")
    assert all(r.path != "/api/now/table/sys_user_group" for r in _received_since(standins, "servicenow", before))


def test_a_group_name_is_looked_up_once_and_an_unknown_one_leaves_the_incident_unassigned(standins, caplog):
    app = standins.app("servicenow")
    app.add_group("Identity Ops")
    sink = new_sink(standins, "servicenow", TRIAGE_SERVICENOW_ASSIGNMENT_GROUP="Identity Ops")
    before = len(standins.received("servicenow"))
    for _ in range(2):
        sink.open_or_update(make_content())
    lookups = [r for r in _received_since(standins, "servicenow", before) if r.path == "/api/now/table/sys_user_group"]
    assert len(lookups) == 1 and lookups[0].query["sysparm_query"] == ["name=Identity Ops"]
    assert sink.probe()
    missing = new_sink(standins, "servicenow", TRIAGE_SERVICENOW_ASSIGNMENT_GROUP="No Such Team")
    content = make_content()
    assert missing.open_or_update(content).created  # the incident still opens
    (ticket,) = tickets_for(standins, "servicenow", content)
    assert ticket.raw["assignment_group"] == ""
    assert "no assignment group named 'No Such Team'" in caplog.text
    with pytest.raises(TicketError) as info:
        missing.probe()  # the self-check says so
    assert "TRIAGE_SERVICENOW_ASSIGNMENT_GROUP" in str(info.value)


def test_an_owner_route_overrides_the_assignment_group_for_that_owner_only(standins):
    app = standins.app("servicenow")
    payments, desk = app.add_group("Payments Ops"), app.add_group("Service Desk")
    routes = '{"Payments": {"servicenow": {"assignment_group": "Payments Ops"}}}'
    sink = new_sink(standins, "servicenow", TRIAGE_SERVICENOW_ASSIGNMENT_GROUP="Service Desk",
                    TRIAGE_ROUTING_TAG="owner", TRIAGE_TICKET_ROUTES=routes)
    routed, unknown, unowned = make_content(owner="payments"), make_content(owner="search"), make_content()
    for content in (routed, unknown, unowned):
        sink.open_or_update(content)
    groups = [tickets_for(standins, "servicenow", c)[0].raw["assignment_group"] for c in (routed, unknown, unowned)]
    assert groups == [payments, desk, desk]


# ---- Jira Data Center ----


@pytest.fixture
def datacenter(standins) -> Iterator[None]:
    app = standins.app("jira")
    app.datacenter = True
    try:
        yield
    finally:
        app.datacenter = False


def _dc_sink(standins, **overrides: str):
    return new_sink(standins, "jira", **(standins.jira_datacenter_env() | overrides))


def test_datacenter_settings_need_no_user(standins):
    env = standins.settings_env() | standins.jira_datacenter_env() | {"TRIAGE_TICKET_SINKS": "jira"}
    assert load_settings(env).jira_deployment == "datacenter"
    with pytest.raises(ValueError) as info:
        load_settings(env | {"TRIAGE_JIRA_DEPLOYMENT": "cloud"})
    assert "TRIAGE_JIRA_USER: required" in str(info.value)


def test_a_datacenter_issue_is_created_found_commented_resolved_and_reopened_over_v2(standins, datacenter):
    before = len(standins.received("jira"))
    content = make_content(principal_name="orders-api *prod* [~admin]")
    sink = _dc_sink(standins)
    first = sink.open_or_update(content)
    again = _dc_sink(standins).open_or_update(replace(content, count=12), comment="Still failing :) {code}x")
    assert first.created and not again.created and again.ref == first.ref
    assert sink.resolve(content, comment="Resolved: role assigned.") is not None
    (ticket,) = tickets_for(standins, "jira", content)
    assert not ticket.is_open
    reopened = sink.open_or_update(replace(content, count=20), comment="Back again.")
    assert reopened.reopened and reopened.ref == first.ref
    sent = _received_since(standins, "jira", before)
    assert {r.path.split("/")[3] for r in sent} == {"2"}  # /rest/api/2/... only
    assert {"/rest/api/2/search", "/rest/api/2/issue", f"/rest/api/2/issue/{first.ref}/comment",
            f"/rest/api/2/issue/{first.ref}/transitions"} <= {r.path for r in sent}
    assert {r.headers["authorization"] for r in sent} == {f"Bearer {CREDENTIALS.jira_pat}"}
    (ticket,) = tickets_for(standins, "jira", content)
    assert ticket.is_open and isinstance(ticket.raw["fields"]["description"], str)
    shown = wiki_plain_text(ticket.body).replace(ZWSP, "")
    for expected in ("Caller holds no data-plane role", content.principal_id, content.resource_id, "Failures: 20",
                     "az role assignment create", "orders-api *prod* [~admin]"):
        assert expected in shown, expected
    assert "[~admin]" not in ticket.body and "*prod*" not in ticket.body  # escaped, not markup
    assert [wiki_plain_text(c).replace(ZWSP, "").strip() for c in ticket.comments] == [
        "Still failing :) {code}x", "Resolved: role assigned.", "Back again."]


def test_a_datacenter_issue_declined_by_a_person_stays_done_and_says_who(standins, datacenter):
    content = make_content()
    sink = _dc_sink(standins)
    ref = sink.open_or_update(content).ref
    standins.close_by_person("jira", ref, "Dana Admin", "Won't Do")
    after = sink.open_or_update(replace(content, count=30), comment="Still failing.")
    assert after.decision is not None and after.decision.closed_by == "Dana Admin"
    assert after.decision.how == "Won't Do" and not after.reopened
    (ticket,) = tickets_for(standins, "jira", content)
    assert not ticket.is_open
    assert any(f"/rest/api/2/issue/{ref}" == r.path and r.query.get("expand") == ["changelog"]
               for r in standins.received("jira"))


def test_a_cloud_api_token_over_basic_auth_is_refused_by_datacenter(standins, datacenter):
    with pytest.raises(TicketAuthError) as info:
        new_sink(standins, "jira").open_or_update(make_content())  # the Cloud settings: user + API token
    assert "credentials rejected (HTTP 401" in str(info.value)
    basic = base64.b64encode(f"{CREDENTIALS.jira_user}:{CREDENTIALS.jira_token}".encode()).decode()
    assert basic not in str(info.value) and CREDENTIALS.jira_token not in str(info.value)


def test_a_pat_error_names_the_pat_setting_and_never_the_pat(standins, datacenter, caplog):
    caplog.set_level(logging.DEBUG)
    with pytest.raises(TicketAuthError) as info:
        _dc_sink(standins, TRIAGE_JIRA_TOKEN="LEAKCANARYwrongpat").open_or_update(make_content())
    assert "TRIAGE_JIRA_TOKEN (a Jira Data Center personal access token)" in str(info.value)
    assert "LEAKCANARY" not in str(info.value) and "LEAKCANARY" not in caplog.text


def test_datacenter_routing_fields_land_on_created_issues(standins, datacenter):
    routes = '{"payments": {"jira": {"components": ["payments"], "issue_type": "Bug"}}}'
    sink = _dc_sink(standins, TRIAGE_JIRA_ISSUE_TYPE="Task", TRIAGE_JIRA_COMPONENTS="platform,identity",
                    TRIAGE_JIRA_LABELS="aoai,auth", TRIAGE_ROUTING_TAG="owner", TRIAGE_TICKET_ROUTES=routes)
    plain, owned = make_content(), make_content(owner="payments")
    sink.open_or_update(plain)
    sink.open_or_update(owned)
    (ticket,) = tickets_for(standins, "jira", plain)
    assert ticket.raw["fields"]["issuetype"] == "Task"
    assert [c["name"] for c in ticket.raw["fields"]["components"]] == ["platform", "identity"]
    assert {"aoai", "auth"} <= set(ticket.markers)
    (ticket,) = tickets_for(standins, "jira", owned)
    assert ticket.raw["fields"]["issuetype"] == "Bug"
    assert [c["name"] for c in ticket.raw["fields"]["components"]] == ["payments"]
    assert {"aoai", "auth"} <= set(ticket.markers)  # the route names no labels: the setting's stay


@pytest.mark.parametrize("deployment", ["cloud", "datacenter"])
def test_an_unknown_component_or_issue_type_is_refused_with_jiras_errors(standins, deployment):
    app = standins.app("jira")
    app.datacenter = deployment == "datacenter"
    try:
        env = standins.jira_datacenter_env() if app.datacenter else {}
        with pytest.raises(TicketError) as info:
            new_sink(standins, "jira", TRIAGE_JIRA_COMPONENTS="no-such-team", **env).open_or_update(make_content())
        assert "HTTP 400" in str(info.value) and "Component name 'no-such-team' is not valid" in str(info.value)
        with pytest.raises(TicketError) as info:
            new_sink(standins, "jira", TRIAGE_JIRA_ISSUE_TYPE="Incident", **env).open_or_update(make_content())
        assert "issuetype: valid issue type is required" in str(info.value)
    finally:
        app.datacenter = False
