"""The engine's rules one at a time: evidence semantics, scopes, ages, groups, settings overrides, the fix."""

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from shared.core.diagnose import diagnose
from shared.core.model import Evidence, FailureSignal, ResourceEvidence, RoleAssignmentEvidence
from shared.core.roles import COGNITIVE_SERVICES_OPENAI_USER, COGNITIVE_SERVICES_USER, FOUNDRY_USER

SUB = "/subscriptions/11111111-1111-1111-1111-111111111111"
ACCOUNT = f"{SUB}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acc"
OTHER_ACCOUNT = f"{SUB}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acc2"
OID = "0a1b2c3d-4e5f-4061-8273-9485a6b7c8d9"
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
CHAT = "https://acc.openai.azure.com/openai/deployments/d/chat/completions"
MODELS = "https://acc.services.ai.azure.com/models/chat/completions"
DENIED = "Principal does not have access to API/Operation."
OPENAI_USER, CS_USER, F_USER = COGNITIVE_SERVICES_OPENAI_USER.guid, COGNITIVE_SERVICES_USER.guid, FOUNDRY_USER.guid
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"

DENIED_SIGNAL = FailureSignal(status=401, code="PermissionDenied", message=DENIED, endpoint=CHAT, auth="entra",
                              object_id=OID, resource_id=ACCOUNT)


def held(role, scope=ACCOUNT, age=timedelta(days=30), via_group=False, principal_type="ServicePrincipal"):
    return RoleAssignmentEvidence(role_definition_id=role, scope=scope, created_on=NOW - age, via_group=via_group,
                                  principal_type="Group" if via_group else principal_type)


def run(signal=DENIED_SIGNAL, *assignments, principal_type="ServicePrincipal", resource=None, now=NOW, **kw):
    evidence = Evidence(assignments=tuple(assignments), resource=resource, principal_type=principal_type)
    return diagnose(signal, evidence, now=now, **kw)


# ---- evidence semantics ---------------------------------------------------------------------------------------


def test_assignments_not_looked_up_gives_a_lower_confidence_missing_role():
    diagnosis = diagnose(DENIED_SIGNAL, Evidence(assignments=None), now=NOW)
    assert (diagnosis.cause, diagnosis.confidence) == ("missing_data_role", "medium")
    assert any("not looked up" in line for line in diagnosis.evidence)


def test_assignments_looked_up_and_none_is_a_confident_missing_role():
    diagnosis = run()
    assert (diagnosis.cause, diagnosis.confidence) == ("missing_data_role", "high")
    assert diagnosis.role_name == "Cognitive Services OpenAI User" and diagnosis.scope == ACCOUNT


def test_the_fix_is_the_exact_az_command():
    assert run().fix_command == (
        f"az role assignment create --assignee-object-id {OID} --assignee-principal-type ServicePrincipal "
        f"--role {OPENAI_USER} --scope {ACCOUNT}"
    )


def test_principal_type_comes_from_evidence_else_signal_else_is_assumed_and_said():
    assert "--assignee-principal-type User " in run(principal_type="User").fix_command
    signal = replace(DENIED_SIGNAL, principal_type="Group")
    assert "--assignee-principal-type Group " in run(signal, principal_type=None).fix_command
    assumed = run(principal_type=None)
    assert "--assignee-principal-type ServicePrincipal " in assumed.fix_command
    assert any("assumes ServicePrincipal" in line for line in assumed.evidence)


@pytest.mark.parametrize("endpoint, role", [(CHAT, OPENAI_USER), (MODELS, CS_USER)])
def test_the_role_follows_the_surface(endpoint, role):
    diagnosis = run(replace(DENIED_SIGNAL, endpoint=endpoint))
    assert diagnosis.role_id == role


