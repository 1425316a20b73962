"""The chat action routes, called directly with HttpRequests: the link routes (`/api/act/{id}/approve|suppress`,
anonymous to the host, usable only behind App Service authentication; a GET never acts; a POST must come from the
app's own origin) and the function-level suppress route (JSON)."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import timedelta
from html.parser import HTMLParser
from urllib.parse import urlencode

import pytest

from shared.core import incidents as inc
from tests.e2e.test_openapi import check_reply, check_request
from tests.support.functions_worker import (
    CALLER,
    call_http,
    deliver,
    failure_cloudevent,
    http_request,
    installed_world,
    user_function,
)

ORIGIN = "https://triage.example"  # the host http_request addresses (no TRIAGE_PUBLIC_BASE_URL in the tests)
SIGNED_IN = {"X-MS-CLIENT-PRINCIPAL-NAME": "alex@contoso.com",
             "X-MS-CLIENT-PRINCIPAL-ID": "0d1e2f3a-4b5c-4d6e-8f70-8192a3b4c5d6"}
OPENAI_USER_GUID = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
APPROVERS = "Alex@Contoso.com,9f8e7d6c-0000-4000-8000-00000000a11e"  # who may act through the links


@pytest.fixture
def easy_auth(monkeypatch):
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "True")  # what App Service sets when authentication is on


def recommended(world) -> inc.Incident:
    deliver(failure_cloudevent("7a2b3c4d-0000-4000-8000-00000000e0c1"))
    (incident,) = world.rt.store.list_incidents()
    assert incident.status == inc.RECOMMENDED
    return incident


def page(action: str, incident_id: str, method: str = "GET", *, form: dict[str, str] | None = None,
         headers: dict[str, str] | None = None) -> tuple[int, str, dict[str, str]]:
    body = urlencode(form or {}).encode() if method == "POST" else b""
    request = http_request(method, f"act/{incident_id}/{action}", body=body, headers=headers or {},
                           route_params={"incident_id": incident_id})
    response = user_function(f"act_{action}" if method == "POST" else f"act_{action}_page")(request)
    text = response.get_body().decode("utf-8")
    assert "Traceback" not in text and response.mimetype == "text/html"
    return response.status_code, text, dict(response.headers)


def posted(headers: dict[str, str] | None = None) -> dict[str, str]:
    return {**SIGNED_IN, "Origin": ORIGIN, "Content-Type": "application/x-www-form-urlencoded", **(headers or {})}


def hidden(text: str, name: str) -> str:
    match = re.search(rf'<input type="hidden" name="{name}" value="([^"]*)">', text)
    assert match, text
    return match.group(1)


def state(world) -> tuple:
    """Everything an action would change: incidents, audit, suppressions, role assignments."""
    store = world.rt.store
    return ([i.to_record() for i in store.list_incidents()], len(store.list_audit()),
            [s.target for s in store.active_suppressions(world.rt.clock())], len(world.az.assignments()))


# ---- App Service authentication ------------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["approve", "suppress"])
def test_without_app_service_authentication_the_links_refuse_even_forged_principal_headers(tmp_path, action):
    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        incident = recommended(world)
        before = state(world)
        for method in ("GET", "POST"):
            status, text, _ = page(action, incident.id, method, form={"fingerprint": "x", "reason": "r"},
                                   headers=posted())
            assert status == 403 and "WEBSITE_AUTH_ENABLED" in text and "/.auth/login" not in text
        assert state(world) == before


def test_with_authentication_on_but_nobody_signed_in_the_links_refuse(tmp_path, easy_auth):
    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        incident = recommended(world)
        status, text, _ = page("approve", incident.id)
        assert status == 403 and "X-MS-CLIENT-PRINCIPAL-ID" in text
        sign_in = f'href="/.auth/login/aad?post_login_redirect_uri=%2Fapi%2Fact%2F{incident.id}%2Fapprove"'
        assert sign_in in text  # the platform's sign-in, back to this page


# ---- approve -----------------------------------------------------------------------------------------------------


def test_get_shows_exactly_what_approving_grants_and_changes_nothing(tmp_path, easy_auth):
    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        incident = recommended(world)
        terms = incident.approval_terms
        before = state(world)
        status, text, headers = page("approve", incident.id, headers=SIGNED_IN)
        assert status == 200
        for shown in (terms.role_name, terms.scope, terms.principal_id, terms.fingerprint, incident.id):
            assert shown in text
        assert '<form method="post">' in text and hidden(text, "fingerprint") == terms.fingerprint
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"] and headers["Cache-Control"] == "no-store"
        page("approve", incident.id, headers=SIGNED_IN)  # a link scanner fetching it again
        assert state(world) == before  # a GET never acts


def test_post_from_the_page_approves_through_the_policy_as_the_signed_in_person(tmp_path, easy_auth):
    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        incident = recommended(world)
        _, text, _ = page("approve", incident.id, headers=SIGNED_IN)
        form = {"fingerprint": hidden(text, "fingerprint"), "by": "mallory@evil.example"}  # `by` is ignored
        status, text, _ = page("approve", incident.id, "POST", form=form, headers=posted())
        assert status == 200 and "Approved" in text
        approved = world.rt.store.get_incident(incident.id)
        assert approved.status in (inc.ASSIGNED, inc.VERIFYING) and approved.approved_by == "alex@contoso.com"
        assert [a for a in world.az.assignments() if a.principal_id == CALLER and a.role_guid == OPENAI_USER_GUID]
        assert not any(a.actor == "mallory@evil.example" for a in world.rt.store.list_audit())


@pytest.mark.parametrize("origin", [
    {"Origin": "https://evil.example"},
    {"Origin": "null"},
    {"Origin": "http://triage.example"},  # another scheme is another origin
    {"Origin": "", "Referer": "https://evil.example/triage.example"},
    {"Origin": "", "Referer": ""},  # neither: refused
])
def test_post_from_another_site_is_refused(tmp_path, easy_auth, origin):
    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        incident = recommended(world)
        before = state(world)
        headers = {k: v for k, v in posted(origin).items() if v}
        status, text, _ = page("approve", incident.id, "POST",
                               form={"fingerprint": incident.approval_terms.fingerprint}, headers=headers)
        assert status == 403 and "Refused" in text
        assert state(world) == before


def test_a_referer_from_the_apps_own_page_is_enough_without_origin(tmp_path, easy_auth):
    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        incident = recommended(world)
        headers = {k: v for k, v in posted({"Referer": f"{ORIGIN}/api/act/{incident.id}/approve"}).items()
                   if k != "Origin"}
        status, _, _ = page("approve", incident.id, "POST",
                            form={"fingerprint": incident.approval_terms.fingerprint}, headers=headers)
        assert status == 200


def test_a_diagnosis_changed_since_the_page_was_shown_refuses(tmp_path, easy_auth):
    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        incident = recommended(world)
        _, text, _ = page("approve", incident.id, headers=SIGNED_IN)
        shown = hidden(text, "fingerprint")
        current = world.rt.store.get_incident(incident.id)
        changed = replace(current, approval_terms=replace(current.approval_terms, fingerprint="0123456789ab"))
        world.rt.store.put_incident(changed, current.etag)
        puts = world.az.calls.count(service="arm", method="PUT")
        status, text, _ = page("approve", incident.id, "POST", form={"fingerprint": shown}, headers=posted())
        assert status == 409 and "0123456789ab" in text and "approve again" in text
        assert world.az.calls.count(service="arm", method="PUT") == puts
        assert world.rt.store.get_incident(incident.id).status == inc.RECOMMENDED


def test_a_post_without_the_fingerprint_is_refused(tmp_path, easy_auth):
    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        incident = recommended(world)
        status, _, _ = page("approve", incident.id, "POST", form={}, headers=posted())
        assert status == 400 and world.rt.store.get_incident(incident.id).status == inc.RECOMMENDED


def test_unknown_incident_and_nothing_to_approve(tmp_path, easy_auth):
    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        status, _, _ = page("approve", "inc-nope", headers=SIGNED_IN)
        assert status == 404
        incident = recommended(world)
        page("approve", incident.id, "POST", form={"fingerprint": incident.approval_terms.fingerprint},
             headers=posted())
        status, text, _ = page("approve", incident.id, headers=SIGNED_IN)  # already approved
        assert status == 409 and "Nothing to approve" in text and "<form" not in text


# ---- suppress ----------------------------------------------------------------------------------------------------


def test_suppress_link_shows_the_target_then_suppresses_it_for_24_hours(tmp_path, easy_auth):
    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        incident = recommended(world)
        before = state(world)
        status, text, _ = page("suppress", incident.id, headers=SIGNED_IN)
        assert status == 200 and CALLER in text and "every account" in text and 'name="reason"' in text
        assert state(world) == before
        form = {"target": hidden(text, "target"), "reason": "load test <b>today</b>"}
        status, text, _ = page("suppress", incident.id, "POST", form=form, headers=posted())
        assert status == 200 and "&lt;b&gt;today&lt;/b&gt;" in text and "<b>today" not in text
        (active,) = world.rt.store.active_suppressions(world.rt.clock())
        assert active.target == CALLER and active.actor == "alex@contoso.com"
        assert [a.actor for a in world.rt.store.list_audit(incident.id) if a.kind == "suppress"] == [
            "alex@contoso.com"]
        assert active.until - world.rt.clock() <= timedelta(hours=24)
        world.advance(24 * 3600 + 1)
        assert world.rt.store.active_suppressions(world.rt.clock()) == []


def test_suppress_post_bound_to_the_target_shown_and_needs_a_reason(tmp_path, easy_auth):
    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        incident = recommended(world)
        status, _, _ = page("suppress", incident.id, "POST", form={"target": "/subscriptions/x", "reason": "r"},
                            headers=posted())
        assert status == 409
        status, _, _ = page("suppress", incident.id, "POST", form={"target": CALLER, "reason": " "},
                            headers=posted())
        assert status == 400
        status, _, _ = page("suppress", incident.id, "POST", form={"target": CALLER, "reason": "r"},
                            headers=posted({"Origin": "https://evil.example"}))
        assert status == 403
        assert world.rt.store.active_suppressions(world.rt.clock()) == []


# ---- POST /api/incidents/{id}/suppress (function key) -------------------------------------------------------------


def suppress_json(incident_id: str, body=None, headers=None):
    """The route's reply, checked against docs/openapi.yaml (request and reply)."""
    path = "/api/incidents/{incident_id}/suppress"
    check_request(path, "post", body)
    request = http_request("POST", f"incidents/{incident_id}/suppress", body=body, headers=headers,
                           route_params={"incident_id": incident_id})
    status, reply = call_http("suppress", request)
    check_reply(path, "post", status, reply)
    return status, reply


