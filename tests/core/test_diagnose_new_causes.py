"""The causes issue 12 added: sign-in failures, endpoint look-alikes, another identity refused, the feature's identity
not enabled, a dependency's network, and the sub-causes of blocked_or_other. Families decide incidents: the
dependency chain stays one incident, a wrong endpoint refines endpoint_or_deployment_not_found."""

from datetime import UTC, datetime

import pytest

from shared.core import causes
from shared.core.diagnose import diagnose
from shared.core.incidents import fingerprint
from shared.core.model import Evidence, FailureSignal, ResourceEvidence

SUB = "/subscriptions/11111111-1111-1111-1111-111111111111"
ACCOUNT = f"{SUB}/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/acc"
OID = "0a1b2c3d-4e5f-4061-8273-9485a6b7c8d9"
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
ON_YOUR_DATA = ("Invalid AzureCognitiveSearch configuration detected: Call to get Azure Search index failed. Azure "
                "Search Error: 403, message='Server responded with status 403. Error message: "
                "{\"error\":{\"code\":\"\",\"message\":\"Authorization failed.\"}}', "
                "url=URL('https://srch-acme.search.windows.net/indexes/docs')")
NEW = ("wrong_endpoint", "token_acquisition_failed", "other_principal_denied", "identity_not_enabled",
       "downstream_network_denied")


def signal(message=None, status=401, **fields):
    return FailureSignal(status=status, message=message, auth=fields.pop("auth", "entra"),
                         object_id=fields.pop("object_id", OID), resource_id=fields.pop("resource_id", ACCOUNT),
                         **fields)


def test_none_of_the_new_causes_is_role_fixable_and_their_families_are_chosen():
    for cause in NEW:
        assert not causes.CAUSES[cause].role_fixable, cause
    assert {causes.family_of(c) for c in ("other_principal_denied", "identity_not_enabled",
                                          "downstream_network_denied")} == {"delegated"}
    assert causes.family_of("wrong_endpoint") == causes.family_of("endpoint_or_deployment_not_found")
    assert causes.family_of("token_acquisition_failed") == causes.family_of("token_invalid_or_expired")
    # The account's dependency chain, fixed step by step, stays one incident of the caller on the account.
    assert fingerprint(OID, ACCOUNT, "identity_not_enabled") == fingerprint(OID, ACCOUNT, "other_principal_denied")


@pytest.mark.parametrize(("text", "code", "words"), [
    ("AADSTS7000215: Invalid client secret provided.", "AADSTS7000215", "the secret's Value"),
    ("AADSTS90002: Tenant 'contoso' not found.", "AADSTS90002", "AZURE_TENANT_ID"),
    ("AADSTS50020: User account 'x@y.com' from identity provider 'live.com' does not exist in tenant",
     "AADSTS50020", "az login --tenant"),
    ("AADSTS9999999: something new", "AADSTS9999999", "https://login.microsoftonline.com/error?code=9999999"),
])
def test_an_aadsts_code_names_what_is_wrong_and_its_fix(text, code, words):
    diagnosis = diagnose(signal(text, status=400), None)
    assert diagnosis.cause == "token_acquisition_failed" and code in diagnosis.summary
    assert words in diagnosis.summary and diagnosis.role_id is None
    assert any("No token was issued" in line for line in diagnosis.evidence)


def test_a_sign_in_failure_wins_over_the_html_page_that_follows_it():
    text = ('{"error":"invalid_client","error_description":"AADSTS7000222: The provided client secret keys are '
            'expired."}<!DOCTYPE html><html><head><title>IIS Detailed Error - 500.0</title></head></html>')
    assert diagnose(signal(text), None).cause == "token_acquisition_failed"