def test_a_project_call_gets_foundry_user_at_the_project_scope():
    signal = replace(DENIED_SIGNAL, endpoint="https://acc.services.ai.azure.com/api/projects/p1/assistants")
    diagnosis = run(signal)
    assert (diagnosis.role_id, diagnosis.scope) == (F_USER, f"{ACCOUNT}/projects/p1")
    # a project resource id names the project when the URL does not
    by_id = run(replace(DENIED_SIGNAL, endpoint=None, message="The principal `x` lacks the required data action "
                        "`Microsoft.CognitiveServices/accounts/AIServices/agents/read`",
                        resource_id=f"{ACCOUNT}/projects/p2"))
    assert by_id.scope == f"{ACCOUNT}/projects/p2"


def test_without_a_project_name_the_narrowest_known_scope_is_the_account_and_it_says_so():
    signal = replace(DENIED_SIGNAL, endpoint=None,
                     message="The principal `x` lacks the required data action `Microsoft.CognitiveServices/"
                             "accounts/AIServices/agents/read` to perform `GET /api/projects/{projectName}/threads`")
    diagnosis = run(signal)
    assert (diagnosis.role_id, diagnosis.scope) == (F_USER, ACCOUNT)
    assert any("Project name unknown" in line for line in diagnosis.evidence)


def test_no_surface_means_no_role_is_named():
    # Vision was an unknown surface before issue 12; Anomaly Detector is still none of ours.
    signal = replace(DENIED_SIGNAL, endpoint="https://acc.cognitiveservices.azure.com/anomalydetector/v1.0/detect")
    diagnosis = run(signal)
    assert diagnosis.cause == "missing_data_role"
    assert (diagnosis.role_id, diagnosis.role_fixable, diagnosis.fix_command) == (None, False, None)


def test_the_object_id_can_come_from_the_error_text():
    text = ("The principal `238d16af-467a-4c66-8f07-2048c59b6c43` lacks the required data action "
            "`Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action`")
    diagnosis = run(replace(DENIED_SIGNAL, object_id=None, auth=None, message=text))
    assert "--assignee-object-id 238d16af-467a-4c66-8f07-2048c59b6c43 " in diagnosis.fix_command


def test_unknown_ids_become_placeholders():
    diagnosis = diagnose(replace(DENIED_SIGNAL, object_id=None, resource_id=None))
    assert "--assignee-object-id <caller-object-id> " in diagnosis.fix_command
    assert diagnosis.fix_command.endswith("--scope <account-resource-id>")


# ---- which roles apply, and what they grant ---------------------------------------------------------------


def test_control_plane_roles_only():
    diagnosis = run(DENIED_SIGNAL, held(OWNER, scope=SUB), held(CONTRIBUTOR))
    assert diagnosis.cause == "control_plane_role_only" and diagnosis.role_id == OPENAI_USER
    assert "control-plane roles (Owner/Contributor" in diagnosis.summary
    assert "grant no data access" in diagnosis.summary


def test_an_openai_role_does_not_cover_foundry_models():
    diagnosis = run(replace(DENIED_SIGNAL, endpoint=MODELS), held(OPENAI_USER))
    assert diagnosis.cause == "wrong_role_for_surface" and diagnosis.role_id == CS_USER


def test_azure_ai_developer_on_a_project_is_the_wrong_role():
    signal = replace(DENIED_SIGNAL, endpoint="https://acc.services.ai.azure.com/api/projects/p/assistants")
    diagnosis = run(signal, held("64702f94-c441-49e6-a78b-ef80e0188fee"))
    assert diagnosis.cause == "wrong_role_for_surface" and diagnosis.role_id == F_USER


def test_azure_ai_developer_covers_openai_so_no_grant_is_recommended():
    # Its data actions include Microsoft.CognitiveServices/accounts/OpenAI/*: granting OpenAI User would be a no-op.
    diagnosis = run(DENIED_SIGNAL, held("64702f94-c441-49e6-a78b-ef80e0188fee"))
    assert diagnosis.cause == "role_present_still_denied" and diagnosis.role_id is None


def test_roles_given_by_name_resolve_through_the_catalogue():
    diagnosis = run(DENIED_SIGNAL, held("Azure AI Inference Deployment Operator"))
    assert diagnosis.cause == "control_plane_role_only" and diagnosis.role_id == OPENAI_USER
    assert run(DENIED_SIGNAL, held("Azure AI User")).cause == "role_present_still_denied"  # a former name


