"""The data-plane surfaces of an AI Services account: one per route family, with the data action a call to it needs
and the least-privilege built-in role that grants it (a GUID of the role catalogue, `shared/core/roles.py`).

A surface's `data_action` is the one its typical call needs (a chat completion, an agent write, ...); an error
text that names the exact data action refines it. Roles are judged against the data action, so the catalogue's
definitions decide which role covers which surface, never a hand list.
"""

from __future__ import annotations

from dataclasses import dataclass

_CS = "Microsoft.CognitiveServices/accounts"


@dataclass(frozen=True)
class Surface:
    id: str
    label: str  # how sentences name it
    namespace: str  # data actions under this prefix belong to the surface (lower-case)
    data_action: str  # what its typical call needs
    least_privilege: str  # GUID of the least-privilege built-in role that grants `data_action`


OPENAI = "openai"  # /openai/... : Microsoft.CognitiveServices/accounts/OpenAI/*
MODELS = "models"  # /models/... (Foundry Models inference): accounts/MaaS/*
PROJECT = "project"  # /api/projects/{p}/... : accounts/AIServices/*

_OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
_CS_USER = "a97b65f3-24c7-4388-baec-2e87135dc908"
_FOUNDRY_USER = "53ca6127-db72-4b80-b1b0-d745d6d5456d"

SURFACES: dict[str, Surface] = {
    s.id: s
    for s in (
        Surface(OPENAI, "Azure OpenAI (/openai/...)", f"{_CS}/openai/".lower(),
                f"{_CS}/OpenAI/deployments/chat/completions/action", _OPENAI_USER),
        Surface(MODELS, "Foundry Models inference (/models)", f"{_CS}/maas/".lower(),
                f"{_CS}/MaaS/chat/completions/action", _CS_USER),
        Surface(PROJECT, "the Foundry project API (/api/projects/...)", f"{_CS}/aiservices/".lower(),
                f"{_CS}/AIServices/agents/write", _FOUNDRY_USER),
    )
}
ALL_SURFACES: frozenset[str] = frozenset(SURFACES)


def of_data_action(data_action: str) -> str | None:
    """The surface a data action belongs to (`Microsoft.CognitiveServices/accounts/<namespace>/...`)."""
    lowered = data_action.lower()
    for surface in SURFACES.values():
        if lowered.startswith(surface.namespace):
            return surface.id
    return None
