"""The role catalogue: built from Microsoft's published definitions (shared/roles/built_in_roles.json), judged by
its data actions, never by a hand list."""

import json
import re
from importlib.resources import files

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core import roles, surfaces
from shared.core.model import RoleDefinitionEvidence
from shared.core.signals import parse_evidence

# Every GUID/name pair, as the Azure built-in roles index lists them (MicrosoftDocs/azure-docs
# articles/role-based-access-control/built-in-roles.md; Privileged, General, AI + machine learning, Storage).
PUBLISHED = {
    "8e3af657-a8ff-443c-a75c-2fe8c4bcb635": "Owner",
    "b24988ac-6180-42a0-ab88-20f7382dd24c": "Contributor",
    "acdd72a7-3385-48ef-bd42-f606fba81ae7": "Reader",
    "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9": "User Access Administrator",
    "f58310d9-a9f6-439a-9e8d-f62e7b41a168": "Role Based Access Control Administrator",
    "b78c5d69-af96-48a3-bf8d-a8b4d589de94": "Azure AI Administrator",
    "64702f94-c441-49e6-a78b-ef80e0188fee": "Azure AI Developer",
    "b556d68e-0be0-4f35-a333-ad7ee1ce17ea": "Azure AI Enterprise Network Connection Approver",
    "3afb7f49-54cb-416e-8c09-6dc049efa503": "Azure AI Inference Deployment Operator",
    "25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68": "Cognitive Services Contributor",
    "c1ff6cc2-c111-46fe-8896-e0ef812ad9f3": "Cognitive Services Custom Vision Contributor",
    "5c4089e1-6d96-4d2f-b296-c1bc7137275f": "Cognitive Services Custom Vision Deployment",
    "88424f51-ebe7-446f-bc41-7fa16989e96c": "Cognitive Services Custom Vision Labeler",
    "93586559-c37d-4a6b-ba08-b9f0940c2d73": "Cognitive Services Custom Vision Reader",
    "0a5ae4ab-0d65-4eeb-be61-29fc9b54394b": "Cognitive Services Custom Vision Trainer",
    "b59867f0-fa02-499b-be73-45a86b5b3e1c": "Cognitive Services Data Reader",
    "9894cab4-e18a-44aa-828b-cb588cd6f2d7": "Cognitive Services Face Recognizer",
    "b2de6794-95db-4659-8781-7e080d3f2b9d": "Cognitive Services Immersive Reader User",
    "f07febfe-79bc-46b1-8b37-790e26e6e498": "Cognitive Services Language Owner",
    "7628b7b8-a8b2-4cdc-b46f-e9b35248918e": "Cognitive Services Language Reader",
    "f2310ca1-dc64-4889-bb49-c8e0fa3d47a8": "Cognitive Services Language Writer",
    "f72c8140-2111-481c-87ff-72b910f6e3f8": "Cognitive Services LUIS Owner",
    "18e81cdc-4e98-4e29-a639-e7d10c5a6226": "Cognitive Services LUIS Reader",
    "6322a993-d5c9-4bed-b113-e49bbea25b27": "Cognitive Services LUIS Writer",
    "cb43c632-a144-4ec5-977c-e80c4affc34a": "Cognitive Services Metrics Advisor Administrator",
    "3b20f47b-3825-43cb-8114-4bd2201156a8": "Cognitive Services Metrics Advisor User",
    "a001fd3d-188f-4b5d-821b-7da978bf7442": "Cognitive Services OpenAI Contributor",
    "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd": "Cognitive Services OpenAI User",
    "f4cc2bf9-21be-47a1-bdf1-5c5804381025": "Cognitive Services QnA Maker Editor",
    "466ccd10-b268-4a11-b098-b4849f024126": "Cognitive Services QnA Maker Reader",
    "0e75ca1e-0464-4b4d-8b93-68208a576181": "Cognitive Services Speech Contributor",
    "f2dc8367-1007-4938-bd23-fe263f013447": "Cognitive Services Speech User",
    "bba48692-92b0-4667-a9ad-c31c7b334ac2": "Cognitive Services Usages Reader",
    "a97b65f3-24c7-4388-baec-2e87135dc908": "Cognitive Services User",
    "e47c6f54-e4a2-4754-9501-8e0985b135e1": "Foundry Account Owner",
    "c883944f-8b7b-4483-af10-35834be79c4a": "Foundry Owner",
    "eadc314b-1a2d-4efa-be10-5d325db5065e": "Foundry Project Manager",
    "53ca6127-db72-4b80-b1b0-d745d6d5456d": "Foundry User",
    "8ebe5a00-799e-43f5-93ac-243d3dce84a7": "Search Index Data Contributor",
    "1407120a-92aa-4202-b7e9-c0e197c71c8f": "Search Index Data Reader",
    "7ca78c08-252a-4471-8644-bb5ff32d4ba0": "Search Service Contributor",
    "2a2b9908-6ea1-4ae2-8e65-a410df84e7d1": "Storage Blob Data Reader",
    "ba92f5b4-2d11-453d-a403-e96b0029c9fe": "Storage Blob Data Contributor",
}
CS = "Microsoft.CognitiveServices/accounts"
CHAT = f"{CS}/OpenAI/deployments/chat/completions/action"
MAAS = f"{CS}/MaaS/chat/completions/action"
AGENTS = f"{CS}/AIServices/agents/write"


