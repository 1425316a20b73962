"""Properties of the engine over arbitrary signals and evidence (hypothesis).

- it never raises, and never falls back to its internal-error answer on well-typed input;
- it never names a role outside the three least-privilege data roles;
- it never marks key, token, tenant, network, endpoint, local-auth, other or unknown causes role-fixable;
- its classify output is the stable contract, and it is deterministic.
"""

import json
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core import causes, roles
from shared.core.diagnose import diagnose
from shared.core.model import HIGH, LOW, MEDIUM, Evidence, FailureSignal, ResourceEvidence, RoleAssignmentEvidence
from tests.support.paths import TEST_DATA

NEVER_ROLE_FIXABLE = {
    "token_audience_invalid", "token_invalid_or_expired", "tenant_mismatch", "invalid_api_key", "missing_api_key",
    "local_auth_disabled", "network_denied", "endpoint_or_deployment_not_found", "blocked_or_other", "unknown",
    "propagation_pending", "role_present_still_denied", "wrong_endpoint", "token_acquisition_failed",
    "other_principal_denied", "identity_not_enabled", "downstream_network_denied",
}
CLASSIFY_KEYS = {"cause", "role_fixable", "role", "role_id", "confidence", "summary"}

SUB = "/subscriptions/22222222-2222-2222-2222-222222222222"
ACCOUNT = f"{SUB}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acc"
SCOPES = [SUB, f"{SUB}/resourceGroups/rg", ACCOUNT, ACCOUNT.upper(), f"{ACCOUNT}/projects/p",
          f"{SUB}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/other", "/", ""]
REAL_TEXTS = [json.loads(line)["message"] for line in
              (TEST_DATA / "error_texts.jsonl").read_text("utf-8").splitlines()
              if line.strip()]
BASE = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)

guids = st.uuids().map(str)
texts = st.one_of(st.none(), st.sampled_from(REAL_TEXTS), st.text(max_size=200),
                  st.builds(lambda prefix, body: prefix + body,
                            st.sampled_from(["openai.AuthenticationError: Error code: 401 - ",
                                             "azure.core.exceptions.ClientAuthenticationError: ",
                                             "Azure.RequestFailedException: ", "<html><title>", ""]),
                            st.sampled_from(REAL_TEXTS)))
endpoints_ = st.one_of(st.none(), st.text(max_size=60), st.sampled_from([
    "https://acc.openai.azure.com/openai/deployments/d/chat/completions?api-version=2024-10-21",
    "https://acc.services.ai.azure.com/models/chat/completions",
    "https://acc.services.ai.azure.com/api/projects/p/assistants",
    "https://acc.services.ai.azure.com/api/projects/{projectName}/threads",
    "https://acc.cognitiveservices.azure.com/", "acc.openai.azure.com", "/openai/x",
]))
times = st.one_of(st.none(), st.datetimes(min_value=datetime(2024, 1, 1), max_value=datetime(2026, 1, 1)),
                  st.builds(lambda minutes: BASE - timedelta(minutes=minutes), st.integers(-60, 60 * 24 * 40)))
role_ids = st.one_of(st.sampled_from(sorted(roles.BY_GUID)), guids, st.text(max_size=40),
                     st.sampled_from(sorted(roles.BY_GUID)).map(
                         lambda g: f"{SUB}/providers/Microsoft.Authorization/roleDefinitions/{g.upper()}"))
principal_types = st.one_of(st.none(), st.sampled_from(["ServicePrincipal", "User", "Group", "serviceprincipal",
                                                         "ForeignGroup", ""]))
assignments = st.builds(RoleAssignmentEvidence, role_definition_id=role_ids,
                        scope=st.one_of(st.sampled_from(SCOPES), st.text(max_size=40)), created_on=times,
                        via_group=st.booleans(), principal_type=principal_types)
resources = st.builds(ResourceEvidence, resource_id=st.sampled_from([ACCOUNT, f"{ACCOUNT}/projects/p"]),
                      kind=st.one_of(st.none(), st.sampled_from(["OpenAI", "AIServices", "CognitiveServices"])),
                      disable_local_auth=st.one_of(st.none(), st.booleans()),
                      public_network_access=st.one_of(st.none(), st.sampled_from(["Enabled", "Disabled"])),
                      network_default_action=st.one_of(st.none(), st.sampled_from(["Allow", "Deny"])),
                      tenant_id=st.one_of(st.none(), guids))
evidences = st.one_of(st.none(), st.builds(
    Evidence, assignments=st.one_of(st.none(), st.lists(assignments, max_size=5).map(tuple)),
    resource=st.one_of(st.none(), resources), principal_type=principal_types))
