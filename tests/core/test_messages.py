"""Unwrapping and sorting error texts as real reports carry them (shared/core/messages.py)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core import messages
from shared.core.messages import analyze, unwrap

DENIED = "Principal does not have access to API/Operation."


@pytest.mark.parametrize(
    ("text", "code", "message"),
    [
        # openai-python: "Error code: 401 - {python dict}"
        (f"openai.AuthenticationError: Error code: 401 - {{'error': {{'code': 'PermissionDenied', 'message': "
         f"'{DENIED}'}}}}", "PermissionDenied", DENIED),
        # azure-core: "(Code) message" plus Code:/Message: lines
        ("azure.core.exceptions.HttpResponseError: (Tenant provided in token does not match resource token) Token "
         "tenant 1 does not match resource tenant.\nCode: Tenant provided in token does not match resource token\n"
         "Message: Token tenant 1 does not match resource tenant.",
         "Tenant provided in token does not match resource token", "Token tenant 1 does not match resource tenant."),
        # azure-core with a numeric status in the parentheses
        ("azure.core.exceptions.ClientAuthenticationError: (403) PermissionDenied: The client does not have "
         "permission to perform this action.", "PermissionDenied",
         "The client does not have permission to perform this action."),
        ("azure.core.exceptions.HttpResponseError: (403) Public access is disabled. Please configure private "
         "endpoint", None, "Public access is disabled. Please configure private endpoint"),
        # .NET RequestFailedException: status line and Content JSON
        (f"Azure.RequestFailedException: Service request failed.\nStatus: 401 (PermissionDenied)\n\nContent:\n"
         f"{{\"error\":{{\"code\":\"PermissionDenied\",\"message\": \"{DENIED}\"}}}}", "PermissionDenied", DENIED),
        # JSON escaped inside a string, wrapped by a gateway's own error
        ('{"error":"Forbidden","message":"{\\"error\\":{\\"code\\":\\"Forbidden\\",\\"message\\":\\"Your resource '
         'has been temporarily blocked.\\"}}"}', "Forbidden", "Your resource has been temporarily blocked."),
        # doubly escaped unicode quotes (.NET text re-serialized)
        ('{\\u0022error\\u0022:{\\u0022code\\u0022:\\u0022InvalidAuthenticationTokenTenant\\u0022,'
         '\\u0022message\\u0022:\\u0022wrong issuer\\u0022}}', "InvalidAuthenticationTokenTenant", "wrong issuer"),
        # "code": None from azure-core means no code
        ("(None) Unauthorized. Access token is missing.\nCode: None\nMessage: Unauthorized. Access token is missing.",
         None, "Unauthorized. Access token is missing."),
    ],
)
def test_unwrap_finds_the_services_code_and_message(text, code, message):
    found_code, found_message, html = unwrap(None, text)
    assert (found_code, found_message, html) == (code, message, False)


def test_an_explicit_code_wins_over_what_the_text_says():
    assert unwrap("AuthenticationTypeDisabled", "{'code': '403', 'message': 'x'}")[0] == "AuthenticationTypeDisabled"


def test_html_pages_are_reduced_to_their_title():
    page = ("<html>\n<head><title>403 Forbidden</title></head>\n"
            "<body><center><h1>403 Forbidden</h1></center></body></html>")
    assert unwrap(None, page) == (None, "403 Forbidden", True)
    facts = analyze(403, None, page)
    assert facts.kind == messages.NETWORK and not facts.strong and facts.html


def test_an_html_page_that_is_not_a_403_is_not_called_a_network_block():
    page = "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head><body></body></html>"
    assert analyze(502, None, page).kind == messages.OTHER


@pytest.mark.parametrize(
    ("status", "text", "kind"),
    [
        (401, DENIED, messages.PERMISSION),
        (401, "The principal `x` lacks the required data action `Microsoft.CognitiveServices/accounts/OpenAI/x`",
         messages.PERMISSION),
        (403, "Error code: 403 - {'error': {'code': 'AuthenticationTypeDisabled', 'message': 'Key based "
              "authentication is disabled for this resource.'}}", messages.LOCAL_AUTH),
        # openai-python names its 403 exception PermissionDeniedError: the body decides
        (403, "openai.PermissionDeniedError: Error code: 403 - {'error': {'code': '403', 'message': 'Access denied "
              "due to Virtual Network/Firewall rules.'}}", messages.NETWORK),
        (403, "openai.PermissionDeniedError: Error code: 403 - {'error': {'code': 'Forbidden', 'message': 'Your "
              "resource has been temporarily blocked because we detected behavior that may violate our content "
              "policy.'}}", messages.BLOCKED),
        # .NET puts "(PermissionDenied)" in the status line of key errors too
        (401, "Azure.RequestFailedException: Access denied due to invalid subscription key or wrong API endpoint.\n"
              "Status: 401 (PermissionDenied)\nErrorCode: 401", messages.INVALID_KEY),
        (401, "Access denied due to missing subscription key.", messages.MISSING_KEY),
        (400, "Token tenant abc does not match resource tenant.", messages.TENANT),
        (401, "InvalidAudience: Invalid authorization token audience.", messages.AUDIENCE),
        (401, "Unauthorized. Access token is missing, invalid, audience is incorrect (https://ai.azure.com), or have "
              "expired.", messages.AUDIENCE),
        (401, "Unauthorized. Access token is missing, invalid, audience is incorrect "
              "(https://cognitiveservices.azure.com), or have expired.", messages.BAD_CREDENTIAL),
        (401, "Unauthorized. Access token is missing, invalid, audience is incorrect (https://cognitiveservices.azure"
              ".com/ or https://ai.azure.com/), or have expired.", messages.BAD_CREDENTIAL),
        (401, "The access token expiry UTC time '5/7/2025 3:12:30 PM' is earlier than current UTC time",
         messages.BAD_CREDENTIAL),
        (404, "{'error': {'code': 'DeploymentNotFound', 'message': 'x'}}", messages.NOT_FOUND),
        (400, '{"error":{"code":"BadRequest","message":"API version not supported"}}', messages.BLOCKED),
        (403, "(AuthorizationFailed) The client 'x' with object id 'y' does not have authorization to perform action "
              "'Microsoft.CognitiveServices/accounts/write'", messages.CONTROL_PLANE),
        (401, "AuthenticationError: 401 status code (no body)", messages.EMPTY),
        (401, "Error: 401 Unauthorized", messages.EMPTY),
        (401, None, messages.EMPTY),
        (500, "The server had an error while processing your request.", messages.OTHER),
    ],
)
def test_kinds(status, text, kind):
    assert analyze(status, None, text).kind == kind


def test_a_permission_denied_names_its_data_action_route_and_principal():
    facts = analyze(401, None, "(PermissionDenied) The principal `238d16af-467a-4c66-8f07-2048c59b6c43` lacks the "
                    "required data action `Microsoft.CognitiveServices/accounts/AIServices/agents/write` to perform "
                    "`POST /api/projects/{projectName}/assistants` operation.")
    assert facts.data_action == "Microsoft.CognitiveServices/accounts/AIServices/agents/write"
    assert facts.route == "POST /api/projects/{projectName}/assistants"
    assert facts.principal == "238d16af-467a-4c66-8f07-2048c59b6c43"
    assert messages.guid_in(facts.principal) == "238d16af-467a-4c66-8f07-2048c59b6c43"


def test_redacted_principals_are_kept_but_are_no_guid():
    facts = analyze(401, None, "The principal redacted:email lacks the required data action `x`")
    assert facts.principal == "redacted:email" and messages.guid_in(facts.principal) is None


def test_invalid_key_text_flags_the_wrong_endpoint_possibility():
    assert analyze(401, None, "Access denied due to invalid subscription key or wrong API endpoint.") \
        .wrong_endpoint_possible
    assert not analyze(401, None, "Access denied due to invalid subscription key.").wrong_endpoint_possible


def test_the_token_tenant_is_pulled_out():
    facts = analyze(400, None, "Token tenant 33e01921-4d64-4f8c-a055-5bdaffd5e33d does not match resource tenant.")
    assert facts.token_tenant == "33e01921-4d64-4f8c-a055-5bdaffd5e33d"


def test_analysis_is_cached_per_text():
    text = "Principal does not have access to API/Operation. (cache probe)"
    assert analyze(401, None, text) is analyze(401, None, text)


def test_very_long_texts_are_cut_before_analysis():
    facts = analyze(401, None, "x" * 50_000 + " " + DENIED)
    assert facts.kind != messages.PERMISSION  # the phrase sits beyond the analysed prefix
    assert len(facts.message or "") <= 300


_WRAPPERS = st.sampled_from([
    "{}",
    "openai.AuthenticationError: Error code: 401 - {{'error': {{'code': 'X', 'message': '{}'}}}}",
    "Azure.RequestFailedException: {}\nStatus: 401 (PermissionDenied)",
    '{{"error":{{"message":"{}"}}}}',
    "<html><title>{}</title></html>",
    "(Code) {}\nCode: Code\nMessage: {}",
])


@settings(max_examples=300)
@given(st.integers(min_value=100, max_value=599), st.one_of(st.none(), st.text(max_size=30)), _WRAPPERS,
       st.text(max_size=400))
def test_analysis_never_raises_and_stays_short(status, code, wrapper, text):
    facts = analyze(status, code, wrapper.replace("{}", text, 2) if "{}" in wrapper else wrapper)
    assert facts.kind in {messages.EMPTY, messages.PERMISSION, messages.AUDIENCE, messages.BAD_CREDENTIAL,
                          messages.TENANT, messages.LOCAL_AUTH, messages.INVALID_KEY, messages.MISSING_KEY,
                          messages.NETWORK, messages.NOT_FOUND, messages.BLOCKED, messages.CONTROL_PLANE,
                          messages.SIGN_IN, messages.WRONG_ENDPOINT, messages.DEPENDENCY_ROLE,
                          messages.DEPENDENCY_NETWORK, messages.IDENTITY_OFF, messages.OTHER}
    assert facts.message is None or len(facts.message) <= 300