def test_the_suppress_route_suppresses_the_incidents_principal_for_24_hours_by_default(tmp_path):
    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        incident = recommended(world)
        status, body = suppress_json(incident.id, {"reason": "load test", "by": "sam@contoso.com"})
        assert status == 200, body
        assert (body["target"], body["kind"], body["actor"]) == (CALLER, "principal", "sam@contoso.com")
        (active,) = world.rt.store.active_suppressions(world.rt.clock())
        assert (active.until - world.rt.clock()).total_seconds() == 24 * 3600
        # Audited on the incident it was suppressed from, so `incidents show` lists it there.
        assert any(a.kind == "suppress" and a.actor == "sam@contoso.com"
                   for a in world.rt.store.list_audit(incident.id))


def test_the_suppress_route_refuses_bad_input(tmp_path):
    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        incident = recommended(world)
        assert suppress_json(incident.id, {"reason": "r"})[0] == 400  # nobody named
        assert suppress_json(incident.id, b'{"by": "sam"}')[0] == 400  # no reason (bytes: not a valid request)
        assert suppress_json(incident.id, {"by": "sam", "reason": "r", "for": "forever"})[0] == 400
        assert suppress_json(incident.id, b'{"by": "sam", "reason": "r", "for": 24}')[0] == 400
        assert suppress_json(incident.id, b"{not json")[0] == 400
        assert suppress_json("inc-nope", {"by": "sam", "reason": "r"})[0] == 404
        status, body = suppress_json(incident.id, {"by": "sam", "reason": "r", "for": "2h"},
                                     headers={"X-MS-CLIENT-PRINCIPAL-NAME": "alex@contoso.com"})
        assert status == 200 and body["actor"] == "alex@contoso.com"  # the signed-in engineer wins over `by`
        assert world.rt.store.active_suppressions(world.rt.clock())


