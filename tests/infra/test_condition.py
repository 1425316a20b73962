"""The role writer's ABAC condition comes from the code: `python -m shared abac-condition` prints it for exactly the
policy's grantable roles and principal types, the template's parameter file carries the same text, and the
documented condition is that text."""

from __future__ import annotations

import io
import json
import re

import pytest

from localazure import abac
from localazure.roles import BUILT_IN, ROLE_ASSIGNMENT_DELETE, ROLE_ASSIGNMENT_WRITE
from shared.cli import main
from shared.core import roles
from shared.core.abac import CONDITION_VERSION, delegation_condition, policy_condition
from tests.support.bicep import parameter_file
from tests.support.paths import REPO_ROOT

PRINCIPAL_TYPES = ("ServicePrincipal", "User", "Group", "ForeignGroup", "Device")


def allows(condition: str, action: str, role_guid: str, principal_type: str) -> bool:
    attrs = {"roledefinitionid": f"/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/{role_guid}",
             "principaltype": principal_type, "principalid": "6b000000-0000-4000-8000-000000000001"}
    return abac.evaluate(condition, abac.Context(action, attrs if action == ROLE_ASSIGNMENT_WRITE else {},
                                                 attrs if action == ROLE_ASSIGNMENT_DELETE else {}))


def test_the_parameter_file_holds_the_condition_generated_for_its_settings():
    params = parameter_file()
    generated = policy_condition(allow_user_grants=params["allowUserGrants"]["value"],
                                 allow_group_grants=params["allowGroupGrants"]["value"])
    assert params["rbacCondition"]["value"] == generated
    assert generated == policy_condition()  # the file is for the default settings


def test_the_command_prints_the_condition_for_the_environment(monkeypatch):
    for key in ("TRIAGE_ALLOW_USER_GRANTS", "TRIAGE_ALLOW_GROUP_GRANTS"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("TRIAGE_TICKET_SINKS", "github")  # an unrelated bad setting does not stand in the way
    out = io.StringIO()
    assert main(["abac-condition"], stdout=out) == 0
    assert out.getvalue() == policy_condition() + "\n"

    monkeypatch.setenv("TRIAGE_ALLOW_USER_GRANTS", "true")
    out = io.StringIO()
    assert main(["abac-condition", "--json"], stdout=out) == 0
    printed = json.loads(out.getvalue())
    assert printed["condition"] == policy_condition(allow_user_grants=True)
    assert printed["conditionVersion"] == CONDITION_VERSION == "2.0"
    assert printed["roleDefinitionIds"] == sorted(roles.GRANTABLE)
    assert printed["principalTypes"] == ["ServicePrincipal", "User"]


def test_a_bad_grant_setting_is_one_line_and_exit_2(monkeypatch, capsys):
    monkeypatch.setenv("TRIAGE_ALLOW_GROUP_GRANTS", "sometimes")
    assert main(["abac-condition"], stdout=io.StringIO()) == 2
    assert capsys.readouterr().err == "error: TRIAGE_ALLOW_GROUP_GRANTS: expected true or false\n"


@pytest.mark.parametrize(("user", "group"), [(False, False), (True, False), (False, True), (True, True)])
def test_the_condition_allows_exactly_the_grantable_roles_for_the_allowed_principal_types(user, group):
    condition = policy_condition(allow_user_grants=user, allow_group_grants=group)
    allowed_types = {"ServicePrincipal"} | ({"User"} if user else set()) | ({"Group"} if group else set())
    for role in BUILT_IN:
        for principal_type in PRINCIPAL_TYPES:
            expected = role.guid in roles.GRANTABLE and principal_type in allowed_types
            for action in (ROLE_ASSIGNMENT_WRITE, ROLE_ASSIGNMENT_DELETE):
                assert allows(condition, action, role.guid, principal_type) is expected, (role.name, principal_type,
                                                                                          action)
    # Anything that is not a role-assignment write or delete is not the condition's business.
    assert allows(condition, "Microsoft.Authorization/roleAssignments/read", roles.lookup("Owner").guid, "User")


def test_the_condition_covers_writes_by_request_and_deletes_by_resource():
    condition = policy_condition()
    write, delete = condition.split("\nAND\n")
    assert "roleAssignments/write" in write and "@Request[" in write and "@Resource[" not in write
    assert "roleAssignments/delete" in delete and "@Resource[" in delete and "@Request[" not in delete
    assert set(re.findall(r"[0-9a-f]{8}-[0-9a-f-]{27}", condition)) == roles.GRANTABLE


def test_the_condition_is_the_same_text_for_the_same_policy():
    shuffled = [g.upper() for g in sorted(roles.GRANTABLE, reverse=True)]
    assert delegation_condition(shuffled, ["ServicePrincipal"]) == policy_condition()
    with pytest.raises(ValueError):
        delegation_condition(["not-a-guid"], ["ServicePrincipal"])
    with pytest.raises(ValueError):
        delegation_condition(roles.GRANTABLE, ["Device"])


def test_the_documented_condition_is_the_generated_one():
    adapters = (REPO_ROOT / "docs" / "adapters.md").read_text(encoding="utf-8")
    assert policy_condition() in adapters
    assert "python -m shared abac-condition" in adapters
