"""Plain review facts for the review tests (tests/core/test_reviews.py, tests/engine/test_rules_review_tickets.py):
one classic account whose one Entra caller holds Cognitive Services OpenAI User there, unless a test says otherwise."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.core.reviews.model import AccountFacts, CallerActivity, HeldAssignment

NOW = datetime(2025, 6, 1, 12, tzinfo=UTC)
SUB = "/subscriptions/00000000-0000-0000-0000-0000000000a1"
RG = f"{SUB}/resourceGroups/rg"
ACCOUNT = f"{RG}/providers/Microsoft.CognitiveServices/accounts/aoai"
APP = "11111111-1111-1111-1111-111111111111"
OTHER = "22222222-2222-2222-2222-222222222222"
GROUP = "33333333-3333-3333-3333-333333333333"
OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"
CS_USER = "a97b65f3-24c7-4388-baec-2e87135dc908"
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
AI_DEVELOPER = "64702f94-c441-49e6-a78b-ef80e0188fee"
FOUNDRY_USER = "53ca6127-db72-4b80-b1b0-d745d6d5456d"


def row(object_id: str = "", operation: str = "ChatCompletions_Create", calls: int = 3,
        ips: tuple[str, ...] = ("81.2.69.144",)) -> CallerActivity:
    return CallerActivity(ACCOUNT, object_id, operation, "Azure OpenAI API version 2024-10-21", calls,
                          NOW - timedelta(days=3), NOW - timedelta(hours=1), ips)


def held(principal: str, role: str, scope: str = ACCOUNT, *, via_group_of: str = "",
         principal_type: str = "ServicePrincipal") -> HeldAssignment:
    name = f"{principal[:8]}-{role[:8]}-{len(scope)}"
    return HeldAssignment(f"{scope}/providers/Microsoft.Authorization/roleAssignments/{name}", role, scope, principal,
                          principal_type, via_group_of)


def facts(**overrides) -> AccountFacts:
    base = AccountFacts(ACCOUNT, kind="OpenAI", disable_local_auth=False, activity=(row(APP),),
                        assignments=(held(APP, OPENAI_USER),), policies=(), exemptions=())
    return replace(base, **overrides)
