"""Evidence-first diagnosis: real log rows carry no error text, so the cause comes from the status, the logged caller,
the surface (the row's OperationName/apiName, the account kind, a joined client-side record) and live evidence.
The decision table is in docs/causes.md ("Without error text")."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.core.diagnose import diagnose
from shared.core.model import Evidence, FailureSignal, ResourceEvidence, RoleAssignmentEvidence
from shared.core.roles import COGNITIVE_SERVICES_OPENAI_USER, COGNITIVE_SERVICES_USER, FOUNDRY_USER

SUB = "/subscriptions/11111111-1111-1111-1111-111111111111"
ACCOUNT = f"{SUB}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acc"
OID = "0a1b2c3d-4e5f-4061-8273-9485a6b7c8d9"
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
OPENAI_USER, CS_USER, F_USER = COGNITIVE_SERVICES_OPENAI_USER.guid, COGNITIVE_SERVICES_USER.guid, FOUNDRY_USER.guid
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
OPENAI_API = "Azure OpenAI API version 2024-10-21"

# A RequestResponse row as the failures query summarizes it: status, logged caller, OperationName, apiName.
ROW = FailureSignal(status=401, object_id=OID, auth="entra", operation="ChatCompletions_Create", route=OPENAI_API,
                    resource_id=ACCOUNT, source="logs:ws")


def account(kind="OpenAI", **settings):
    return ResourceEvidence(resource_id=ACCOUNT, kind=kind, disable_local_auth=False, public_network_access="Enabled",
                            network_default_action="Allow", **settings)


def held(role, age=timedelta(days=30), via_group=False):
    return RoleAssignmentEvidence(role_definition_id=role, scope=ACCOUNT, created_on=NOW - age, via_group=via_group,
                                  principal_type="Group" if via_group else "ServicePrincipal")


def run(signal=ROW, *assignments, resource=None, looked_up=True):
    evidence = Evidence(assignments=tuple(assignments) if looked_up else None,
                        resource=account() if resource is None else resource, principal_type="ServicePrincipal")
    return diagnose(signal, evidence, now=NOW)


# ---- the role causes from evidence alone ----------------------------------------------------------------------


@pytest.mark.parametrize(("assignments", "cause"), [
    ((), "missing_data_role"),
    ((held(CONTRIBUTOR),), "control_plane_role_only"),
])
def test_a_logged_caller_with_complete_evidence_on_a_known_surface_is_high_confidence(assignments, cause):
    diagnosis = run(ROW, *assignments)
    assert (diagnosis.cause, diagnosis.confidence, diagnosis.role_id) == (cause, "high", OPENAI_USER)
    assert diagnosis.scope == ACCOUNT and diagnosis.role_fixable
    assert any("Every evidence read succeeded" in line for line in diagnosis.evidence)


def test_the_account_kind_alone_tells_the_surface_of_a_classic_openai_account():
    bare = replace(ROW, operation=None, route=None)
    diagnosis = run(bare, held(CONTRIBUTOR))
    assert (diagnosis.cause, diagnosis.confidence, diagnosis.surface) == ("control_plane_role_only", "high", "openai")
    assert any("resource kind OpenAI" in line for line in diagnosis.evidence)


def test_without_the_accounts_settings_the_evidence_is_incomplete():
    evidence = Evidence(assignments=(held(CONTRIBUTOR),), resource=None, principal_type="ServicePrincipal")
    diagnosis = diagnose(ROW, evidence, now=NOW)
    assert (diagnosis.cause, diagnosis.confidence) == ("control_plane_role_only", "medium")
    assert any("settings were not read" in line for line in diagnosis.evidence)


def test_without_the_assignments_it_is_a_guess():
    assert run(ROW, looked_up=False).confidence == "low"


def test_a_caller_the_row_does_not_name_is_never_a_role_cause():
    anonymous = replace(ROW, object_id=None, auth=None)
    diagnosis = run(anonymous)
    assert not diagnosis.role_fixable and diagnosis.role_id is None


@pytest.mark.parametrize(("assignments", "cause"), [
    ((held(OPENAI_USER, age=timedelta(minutes=2)),), "propagation_pending"),
    ((held(OPENAI_USER),), "role_present_still_denied"),
    ((held(OPENAI_USER, via_group=True),), "group_membership_cache"),
])
def test_ages_and_groups_decide_from_the_evidence_too(assignments, cause):
    diagnosis = run(ROW, *assignments)
    assert (diagnosis.cause, diagnosis.confidence) == (cause, "high")


# ---- the surface on a Foundry (AIServices) account ------------------------------------------------------------


@pytest.mark.parametrize("signal", [ROW, replace(ROW, route=None), replace(ROW, operation=None)])
def test_openai_names_on_a_foundry_account_are_ambiguous_medium_and_the_narrowest_role(signal):
    diagnosis = run(signal, held(CONTRIBUTOR), resource=account(kind="AIServices"))
    assert (diagnosis.cause, diagnosis.confidence, diagnosis.role_id) == ("control_plane_role_only", "medium",
                                                                          OPENAI_USER)
    line = next(line for line in diagnosis.evidence if "does not say which surface" in line)
    assert "request URL" in line and "Cognitive Services User" in line


def test_a_row_that_names_its_surface_decides_on_a_foundry_account():
    models = replace(ROW, route="Azure AI Model Inference API")
    diagnosis = run(models, held(OPENAI_USER), resource=account(kind="AIServices"))
    assert (diagnosis.cause, diagnosis.confidence, diagnosis.role_id) == ("wrong_role_for_surface", "high", CS_USER)


def test_a_project_call_without_the_projects_name_is_not_granted_at_the_account_on_its_own():
    project = replace(ROW, operation="Assistants_List", route="Azure AI Foundry Projects API")
    diagnosis = run(project, resource=account(kind="AIServices"))
    assert (diagnosis.role_id, diagnosis.scope, diagnosis.confidence) == (F_USER, ACCOUNT, "medium")
    assert any("broader than the call needs" in line for line in diagnosis.evidence)
    # the client-side record's URL names the project: the narrowest scope, and the evidence decides
    joined = replace(project, endpoint="https://acc.services.ai.azure.com/api/projects/p1/assistants")
    diagnosis = run(joined, resource=account(kind="AIServices"))
    assert (diagnosis.scope, diagnosis.confidence) == (f"{ACCOUNT}/projects/p1", "high")


def test_the_request_url_of_a_joined_client_record_decides_an_ambiguous_row():
    joined = replace(ROW, endpoint="https://acc.services.ai.azure.com/models/chat/completions")
    diagnosis = run(joined, held(OPENAI_USER), resource=account(kind="AIServices"))
    assert (diagnosis.cause, diagnosis.confidence, diagnosis.role_id) == ("wrong_role_for_surface", "high", CS_USER)


# ---- text refines; text and evidence that disagree lower the confidence ---------------------------------------

MAAS_DENIED = ("The principal `{oid}` lacks the required data action `Microsoft.CognitiveServices/accounts/MaaS/chat/"
               "completions/action` to perform `POST /models/chat/completions` operation.")


def test_the_texts_data_action_refines_an_openai_looking_row():
    signal = replace(ROW, code="PermissionDenied", message=MAAS_DENIED.format(oid=OID))
    diagnosis = run(signal, held(OPENAI_USER), resource=account(kind="AIServices"))
    assert (diagnosis.cause, diagnosis.confidence, diagnosis.role_id) == ("wrong_role_for_surface", "high", CS_USER)
    assert not any("disagree" in line for line in diagnosis.evidence)


def test_a_text_that_contradicts_a_row_naming_its_surface_lowers_the_confidence():
    openai_text = (f"The principal `{OID}` lacks the required data action `Microsoft.CognitiveServices/accounts/"
                   "OpenAI/deployments/chat/completions/action`")
    signal = replace(ROW, route="Azure AI Model Inference API", code="PermissionDenied", message=openai_text)
    diagnosis = run(signal, resource=account(kind="AIServices"))
    assert diagnosis.confidence == "medium"
    assert any(line.startswith("Text and evidence disagree") for line in diagnosis.evidence)


def test_a_text_naming_another_principal_than_the_row_recommends_nothing_for_the_caller():
    # Issue 12: this was missing_data_role with a grant to the row's caller, a grant that cannot help.
    other = "5d4c3b2a-1908-4776-a655-443322110f04"
    signal = replace(ROW, code="PermissionDenied", message=MAAS_DENIED.format(oid=other).replace("MaaS", "OpenAI"))
    diagnosis = run(signal)
    assert diagnosis.cause == "other_principal_denied" and diagnosis.role_id is None
    assert any(other in line and "not the caller" in line for line in diagnosis.evidence)
    assert other in diagnosis.summary and f"--assignee-object-id {other} " in diagnosis.fix_steps[0].text


@pytest.mark.parametrize(("status", "message", "settings", "cause"), [
    (403, "Key based authentication is disabled for this resource.", {}, "local_auth_disabled"),
    (403, "Access denied due to Virtual Network/Firewall rules.", {}, "network_denied"),
])
def test_a_text_the_accounts_settings_contradict_lowers_the_confidence(status, message, settings, cause):
    signal = FailureSignal(status=status, message=message, resource_id=ACCOUNT)
    open_account = run(signal, resource=account(**settings))
    assert (open_account.cause, open_account.confidence) == (cause, "medium")
    assert any(line.startswith("Text and evidence disagree") for line in open_account.evidence)
    # settings that are not known make no claim
    unknown = run(signal, resource=ResourceEvidence(resource_id=ACCOUNT))
    assert (unknown.cause, unknown.confidence) == (cause, "high")