signals = st.builds(
    FailureSignal,
    status=st.one_of(st.sampled_from([400, 401, 403, 404, 429, 500]), st.integers(100, 599)),
    code=st.one_of(st.none(), st.sampled_from(["PermissionDenied", "401", "AuthenticationTypeDisabled",
                                               "DeploymentNotFound"]), st.text(max_size=20)),
    message=texts,
    object_id=st.one_of(st.none(), guids, st.text(max_size=40)),
    auth=st.one_of(st.none(), st.sampled_from(["entra", "key"])),
    endpoint=endpoints_,
    route=st.one_of(st.none(), st.sampled_from(["Azure OpenAI API version 2024-02-15-preview", "/models/x"]),
                    st.text(max_size=30)),
    operation=st.one_of(st.none(), st.sampled_from(["ChatCompletions_Create", "Create_Thread"]),
                        st.text(max_size=20)),
    resource_id=st.one_of(st.none(), st.sampled_from(SCOPES), st.text(max_size=40)),
    principal_type=principal_types,
)
nows = st.one_of(st.none(), st.just(BASE), times.filter(lambda t: t is not None))

# Role scenarios on purpose: a permission failure and assignments that do apply, so every branch of the role
# reasoning (groups, ages, other surfaces, control-plane only, custom roles) is reached often.
PERMISSION_TEXTS = [t for t in REAL_TEXTS if "lacks the required data action" in t or "API/Operation" in t]
covering_assignments = st.builds(
    RoleAssignmentEvidence,
    role_definition_id=st.one_of(st.sampled_from(sorted(roles.BY_GUID)), guids),
    scope=st.sampled_from([SUB, ACCOUNT, ACCOUNT.upper(), f"{ACCOUNT}/projects/p"]),
    created_on=times, via_group=st.booleans(), principal_type=principal_types)
role_signals = st.builds(
    FailureSignal, status=st.sampled_from([401, 403]), message=st.sampled_from(PERMISSION_TEXTS),
    endpoint=endpoints_, auth=st.sampled_from([None, "entra"]), object_id=st.one_of(st.none(), guids),
    resource_id=st.sampled_from([ACCOUNT, f"{ACCOUNT}/projects/p", None]), principal_type=principal_types)
role_evidences = st.builds(Evidence, assignments=st.lists(covering_assignments, min_size=1, max_size=4).map(tuple),
                           principal_type=principal_types)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(signals, evidences, nows, st.integers(min_value=0, max_value=120))
def test_the_engine_is_total_and_safe(signal, evidence, now, window_minutes):
    check_safe(signal, evidence, now, window_minutes)


@settings(max_examples=600, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(role_signals, role_evidences, nows, st.integers(min_value=0, max_value=120))
def test_role_reasoning_is_safe(signal, evidence, now, window_minutes):
    check_safe(signal, evidence, now, window_minutes)


def check_safe(signal, evidence, now, window_minutes):
    diagnosis = diagnose(signal, evidence, now=now, propagation_window=timedelta(minutes=window_minutes))

    assert not any(line.startswith("engine error") for line in diagnosis.evidence), diagnosis.evidence
    assert diagnosis.cause in causes.CAUSE_IDS
    assert diagnosis.confidence in (HIGH, MEDIUM, LOW)
    # only the three least-privilege roles are ever named
    assert diagnosis.role_id is None or diagnosis.role_id in roles.GRANTABLE
    assert (diagnosis.role_name is None) == (diagnosis.role_id is None)
    if diagnosis.role_id:
        assert roles.BY_GUID[diagnosis.role_id].name == diagnosis.role_name
    # role-fixable only for role causes, and then with the whole command
    if diagnosis.cause in NEVER_ROLE_FIXABLE:
        assert not diagnosis.role_fixable and diagnosis.role_id is None and diagnosis.fix_command is None
    if diagnosis.role_fixable:
        assert diagnosis.cause in causes.ROLE_FIXABLE and diagnosis.role_id
        assert f"--role {diagnosis.role_id} " in diagnosis.fix_command
        assert "--assignee-principal-type " in diagnosis.fix_command
        assert not any(word in diagnosis.fix_command for word in ("Owner", "Contributor", "Administrator"))
    # the classify contract
    out = diagnosis.to_classify_json()
    assert set(out) == CLASSIFY_KEYS
    assert json.loads(json.dumps(out)) == out
    assert out["summary"] and "\n" not in out["summary"]
    # deterministic
    assert diagnose(signal, evidence, now=now, propagation_window=timedelta(minutes=window_minutes)) == diagnosis


@settings(max_examples=300, deadline=None)
@given(signals, st.lists(assignments, max_size=4).map(tuple))
def test_without_a_clock_nothing_is_pending(signal, held):
    assert diagnose(signal, Evidence(assignments=held), now=None).cause != "propagation_pending"


@settings(max_examples=300, deadline=None)
@given(signals)
def test_no_role_is_named_when_no_evidence_and_no_text_point_at_one(signal):
    bare = FailureSignal(status=signal.status, resource_id=signal.resource_id)
    diagnosis = diagnose(bare)
    assert diagnosis.role_id is None and not diagnosis.role_fixable