@pytest.mark.parametrize(("endpoint", "auth", "where"), [
    ("https://api.openai.com/v1/chat/completions", "key", "public OpenAI API"),
    ("https://westeurope.api.cognitive.microsoft.com/formrecognizer/documentModels", "entra", "regional endpoint"),
    ("https://my-endpoint.eastus.inference.ml.azure.com/openai/deployments/d/chat/completions", "entra",
     "Azure Machine Learning"),
])
def test_the_host_alone_says_the_request_reached_another_service(endpoint, auth, where):
    diagnosis = diagnose(signal(None, endpoint=endpoint, auth=auth), None)
    assert diagnosis.cause == "wrong_endpoint" and where in diagnosis.summary
    assert diagnosis.confidence == "medium"  # no text: the host is all there is


def test_a_regional_endpoint_is_fine_for_a_key():
    diagnosis = diagnose(signal(None, endpoint="https://westeurope.api.cognitive.microsoft.com/x", auth="key",
                                object_id=None), None)
    assert diagnosis.cause != "wrong_endpoint"


def test_the_openai_platform_key_error_is_an_endpoint_problem_even_on_a_keyless_account():
    text = "Incorrect API key provided: ab12****. You can find your API key at https://platform.openai.com/account/api-keys."
    closed = Evidence(resource=ResourceEvidence(resource_id=ACCOUNT, disable_local_auth=True))
    assert diagnose(signal(text, auth="key", object_id=None), closed).cause == "wrong_endpoint"


def test_on_your_data_names_the_accounts_identity_the_search_roles_and_the_commands():
    principal = "5e5e5e5e-1111-4222-8333-444455556666"
    evidence = Evidence(assignments=(), resource=ResourceEvidence(resource_id=ACCOUNT,
                                                                  identity_type="SystemAssigned",
                                                                  identity_principal_id=principal))
    diagnosis = diagnose(signal(ON_YOUR_DATA, status=400), evidence, now=NOW)
    assert diagnosis.cause == "other_principal_denied" and diagnosis.confidence == "high"
    assert diagnosis.role_id is None and diagnosis.fix_command is None and not diagnosis.role_fixable
    assert "Search Index Data Reader and Search Service Contributor" in diagnosis.summary
    commands = [s.text for s in diagnosis.fix_steps if "az role assignment create" in s.text]
    assert len(commands) == 2
    assert all(f"--assignee-object-id {principal} " in c and "srch-acme" in c for c in commands)
    assert "1407120a-92aa-4202-b7e9-c0e197c71c8f" in commands[0]  # Search Index Data Reader
    assert "7ca78c08-252a-4471-8644-bb5ff32d4ba0" in commands[1]  # Search Service Contributor


def test_on_your_data_without_the_identity_looks_it_up_in_the_command():
    diagnosis = diagnose(signal(ON_YOUR_DATA, status=400), None)
    assert "az cognitiveservices account show --name acc --resource-group rg-ai --query identity.principalId" in (
        diagnosis.fix_steps[0].text)


def test_the_generic_on_your_data_403_on_a_locked_down_account_is_the_dependency_network():
    generic = ("Invalid AzureCognitiveSearch configuration detected: Call to get Azure Search index failed. If the "
               "Azure Search resource has no public network access, make sure enable trusted service of Azure "
               "Search.\nAzure Search Error: 403, message='Server responded with status 403.")
    locked = Evidence(assignments=(), resource=ResourceEvidence(resource_id=ACCOUNT, public_network_access="Disabled"))
    open_ = Evidence(assignments=(), resource=ResourceEvidence(resource_id=ACCOUNT, public_network_access="Enabled",
                                                               network_default_action="Allow"))
    assert diagnose(signal(generic, status=400), locked).cause == "downstream_network_denied"
    rbac = diagnose(signal(generic, status=400), open_)
    assert rbac.cause == "other_principal_denied" and rbac.confidence == "medium"  # the advice words don't decide
    assert any("network rules" in line for line in rbac.evidence)