def catalogue():
    return json.loads(files("shared").joinpath(roles.CATALOGUE_RESOURCE).read_text(encoding="utf-8"))


def test_every_guid_and_name_pair_is_the_published_one():
    assert {r.guid: r.name for r in roles.BUILT_IN} == PUBLISHED


def test_every_role_that_touches_cognitive_services_is_in_the_catalogue():
    touching = {r.name for r in roles.BUILT_IN
                if any(p.lower().startswith("microsoft.cognitiveservices/") for p in (*r.actions, *r.data_actions))}
    assert {n for n in PUBLISHED.values() if n.startswith("Cognitive Services")} <= touching


def test_the_data_file_cites_its_sources_and_their_dates():
    data = catalogue()
    assert data["version"] and data["about"]
    for key, source in data["sources"].items():
        assert source["repo"].startswith("MicrosoftDocs/") and source["path"].endswith(".md"), key
        assert len(source["ms_date"]) == 10, key
    assert {r["source"] for r in data["roles"]} <= set(data["sources"])
    for entry in data["roles"]:
        assert set(entry) >= {"id", "name", "actions", "notActions", "dataActions", "notDataActions"}, entry["name"]


def test_the_three_grantable_roles_never_change():
    assert roles.GRANTABLE == {"5e0bd9bd-7b93-4f28-af87-19fc36ad61bd", "a97b65f3-24c7-4388-baec-2e87135dc908",
                               "53ca6127-db72-4b80-b1b0-d745d6d5456d"}
    assert not any(roles.BY_GUID[g].writes_role_assignments for g in roles.GRANTABLE)


@pytest.mark.parametrize(("name", "chat", "maas", "agents"), [
    ("Cognitive Services OpenAI User", True, False, False),
    ("Cognitive Services OpenAI Contributor", True, False, False),
    ("Azure AI Developer", True, False, False),  # accounts/OpenAI/* is among its data actions
    ("Cognitive Services User", True, True, True),
    ("Foundry User", True, True, True),
    ("Foundry Project Manager", True, True, True),
    ("Owner", False, False, False),
    ("Contributor", False, False, False),
    ("Foundry Account Owner", False, False, False),
    ("Cognitive Services Data Reader", False, False, False),  # */read data actions only
    ("Search Index Data Reader", False, False, False),
])
def test_a_role_covers_a_surface_by_its_data_actions(name, chat, maas, agents):
    role = roles.lookup(name)
    assert (role.covers(CHAT), role.covers(MAAS), role.covers(AGENTS)) == (chat, maas, agents)