def test_a_custom_role_is_judged_by_the_definition_the_evidence_carries():
    from shared.core.model import RoleDefinitionEvidence

    custom = "11111111-2222-4333-8444-555555555555"
    chat_only = RoleDefinitionEvidence(id=custom, name="Chat only", data_actions=(
        "Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action",))
    with_definition = Evidence(assignments=(held(custom),), principal_type="ServicePrincipal",
                               role_definitions=(chat_only,))
    assert diagnose(DENIED_SIGNAL, with_definition, now=NOW).cause == "role_present_still_denied"
    models = diagnose(replace(DENIED_SIGNAL, endpoint=MODELS), with_definition, now=NOW)
    assert models.cause == "wrong_role_for_surface" and models.role_id == CS_USER
    unread = diagnose(DENIED_SIGNAL, Evidence(assignments=(held(custom),)), now=NOW)
    assert unread.cause == "missing_data_role" and unread.confidence == "medium"


def test_full_role_definition_ids_and_odd_casing_are_understood():
    full = f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{OPENAI_USER.upper()}"
    diagnosis = run(DENIED_SIGNAL, held(full, scope=ACCOUNT.upper()))
    assert diagnosis.cause == "role_present_still_denied"


def test_assignments_elsewhere_do_not_count():
    diagnosis = run(DENIED_SIGNAL, held(OPENAI_USER, scope=OTHER_ACCOUNT), held(OPENAI_USER, scope=ACCOUNT + "/x"))
    assert diagnosis.cause == "missing_data_role"
    assert sum("Ignored" in line for line in diagnosis.evidence) == 2


def test_an_inherited_assignment_counts():
    assert run(DENIED_SIGNAL, held(OPENAI_USER, scope=SUB)).cause == "role_present_still_denied"


def test_custom_roles_are_not_guessed_to_grant_anything():
    diagnosis = run(DENIED_SIGNAL, held("12345678-1234-1234-1234-123456789abc"))
    assert (diagnosis.cause, diagnosis.confidence) == ("missing_data_role", "medium")
    assert any("custom" in line for line in diagnosis.evidence)


# ---- ages and the propagation window ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "cause"),
    [
        (timedelta(minutes=2), "propagation_pending"),
        (timedelta(minutes=9, seconds=59), "propagation_pending"),
        (timedelta(minutes=10), "role_present_still_denied"),
        (timedelta(days=3), "role_present_still_denied"),
    ],
)
def test_the_propagation_window(age, cause):
    diagnosis = run(DENIED_SIGNAL, held(OPENAI_USER, age=age))
    assert diagnosis.cause == cause
    assert not diagnosis.role_fixable and diagnosis.role_id is None and diagnosis.fix_command is None


def test_pending_says_never_assign_again():
    diagnosis = run(DENIED_SIGNAL, held(OPENAI_USER, age=timedelta(minutes=3)))
    assert "do not assign it again" in diagnosis.summary
    assert any("Do not create the assignment again" in step.text for step in diagnosis.fix_steps)


def test_the_window_is_a_parameter():
    young = held(OPENAI_USER, age=timedelta(minutes=20))
    assert run(DENIED_SIGNAL, young).cause == "role_present_still_denied"
    assert run(DENIED_SIGNAL, young, propagation_window=timedelta(minutes=30)).cause == "propagation_pending"


def test_one_settled_assignment_is_enough_to_rule_out_propagation():
    diagnosis = run(DENIED_SIGNAL, held(OPENAI_USER, age=timedelta(minutes=1)), held(CS_USER, age=timedelta(days=9)))
    assert diagnosis.cause == "role_present_still_denied"


def test_without_a_clock_ages_are_not_judged():
    diagnosis = run(DENIED_SIGNAL, held(OPENAI_USER, age=timedelta(minutes=1)), now=None)
    assert (diagnosis.cause, diagnosis.confidence) == ("role_present_still_denied", "medium")