def test_a_key_vault_firewall_refusing_the_account_is_the_dependency_network():
    text = "(ForbiddenByFirewall) Client address is not authorized and caller is not a trusted service."
    diagnosis = diagnose(signal(text, status=403), None)
    assert diagnosis.cause == "downstream_network_denied" and "Azure Key Vault" in diagnosis.summary
    assert any("--bypass AzureServices" in s.text for s in diagnosis.fix_steps)


def test_the_feature_identity_not_enabled_gives_the_command_that_enables_it():
    text = ('{"error":{"code":"ManagedIdentityIsNotEnabled","message":"Managed Identity (MI) is not set for this '
            'account while the encryption key source is \'Microsoft.KeyVault\'"}}')
    diagnosis = diagnose(signal(text, status=400), None)
    assert diagnosis.cause == "identity_not_enabled"
    assert diagnosis.fix_steps[0].text.endswith(
        "az cognitiveservices account identity assign --name acc --resource-group rg-ai")


def test_a_hosted_agent_runtime_is_refused_as_the_projects_identity():
    text = ("azure.ai.agentserver - WARNING - Failed to initialize tracing: (PermissionDenied) The principal "
            "`0a1b2c3d-4e5f-4061-8273-9485a6b7c8d9` lacks the required data action "
            "`Microsoft.CognitiveServices/accounts/AIServices/connections/read` to perform "
            "`GET /api/projects/{projectName}/connections` operation.")
    diagnosis = diagnose(signal(text, resource_id=f"{ACCOUNT}/projects/p1"), Evidence(assignments=()), now=NOW)
    assert diagnosis.cause == "other_principal_denied" and diagnosis.role_id is None
    assert "--project-name p1" in diagnosis.fix_steps[0].text and f"--scope {ACCOUNT}" in diagnosis.fix_steps[0].text


@pytest.mark.parametrize(("message", "status", "subcause"), [
    ("{'error': {'code': 'OperationNotSupported', 'message': 'The embeddings operation does not work with the "
     "specified model, gpt-35-turbo.'}}", 400, "operation_not_supported"),
    ("<html><head><title>Request Header Fields Too Large</title></head></html>", 431, "request_headers_too_large"),
    ("openai.APIStatusError: Request Header Fields Too Large", 400, "request_headers_too_large"),
    ("{'error': {'code': 'BadRequest', 'message': 'API version not supported'}}", 400, "api_version"),
    (None, 429, "throttled"),
    (None, 503, "service_error"),
])
def test_non_access_look_alikes_name_their_sub_cause_and_fix(message, status, subcause):
    diagnosis = diagnose(signal(message, status=status), None)
    assert diagnosis.cause == "blocked_or_other" and f"Sub-cause: {subcause}" in diagnosis.evidence
    assert causes.SUBCAUSES[subcause][0] in diagnosis.summary
    assert diagnosis.fix_steps == causes.SUBCAUSES[subcause][1]


def test_a_sign_in_to_an_apps_own_api_is_told_apart_from_the_services_audience():
    text = ("AADSTS500011: The resource principal named api://1234 was not found in the tenant named contoso. You "
            "might have sent your authentication request to the wrong tenant.")
    found = diagnose(signal(text, status=400), None, now=NOW)
    assert found.cause == "token_acquisition_failed" and found.role_id is None
    assert any("api://1234, not an Azure AI audience" in line for line in found.evidence), found.evidence
    service = diagnose(signal(text.replace("api://1234", "https://cognitiveservices.azure.com"), status=400), None,
                       now=NOW)
    assert not any("not an Azure AI audience" in line for line in service.evidence)


def test_api_managements_missing_credentials_text_is_a_missing_key():
    text = ("{ \"statusCode\": 401, \"message\": \"Access denied due to a missing application credentials or "
            "subscription key. Make sure to include an application token or a subscription key when making requests "
            "to the API.\" }")
    found = diagnose(signal(text, auth=None), None, now=NOW)
    assert found.cause == "missing_api_key" and found.role_id is None
