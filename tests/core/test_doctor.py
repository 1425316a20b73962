"""The self-check's judgements (shared/core/doctor.py): conditions against the policy, role assigners per account,
tokens and identity, workspaces, diagnostic settings and rows. Pure: no stand-in."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta

import pytest

from shared.core import doctor, roles
from shared.core.abac import allowed_principal_types, policy_condition
from shared.core.doctor import FAIL, OK, SKIP, WARN, Check, DiagnosticSetting, HeldRole, Report, Traffic, TrafficRow
from tests.support.conditions import constrain_roles_condition

NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SUB = "5b0c6a4e-1d2f-4c3b-9a8e-000000000001"
ACCOUNT = f"/subscriptions/{SUB}/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/aoai-prod"
RBAC_ADMIN = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"
SP_ONLY = ("ServicePrincipal",)
MATCHING = policy_condition()  # the generator's condition is what the self-check accepts


def problems(condition, version="2.0", types=SP_ONLY):
    return doctor.condition_problems(condition, version, roles.GRANTABLE, types)


def jwt(claims: dict) -> str:
    def part(obj: dict) -> str:
        return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none'})}.{part(claims)}.sig"


# ---- conditions --------------------------------------------------------------------------------------------------


def test_the_documented_condition_for_exactly_the_grantable_roles_matches():
    assert problems(MATCHING) == []


def test_a_condition_allowing_two_of_the_three_roles_names_the_grant_that_would_get_403():
    two = constrain_roles_condition(roles.GRANTABLE - {roles.COGNITIVE_SERVICES_USER.guid})
    found = problems(two)
    assert found and all("Cognitive Services User" in p for p in found)
    assert any("grants of it would get 403" in p for p in found)


def test_no_condition_at_all_is_named_as_such():
    assert problems(None, None) == ["no condition: it may assign any role, Owner included, to any principal"]
    assert problems("  ", None) == problems(None, None)


def test_extra_roles_unconstrained_deletes_and_principal_types_are_each_named():
    with_owner = constrain_roles_condition(roles.GRANTABLE | {OWNER})
    assert any("also allow Owner" in p for p in problems(with_owner))
    writes_only = constrain_roles_condition(roles.GRANTABLE, actions=("write",))
    assert problems(writes_only) == ["role-assignment deletes are not constrained: it may remove any role"]
    users_too = constrain_roles_condition(roles.GRANTABLE, ("ServicePrincipal", "User"))
    assert any("also allow principal type user" in p for p in problems(users_too))
    assert problems(users_too, types=("ServicePrincipal", "User")) == []
    no_types = MATCHING.replace("PrincipalType", "PrincipalId")
    assert "writes do not constrain the principal type" in problems(no_types)


def test_the_condition_version_must_be_2_0():
    assert problems(MATCHING, "1.0") == ["conditionVersion is '1.0', expected '2.0'"]


def test_a_negated_operator_is_not_read_as_allowing():
    negated = MATCHING.replace("ForAnyOfAnyValues:GuidEquals", "ForAnyOfAnyValues:GuidNotEquals")
    assert any("cannot read" in p for p in problems(negated))


def test_expected_principal_types_follow_the_grant_settings():
    assert allowed_principal_types() == SP_ONLY
    assert allowed_principal_types(allow_user_grants=True, allow_group_grants=True) == (
        "ServicePrincipal", "User", "Group")


# ---- role assigners per account -----------------------------------------------------------------------------------


def assigner(held, mode="enforce"):
    return doctor.assigner_check(ACCOUNT, held, mode=mode, grantable=roles.GRANTABLE, principal_types=SP_ONLY)


def test_a_conditioned_rbac_administrator_on_the_account_is_ok():
    check = assigner([HeldRole(RBAC_ADMIN, ACCOUNT, condition=MATCHING, condition_version="2.0"),
                      HeldRole(READER, f"/subscriptions/{SUB}")])
    assert check.status == OK and "condition matches the policy" in check.detail


def test_an_unconditioned_assigner_fails_in_enforce_mode_and_warns_otherwise():
    held = [HeldRole(RBAC_ADMIN, ACCOUNT)]
    enforce, recommend = assigner(held), assigner(held, mode="recommend")
    assert enforce.status == FAIL and "no condition" in enforce.detail and "abac-condition" in enforce.hint
    assert recommend.status == WARN and "no condition" in recommend.detail and "remove it" in recommend.hint


def test_an_assigner_above_the_account_is_named_even_with_the_right_condition():
    check = assigner([HeldRole(RBAC_ADMIN, f"/subscriptions/{SUB}/resourceGroups/rg-ai", condition=MATCHING,
                               condition_version="2.0")])
    assert check.status == FAIL and "above the account" in check.detail


def test_owner_counts_as_an_assigner_and_needs_the_condition_too():
    check = assigner([HeldRole(OWNER, ACCOUNT)])
    assert check.status == FAIL and check.detail.startswith("Owner on aoai-prod")


def test_without_an_assigner_enforce_mode_fails_and_the_others_skip():
    assert assigner([HeldRole(READER, f"/subscriptions/{SUB}")]).status == FAIL
    skipped = assigner([], mode="observe")
    assert skipped.status == SKIP and "needed only in enforce mode" in skipped.detail


def test_an_assigner_elsewhere_does_not_count_for_this_account():
    other = ACCOUNT.replace("aoai-prod", "aoai-prod-2")
    assert assigner([HeldRole(RBAC_ADMIN, other, condition=MATCHING, condition_version="2.0")]).status == FAIL


def test_own_assignments_list_each_role_and_scope():
    check = doctor.assignments_check("oid", [HeldRole(READER, f"/subscriptions/{SUB}")], [SUB])
    assert check.status == OK and f"Reader on /subscriptions/{SUB}" in check.detail
    assert doctor.assignments_check("oid", [], [SUB]).status == WARN


# ---- tokens and identity -----------------------------------------------------------------------------------------


def test_the_identity_is_the_oid_of_the_arm_token():
    check, oid = doctor.identity_check(jwt({"oid": "0A0A0A0A-0000-4000-8000-00000000A11C", "tid": "t-1"}))
    assert check.status == OK and oid == "0a0a0a0a-0000-4000-8000-00000000a11c" and "tenant t-1" in check.detail
    check, oid = doctor.identity_check("not-a-jwt")
    assert check.status == FAIL and oid is None
    assert doctor.jwt_claims("a.!!!.c") is None and doctor.jwt_claims(jwt({"oid": "x"})) == {"oid": "x"}


@pytest.mark.parametrize(("error", "hint"), [
    ("CredentialUnavailableError: ManagedIdentityCredential authentication unavailable", "managed identity"),
    ("ClientAuthenticationError: DefaultAzureCredential failed to retrieve a token", "az login"),
    ("ClientAuthenticationError: AADSTS700016: Application not found", "client id"),
])
def test_a_missing_token_fails_with_a_one_line_hint(error, hint):
    check = doctor.token_check("ARM", "https://management.azure.com/.default", error)
    assert check.status == FAIL and hint in check.hint and "\n" not in check.hint
    assert doctor.token_check("Event Grid", "s", error, needed=False).status == WARN
    assert doctor.token_check("ARM", "s", None).status == OK


def test_secrets_in_an_error_are_redacted():
    check = doctor.token_check("ARM", "s", "refused Bearer abcdefghijklmnop")
    assert "abcdefghijklmnop" not in check.detail


# ---- workspaces, rows, diagnostic settings, sinks ------------------------------------------------------------------


def rows(*items: tuple[str, str, int, datetime]) -> Traffic:
    return Traffic(tuple(TrafficRow(r, s, n, t) for r, s, n, t in items))


def test_a_readable_workspace_counts_rows_and_401_403_rows():
    traffic = rows((ACCOUNT.lower(), "200", 5, NOW), (ACCOUNT.lower(), "401", 2, NOW - timedelta(days=3)))
    check = doctor.workspace_check("ws", traffic, None, "oid", NOW)
    assert check.status == OK
    assert "1 account(s), 5 in the last 24 h" in check.detail and "2 401/403 row(s)" in check.detail
    assert "no 401/403 row seen yet" in doctor.workspace_check("ws", rows(), None, "oid", NOW).detail


def test_a_forbidden_workspace_fails_with_the_reader_hint():
    error = "HttpResponseError: (InsufficientAccessError) HTTP 403 insufficient access"
    check = doctor.workspace_check("ws", None, error, "oid-1", NOW)
    assert check.status == FAIL and check.hint == "grant Log Analytics Reader on the workspace to oid-1"


def test_a_workspace_without_the_table_yet_warns():
    assert doctor.workspace_check("ws", Traffic(no_data="SEM0100"), None, "oid", NOW).status == WARN


def test_rows_arriving_per_account_across_workspaces():
    recent = {"ws-1": rows((ACCOUNT.upper(), "403", 1, NOW - timedelta(hours=1)))}
    check = doctor.traffic_check(ACCOUNT, recent, NOW)
    assert check.status == OK and "arriving in ws-1" in check.detail and "1 401/403 row(s) seen" in check.detail
    stale = {"ws-1": rows((ACCOUNT, "200", 1, NOW - timedelta(days=2)))}
    assert doctor.traffic_check(ACCOUNT, stale, NOW).status == WARN
    assert doctor.traffic_check(ACCOUNT, {"ws-1": rows()}, NOW).detail == "none in any watched workspace"


def test_diagnostic_settings_must_send_request_response_to_a_workspace():
    to_workspace = DiagnosticSetting("d", "/subscriptions/s/resourceGroups/m/providers/x/workspaces/law",
                                     (("Audit", True), ("RequestResponse", True)))
    assert doctor.diagnostics_check(ACCOUNT, [to_workspace], None).status == OK
    all_logs = DiagnosticSetting("d", "/w/law", (("allLogs", True),))
    assert doctor.diagnostics_check(ACCOUNT, [all_logs], None).status == OK
    disabled = DiagnosticSetting("d", "/w/law", (("RequestResponse", False),))
    storage_only = DiagnosticSetting("d", "", (("RequestResponse", True),))
    assert doctor.diagnostics_check(ACCOUNT, [disabled, storage_only], None).status == FAIL
    assert doctor.diagnostics_check(ACCOUNT, [], None).status == FAIL
    assert doctor.diagnostics_check(ACCOUNT, None, "HttpResponseError: 403").status == FAIL


def test_sinks_without_a_read_only_call_are_skipped():
    assert doctor.sink_check("webhook", None, None, probed=False).status == SKIP
    assert doctor.sink_check("github", None, "TicketAuthError: 401", probed=True).status == FAIL
    assert doctor.sink_check("github", "repository o/r readable", None, probed=True).status == OK


def test_unknown_settings_warn_with_the_closest_name_and_host_problems_fail():
    found = doctor.settings_checks([("TRIAGE_MOD", "TRIAGE_MODE")], [("TRIAGE_SCAN_SCHEDULE", "bad")],
                                   [], running_in_azure=False)
    assert [(c.name, c.status) for c in found] == [("settings", OK), ("TRIAGE_MOD", WARN),
                                                   ("TRIAGE_SCAN_SCHEDULE", FAIL)]
    assert found[1].hint == "did you mean TRIAGE_MODE?"
    missing = [("TRIAGE_SCAN_SCHEDULE", "required")]
    assert doctor.settings_checks([], [], missing, running_in_azure=True)[1].status == FAIL
    assert doctor.settings_checks([], [], missing, running_in_azure=False)[1].status == WARN


def test_the_report_fails_on_any_failed_check_only():
    report = Report((Check("a", "a", OK, ""), Check("b", "b", WARN, ""), Check("c", "c", SKIP, "")))
    assert report.ok and report.counts() == {OK: 1, WARN: 1, FAIL: 0, SKIP: 1}
    failed = Report((*report.checks, Check("d", "d", FAIL, "")))
    assert not failed.ok and failed.to_json()["ok"] is False and len(failed.to_json()["checks"]) == 4