def test_naive_and_aware_times_mix():
    naive = RoleAssignmentEvidence(role_definition_id=OPENAI_USER, scope=ACCOUNT,
                                   created_on=datetime(2025, 6, 2, 11, 58))
    assert run(DENIED_SIGNAL, naive).cause == "propagation_pending"
    assert run(DENIED_SIGNAL, held(OPENAI_USER, age=timedelta(minutes=1)), now=NOW.replace(tzinfo=None)).cause \
        == "propagation_pending"


# ---- groups ---------------------------------------------------------------------------------------------------


def test_a_managed_identity_holding_the_role_only_through_a_group():
    diagnosis = run(DENIED_SIGNAL, held(OPENAI_USER, via_group=True))
    assert (diagnosis.cause, diagnosis.confidence, diagnosis.role_id) == ("group_membership_cache", "high",
                                                                          OPENAI_USER)
    assert "24 hours" in diagnosis.summary
    assert f"--assignee-object-id {OID} --assignee-principal-type ServicePrincipal" in diagnosis.fix_command


def test_group_cache_with_an_unknown_principal_type_is_less_sure():
    diagnosis = run(DENIED_SIGNAL, held(OPENAI_USER, via_group=True), principal_type=None)
    assert (diagnosis.cause, diagnosis.confidence) == ("group_membership_cache", "medium")


def test_a_user_in_a_group_is_judged_by_age_instead():
    old = run(DENIED_SIGNAL, held(OPENAI_USER, via_group=True), principal_type="User")
    young = run(DENIED_SIGNAL, held(OPENAI_USER, via_group=True, age=timedelta(minutes=2)), principal_type="User")
    assert (old.cause, young.cause) == ("role_present_still_denied", "propagation_pending")


def test_a_direct_assignment_beats_the_group_one():
    diagnosis = run(DENIED_SIGNAL, held(OPENAI_USER, via_group=True), held(OPENAI_USER))
    assert diagnosis.cause == "role_present_still_denied"


# ---- settings that decide ---------------------------------------------------------------------------------


def resource(**kw):
    return ResourceEvidence(resource_id=ACCOUNT, **kw)


def test_a_key_caller_on_a_keyless_resource():
    signal = FailureSignal(status=403, message="Access denied", auth="key", resource_id=ACCOUNT)
    diagnosis = diagnose(signal, Evidence(resource=resource(disable_local_auth=True)))
    assert (diagnosis.cause, diagnosis.confidence) == ("local_auth_disabled", "high")
    # same failure, keys allowed: no claim about local auth
    assert diagnose(signal, Evidence(resource=resource(disable_local_auth=False))).cause == "unknown"


@pytest.mark.parametrize("settings", [{"public_network_access": "Disabled"}, {"network_default_action": "Deny"}])
def test_a_bare_403_on_a_closed_resource_is_the_network(settings):
    signal = FailureSignal(status=403, auth="entra", object_id=OID, resource_id=ACCOUNT)
    diagnosis = diagnose(signal, Evidence(assignments=(), resource=resource(**settings)))
    assert (diagnosis.cause, diagnosis.confidence) == ("network_denied", "high")


def test_network_settings_do_not_override_a_text_that_points_elsewhere():
    signal = replace(DENIED_SIGNAL, status=403)
    diagnosis = run(signal, resource=resource(network_default_action="Deny"))
    assert diagnosis.cause == "missing_data_role"
    # and a 401 is never a network block, whatever the settings
    bare401 = FailureSignal(status=401, auth="entra", object_id=OID, resource_id=ACCOUNT, endpoint=CHAT)
    assert run(bare401, resource=resource(public_network_access="Disabled")).cause == "missing_data_role"


# ---- failures without a body (log rows) and other statuses --------------------------------------------------


def test_a_bare_401_from_an_entra_caller_the_service_logged_is_a_role_question():
    signal = FailureSignal(status=401, auth="entra", object_id=OID, resource_id=ACCOUNT,
                           operation="ChatCompletions_Create")
    assert run(signal).cause == "missing_data_role"
    assert run(signal).confidence == "medium"  # no text to confirm it
    assert diagnose(signal).confidence == "low"  # nor evidence


