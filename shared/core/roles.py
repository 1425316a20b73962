"""Built-in Azure role definitions the service reasons about, keyed by their stable GUIDs.

GUIDs, not names: the Foundry roles were renamed from "Azure AI *" during 2025-2026, and names drift.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache


@dataclass(frozen=True)
class Role:
    guid: str
    name: str
    # Which inference surfaces this role's data actions authorize (see surfaces in endpoints).
    data_surfaces: frozenset[str]
    # True when the role can write role assignments (directly or conditionally): never grantable.
    writes_role_assignments: bool = False
    aliases: tuple[str, ...] = ()
    # Data actions on a service outside these surfaces (e.g. Azure ML workspaces): a data role, wrong surface.
    data_elsewhere: str | None = None


OPENAI = "openai"  # /openai/... : Microsoft.CognitiveServices/accounts/OpenAI/*
MODELS = "models"  # /models/... (Foundry Models inference): accounts/MaaS/*
PROJECT = "project"  # /api/projects/{p}/... : accounts/AIServices/*
ALL_SURFACES = frozenset({OPENAI, MODELS, PROJECT})

COGNITIVE_SERVICES_OPENAI_USER = Role(
    "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd", "Cognitive Services OpenAI User", frozenset({OPENAI})
)
COGNITIVE_SERVICES_USER = Role(
    "a97b65f3-24c7-4388-baec-2e87135dc908", "Cognitive Services User", ALL_SURFACES
)
FOUNDRY_USER = Role(
    "53ca6127-db72-4b80-b1b0-d745d6d5456d", "Foundry User", ALL_SURFACES, aliases=("Azure AI User",)
)

_ALL: tuple[Role, ...] = (
    COGNITIVE_SERVICES_OPENAI_USER,
    COGNITIVE_SERVICES_USER,
    FOUNDRY_USER,
    Role("a001fd3d-188f-4b5d-821b-7da978bf7442", "Cognitive Services OpenAI Contributor", frozenset({OPENAI})),
    Role("25fbc0a9-bd7c-42a3-aa1a-3b75d497ee68", "Cognitive Services Contributor", frozenset()),
    Role("bba48692-92b0-4667-a9ad-c31c7b334ac2", "Cognitive Services Usages Reader", frozenset()),
    Role(
        "eadc314b-1a2d-4efa-be10-5d325db5065e",
        "Foundry Project Manager",
        ALL_SURFACES,
        writes_role_assignments=True,
        aliases=("Azure AI Project Manager",),
    ),
    Role(
        "e47c6f54-e4a2-4754-9501-8e0985b135e1",
        "Foundry Account Owner",
        frozenset(),
        writes_role_assignments=True,
        aliases=("Azure AI Account Owner",),
    ),
    Role(
        "c883944f-8b7b-4483-af10-35834be79c4a",
        "Foundry Owner",
        ALL_SURFACES,
        writes_role_assignments=True,
        aliases=("Azure AI Owner",),
    ),
    Role("8e3af657-a8ff-443c-a75c-2fe8c4bcb635", "Owner", frozenset(), writes_role_assignments=True),
    Role("b24988ac-6180-42a0-ab88-20f7382dd24c", "Contributor", frozenset()),
    Role("acdd72a7-3385-48ef-bd42-f606fba81ae7", "Reader", frozenset()),
    Role(
        "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9",
        "User Access Administrator",
        frozenset(),
        writes_role_assignments=True,
    ),
    Role(
        "f58310d9-a9f6-439a-9e8d-f62e7b41a168",
        "Role Based Access Control Administrator",
        frozenset(),
        writes_role_assignments=True,
    ),
    # Azure ML / hub role: does not authorize Foundry projects (seed 002); listed so it is recognised.
    Role(
        "64702f94-c441-49e6-a78b-ef80e0188fee",
        "Azure AI Developer",
        frozenset(),
        data_elsewhere="Azure Machine Learning workspaces and Foundry hubs",
    ),
)

BY_GUID: dict[str, Role] = {r.guid: r for r in _ALL}

# The only roles the service may ever grant, whatever the configuration says.
GRANTABLE: frozenset[str] = frozenset(
    {COGNITIVE_SERVICES_OPENAI_USER.guid, COGNITIVE_SERVICES_USER.guid, FOUNDRY_USER.guid}
)

# Least-privilege role for each surface (seed 002).
LEAST_PRIVILEGE_FOR_SURFACE: dict[str, Role] = {
    OPENAI: COGNITIVE_SERVICES_OPENAI_USER,
    MODELS: COGNITIVE_SERVICES_USER,
    PROJECT: FOUNDRY_USER,
}


@lru_cache(maxsize=4096)
def guid_of(role_definition_id: str) -> str:
    """The GUID at the end of a role definition id (full ARM id or bare GUID), lower-cased."""
    tail = role_definition_id.strip().rstrip("/").rsplit("/", 1)[-1]
    return tail.strip("{}").lower()


def lookup(name_or_guid: str) -> Role | None:
    """Find a known role by GUID, full role definition id, display name or former name."""
    key = name_or_guid.strip()
    role = BY_GUID.get(guid_of(key))
    if role is not None:
        return role
    folded = key.casefold()
    for r in _ALL:
        if r.name.casefold() == folded or any(a.casefold() == folded for a in r.aliases):
            return r
    return None


def display_name(role_definition_id: str) -> str:
    role = BY_GUID.get(guid_of(role_definition_id))
    return role.name if role else guid_of(role_definition_id)