# ---- the pages are well-formed HTML ------------------------------------------------------------------------------


def test_pages_parse_and_carry_only_the_expected_tags(tmp_path, easy_auth):
    tags: set[str] = set()

    class Tags(HTMLParser):
        def handle_starttag(self, tag, attrs):
            tags.add(tag)

    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        incident = recommended(world)
        for action in ("approve", "suppress"):
            Tags().feed(page(action, incident.id, headers=SIGNED_IN)[1])
    assert tags <= {"html", "head", "meta", "title", "style", "body", "h1", "table", "tr", "th", "td", "code", "p",
                    "form", "input", "label", "button"}


# ---- who may act (TRIAGE_CHAT_APPROVERS) --------------------------------------------------------------------------


@pytest.mark.parametrize("action", ["approve", "suppress"])
def test_a_signed_in_person_who_is_not_an_approver_can_neither_see_nor_act(tmp_path, easy_auth, action):
    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        incident = recommended(world)
        before = state(world)
        stranger = {"X-MS-CLIENT-PRINCIPAL-NAME": "kim@contoso.com",
                    "X-MS-CLIENT-PRINCIPAL-ID": "11111111-2222-4333-8444-555555555555"}
        status, text, _ = page(action, incident.id, headers=stranger)
        assert status == 403 and "TRIAGE_CHAT_APPROVERS" in text and "<form" not in text
        form = {"fingerprint": incident.fingerprint, "target": CALLER, "reason": "r"}
        status, _, _ = page(action, incident.id, "POST", form=form, headers=posted(stranger))
        assert status == 403
        assert state(world) == before


