"""Scenario files: the bundled story behaves as described, the documented example loads, mistakes are reported."""

from __future__ import annotations

import json
import re

import pytest

from localazure import Clock, LocalAzure
from localazure.scenario import ScenarioError
from tests.support.paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "localazure.md"


@pytest.mark.slow  # starts the stand-in
def test_basic_scenario_tells_its_story():
    with LocalAzure.start("basic", clock=Clock.frozen("2025-06-01T12:00:00Z")) as az:
        outcomes = az.tick()
        by_name = {}
        for o in outcomes:
            by_name.setdefault(o.spec.name, set()).add((o.status, o.code))
        assert by_name == {
            "chat-api": {(401, "PermissionDenied")},  # Contributor only: control plane
            "batch-embeddings": {(200, None)},
            "batch-phi": {(401, "PermissionDenied")},  # OpenAI User does not cover /models
            "alice-agents": {(200, None)},  # Foundry User through her group, at the project
            "legacy-report": {(403, "AuthenticationTypeDisabled")},
        }
        assert [o.spec.name for o in outcomes].count("chat-api") == 3


@pytest.mark.slow  # starts the stand-in
def test_documented_example_scenario_loads_and_runs():
    blocks = re.findall(r"```json\n(.*?)```", DOC.read_text(encoding="utf-8"), re.DOTALL)
    examples = [json.loads(b) for b in blocks if '"principals"' in b]
    assert examples, "docs/localazure.md must carry a full example scenario"
    [example] = examples
    with LocalAzure.start(example) as az:
        def story() -> dict[str, set]:
            out: dict[str, set] = {}
            for o in az.tick():
                out.setdefault(o.spec.name, set()).add((o.status, o.code))
            return out

        # What the walk-through under the example promises.
        assert story() == {
            "web-chat": {(401, "PermissionDenied")},
            "dana-agents": {(200, None)},
            "partner": {(400, "Tenant provided in token does not match resource token")},
        }
        az.clock.advance(120)
        assert story()["nightly-report"] == {(401, "401")}
        assert az.query("AzureDiagnostics | where Category == 'Audit' | count").rows == [[1]]
        web_chat = "11111111-2222-4333-8444-000000000101"
        az.add_assignment(web_chat, "Cognitive Services OpenAI User", "account:contoso-foundry", created_ago_seconds=0)
        az.clock.advance(599)
        assert story()["web-chat"] == {(401, "PermissionDenied")}
        az.clock.advance(1)
        assert story()["web-chat"] == {(200, None)}


@pytest.mark.slow  # starts the stand-in
def test_times_are_relative_to_the_clock_and_scopes_have_shorthands():
    scenario = {
        "clock": {"start": "2025-01-01T00:00:00Z"},
        "principals": [{"id": "p1", "type": "User", "replicating_for_seconds": 30}],
        "resources": [{"name": "hub", "kind": "AIServices", "resource_group": "rg1", "projects": ["alpha"]}],
        "assignments": [
            {"principal": "p1", "role": "Reader", "scope": "project:hub/alpha", "created_ago_seconds": 120},
            {"principal": "p1", "role": "acdd72a7-3385-48ef-bd42-f606fba81ae7", "scope": "rg:rg1"},
        ],
        "logs": {"AzureDiagnostics": [{"ResultSignature": "401", "ago_seconds": 60}]},
    }
    with LocalAzure.start(scenario) as az:
        assert az.clock.now().isoformat() == "2025-01-01T00:00:00+00:00"
        scopes = sorted(a.scope for a in az.assignments())
        assert scopes == [f"/subscriptions/{az.subscription_id}/resourceGroups/rg1", az.project_id("hub", "alpha")]
        project_assignment = next(a for a in az.assignments() if a.scope.endswith("alpha"))
        assert project_assignment.created_on.isoformat() == "2024-12-31T23:58:00+00:00"
        assert az.state.is_replicating(az.state.principal("p1"))
        rows = az.query("AzureDiagnostics | project TimeGenerated").rows
        assert rows == [["2024-12-31T23:59:00Z"]]


@pytest.mark.parametrize(
    ("scenario", "complaint"),
    [
        ({"principal": []}, "unknown keys"),
        ({"principals": [{"id": "p", "groups": ["g"]}]}, "not a declared Group"),
        ({"principals": [{"id": "p", "type": "Robot"}]}, "type must be one of"),
        ({"resources": [{"name": "a", "kind": "OpenAI", "projects": ["x"]}]}, "only kind AIServices"),
        ({"principals": [{"id": "p"}], "resources": [{"name": "a"}],
          "assignments": [{"principal": "p", "role": "Wizard", "scope": "account:a"}]}, "unknown role"),
        ({"resources": [{"name": "a"}], "traffic": [{"resource": "a", "route": "/openai/x", "rate": 3}]},
         "unknown traffic fields"),
        ({"traffic": [{"resource": "nope", "route": "/openai/x"}]}, "unknown resource"),
        ({"settings": {"propagation": 10}}, "unknown keys"),
    ],
)
def test_mistakes_are_reported_clearly(scenario, complaint):
    with pytest.raises((ScenarioError, KeyError)) as info:
        LocalAzure.start(scenario).stop()
    assert complaint in str(info.value)
