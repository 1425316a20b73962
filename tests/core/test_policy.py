"""The remediation policy: one table test per rule (each refusal names its rule), combinations, all modes, and
properties: nothing generated ever yields a grant the rules forbid, and `decide` never raises."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import HealthCheck, find, given, settings
from hypothesis import strategies as st

from shared.core import roles
from shared.core.allowlist import Allowlist, AllowlistEntry, normalize_object_id, normalize_scope
from shared.core.approval import ApprovalTerms, terms_for
from shared.core.causes import CAUSE_IDS, ROLE_FIXABLE
from shared.core.model import HIGH, LOW, MEDIUM, Diagnosis
from shared.core.policy import RULES, Decision, PolicyConfig, PolicyContext, Refusal, decide, is_resource_scope
from shared.core.revocations import Revocation, Revocations
from shared.core.suppression import parse_duration, suppressed_targets
from shared.settings import load_settings
from shared.state.base import Suppression
from tests.support.paths import REPO_ROOT

NOW = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
SUB = "6a2c1f3e-1b2c-4d5e-8f90-0123456789ab"
RG = f"/subscriptions/{SUB}/resourceGroups/rg-ai"
ACCOUNT = f"{RG}/providers/Microsoft.CognitiveServices/accounts/contoso-aoai"
PROJECT = f"{ACCOUNT}/projects/chat"
OTHER_ACCOUNT = f"{RG}/providers/Microsoft.CognitiveServices/accounts/other"
SP = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
STRANGER = "9b1deb4d-3b7d-4bad-9bdd-2b0d7b3dcb6d"
OPENAI_USER = roles.COGNITIVE_SERVICES_OPENAI_USER
FOUNDRY_USER = roles.FOUNDRY_USER
FORBIDDEN_ROLES = sorted(g for g in roles.BY_GUID if g not in roles.GRANTABLE)


def diagnosis(**changes) -> Diagnosis:
    base = Diagnosis(
        cause="missing_data_role",
        role_fixable=True,
        confidence=HIGH,
        summary="The caller holds no data-plane role on the account.",
        role_name=OPENAI_USER.name,
        role_id=OPENAI_USER.guid,
        scope=ACCOUNT,
        surface="openai",
    )
    return replace(base, **changes)


def config(*entries: AllowlistEntry, **changes) -> PolicyConfig:
    base = PolicyConfig(
        mode="enforce",
        allowlist=Allowlist(entries or (AllowlistEntry(SP, name="orders-api"),)),
        allow_user_grants=False,
        allow_group_grants=False,
        max_grants_per_run=5,
        max_grants_per_day=20,
        incident_cooldown=timedelta(minutes=60),
    )
    return replace(base, **changes)


WITNESS = "logs:workspace row"  # a server-side log row named the failing caller (what a scan reads)


def context(**changes) -> PolicyContext:
    base = PolicyContext(
        now=NOW,
        grants_this_run=0,
        grants_last_24h=0,
        last_grant_at=None,
        suppressed_targets=frozenset(),
        breaker_open=False,
        approved=False,
        evidence_principal_type=None,
        resource_id=ACCOUNT,
        witness=WITNESS,
    )
    return replace(base, **changes)


def approval_of(diag: Diagnosis | None = None, principal: str = SP) -> ApprovalTerms:
    """What an engineer approved: the terms a recommendation on `diag` (the baseline diagnosis) showed."""
    terms = terms_for(diag or diagnosis(), principal)
    assert terms is not None
    return terms


def approved(diag: Diagnosis | None = None, principal: str = SP, **changes) -> PolicyContext:
    """A context whose approval approved exactly the grant on `diag` to `principal`."""
    return context(approved=True, approved_terms=approval_of(diag, principal), **changes)


REVOKED = Revocations((Revocation(SP, OPENAI_USER.guid, ACCOUNT, "alice@contoso.example", NOW - timedelta(days=1)),))


def rules_of(decision: Decision) -> set[str]:
    return {r.rule for r in decision.refusals}


# ---- the baseline: every rule passes ---------------------------------------------------------------------------


def test_everything_allowed_assigns_the_least_privilege_role_at_the_account():
    decision = decide(diagnosis(), SP, config(), context())
    assert decision.action == "assign" and decision.grants
    assert decision.refusals == ()
    assert decision.role_id == OPENAI_USER.guid
    assert decision.role_name == "Cognitive Services OpenAI User"
    assert decision.scope == ACCOUNT
    assert decision.principal_type == "ServicePrincipal"


# ---- one table row per rule: the single failing rule is named --------------------------------------------------

SINGLE_RULE_CASES = [
    # (id, diagnosis changes, principal, config changes, context changes, expected rule, expected action)
    ("recommend mode", {}, SP, {"mode": "recommend"}, {}, "mode", "recommend"),
    ("observe mode", {}, SP, {"mode": "observe"}, {}, "mode", "observe"),
    ("unknown mode is not enforce", {}, SP, {"mode": "Enforce!"}, {}, "mode", "recommend"),
    ("cause not role-fixable", {"cause": "token_audience_invalid", "role_fixable": False}, SP, {}, {},
     "role_fixable", "ticket"),
    ("diagnosis claims role-fixable for a token cause",
     {"cause": "token_invalid_or_expired", "role_fixable": True}, SP, {}, {}, "role_fixable", "ticket"),
    ("medium confidence", {"confidence": MEDIUM}, SP, {}, {}, "confidence", "ticket"),
    ("low confidence", {"confidence": LOW}, SP, {}, {}, "confidence", "ticket"),
    ("key caller", {}, None, {}, {"evidence_principal_type": "ServicePrincipal"}, "entra_principal", "ticket"),
    ("not an object id", {}, "orders-api", {}, {"evidence_principal_type": "ServicePrincipal"},
     "entra_principal", "ticket"),
    ("not on the allowlist", {}, STRANGER, {}, {"evidence_principal_type": "ServicePrincipal"}, "allowlist",
     "ticket"),
    ("object id with one extra character", {}, SP + "0", {}, {"evidence_principal_type": "ServicePrincipal"},
     "entra_principal", "ticket"),
    ("entry narrows roles",
     {}, SP, {"allowlist": Allowlist((AllowlistEntry(SP, role_ids=frozenset({FOUNDRY_USER.guid})),))}, {},
     "allowlist_role", "ticket"),
    ("entry narrows scopes",
     {}, SP, {"allowlist": Allowlist((AllowlistEntry(SP, scopes=(normalize_scope(OTHER_ACCOUNT),)),))}, {},
     "allowlist_scope", "ticket"),
    ("Owner", {"role_id": roles.lookup("Owner").guid, "role_name": "Owner"}, SP, {}, {}, "grantable_role",
     "ticket"),
    ("unknown role id", {"role_id": "00000000-0000-0000-0000-000000000000", "role_name": None}, SP, {}, {},
     "grantable_role", "ticket"),
    ("no role named", {"role_id": None, "role_name": None}, SP, {}, {}, "grantable_role", "ticket"),
    ("role id and name disagree", {"role_name": "Owner"}, SP, {}, {}, "grantable_role", "ticket"),
    ("resource group scope", {"scope": RG}, SP, {}, {}, "resource_scope", "ticket"),
    ("subscription scope", {"scope": f"/subscriptions/{SUB}"}, SP, {}, {}, "resource_scope", "ticket"),
    ("management group scope",
     {"scope": "/providers/Microsoft.Management/managementGroups/contoso"}, SP, {}, {}, "resource_scope",
     "ticket"),
    ("no scope", {"scope": None}, SP, {}, {}, "resource_scope", "ticket"),
    ("scope is another account", {"scope": OTHER_ACCOUNT}, SP, {}, {}, "scope_matches_resource", "ticket"),
    ("declared type disagrees with evidence", {}, SP, {}, {"evidence_principal_type": "User"},
     "principal_type_match", "ticket"),
    ("user without allow_user_grants",
     {}, SP, {"allowlist": Allowlist((AllowlistEntry(SP, principal_type="User"),))}, {}, "principal_type",
     "ticket"),
    ("group without allow_group_grants",
     {}, SP, {"allowlist": Allowlist((AllowlistEntry(SP, principal_type="Group"),))}, {}, "principal_type",
     "ticket"),
    ("foreign group even with both flags",
     {}, SP, {"allowlist": Allowlist((AllowlistEntry(SP, principal_type="ForeignGroup"),)),
              "allow_user_grants": True, "allow_group_grants": True}, {}, "principal_type", "ticket"),
    ("run cap reached", {}, SP, {}, {"grants_this_run": 5}, "run_cap", "ticket"),
    ("run cap zero", {}, SP, {"max_grants_per_run": 0}, {}, "run_cap", "ticket"),
    ("daily cap reached", {}, SP, {}, {"grants_last_24h": 20}, "daily_cap", "ticket"),
    ("within the cool-down", {}, SP, {}, {"last_grant_at": NOW - timedelta(minutes=59)}, "cooldown", "ticket"),
    ("principal suppressed", {}, SP, {}, {"suppressed_targets": frozenset({SP})}, "suppression", "suppressed"),
    ("account suppressed", {}, SP, {}, {"suppressed_targets": frozenset({normalize_scope(ACCOUNT)})},
     "suppression", "suppressed"),
    ("resource group suppressed", {}, SP, {}, {"suppressed_targets": frozenset({normalize_scope(RG)})},
     "suppression", "suppressed"),
    ("breaker open", {}, SP, {}, {"breaker_open": True}, "circuit_breaker", "ticket"),
    ("evidence look-up failed", {}, SP, {}, {"evidence_failures": ("account x: HTTP 503",)}, "evidence_complete",
     "ticket"),
    ("hourly cap reached", {}, SP, {}, {"grants_last_hour": 10}, "hourly_cap", "ticket"),
    ("hourly cap zero", {}, SP, {"max_grants_per_hour": 0}, {}, "hourly_cap", "ticket"),
    ("enforce mode without a witness", {}, SP, {}, {"witness": None}, "corroborated", "recommend"),
    ("enforce mode, blank witness", {}, SP, {}, {"witness": " "}, "corroborated", "recommend"),
    ("the role was revoked at the account", {}, SP, {}, {"revocations": REVOKED}, "revoked", "ticket"),
    ("a project of a revoked account", {"scope": PROJECT}, SP, {}, {"revocations": REVOKED}, "revoked", "ticket"),
    ("another grantable role of a revoked principal and scope",
     {"role_id": roles.COGNITIVE_SERVICES_USER.guid, "role_name": None}, SP, {}, {"revocations": REVOKED},
     "revoked", "ticket"),
    ("unreadable revocations", {}, SP, {}, {"revocations": Revocations(unreadable="stored revocations unreadable")},
     "revoked", "ticket"),
    ("approved another scope", {}, SP, {"mode": "recommend"},
     {"approved": True, "approved_terms": approval_of(diagnosis(scope=PROJECT))}, "approval_binding", "ticket"),
    ("approved another role", {}, SP, {"mode": "recommend"},
     {"approved": True, "approved_terms": approval_of(diagnosis(role_id=FOUNDRY_USER.guid, role_name=None))},
     "approval_binding", "ticket"),
    ("approved another cause", {}, SP, {"mode": "recommend"},
     {"approved": True, "approved_terms": approval_of(diagnosis(cause="wrong_role_for_surface"))},
     "approval_binding", "ticket"),
    ("approved another principal", {}, SP, {"mode": "recommend"},
     {"approved": True, "approved_terms": approval_of(principal=STRANGER)}, "approval_binding", "ticket"),
    ("an approval that names no terms", {}, SP, {"mode": "recommend"}, {"approved": True}, "approval_binding",
     "ticket"),
    ("project call whose project is unknown",
     {"role_id": FOUNDRY_USER.guid, "role_name": None, "surface": "project"}, SP, {}, {}, "project_scope",
     "ticket"),
    ("project call on another project than the failing one",
     {"role_id": FOUNDRY_USER.guid, "role_name": None, "surface": "project", "scope": ACCOUNT + "/projects/other"},
     SP, {}, {"resource_id": PROJECT}, "project_scope", "ticket"),
    ("the failure claims another principal type", {}, SP, {}, {"claimed_principal_type": "User"},
     "principal_type_match", "ticket"),
]


@pytest.mark.parametrize(
    ("diag_changes", "principal", "config_changes", "ctx_changes", "rule", "action"),
    [pytest.param(*case[1:], id=case[0]) for case in SINGLE_RULE_CASES],
)
def test_each_rule_refuses_alone_and_names_itself(diag_changes, principal, config_changes, ctx_changes, rule,
                                                  action):
    decision = decide(diagnosis(**diag_changes), principal, config(**config_changes), context(**ctx_changes))
    assert rules_of(decision) == {rule}
    assert decision.action == action
    assert not decision.grants
    assert all(r.reason for r in decision.refusals)
    assert rule in RULES


def test_every_documented_rule_has_a_table_row():
    covered = {case[5] for case in SINGLE_RULE_CASES}
    assert covered == set(RULES) - {"policy_error"}


# ---- what must still be allowed (the rules are not over-broad) ----------------------------------------------

ALLOWED_CASES = [
    ("project scope", {"scope": PROJECT}, SP, {}, {}),
    ("project scope, failing resource is the account", {"scope": PROJECT}, SP, {}, {"resource_id": ACCOUNT}),
    ("upper-case scope", {"scope": ACCOUNT.upper()}, SP, {}, {}),
    ("failing resource unknown to the context", {}, SP, {}, {"resource_id": None}),
    ("object id with braces, case and spaces", {}, "  {" + SP.upper() + "}  ", {}, {}),
    ("Foundry User for a project", {"role_id": FOUNDRY_USER.guid, "role_name": "Azure AI User",
                                    "scope": PROJECT, "surface": "project"}, SP, {}, {}),
    ("full role definition id",
     {"role_id": f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{OPENAI_USER.guid}"},
     SP, {}, {}),
    ("role named only", {"role_id": None}, SP, {}, {}),
    ("entry scoped to the resource group", {}, SP,
     {"allowlist": Allowlist((AllowlistEntry(SP, scopes=(normalize_scope(RG),)),))}, {}),
    ("entry scoped to the account, grant at a project", {"scope": PROJECT}, SP,
     {"allowlist": Allowlist((AllowlistEntry(SP, scopes=(normalize_scope(ACCOUNT),)),))}, {}),
    ("evidence agrees, any case", {}, SP, {}, {"evidence_principal_type": "servicePrincipal"}),
    ("user with allow_user_grants", {}, SP,
     {"allowlist": Allowlist((AllowlistEntry(SP, principal_type="User"),)), "allow_user_grants": True}, {}),
    ("group with allow_group_grants", {}, SP,
     {"allowlist": Allowlist((AllowlistEntry(SP, principal_type="Group"),)), "allow_group_grants": True}, {}),
    ("below the run cap", {}, SP, {}, {"grants_this_run": 4}),
    ("below the daily cap", {}, SP, {}, {"grants_last_24h": 19}),
    ("cool-down just over", {}, SP, {}, {"last_grant_at": NOW - timedelta(minutes=60)}),
    ("suppression of another resource", {}, SP, {},
     {"suppressed_targets": frozenset({normalize_scope(OTHER_ACCOUNT), STRANGER})}),
    ("suppression of a resource-group name prefix is not a parent", {}, SP, {},
     {"suppressed_targets": frozenset({normalize_scope(RG[:-1])})}),
    ("wrong role for surface", {"cause": "wrong_role_for_surface"}, SP, {}, {}),
    ("group membership cache", {"cause": "group_membership_cache"}, SP, {}, {}),
    ("below the hourly cap", {}, SP, {}, {"grants_last_hour": 9}),
    ("a trusted event topic witnesses it", {}, SP, {}, {"witness": "event from trusted topic /x"}),
    ("revoked from another principal", {}, STRANGER,
     {"allowlist": Allowlist((AllowlistEntry(STRANGER),))}, {"revocations": REVOKED}),
    ("revoked at another account", {}, SP, {}, {"revocations": Revocations((replace(
        REVOKED.entries[0], scope=OTHER_ACCOUNT),))}),
    ("revoked at a sibling project", {"scope": PROJECT}, SP, {}, {"revocations": Revocations((replace(
        REVOKED.entries[0], scope=ACCOUNT + "/projects/other"),))}),
    ("a project call at the project it named", {"role_id": FOUNDRY_USER.guid, "role_name": None,
                                                "surface": "project", "scope": PROJECT}, SP, {},
     {"resource_id": PROJECT}),
    ("the failure claims the declared type", {}, SP, {}, {"claimed_principal_type": "servicePrincipal"}),
    ("approved exactly this, in recommend mode", {}, SP, {"mode": "recommend"}, {"approved": True,
                                                                              "approved_terms": approval_of()}),
    ("approved exactly this, without a witness", {}, SP, {}, {"approved": True, "approved_terms": approval_of(),
                                                              "witness": None}),
]


@pytest.mark.parametrize(
    ("diag_changes", "principal", "config_changes", "ctx_changes"),
    [pytest.param(*case[1:], id=case[0]) for case in ALLOWED_CASES],
)
def test_allowed_variants_assign(diag_changes, principal, config_changes, ctx_changes):
    decision = decide(diagnosis(**diag_changes), principal, config(**config_changes), context(**ctx_changes))
    assert decision.refusals == ()
    assert decision.action == "assign"
    assert decision.role_id in roles.GRANTABLE


@pytest.mark.parametrize("role_guid", FORBIDDEN_ROLES, ids=lambda g: roles.BY_GUID[g].name)
def test_no_configuration_grants_a_role_outside_the_three(role_guid):
    # A hand-built entry that "allows" the role: the policy must refuse on its own.
    entry = AllowlistEntry(SP, role_ids=frozenset({role_guid, *roles.GRANTABLE}))
    decision = decide(
        diagnosis(role_id=role_guid, role_name=None),
        SP,
        config(entry, allow_user_grants=True, allow_group_grants=True, max_grants_per_run=100),
        approved(diagnosis(role_id=role_guid, role_name=None)),
    )
    assert rules_of(decision) == {"grantable_role"}
    assert decision.action == "ticket"
    assert decision.role_id is None  # a decision never carries a role it may not grant


@pytest.mark.parametrize(
    "scope",
    [
        f"{ACCOUNT}/deployments/gpt-4o",
        f"{ACCOUNT}/",
        f" {ACCOUNT}",
        f"{ACCOUNT}\n",
        f"{PROJECT}/projects/nested",
        f"{ACCOUNT}/../other",
        f"/subscriptions/{SUB}/resourceGroups/./providers/Microsoft.CognitiveServices/accounts/a",
        "/subscriptions/not-a-guid/resourceGroups/rg/providers/Microsoft.CognitiveServices/accounts/a",
        f"{RG}/providers/Microsoft.Storage/storageAccounts/contoso",
        f"{RG}/providers/Microsoft.CognitiveServices/accounts",
        f"/subscriptions/{SUB}//resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/a",
        f"{RG}/providers/Microsoft.CognitiveServices/accounts/a?api-version=2024-10-01",
        f"{RG}/providers/Microsoft.CognitiveServices/accounts/a%2F..",
        f"{RG}/providers/Microsoft.CognitiveServ\u0130ces/accounts/a",
        f"/providers/Microsoft.Management/managementGroups/root{ACCOUNT}",
        "/",
        "",
    ],
)
def test_scope_must_be_exactly_an_account_or_project(scope):
    decision = decide(diagnosis(scope=scope), SP, config(), context(resource_id=None))
    assert "resource_scope" in rules_of(decision)
    assert not decision.grants and decision.scope is None


# ---- combinations and modes -----------------------------------------------------------------------------------


def test_every_failing_rule_is_reported_not_just_the_first():
    entry = AllowlistEntry(SP, principal_type="User", scopes=(normalize_scope(OTHER_ACCOUNT),))
    decision = decide(
        diagnosis(cause="unknown", role_fixable=False, confidence=LOW, role_id=roles.lookup("Owner").guid,
                  role_name=None, scope=RG),
        SP,
        config(entry, mode="recommend", max_grants_per_run=1, max_grants_per_day=1),
        context(grants_this_run=1, grants_last_24h=1, last_grant_at=NOW, breaker_open=True),
    )
    assert rules_of(decision) == {
        "mode", "role_fixable", "confidence", "grantable_role", "resource_scope", "principal_type", "run_cap",
        "daily_cap", "cooldown", "circuit_breaker",
    }
    assert decision.action == "ticket"


def test_recommend_mode_and_another_refusal_is_a_ticket_not_an_approvable_recommendation():
    decision = decide(diagnosis(), STRANGER, config(mode="recommend"),
                      context(evidence_principal_type="ServicePrincipal"))
    assert decision.action == "ticket"
    assert rules_of(decision) == {"mode", "allowlist"}


def test_recommendation_carries_the_exact_fix():
    decision = decide(diagnosis(scope=PROJECT, role_id=FOUNDRY_USER.guid, role_name=None), SP,
                      config(mode="recommend"), context())
    assert decision.action == "recommend"
    assert decision.refusals == (Refusal("mode", decision.refusals[0].reason),)
    assert (decision.role_id, decision.role_name, decision.scope) == (FOUNDRY_USER.guid, "Foundry User", PROJECT)
    assert decision.opens_ticket


@pytest.mark.parametrize("mode", ["recommend", "enforce"])
def test_approval_lifts_only_the_mode_gate(mode):
    granted = decide(diagnosis(), SP, config(mode=mode), approved())
    assert granted.action == "assign"
    still_capped = decide(diagnosis(), SP, config(mode=mode), approved(grants_this_run=5))
    assert still_capped.action == "ticket" and rules_of(still_capped) == {"run_cap"}
    breaker = decide(diagnosis(), SP, config(mode=mode), approved(breaker_open=True))
    assert breaker.action == "ticket" and rules_of(breaker) == {"circuit_breaker"}
    revoked = decide(diagnosis(), SP, config(mode=mode), approved(revocations=REVOKED))
    assert revoked.action == "ticket" and rules_of(revoked) == {"revoked"}


def test_observe_mode_refuses_an_approval_with_the_mode_rule():
    decision = decide(diagnosis(), SP, config(mode="observe"), approved())
    assert decision.action == "observe" and not decision.grants
    assert rules_of(decision) == {"mode"} and "approvals included" in decision.refusals[0].reason


def test_an_approval_grants_exactly_what_it_approved_and_nothing_else():
    terms = approval_of()
    assert decide(diagnosis(), SP, config(mode="recommend"), approved()).grants
    for changed in (diagnosis(scope=PROJECT), diagnosis(role_id=FOUNDRY_USER.guid, role_name=None),
                    diagnosis(cause="wrong_role_for_surface"), diagnosis(surface="models")):
        decision = decide(changed, SP, config(mode="recommend"), context(approved=True, approved_terms=terms))
        assert not decision.grants and "approval_binding" in rules_of(decision)
    # scope case and principal spelling are not differences
    assert decide(diagnosis(scope=ACCOUNT.upper()), SP.upper(), config(mode="recommend"), approved()).grants


def test_observe_mode_never_tickets_or_grants_whatever_else_fails():
    decision = decide(diagnosis(cause="unknown", role_fixable=False), None, config(mode="observe"),
                      context(breaker_open=True, suppressed_targets=frozenset({SP})))
    assert decision.action == "observe"
    assert not decision.grants and not decision.opens_ticket


def test_suppression_wins_over_waiting_and_over_other_refusals():
    targets = frozenset({SP})
    pending = decide(diagnosis(cause="propagation_pending", role_fixable=False), SP, config(), context(
        suppressed_targets=targets))
    assert pending.action == "suppressed"
    refused = decide(diagnosis(confidence=LOW), SP, config(), context(suppressed_targets=targets))
    assert refused.action == "suppressed" and rules_of(refused) == {"suppression", "confidence"}


@pytest.mark.parametrize("mode", ["recommend", "enforce"])
def test_propagation_pending_waits_and_never_assigns(mode):
    decision = decide(diagnosis(cause="propagation_pending", role_fixable=False), SP, config(mode=mode),
                      approved(diagnosis(cause="propagation_pending", role_fixable=False)))
    assert decision.action == "wait"
    assert not decision.grants and not decision.opens_ticket


def test_group_membership_cache_grant_is_also_ticketed():
    decision = decide(diagnosis(cause="group_membership_cache"), SP, config(), context())
    assert decision.grants and decision.opens_ticket
    plain = decide(diagnosis(), SP, config(), context())
    assert plain.grants and not plain.opens_ticket


def test_duplicate_entries_can_only_narrow():
    wide = AllowlistEntry(SP)
    narrow = AllowlistEntry(SP.upper(), role_ids=frozenset({FOUNDRY_USER.guid}))
    decision = decide(diagnosis(), SP, config(wide, narrow), context())
    assert rules_of(decision) == {"allowlist_role"}
    conflicting = decide(diagnosis(), SP, config(wide, AllowlistEntry(SP, principal_type="User")), context())
    assert "principal_type_match" in rules_of(conflicting) and not conflicting.grants


def test_hand_built_entry_ids_are_normalized_for_matching():
    entry = AllowlistEntry("{" + SP.upper() + "}")
    assert decide(diagnosis(), SP, config(entry), context()).grants


def test_decide_never_raises_on_broken_inputs_and_fails_closed():
    naive_clock = context(now=datetime(2026, 3, 2, 12, 0), last_grant_at=NOW)  # naive vs aware: TypeError inside
    decision = decide(diagnosis(), SP, config(), naive_clock)
    assert decision.action == "ticket" and rules_of(decision) == {"policy_error"}
    broken = decide(diagnosis(), SP, config(allowlist=None), context())
    assert not broken.grants and rules_of(broken) == {"policy_error"}
    observe = decide(diagnosis(), SP, config(mode="observe", allowlist=None), context())
    assert observe.action == "observe"


def test_config_from_settings():
    settings = load_settings({
        "TRIAGE_MODE": "enforce",
        "TRIAGE_ALLOWLIST": f'[{{"object_id": "{SP.upper()}", "roles": ["Foundry User"], "principal_type": "User"}}]',
        "TRIAGE_ALLOW_USER_GRANTS": "true",
        "TRIAGE_MAX_GRANTS_PER_RUN": "2",
        "TRIAGE_MAX_GRANTS_PER_DAY": "7",
        "TRIAGE_INCIDENT_COOLDOWN_MINUTES": "15",
    })
    cfg = PolicyConfig.from_settings(settings)
    assert cfg.mode == "enforce" and cfg.allow_user_grants and not cfg.allow_group_grants
    assert (cfg.max_grants_per_run, cfg.max_grants_per_day, cfg.incident_cooldown) == (2, 7, timedelta(minutes=15))
    decision = decide(diagnosis(role_id=FOUNDRY_USER.guid, role_name=None, scope=PROJECT), SP, cfg, context())
    assert decision.grants and decision.principal_type == "User"
    assert rules_of(decide(diagnosis(), SP, cfg, context())) == {"allowlist_role"}
    assert PolicyConfig.from_settings(load_settings({})).mode == "recommend"


def test_docs_describe_every_rule():
    text = (REPO_ROOT / "docs" / "policy.md").read_text(encoding="utf-8")
    rules_section = text.split("\n## Rules", 1)[1].split("\n## ", 1)[0]
    documented = set(re.findall(r"^\| `([a-z_]+)` \|", rules_section, flags=re.MULTILINE))
    assert documented == set(RULES)


# ---- suppression helpers ----------------------------------------------------------------------------------------


def test_suppressed_targets_normalizes_and_honours_expiry():
    def sup(target: str, until: datetime) -> Suppression:
        return Suppression(target=target, until=until, reason="maintenance", actor="oncall", created_at=NOW)

    targets = suppressed_targets(
        [
            sup(" {" + SP.upper() + "} ", NOW + timedelta(hours=1)),
            sup(ACCOUNT.upper() + "/", NOW + timedelta(seconds=1)),
            sup(STRANGER, NOW),  # ends exactly now: no longer active
            sup("not-an-id", NOW + timedelta(days=1)),
        ],
        NOW,
    )
    assert targets == frozenset({SP, normalize_scope(ACCOUNT)})
    assert decide(diagnosis(scope=PROJECT), STRANGER, config(), context(suppressed_targets=targets)).action == (
        "suppressed")


@pytest.mark.parametrize(("text", "expected"), [
    ("7d", timedelta(days=7)), ("12h", timedelta(hours=12)), ("30m", timedelta(minutes=30)),
    (" 1h ", timedelta(hours=1)), ("365d", timedelta(days=365)),
])
def test_parse_duration(text, expected):
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "7", "d", "0h", "-1h", "1.5h", "7D", "7 d", "1w", "30s", "1h30m", "366d",
                                  "99999999d", "٣h"])
def test_parse_duration_rejects_anything_else_clearly(text):
    with pytest.raises(ValueError, match="invalid duration"):
        parse_duration(text)


# ---- properties -------------------------------------------------------------------------------------------------

GUIDS = [SP, STRANGER, "0f8fad5b-d9cb-469f-a165-70867728950e"]


def _variants(guid: str) -> st.SearchStrategy[str]:
    return st.sampled_from([guid, guid.upper(), "{" + guid + "}", f"  {guid}\t", guid[:-1], guid + "0"])


object_ids = st.one_of(*(_variants(g) for g in GUIDS), st.text(max_size=40))
role_refs = st.one_of(
    st.sampled_from(sorted(roles.BY_GUID)),
    st.sampled_from(sorted(roles.BY_GUID)).map(str.upper),
    st.sampled_from(sorted(roles.BY_GUID)).map(
        lambda g: f"/subscriptions/{SUB}/providers/Microsoft.Authorization/roleDefinitions/{g}"),
    st.text(max_size=40),
)
role_names = st.one_of(st.none(), st.sampled_from([r.name for r in roles.BY_GUID.values()]), st.text(max_size=30))
_name = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._()-]{0,12}", fullmatch=True)
scopes = st.one_of(
    st.sampled_from([ACCOUNT, PROJECT, OTHER_ACCOUNT, RG, f"/subscriptions/{SUB}", "/",
                     "/providers/Microsoft.Management/managementGroups/root", ACCOUNT + "/deployments/x"]),
    st.builds(lambda rg, a: f"/subscriptions/{SUB}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/"
              f"accounts/{a}", _name, _name),
    st.builds(lambda base, tail: base + tail, st.sampled_from([ACCOUNT, PROJECT, RG]), st.text(max_size=20)),
    st.text(max_size=60),
)
principal_types = st.sampled_from(["ServicePrincipal", "User", "Group", "ForeignGroup", "Device", "serviceprincipal",
                                   "", "ManagedIdentity"])
entries = st.builds(
    AllowlistEntry,
    object_id=object_ids,
    role_ids=st.frozensets(role_refs, max_size=4),
    scopes=st.lists(scopes, max_size=3).map(tuple),
    principal_type=principal_types,
)
configs = st.builds(
    PolicyConfig,
    mode=st.sampled_from(["observe", "recommend", "enforce", "ENFORCE", ""]),
    allowlist=st.lists(entries, max_size=4).map(lambda es: Allowlist(tuple(es))),
    allow_user_grants=st.booleans(),
    allow_group_grants=st.booleans(),
    max_grants_per_run=st.integers(-2, 8),
    max_grants_per_day=st.integers(-2, 30),
    incident_cooldown=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2)),
)
diagnoses = st.builds(
    Diagnosis,
    cause=st.one_of(st.sampled_from(CAUSE_IDS), st.text(max_size=20)),
    role_fixable=st.booleans(),
    confidence=st.sampled_from([HIGH, MEDIUM, LOW, "High", ""]),
    summary=st.just("generated"),
    role_name=role_names,
    role_id=st.one_of(st.none(), role_refs),
    scope=st.one_of(st.none(), scopes),
)
contexts = st.builds(
    PolicyContext,
    now=st.just(NOW),
    grants_this_run=st.integers(-1, 10),
    grants_last_24h=st.integers(-1, 40),
    last_grant_at=st.one_of(st.none(), st.timedeltas(min_value=timedelta(days=-3), max_value=timedelta(hours=1))
                            .map(lambda d: NOW + d)),
    suppressed_targets=st.frozensets(st.sampled_from([SP, STRANGER, normalize_scope(ACCOUNT), normalize_scope(RG),
                                                      normalize_scope(OTHER_ACCOUNT)]), max_size=2),
    breaker_open=st.booleans(),
    approved=st.booleans(),
    evidence_principal_type=st.one_of(st.none(), principal_types),
    resource_id=st.one_of(st.none(), scopes),
    grants_last_hour=st.integers(-1, 15),
    witness=st.sampled_from([None, "", WITNESS]),
    claimed_principal_type=st.one_of(st.none(), principal_types),
    revocations=st.sampled_from([Revocations(), REVOKED, Revocations(unreadable="unreadable")]),
    approved_terms=st.sampled_from([None, approval_of(), approval_of(diagnosis(scope=PROJECT))]),
)


def _is_account_or_project(scope: str) -> bool:
    """An independent oracle for the scope rule: split the id into its segments."""
    parts = scope.split("/")
    if parts[0] != "" or len(parts) not in (9, 11):
        return False
    keywords = [p.lower() for p in parts[1:9:2]]
    if keywords != ["subscriptions", "resourcegroups", "providers", "accounts"]:
        return False
    if parts[6].lower() != "microsoft.cognitiveservices" or normalize_object_id(parts[2]) != parts[2].lower():
        return False
    if len(parts) == 11 and parts[9].lower() != "projects":
        return False
    names = [parts[4], parts[8]] + ([parts[10]] if len(parts) == 11 else [])
    return all(n and n.isascii() and n.strip() == n and n not in (".", "..") and "?" not in n for n in names)


sp_entries = st.builds(
    AllowlistEntry,
    object_id=_variants(SP),
    role_ids=st.one_of(st.just(roles.GRANTABLE), st.frozensets(role_refs, max_size=4)),
    scopes=st.one_of(st.just(()), st.lists(scopes, max_size=2).map(tuple)),
    principal_type=st.one_of(st.just("ServicePrincipal"), principal_types),
)
# Each perturbation replaces one field of the all-allowed baseline with a generated value.
PERTURBATIONS: dict[str, tuple[str, st.SearchStrategy]] = {
    "cause": ("diag", st.one_of(st.sampled_from(CAUSE_IDS), st.text(max_size=20))),
    "role_fixable": ("diag", st.booleans()),
    "confidence": ("diag", st.sampled_from([MEDIUM, LOW, "High", ""])),
    "role_id": ("diag", st.one_of(st.none(), role_refs)),
    "role_name": ("diag", role_names),
    "scope": ("diag", st.one_of(st.none(), scopes)),
    "principal": ("principal", st.one_of(st.none(), object_ids)),
    "mode": ("cfg", st.sampled_from(["observe", "recommend", "ENFORCE", ""])),
    "allowlist": ("cfg", st.builds(lambda mine, others: Allowlist((*others, *mine)),
                                   st.lists(sp_entries, max_size=2), st.lists(entries, max_size=2))),
    "allow_user_grants": ("cfg", st.booleans()),
    "allow_group_grants": ("cfg", st.booleans()),
    "max_grants_per_run": ("cfg", st.integers(-2, 8)),
    "max_grants_per_day": ("cfg", st.integers(-2, 30)),
    "incident_cooldown": ("cfg", st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=2))),
    "grants_this_run": ("ctx", st.integers(-1, 10)),
    "grants_last_24h": ("ctx", st.integers(-1, 40)),
    "last_grant_at": ("ctx", st.one_of(st.sampled_from([NOW, NOW - timedelta(minutes=59), NOW + timedelta(hours=1)]),
                                       contexts.map(lambda c: c.last_grant_at))),
    "suppressed_targets": ("ctx", contexts.map(lambda c: c.suppressed_targets)),
    "breaker_open": ("ctx", st.booleans()),
    "approved": ("ctx", st.booleans()),
    "evidence_principal_type": ("ctx", st.one_of(st.none(), principal_types)),
    "resource_id": ("ctx", st.one_of(st.none(), scopes)),
    "declared_type": ("entries", principal_types),  # every allowlist entry declares this type
    "max_grants_per_hour": ("cfg", st.integers(-2, 12)),
    "grants_last_hour": ("ctx", st.integers(-1, 15)),
    "witness": ("ctx", st.sampled_from([None, "", WITNESS])),
    "claimed_principal_type": ("ctx", st.one_of(st.none(), principal_types)),
    "revocations": ("ctx", contexts.map(lambda c: c.revocations)),
    "approved_terms": ("ctx", contexts.map(lambda c: c.approved_terms)),
}


@st.composite
def perturbed_inputs(draw, fields: tuple[str, ...] = tuple(sorted(PERTURBATIONS)), most: int = 3):
    """The all-allowed baseline with up to `most` of `fields` replaced: most decisions sit next to a grant."""
    parts = {"diag": diagnosis(), "principal": SP, "cfg": config(),
             "ctx": context(evidence_principal_type="ServicePrincipal")}
    for name in sorted(draw(st.sets(st.sampled_from(fields), max_size=most))):
        target, strategy = PERTURBATIONS[name]
        value = draw(strategy)
        if target == "principal":
            parts["principal"] = value
        elif target == "entries":
            cfg = parts["cfg"]
            typed = tuple(replace(e, principal_type=value) for e in cfg.allowlist.entries)
            parts["cfg"] = replace(cfg, allowlist=Allowlist(typed))
        else:
            parts[target] = replace(parts[target], **{name: value})
    return parts["diag"], parts["principal"], parts["cfg"], parts["ctx"]


def _fields(target: str) -> tuple[str, ...]:
    return tuple(sorted(n for n, (t, _) in PERTURBATIONS.items() if t == target))


inputs = st.one_of(
    st.tuples(diagnoses, st.one_of(st.none(), object_ids), configs, contexts),
    perturbed_inputs(),
    perturbed_inputs(("allowlist",), most=1),
    perturbed_inputs(("declared_type", "evidence_principal_type", "allow_user_grants", "allow_group_grants"), most=4),
    perturbed_inputs(("allowlist", "principal", "evidence_principal_type", "scope", "role_id"), most=2),
    perturbed_inputs(_fields("diag"), most=2),
    perturbed_inputs(_fields("cfg") + _fields("ctx"), most=2),
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=inputs)
def test_no_generated_input_yields_a_forbidden_grant(args):
    diag, principal, cfg, ctx = args
    decision = decide(diag, principal, cfg, ctx)  # never raises
    assert decision.action in ("assign", "recommend", "ticket", "wait", "observe", "suppressed")
    assert {r.rule for r in decision.refusals} <= set(RULES)
    assert decision.role_id is None or decision.role_id in roles.GRANTABLE
    assert decision.grants == (decision.refusals == () and decision.action == "assign")
    if not decision.grants:
        return
    role = roles.BY_GUID[decision.role_id]
    assert role.guid in roles.GRANTABLE and not role.writes_role_assignments
    assert _is_account_or_project(decision.scope)
    oid = normalize_object_id(principal)
    matching = [e for e in cfg.allowlist.entries if normalize_object_id(e.object_id) == oid]
    assert oid is not None and matching
    for entry in matching:
        assert role.guid in {roles.guid_of(r) for r in entry.role_ids}
        target = normalize_scope(decision.scope)
        assert not entry.scopes or any(
            target == normalize_scope(s) or target.startswith(normalize_scope(s) + "/") for s in entry.scopes)
    assert cfg.mode == "enforce" or (ctx.approved and cfg.mode != "observe")
    if ctx.approved:  # an approval grants exactly what it approved
        assert ctx.approved_terms is not None and ctx.approved_terms == terms_for(diag, principal)
    else:  # an enforced grant has a witness the failing app cannot write
        assert ctx.witness and ctx.witness.strip()
    target = normalize_scope(decision.scope)
    for revoked in ctx.revocations.entries:  # (every grantable role grants some of what a revoked one did)
        held = normalize_scope(revoked.scope)
        overlap = target == held or target.startswith(held + "/") or held.startswith(target + "/")
        assert revoked.principal_id != oid or not overlap
    assert not ctx.revocations.unreadable
    assert diag.cause in ROLE_FIXABLE and diag.role_fixable is True and diag.confidence == HIGH
    assert decision.principal_type == "ServicePrincipal" or (
        decision.principal_type == "User" and cfg.allow_user_grants) or (
        decision.principal_type == "Group" and cfg.allow_group_grants)
    assert ctx.grants_this_run < cfg.max_grants_per_run and ctx.grants_last_24h < cfg.max_grants_per_day
    assert ctx.grants_last_hour < cfg.max_grants_per_hour
    assert not ctx.breaker_open
    assert ctx.last_grant_at is None or ctx.now - ctx.last_grant_at >= cfg.incident_cooldown
    assert oid not in ctx.suppressed_targets
    if ctx.evidence_principal_type:
        assert all(e.principal_type.lower() == ctx.evidence_principal_type.lower() for e in matching)


@settings(max_examples=300, deadline=None)
@given(declared=principal_types, evidence=st.one_of(st.none(), principal_types), users=st.booleans(),
       groups=st.booleans(), mode=st.sampled_from(["observe", "recommend", "enforce"]), approved=st.booleans())
def test_principal_types_grant_only_as_configured(declared, evidence, users, groups, mode, approved):
    decision = decide(diagnosis(), SP, config(AllowlistEntry(SP, principal_type=declared), mode=mode,
                                              allow_user_grants=users, allow_group_grants=groups),
                      context(evidence_principal_type=evidence, approved=approved,
                              approved_terms=approval_of() if approved else None))
    allowed = {"serviceprincipal"} | ({"user"} if users else set()) | ({"group"} if groups else set())
    agrees = evidence is None or evidence == "" or evidence.lower() == declared.lower()
    # Observe mode writes nothing, approved or not.
    expected = declared.lower() in allowed and agrees and (mode == "enforce" or (approved and mode != "observe"))
    assert decision.grants == expected


def test_the_generators_can_reach_a_grant():
    # Guards the property above against passing vacuously: grants are among what it generates.
    found = find(inputs, lambda args: decide(*args).grants,
                 settings=settings(max_examples=2000, deadline=None, database=None))
    assert decide(*found).grants


@settings(max_examples=150, deadline=None)
@given(diag=diagnoses, principal=st.one_of(st.none(), object_ids), cfg=configs, ctx=contexts,
       scope_suffix=st.sampled_from(["", "/projects/p"]))
def test_scopes_above_the_account_are_never_granted(diag, principal, cfg, ctx, scope_suffix):
    for scope in (RG, f"/subscriptions/{SUB}", "/providers/Microsoft.Management/managementGroups/root",
                  f"{RG}/providers/Microsoft.CognitiveServices"):
        decision = decide(replace(diag, scope=scope + scope_suffix if scope_suffix else scope), principal, cfg, ctx)
        assert not decision.grants


def test_oracle_and_rule_agree_on_known_scopes():
    for scope in (ACCOUNT, PROJECT, OTHER_ACCOUNT):
        assert _is_account_or_project(scope) and is_resource_scope(scope)
    for scope in (RG, f"/subscriptions/{SUB}", ACCOUNT + "/deployments/x", "/"):
        assert not _is_account_or_project(scope) and not is_resource_scope(scope)


def test_require_approval_entry_turns_an_enforced_grant_into_an_approvable_recommendation():
    from dataclasses import replace as _replace

    from shared.core.allowlist import parse_allowlist
    from shared.core.model import Diagnosis
    from shared.core.policy import PolicyConfig, PolicyContext, decide

    oid = "0f0e0d0c-0b0a-4909-8807-060504030201"
    scope = ("/subscriptions/11111111-2222-4333-8444-555555555555/resourceGroups/rg/providers/"
             "Microsoft.CognitiveServices/accounts/a")
    diagnosis = Diagnosis(cause="missing_data_role", role_fixable=True, confidence="high", summary="",
                          role_name="Cognitive Services OpenAI User",
                          role_id="5e0bd9bd-7b93-4f28-af87-19fc36ad61bd", scope=scope)
    config = PolicyConfig(mode="enforce", allowlist=parse_allowlist(
        f'[{{"object_id": "{oid}", "require_approval": true}}]'), allow_user_grants=False,
        allow_group_grants=False, max_grants_per_run=5, max_grants_per_day=20, incident_cooldown=timedelta(0))
    ctx = PolicyContext(now=datetime(2026, 1, 1, tzinfo=UTC), grants_this_run=0, grants_last_24h=0,
                        last_grant_at=None, suppressed_targets=frozenset(), breaker_open=False, approved=False,
                        resource_id=scope, witness=WITNESS)
    pending = decide(diagnosis, oid, config, ctx)
    assert pending.action == "recommend"
    assert [r.rule for r in pending.refusals] == ["mode"]
    assert decide(diagnosis, oid, config, _replace(ctx, approved=True,
                                                   approved_terms=terms_for(diagnosis, oid))).action == "assign"


def test_a_caller_named_only_by_client_side_telemetry_is_granted_only_on_approval():
    named_by_the_app = context(witness=None)  # client-side telemetry alone is no witness
    pending = decide(diagnosis(), SP, config(), named_by_the_app)
    assert pending.action == "recommend" and rules_of(pending) == {"corroborated"}
    assert "log row" in pending.refusals[0].reason
    assert decide(diagnosis(), SP, config(), replace(named_by_the_app, approved=True,
                                                     approved_terms=approval_of())).action == "assign"
    # the other rules still hold, and the other modes say what they always say
    assert decide(diagnosis(confidence=MEDIUM), SP, config(), named_by_the_app).action == "ticket"
    recommend = decide(diagnosis(), SP, config(mode="recommend"), named_by_the_app)
    assert recommend.action == "recommend" and len(recommend.refusals) == 1
    assert decide(diagnosis(), SP, config(), context()).action == "assign"