def test_an_approver_is_matched_by_object_id_as_well_as_by_sign_in_name(tmp_path, easy_auth):
    with installed_world(tmp_path, mode="recommend", TRIAGE_CHAT_APPROVERS=APPROVERS) as world:
        incident = recommended(world)
        by_id = {"X-MS-CLIENT-PRINCIPAL-NAME": "Sam (contractor)",
                 "X-MS-CLIENT-PRINCIPAL-ID": "9F8E7D6C-0000-4000-8000-00000000A11E"}
        status, text, _ = page("approve", incident.id, headers=by_id)
        assert status == 200 and "<form" in text


def test_without_approvers_the_links_refuse_everyone_and_messages_carry_none(tmp_path, easy_auth):
    with installed_world(tmp_path, mode="recommend", TRIAGE_PUBLIC_BASE_URL=ORIGIN) as world:
        incident = recommended(world)
        status, text, _ = page("approve", incident.id, headers=SIGNED_IN)
        assert status == 403 and "TRIAGE_CHAT_APPROVERS is not set" in text
    from shared.tickets.content import approve_hint, ticket_content

    hint = approve_hint(incident, base_url=ORIGIN)
    silent = ticket_content(incident, mode="recommend", action="-", approve_hint=hint, base_url=ORIGIN,
                            action_links=False)
    assert (silent.approve_url, silent.suppress_url) == (None, None)
    assert silent.approve_command and silent.suppress_command  # the commands stay
    linked = ticket_content(incident, mode="recommend", action="-", approve_hint=hint, base_url=ORIGIN)
    assert linked.approve_url == f"{ORIGIN}/api/act/{incident.id}/approve" and linked.suppress_url