def test_not_data_actions_are_subtracted_and_wildcards_span_segments():
    openai_user = roles.COGNITIVE_SERVICES_OPENAI_USER
    assert openai_user.covers(f"{CS}/OpenAI/assistants/threads/runs/write")  # OpenAI/assistants/*
    assert openai_user.covers(f"{CS}/openai/DEPLOYMENTS/chat/completions/action")  # case-insensitive
    assert openai_user.covers(f"{CS}/OpenAI/models/read")  # OpenAI/*/read
    assert not openai_user.covers(f"{CS}/OpenAI/stored-completions/read")  # a notDataAction
    assert roles.permission_matches("Microsoft.CognitiveServices/*", f"{CS}/AIServices/agents/read")


def test_role_assignment_writers_are_derived_from_actions():
    writers = {r.name for r in roles.BUILT_IN if r.writes_role_assignments}
    assert writers == {"Owner", "User Access Administrator", "Role Based Access Control Administrator",
                       "Foundry Project Manager", "Foundry Account Owner"}


def test_names_and_former_names_resolve_through_the_catalogue():
    assert roles.lookup("Azure AI User") is roles.FOUNDRY_USER
    assert roles.lookup(" cognitive services openai user ") is roles.COGNITIVE_SERVICES_OPENAI_USER
    assert roles.lookup("/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/"
                        "A97B65F3-24C7-4388-BAEC-2E87135DC908") is roles.COGNITIVE_SERVICES_USER
    assert roles.lookup("My custom role") is None
    evidence = parse_evidence({"assignments": [{"role": "Azure AI Inference Deployment Operator", "scope": "/s"},
                                               {"role": "My custom role", "scope": "/s"}]})
    assert [a.role_definition_id for a in evidence.assignments] == ["3afb7f49-54cb-416e-8c09-6dc049efa503",
                                                                    "My custom role"]


def test_definitions_read_through_arm_are_judged_the_same_way():
    custom = RoleDefinitionEvidence(id="/subscriptions/s/providers/Microsoft.Authorization/roleDefinitions/"
                                       "11111111-2222-4333-8444-555555555555", name="Agents writer",
                                    data_actions=(f"{CS}/AIServices/agents/*",))
    role = roles.role_of("11111111-2222-4333-8444-555555555555", (custom,))
    assert role is not None and not role.built_in and role.name == "Agents writer"
    assert role.data_surfaces == {surfaces.PROJECT} and role.covers(AGENTS) and not role.covers(CHAT)
    assert roles.role_of("11111111-2222-4333-8444-555555555555") is None  # not read: unknown


@pytest.mark.parametrize("surface", sorted(surfaces.SURFACES))
def test_each_surface_names_a_role_that_grants_its_data_action(surface):
    spec = surfaces.SURFACES[surface]
    role = roles.LEAST_PRIVILEGE_FOR_SURFACE[surface]
    assert role.covers(spec.data_action)
    assert surfaces.of_data_action(spec.data_action) == surface


def test_an_error_naming_an_action_the_surface_role_lacks_names_a_wider_role():
    stored = f"{CS}/OpenAI/stored-completions/read"
    assert roles.least_privilege_for(surfaces.OPENAI) is roles.COGNITIVE_SERVICES_OPENAI_USER
    assert roles.least_privilege_for(surfaces.OPENAI, stored) is roles.COGNITIVE_SERVICES_USER


_PERMISSION_TEXT = st.text(alphabet="aAbB/.*x\nİK", max_size=8)


@settings(max_examples=500, deadline=None)
@given(permission=_PERMISSION_TEXT, operation=st.text(alphabet="aAbB/.x\nİKk", max_size=10))
def test_permission_matching_is_the_anchored_case_insensitive_wildcard(permission, operation):
    # The reference: `*` as `.*` in an anchored, case-insensitive regex (Azure's documented matching).
    reference = re.compile("^" + ".*".join(re.escape(p) for p in permission.split("*")) + "$", re.IGNORECASE)
    assert roles.permission_matches(permission, operation) is (reference.match(operation) is not None)
