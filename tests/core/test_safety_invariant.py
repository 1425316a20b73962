"""The safety invariant (issue 12): a role is recommended for (and can be granted to) the principal that was refused,
and only when that is the caller. When the error names a principal other than the logged caller, the engine says so
and never recommends a grant to the caller (hypothesis)."""

from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core import roles
from shared.core.allowlist import Allowlist, AllowlistEntry
from shared.core.diagnose import diagnose
from shared.core.model import Evidence, FailureSignal, ResourceEvidence, RoleAssignmentEvidence
from shared.core.policy import PolicyConfig, PolicyContext, decide

SUB = "/subscriptions/22222222-2222-2222-2222-222222222222"
ACCOUNT = f"{SUB}/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/acc"
NOW = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)
CS = "Microsoft.CognitiveServices/accounts"

# Real PermissionDenied shapes (tests/data/error_texts.jsonl), with the refused principal put where they name it.
TEMPLATES = [
    "The principal `{p}` lacks the required data action `{CS}/AIServices/agents/read` to perform "
    "`GET /api/projects/{{projectName}}/assistants` operation.",
    "Error code: 401 - {{'error': {{'code': 'PermissionDenied', 'message': 'The principal `{p}` lacks the required "
    "data action `{CS}/OpenAI/deployments/chat/completions/action` to perform `POST /openai/deployments/"
    "{{deployment-id}}/chat/completions` operation.'}}}}",
    "Azure.RequestFailedException: The principal {p} lacks the required data action {CS}/MaaS/chat/completions/action "
    "to perform POST /models/chat/completions operation.\nStatus: 401 (PermissionDenied)",
    "(PermissionDenied) The principal '{p}' lacks the required data action {CS}/AIServices/agents/write to perform "
    "POST /api/projects/{{projectName}}/assistants operation.",
    "Identity(object id: {p}) does not have permissions for {CS}/OpenAI/deployments/embeddings/action actions.",
]
ENDPOINTS = [None, "https://acc.openai.azure.com/openai/deployments/d/chat/completions",
             "https://acc.services.ai.azure.com/models/chat/completions",
             "https://acc.services.ai.azure.com/api/projects/p/assistants"]

guids = st.uuids().map(str)
users = st.builds(lambda name, domain: f"{name}@{domain}.onmicrosoft.com",
                  st.from_regex(r"[a-z][a-z0-9.]{1,12}", fullmatch=True),
                  st.from_regex(r"[a-z][a-z0-9]{1,10}", fullmatch=True))
assignments = st.builds(
    RoleAssignmentEvidence,
    role_definition_id=st.sampled_from(sorted(roles.BY_GUID)),
    scope=st.sampled_from([SUB, ACCOUNT, f"{ACCOUNT}/projects/p"]),
    created_on=st.one_of(st.none(), st.integers(0, 60 * 24 * 30).map(lambda m: NOW - timedelta(minutes=m))),
    via_group=st.booleans(),
    principal_type=st.sampled_from([None, "ServicePrincipal", "User"]),
)
evidences = st.one_of(st.none(), st.builds(
    Evidence,
    assignments=st.one_of(st.none(), st.lists(assignments, max_size=3).map(tuple)),
    resource=st.one_of(st.none(), st.just(ResourceEvidence(resource_id=ACCOUNT, kind="AIServices"))),
    principal_type=st.sampled_from([None, "ServicePrincipal", "User"]),
    principal_name=st.one_of(st.none(), users),
))


def _signal(template: str, named: str, caller: str, endpoint: str | None, status: int) -> FailureSignal:
    return FailureSignal(status=status, code="PermissionDenied", message=template.format(p=named, CS=CS),
                         endpoint=endpoint, auth="entra", object_id=caller, resource_id=ACCOUNT)


def _grant_to_caller_possible(diagnosis, caller: str) -> bool:
    """Could the policy assign the diagnosis's role to the caller, with every other gate open?"""
    entry = AllowlistEntry(caller, role_ids=frozenset(roles.GRANTABLE))
    config = PolicyConfig(mode="enforce", allowlist=Allowlist((entry,)), allow_user_grants=True,
                          allow_group_grants=True)
    context = PolicyContext(now=NOW, grants_this_run=0, grants_last_24h=0, last_grant_at=None,
                            suppressed_targets=frozenset(), breaker_open=False, approved=True,
                            evidence_principal_type="ServicePrincipal", resource_id=ACCOUNT)
    return decide(diagnosis, caller, config, context).grants


# (template, who it names): every template names a GUID; those that name "the principal" also name users.
named_in_text = st.one_of(
    st.tuples(st.sampled_from(TEMPLATES), guids),
    st.tuples(st.sampled_from(TEMPLATES[:4]), users),
)


@settings(max_examples=500, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(named_in_text, guids, st.sampled_from(ENDPOINTS), st.sampled_from([401, 403]), evidences)
def test_a_text_naming_principal_a_logged_for_caller_b_recommends_nothing_for_b(named_text, caller, endpoint,
                                                                                 status, evidence):
    template, named = named_text
    if named.lower() == caller.lower() or (evidence is not None and evidence.principal_name == named):
        return  # not another principal
    diagnosis = diagnose(_signal(template, named, caller, endpoint, status), evidence, now=NOW)

    assert diagnosis.cause == "other_principal_denied", diagnosis.evidence
    assert diagnosis.role_id is None and diagnosis.role_name is None and not diagnosis.role_fixable
    assert diagnosis.fix_command is None
    assert diagnosis.to_classify_json()["role"] is None  # classify never names a role for it
    assert named.lower() in diagnosis.summary.lower()
    assert not any(f"--assignee-object-id {caller}" in step.text for step in diagnosis.fix_steps)
    assert not _grant_to_caller_possible(diagnosis, caller)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(TEMPLATES), guids, st.sampled_from(ENDPOINTS[1:]))
def test_a_role_is_recommended_only_for_the_refused_principal_when_it_is_the_caller(template, principal, endpoint):
    diagnosis = diagnose(_signal(template, principal, principal, endpoint, 401), Evidence(assignments=()), now=NOW)
    assert diagnosis.cause == "missing_data_role" and diagnosis.role_id in roles.GRANTABLE
    assert f"--assignee-object-id {principal} " in diagnosis.fix_command


@settings(max_examples=100, deadline=None)
@given(st.sampled_from(TEMPLATES[:4]), users, guids)
def test_a_user_named_by_the_error_is_the_caller_only_when_the_evidence_says_so(template, user, caller):
    confirmed = Evidence(assignments=(), principal_name=user.upper(), principal_type="User")
    diagnosis = diagnose(_signal(template, user, caller, ENDPOINTS[1], 401), confirmed, now=NOW)
    assert diagnosis.cause == "missing_data_role"
    assert f"--assignee-object-id {caller} " in diagnosis.fix_command


def test_a_redacted_principal_names_nobody_so_the_caller_stays_the_refused_one():
    for redacted in ("XXXXXXXX", "***", "redacted:email", "bbfdd38aXXXXX"):
        diagnosis = diagnose(_signal(TEMPLATES[0], redacted, "0a1b2c3d-4e5f-4061-8273-9485a6b7c8d9", ENDPOINTS[3],
                                     401), Evidence(assignments=()), now=NOW)
        assert diagnosis.cause == "missing_data_role", redacted