def test_a_bare_401_without_a_caller_is_not_guessed():
    diagnosis = diagnose(FailureSignal(status=401, operation="ChatCompletions_Create"))
    assert diagnosis.cause == "unknown" and diagnosis.role_id is None


def test_a_bare_401_from_a_key_caller_points_at_the_key():
    diagnosis = diagnose(FailureSignal(status=401, auth="key"))
    assert (diagnosis.cause, diagnosis.confidence) == ("invalid_api_key", "low")


@pytest.mark.parametrize(("status", "cause"), [(404, "endpoint_or_deployment_not_found"), (429, "blocked_or_other"),
                                               (503, "blocked_or_other"), (400, "unknown")])
def test_statuses_without_a_text(status, cause):
    assert diagnose(FailureSignal(status=status)).cause == cause


def test_a_control_plane_authorization_failure_is_not_an_inference_role_problem():
    text = ("(AuthorizationFailed) The client 'x' with object id 'y' does not have authorization to perform action "
            "'Microsoft.CognitiveServices/accounts/deployments/write' over scope '/subscriptions/z'")
    diagnosis = diagnose(FailureSignal(status=403, message=text, auth="entra", object_id=OID))
    assert diagnosis.cause == "unknown" and diagnosis.role_id is None


# ---- tokens -------------------------------------------------------------------------------------------------


def test_a_key_sent_as_a_bearer_token_is_called_out():
    text = "Unauthorized. Access token is missing, invalid, audience is incorrect " \
           "(https://cognitiveservices.azure.com), or have expired."
    diagnosis = diagnose(FailureSignal(status=401, message=text, auth="key", endpoint=CHAT))
    assert diagnosis.cause == "token_invalid_or_expired" and "bearer token" in diagnosis.summary


@pytest.mark.parametrize(("endpoint", "scope"), [
    (CHAT, "https://cognitiveservices.azure.com/.default"),
    ("https://acc.services.ai.azure.com/api/projects/p/openai/v1/responses", "https://ai.azure.com/.default"),
])
def test_the_audience_fix_names_the_scope_for_the_surface(endpoint, scope):
    diagnosis = diagnose(FailureSignal(status=401, message="InvalidAudience: Invalid authorization token audience.",
                                       endpoint=endpoint))
    assert diagnosis.cause == "token_audience_invalid" and scope in diagnosis.summary
    assert any(scope in step.text for step in diagnosis.fix_steps)


def test_the_resource_tenant_is_shown_next_to_the_token_tenant():
    text = "Token tenant 33e01921-4d64-4f8c-a055-5bdaffd5e33d does not match resource tenant."
    evidence = Evidence(resource=replace(resource(), tenant_id="72f988bf-86f1-41af-91ab-2d7cd011db47"))
    diagnosis = diagnose(FailureSignal(status=400, message=text), evidence)
    assert "33e01921-4d64-4f8c-a055-5bdaffd5e33d" in diagnosis.summary
    assert any("72f988bf-86f1-41af-91ab-2d7cd011db47" in line for line in diagnosis.evidence)


# ---- robustness ---------------------------------------------------------------------------------------------


def test_bad_evidence_becomes_an_unknown_diagnosis_instead_of_an_exception():
    diagnosis = diagnose(DENIED_SIGNAL, Evidence(assignments=42))  # type: ignore[arg-type]
    assert diagnosis.cause == "unknown" and diagnosis.role_id is None
    assert diagnosis.evidence[0].startswith("engine error: TypeError")


def test_odd_field_types_are_read_not_rejected():
    signal = FailureSignal(status="401", code=401, message=DENIED, endpoint=CHAT, auth="ENTRA",  # type: ignore
                           object_id=OID.upper())
    diagnosis = diagnose(signal, Evidence(assignments=()))
    assert diagnosis.cause == "missing_data_role" and OID in diagnosis.fix_command
