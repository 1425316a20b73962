"""The review rules of docs/reviews.md over plain data: every readiness verdict and reason, every access finding
class, each policy effect, and the cases that must say "could not check" instead of passing."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from shared.core.reviews import access, policy, readiness
from shared.core.reviews.model import AppActivity, PolicyAssignmentFacts, PolicyExemptionFacts, RoleDefinitionFacts
from shared.core.reviews.render import access_markdown, access_text, readiness_markdown, readiness_text
from tests.support.reviews import (
    ACCOUNT,
    AI_DEVELOPER,
    APP,
    CS_USER,
    FOUNDRY_USER,
    GROUP,
    NOW,
    OPENAI_USER,
    OTHER,
    OWNER,
    RG,
    SUB,
    facts,
    held,
    row,
)

# ---- readiness -------------------------------------------------------------------------------------------------


def test_every_caller_on_entra_with_its_role_is_ready():
    result = readiness.readiness(facts(), days=14, now=NOW)
    assert result.verdict == readiness.READY and not result.reasons and not result.could_not_check
    assert result.entra_callers[0].covered and result.entra_callers[0].roles == ("Cognitive Services OpenAI User",)
    assert result.disable_command == (f'az resource update --ids "{ACCOUNT}" --set properties.disableLocalAuth=true')
    assert "disableLocalAuth=false" in result.rollback[0]


def test_a_key_caller_makes_it_not_ready_with_masked_ips_per_operation():
    result = readiness.readiness(facts(activity=(row(APP), row("", calls=5), row("", "Embeddings_Create", 2))),
                                 days=14, now=NOW)
    assert result.verdict == readiness.NOT_READY
    assert [r.rule for r in result.reasons] == [readiness.KEY_CALLERS]
    assert [(k.operation, k.calls) for k in result.key_callers] == [("ChatCompletions_Create", 5),
                                                                     ("Embeddings_Create", 2)]
    assert result.key_callers[0].caller_ips == ("81.2.69.***",)
    assert "7 key call(s)" in result.reasons[0].text


@pytest.mark.parametrize("ip, masked", [("81.2.69.***", "81.2.69.***"), ("10.1.2.3", "10.1.2.***"),
                                        ("2001:db8:85a3:0:0:8a2e:370:7334", "2001:db8:85a3:****"), ("junk", "***")])
def test_caller_ips_are_masked(ip, masked):
    assert readiness.mask_ip(ip) == masked


def test_an_entra_caller_without_a_covering_role_gets_the_least_privilege_role_to_assign():
    result = readiness.readiness(facts(assignments=(held(APP, OWNER),)), days=14, now=NOW)
    assert result.verdict == readiness.NOT_READY and result.reasons[0].rule == readiness.ENTRA_ROLES
    [caller] = result.entra_callers
    assert not caller.covered and caller.recommended_role == "Cognitive Services OpenAI User"
    assert f"--assignee-object-id {APP}" in caller.command and OPENAI_USER in caller.command
    assert result.to_json()["entra_callers_without_role"] == [APP]


def test_a_role_held_through_a_group_or_above_the_account_counts():
    through_group = held(GROUP, OPENAI_USER, RG, via_group_of=APP, principal_type="Group")
    assert readiness.readiness(facts(assignments=(through_group,)), days=14, now=NOW).verdict == readiness.READY
    elsewhere = held(APP, OPENAI_USER, ACCOUNT.replace("/aoai", "/other"))
    assert readiness.readiness(facts(assignments=(elsewhere,)), days=14, now=NOW).verdict == readiness.NOT_READY


def test_already_disabled_whatever_the_logs_say():
    result = readiness.readiness(facts(disable_local_auth=True, activity=(row(""),)), days=14, now=NOW)
    assert result.verdict == readiness.ALREADY_DISABLED and result.reasons[0].rule == readiness.ALREADY


@pytest.mark.parametrize("change, what", [
    ({"activity": ()}, "no RequestResponse rows"),
    ({"activity": None, "activity_error": "HTTP 403 Forbidden"}, "HTTP 403 Forbidden"),
    ({"assignments": None, "assignments_error": "AuthorizationFailed"}, "AuthorizationFailed"),
    ({"policies": None, "exemptions": None, "policy_error": "HTTP 403 AuthorizationFailed"},
     "Azure Policy: HTTP 403 AuthorizationFailed"),
], ids=["no-traffic", "logs-unreadable", "roles-unreadable", "policy-unreadable"])
def test_what_could_not_be_checked_is_never_ready(change, what):
    result = readiness.readiness(facts(**change), days=14, now=NOW)
    assert result.verdict == readiness.NOT_READY
    assert any(what in line for line in result.could_not_check)
    assert any(r.rule == readiness.UNCHECKED and r.blocking and what in r.text for r in result.reasons)


# ---- policy ----------------------------------------------------------------------------------------------------

KEY_ACCESS_DISABLED = {  # the shape of the built-in "Azure AI Services resources should have key access disabled"
    "displayName": "Azure AI Services resources should have key access disabled (disable local authentication)",
    "parameters": {"effect": {"type": "String", "allowedValues": ["Audit", "Deny", "Disabled"],
                              "defaultValue": "Audit"}},
    "policyRule": {"if": {"allOf": [{"field": "type", "equals": "Microsoft.CognitiveServices/accounts"},
                                    {"field": "Microsoft.CognitiveServices/accounts/disableLocalAuth",
                                     "notEquals": True}]},
                   "then": {"effect": "[parameters('effect')]"}},
}
CONFIGURE_DISABLED = {
    "parameters": {"effect": {"type": "String", "defaultValue": "Modify"}},
    "policyRule": {"if": {"field": "type", "equals": "Microsoft.CognitiveServices/accounts"},
                   "then": {"effect": "[parameters('effect')]", "details": {"operations": [
                       {"operation": "addOrReplace", "field": "Microsoft.CognitiveServices/accounts/disableLocalAuth",
                        "value": True}]}}},
}
UNRELATED = {"policyRule": {"if": {"field": "location", "notIn": ["eastus"]}, "then": {"effect": "deny"}}}
DEF_ID = "/providers/Microsoft.Authorization/policyDefinitions/71ef260a-8f18-47b7-abcb-62d0673d94dc"


def assigned(definition, *, parameters=None, mode="Default", name="no-keys", members=None) -> PolicyAssignmentFacts:
    return PolicyAssignmentFacts(f"{SUB}/providers/Microsoft.Authorization/policyAssignments/{name}", name, SUB,
                                 DEF_ID, mode, parameters or {}, definition, members or {})


@pytest.mark.parametrize("effect, blocks", [("Deny", True), ("Modify", True), ("DeployIfNotExists", True),
                                            ("Audit", False), ("AuditIfNotExists", False), ("Disabled", False)])
def test_each_effect_and_what_it_does_to_a_rollback(effect, blocks):
    found, unreadable = policy.local_auth_policies((assigned(KEY_ACCESS_DISABLED, parameters={"effect": effect}),),
                                                   (), NOW)
    assert not unreadable and [f.effect for f in found] == [effect.lower()]
    assert found[0].blocks_rollback is blocks
    result = readiness.readiness(facts(policies=(assigned(KEY_ACCESS_DISABLED, parameters={"effect": effect}),)),
                                 days=14, now=NOW)
    assert result.verdict == readiness.READY  # a policy is a rollback risk, reported, not a reason to wait
    assert bool(result.blocking_policies) is blocks
    if blocks:
        assert result.reasons[0].rule == readiness.POLICY and not result.reasons[0].blocking
        assert "az policy exemption create" in result.rollback[0]


def test_the_default_effect_applies_and_unrelated_definitions_are_left_out():
    found, _ = policy.local_auth_policies((assigned(KEY_ACCESS_DISABLED), assigned(UNRELATED, name="loc")), (), NOW)
    assert [(f.name, f.effect) for f in found] == [("no-keys", "audit")]


def test_do_not_enforce_and_a_live_exemption_lift_the_block_an_expired_one_does_not():
    deny = assigned(KEY_ACCESS_DISABLED, parameters={"effect": "Deny"})
    assert not policy.local_auth_policies((replace(deny, enforcement_mode="DoNotEnforce"),), (), NOW)[0][0] \
        .blocks_rollback
    live = PolicyExemptionFacts("x/ex", "waiver", deny.assignment_id.upper(), "Waiver", NOW + timedelta(days=1))
    [found], _ = policy.local_auth_policies((deny,), (live,), NOW)
    assert found.exempt and not found.blocks_rollback
    expired = replace(live, expires_on=NOW - timedelta(seconds=1))
    assert policy.local_auth_policies((deny,), (expired,), NOW)[0][0].blocks_rollback


def test_an_assignment_whose_not_scopes_hold_the_account_does_not_apply():
    deny = replace(assigned(KEY_ACCESS_DISABLED, parameters={"effect": "Deny"}), not_scopes=(RG,))
    assert policy.local_auth_policies((deny,), (), NOW, ACCOUNT) == ([], [])
    elsewhere = replace(deny, not_scopes=(f"{SUB}/resourceGroups/other",))
    assert policy.local_auth_policies((elsewhere,), (), NOW, ACCOUNT)[0][0].blocks_rollback


def test_a_set_definition_passes_its_parameters_to_its_members():
    member_id = "/providers/Microsoft.Authorization/policyDefinitions/14de9e63-1b31-492e-a5a3-c3f7fd57f555"
    initiative = {"parameters": {"keysEffect": {"type": "String", "defaultValue": "Disabled"}},
                  "policyDefinitions": [{"policyDefinitionId": member_id, "policyDefinitionReferenceId": "keys",
                                         "parameters": {"effect": {"value": "[parameters('keysEffect')]"}}}]}
    facts_ = assigned(initiative, parameters={"keysEffect": "Modify"}, members={member_id.lower(): CONFIGURE_DISABLED})
    [found], _ = policy.local_auth_policies((facts_,), (), NOW)
    assert (found.definition_id, found.effect, found.blocks_rollback) == (member_id, "modify", True)
    other_member = PolicyExemptionFacts("x/ex", "w", facts_.assignment_id, reference_ids=("other",))
    assert policy.local_auth_policies((facts_,), (other_member,), NOW)[0][0].blocks_rollback
    missing = replace(facts_, members={})
    found_none, unreadable = policy.local_auth_policies((missing,), (), NOW)
    assert not found_none and "could not be read" in unreadable[0]


def test_an_unreadable_definition_is_could_not_check():
    broken = replace(assigned(None), definition_error="HTTP 403 AuthorizationFailed")
    result = readiness.readiness(facts(policies=(broken,)), days=14, now=NOW)
    assert result.verdict == readiness.NOT_READY and "HTTP 403" in result.could_not_check[0]


def test_an_effect_that_cannot_be_resolved_is_unknown():
    weird = {**KEY_ACCESS_DISABLED, "parameters": {}}
    [found], _ = policy.local_auth_policies((assigned(weird),), (), NOW)
    assert found.effect == policy.UNKNOWN and "by hand" in found.rollback_effect


# ---- access ----------------------------------------------------------------------------------------------------


def rules_of(review) -> list[tuple[str, str]]:
    return [(f.rule, f.principal) for f in review.findings]


def test_a_control_plane_role_used_only_for_inference_gets_the_data_role_then_a_removal_for_a_person():
    owner = held(APP, OWNER, SUB)
    review = access.access_review(facts(assignments=(owner,)), days=14)
    [finding] = [f for f in review.findings if f.rule == access.CONTROL_PLANE_FOR_INFERENCE]
    assert finding.calls_account is True and finding.role == "Owner"
    assert OPENAI_USER in finding.commands[0] and "role assignment create" in finding.commands[0]
    assert finding.commands[1].startswith(f'az role assignment delete --ids "{owner.assignment_id}"')
    assert "for a person" in finding.commands[1]


def test_a_control_plane_role_of_a_principal_that_never_calls_is_not_an_inference_finding():
    review = access.access_review(facts(assignments=(held(OTHER, OWNER, SUB), held(APP, OPENAI_USER))), days=14)
    assert rules_of(review) == []


def test_azure_ai_developer_on_a_foundry_resource_becomes_foundry_user():
    review = access.access_review(facts(kind="AIServices", assignments=(held(OTHER, AI_DEVELOPER),),
                                        activity=(row(OTHER),)), days=14)
    assert (access.AI_DEVELOPER_ON_FOUNDRY, OTHER) in rules_of(review)
    [finding] = [f for f in review.findings if f.rule == access.AI_DEVELOPER_ON_FOUNDRY]
    assert FOUNDRY_USER in finding.commands[0]
    classic = access.access_review(facts(assignments=(held(OTHER, AI_DEVELOPER),), activity=(row(OTHER),)), days=14)
    assert access.AI_DEVELOPER_ON_FOUNDRY not in {f.rule for f in classic.findings}


@pytest.mark.parametrize("scope, level", [(RG, "resource group"), (SUB, "subscription"),
                                          ("/providers/Microsoft.Management/managementGroups/mg", "management group")])
def test_a_data_role_at_a_broad_scope_is_narrowed_to_the_account(scope, level):
    review = access.access_review(facts(assignments=(held(APP, OPENAI_USER, scope),)), days=14)
    [finding] = review.findings
    assert finding.rule == access.BROAD_SCOPE and level in finding.text
    assert f'--scope "{ACCOUNT}"' in finding.commands[0]


def test_a_data_role_at_the_account_or_project_is_fine():
    project = f"{ACCOUNT}/projects/p1"
    review = access.access_review(facts(assignments=(held(APP, OPENAI_USER), held(APP, FOUNDRY_USER, project))),
                                  days=14)
    assert rules_of(review) == []


def test_an_identity_that_holds_its_role_only_through_a_group_gets_a_direct_assignment():
    through_group = held(GROUP, OPENAI_USER, ACCOUNT, via_group_of=APP, principal_type="Group")
    review = access.access_review(facts(assignments=(through_group,)), days=14)
    assert rules_of(review) == [(access.GROUP_ONLY_IDENTITY, APP)]
    assert "24 hours" in review.findings[0].text and OPENAI_USER in review.findings[0].commands[0]
    as_user = access.access_review(facts(assignments=(through_group,), principal_kinds={APP: "User"}), days=14)
    assert rules_of(as_user) == []  # groups are the guide's advice for people
    direct_too = access.access_review(facts(assignments=(through_group, held(APP, OPENAI_USER))), days=14)
    assert rules_of(direct_too) == []


def test_a_data_role_whose_principal_never_called_is_reported_unused_only_when_the_logs_were_read():
    assignments = (held(APP, OPENAI_USER), held(OTHER, OPENAI_USER, principal_type="User"))
    review = access.access_review(facts(assignments=assignments), days=14)
    assert rules_of(review) == [(access.UNUSED, OTHER)] and review.findings[0].commands == ()
    for change in ({"activity": ()}, {"activity": None, "activity_error": "HTTP 500"}):
        unknown = access.access_review(facts(assignments=assignments, **change), days=14)
        assert rules_of(unknown) == [] and unknown.could_not_check
        assert all(f.calls_account is None for f in unknown.findings)


def test_pre_upgrade_audit_names_cognitive_services_user_and_wildcard_custom_roles():
    wildcard = RoleDefinitionFacts("44444444-4444-4444-4444-444444444444", "AI everything",
                                   data_actions=("Microsoft.CognitiveServices/accounts/*",))
    openai_only = RoleDefinitionFacts("55555555-5555-5555-5555-555555555555", "OpenAI only",
                                      data_actions=("Microsoft.CognitiveServices/accounts/OpenAI/*",))
    assignments = (held(APP, CS_USER), held(APP, wildcard.guid), held(APP, openai_only.guid))
    review = access.access_review(facts(assignments=assignments, definitions=(wildcard, openai_only)), days=14,
                                  pre_upgrade=True)
    assert sorted(rules_of(review)) == [(access.PRE_UPGRADE_CS_USER, APP), (access.PRE_UPGRADE_WILDCARD, APP)]
    without_flag = access.access_review(facts(assignments=assignments, definitions=(wildcard, openai_only)),
                                        days=14)
    assert rules_of(without_flag) == []
    foundry = access.access_review(facts(kind="AIServices", assignments=assignments,
                                         definitions=(wildcard, openai_only)), days=14, pre_upgrade=True)
    assert rules_of(foundry) == []  # already upgraded: nothing widens


def test_unreadable_assignments_are_could_not_check():
    review = access.access_review(facts(assignments=None, assignments_error="HTTP 403"), days=14)
    assert review.findings == () and "HTTP 403" in review.could_not_check[0]


# ---- output ----------------------------------------------------------------------------------------------------


def test_every_output_form_names_the_rules_and_the_json_round_trips():
    ready = readiness.readiness(facts(activity=(row(""),), policies=(assigned(
        KEY_ACCESS_DISABLED, parameters={"effect": "Deny"}),)), days=14, now=NOW)
    review = access.access_review(facts(assignments=(held(APP, OWNER, SUB),)), days=14)
    for text in (readiness_text([ready]), readiness_markdown([ready])):
        assert readiness.KEY_CALLERS in text and readiness.POLICY in text and "81.2.69.***" in text
    for text in (access_text([review]), access_markdown([review])):
        assert access.CONTROL_PLANE_FOR_INFERENCE in text and "Owner" in text
        assert all(command in text for command in review.findings[0].commands)
    body = json.loads(json.dumps(ready.to_json()))
    assert body["verdict"] == "not_ready" and body["blocking_policies"][0]["effect"] == "deny"
    assert json.loads(json.dumps(review.to_json()))["findings"][0]["rule"] == access.CONTROL_PLANE_FOR_INFERENCE


def test_a_role_on_one_of_the_accounts_projects_counts_for_the_caller():
    on_project = held(GROUP, FOUNDRY_USER, f"{ACCOUNT}/projects/p1", via_group_of=APP, principal_type="Group")
    agents = replace(row(APP, "Assistants_List"), api_name="Azure AI Foundry Projects API")
    result = readiness.readiness(facts(kind="AIServices", activity=(agents,), assignments=(on_project,)),
                                 days=14, now=NOW)
    assert result.verdict == readiness.READY and result.entra_callers[0].surfaces == ("project",)


def test_an_already_disabled_account_still_names_its_failing_callers_without_blocking():
    result = readiness.readiness(facts(disable_local_auth=True, activity=(row(""), row(APP)), assignments=()),
                                 days=14, now=NOW)
    assert [r.rule for r in result.reasons] == [readiness.ALREADY, readiness.KEY_CALLERS, readiness.ENTRA_ROLES]
    assert not any(r.blocking for r in result.reasons)


def test_the_assign_command_names_the_principal_type_only_where_it_is_known():
    result = readiness.readiness(facts(assignments=(), principal_kinds={APP: "User"}), days=14, now=NOW)
    assert "--assignee-principal-type User" in result.entra_callers[0].command
    unknown = readiness.readiness(facts(assignments=()), days=14, now=NOW)
    assert "--assignee-principal-type" not in unknown.entra_callers[0].command


# ---- which app sent the key calls (reviews/apps.py) -------------------------------------------------------------


def _app(name: str, host: str = "aoai.openai.azure.com", *, source: str = "appinsights", calls: int = 4,
         since: timedelta = timedelta(days=2), until: timedelta = timedelta(hours=2)) -> AppActivity:
    return AppActivity(host, name, source, calls, NOW - since, NOW - until)


def test_apps_seen_on_the_accounts_hosts_in_the_key_callers_window_are_attached_to_it():
    apps = (_app("legacy-report", calls=4), _app("legacy-report", "aoai.cognitiveservices.azure.com", calls=1),
            _app("gw (gateway)", "aoai.openai.azure.com", source="gateway", calls=9),
            _app("other-host", "aoai2.openai.azure.com"), _app("not-inference", "aoai.example.com"),
            _app("long-gone", since=timedelta(days=10), until=timedelta(days=5)))
    result = readiness.readiness(facts(activity=(row(""),), apps=apps, custom_subdomain="AOAI"), days=14, now=NOW)
    [key] = result.key_callers
    assert [(a.name, a.source, a.calls) for a in key.apps] == [("gw (gateway)", "gateway", 9),
                                                               ("legacy-report", "appinsights", 5)]
    assert result.apps_unread == "" and result.verdict == readiness.NOT_READY
    out = result.to_json()
    assert out["key_callers"][0]["apps"][1] == {"name": "legacy-report", "source": "appinsights", "calls": 5,
                                                "first_seen": (NOW - timedelta(days=2)).isoformat(),
                                                "last_seen": (NOW - timedelta(hours=2)).isoformat()}
    assert "legacy-report (appinsights)" in readiness_text([result])
    assert "legacy-report (appinsights)" in readiness_markdown([result])


def test_apps_read_but_none_on_the_account_leave_the_key_caller_without_apps_and_say_nothing_is_unread():
    result = readiness.readiness(facts(activity=(row(""),), apps=(), custom_subdomain="aoai"), days=14, now=NOW)
    assert result.key_callers[0].apps == () and result.apps_unread == ""


@pytest.mark.parametrize("change, said", [
    ({"apps": None, "apps_error": "ValueError: neither is set"}, "neither is set"),
    ({"apps": (_app("legacy-report"),), "custom_subdomain": None}, "no custom subdomain"),
])
def test_unread_apps_are_said_not_reported_as_no_apps(change, said):
    result = readiness.readiness(facts(activity=(row(""),), **change), days=14, now=NOW)
    assert result.key_callers[0].apps == ()
    assert said in result.apps_unread and said in result.to_json()["apps_unread"]
    assert said in readiness_text([result])
    assert readiness.UNCHECKED not in {r.rule for r in result.reasons}  # a hint missing never blocks
    assert readiness.readiness(facts(**change), days=14, now=NOW).apps_unread == ""  # no key caller: nothing to tell
