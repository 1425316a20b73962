"""The pure parts of the chat actions: the origin check, the Easy Auth check, what suppress targets, the pages."""

from __future__ import annotations

from html.parser import HTMLParser

import pytest
from hypothesis import given

from shared.core.chat_actions import (
    ActionPage,
    easy_auth_problem,
    origin_of,
    origin_problem,
    own_origin,
    render_page,
    signed_in,
    suppress_target,
)
from tests.tickets.test_markup import FAST, HOSTILE

OID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
ACCOUNT = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/"
           "Microsoft.CognitiveServices/accounts/contoso-openai")


@pytest.mark.parametrize(("url", "origin"), [
    ("https://Triage.Example/api/act/x", "https://triage.example"),
    ("https://triage.example:443/", "https://triage.example"),
    ("https://triage.example:8443/", "https://triage.example:8443"),
    ("http://localhost:7071/api", "http://localhost:7071"),
    ("null", None), ("javascript:alert(1)", None), ("https://", None), ("https://h:99999/", None), ("", None),
])
def test_origin_of(url, origin):
    assert origin_of(url) == origin


def test_own_origin_prefers_the_public_base_url():
    assert own_origin("https://triage.contoso.com", "https://internal.example/api/act/x") == "https://triage.contoso.com"
    assert own_origin("", "https://app.azurewebsites.net/api/act/x/approve") == "https://app.azurewebsites.net"


def test_origin_problem_wants_the_apps_own_origin_from_origin_else_referer():
    own = "https://triage.example"
    assert origin_problem({"origin": "https://triage.example"}, own) is None
    assert origin_problem({"referer": "https://triage.example/api/act/x/approve?y=1"}, own) is None
    assert origin_problem({"origin": "https://triage.example.evil.example"}, own)
    assert origin_problem({"origin": "https://evil.example", "referer": "https://triage.example/"}, own)  # Origin wins
    assert origin_problem({"origin": "null"}, own)
    assert origin_problem({}, own)
    assert origin_problem({"origin": "https://triage.example"}, None)  # the app's own address unknown


def test_easy_auth_problem_needs_the_platform_setting_and_the_principal():
    signed = {"x-ms-client-principal-id": "abc", "x-ms-client-principal-name": "alex@contoso.com"}
    assert easy_auth_problem("True", signed) is None and easy_auth_problem("true", signed) is None
    assert "WEBSITE_AUTH_ENABLED" in easy_auth_problem(None, signed)
    assert "WEBSITE_AUTH_ENABLED" in easy_auth_problem("False", signed)
    assert "X-MS-CLIENT-PRINCIPAL-ID" in easy_auth_problem("True", {"x-ms-client-principal-name": "alex"})
    assert signed_in(signed) == "alex@contoso.com" and signed_in({"x-ms-client-principal-id": "abc"}) == "abc"


def test_suppress_target_is_the_principal_else_the_account():
    assert suppress_target(OID.upper(), ACCOUNT).target == OID
    keys = suppress_target(None, ACCOUNT + "/projects/p1")
    assert (keys.kind, keys.target) == ("account", ACCOUNT.lower())
    other = suppress_target(None, "/subscriptions/s/resourceGroups/rg")
    assert (other.kind, other.target) == ("resource", "/subscriptions/s/resourcegroups/rg")
    assert suppress_target(None, "not-an-id") is None and suppress_target(None, "/") is None


class _Structure(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[str] = []
        self.attrs: list[tuple[str, str | None]] = []
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs += attrs

    def handle_data(self, data):
        self.text.append(data)


ALLOWED = {"html", "head", "meta", "title", "style", "body", "h1", "table", "tr", "th", "td", "code", "p", "form",
           "input", "label", "button"}


@FAST
@given(HOSTILE, HOSTILE)
def test_a_page_with_hostile_values_has_only_our_tags_and_attributes(value, default):
    page = ActionPage(value, facts=((value, value),), note=value, hidden=(("target", value),),
                      inputs=(("reason", value, default),), button="Go " + value, link=(value, "/" + value))
    parsed = _Structure()
    parsed.feed(render_page(page))
    assert set(parsed.tags) <= ALLOWED | {"a"} and parsed.tags.count("a") <= 1
    assert parsed.tags.count("form") == 1 and parsed.tags.count("input") == 2
    assert {name for name, _ in parsed.attrs} <= {"lang", "charset", "method", "type", "name", "value", "required",
                                                  "maxlength", "size", "href"}
    assert ("value", value) in parsed.attrs and ("value", default) in parsed.attrs  # each value stayed one value


def test_a_page_links_only_to_this_apps_own_paths():
    for href in ("https://evil.example/", "//evil.example/", "javascript:alert(1)"):
        assert "<a " not in render_page(ActionPage("t", link=("x", href)))
    assert '<a href="/.auth/login/aad">' in render_page(ActionPage("t", link=("Sign in", "/.auth/login/aad")))
