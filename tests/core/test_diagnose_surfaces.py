"""Every AI Services surface: the data action each needs and the least-privilege built-in role that grants it, from
the endpoint, the error's data action, the log row's names or the account kind."""

from datetime import UTC, datetime, timedelta

import pytest

from shared.core import roles, surfaces
from shared.core.diagnose import diagnose
from shared.core.model import Evidence, FailureSignal, ResourceEvidence, RoleAssignmentEvidence

SUB = "/subscriptions/11111111-1111-1111-1111-111111111111"
ACCOUNT = f"{SUB}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acc"
OID = "0a1b2c3d-4e5f-4061-8273-9485a6b7c8d9"
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
HOST = "https://acc.cognitiveservices.azure.com"
CALLS = {
    surfaces.DOCUMENT_INTELLIGENCE: f"{HOST}/documentintelligence/documentModels/prebuilt-layout:analyze",
    surfaces.CONTENT_UNDERSTANDING: f"{HOST}/contentunderstanding/analyzers/invoice:analyze",
    surfaces.SPEECH: f"{HOST}/speechtotext/v3.2/transcriptions",
    surfaces.VISION: f"{HOST}/computervision/imageanalysis:analyze",
    surfaces.FACE: f"{HOST}/face/v1.0/detect",
    surfaces.LANGUAGE: f"{HOST}/language/:analyze-text",
    surfaces.TRANSLATOR: f"{HOST}/translator/text/v3.0/translate",
    surfaces.CONTENT_SAFETY: f"{HOST}/contentsafety/text:analyze",
    surfaces.OPENAI: "https://acc.openai.azure.com/openai/deployments/d/chat/completions",
    surfaces.MODELS: "https://acc.services.ai.azure.com/models/chat/completions",
    surfaces.PROJECT: "https://acc.services.ai.azure.com/api/projects/p/assistants",
}
DENIED = "Principal does not have access to API/Operation."


def denied(endpoint=None, message=DENIED, **fields):
    return FailureSignal(status=401, code="PermissionDenied", message=message, endpoint=endpoint, auth="entra",
                         object_id=OID, resource_id=ACCOUNT, **fields)


def held(role, age=timedelta(days=30)):
    return RoleAssignmentEvidence(role_definition_id=role, scope=ACCOUNT, created_on=NOW - age,
                                  principal_type="ServicePrincipal")


def test_every_surface_has_a_route():
    assert set(CALLS) == set(surfaces.SURFACES)


@pytest.mark.parametrize("surface", sorted(CALLS))
def test_each_surface_names_its_least_privilege_role_and_the_command(surface):
    diagnosis = diagnose(denied(CALLS[surface]), Evidence(assignments=()), now=NOW)
    role = roles.LEAST_PRIVILEGE_FOR_SURFACE[surface]
    assert diagnosis.cause == "missing_data_role" and diagnosis.surface == surface
    assert role.name in diagnosis.summary
    assert f"--role {role.guid} " in diagnosis.fix_steps[0].text
    if role.guid in roles.GRANTABLE:
        assert diagnosis.role_id == role.guid and diagnosis.role_fixable
    else:  # Speech User, Face Recognizer, Language Reader: ticketed with the command, never granted here
        assert diagnosis.role_id is None and diagnosis.fix_command is None
        assert any("ticketed" in step.text for step in diagnosis.fix_steps)
    broad = any("narrowest built-in role" in step.text for step in diagnosis.fix_steps)
    assert broad == (role is roles.COGNITIVE_SERVICES_USER)


def test_the_error_naming_an_action_the_narrow_role_lacks_names_a_wider_one():
    text = ("The principal `0a1b2c3d-4e5f-4061-8273-9485a6b7c8d9` lacks the required data action "
            "`Microsoft.CognitiveServices/accounts/SpeechServices/speechrest/synthesis/action`")
    diagnosis = diagnose(denied(CALLS[surfaces.SPEECH], text), Evidence(assignments=(held(
        "Cognitive Services Speech User"),)), now=NOW)
    assert diagnosis.cause == "wrong_role_for_surface" and diagnosis.role_id == roles.COGNITIVE_SERVICES_USER.guid


def test_azure_ai_developer_covers_speech_and_content_safety_but_not_vision():
    developer = held("Azure AI Developer")
    for surface, cause in ((surfaces.SPEECH, "role_present_still_denied"),
                           (surfaces.CONTENT_SAFETY, "role_present_still_denied"),
                           (surfaces.VISION, "wrong_role_for_surface")):
        assert diagnose(denied(CALLS[surface]), Evidence(assignments=(developer,)), now=NOW).cause == cause, surface


def test_a_single_service_account_kind_names_the_surface_of_a_row():
    row = FailureSignal(status=401, auth="entra", object_id=OID, resource_id=ACCOUNT)
    speech = Evidence(assignments=(), resource=ResourceEvidence(resource_id=ACCOUNT, kind="SpeechServices"))
    diagnosis = diagnose(row, speech, now=NOW)
    assert diagnosis.surface == surfaces.SPEECH and diagnosis.cause == "missing_data_role"
    assert any("resource kind SpeechServices" in line for line in diagnosis.evidence)


def test_a_row_api_name_of_another_service_names_its_surface():
    row = FailureSignal(status=401, auth="entra", object_id=OID, resource_id=ACCOUNT,
                        route="Form Recognizer API version 2023-07-31")
    multi = Evidence(assignments=(), resource=ResourceEvidence(resource_id=ACCOUNT, kind="CognitiveServices"))
    diagnosis = diagnose(row, multi, now=NOW)
    assert diagnosis.surface == surfaces.DOCUMENT_INTELLIGENCE
    assert diagnosis.role_id == roles.COGNITIVE_SERVICES_USER.guid
