"""Which incident a failure belongs to: keyed by the project the request named, whatever the diagnosis names."""

from __future__ import annotations

from shared.core import incidents as inc
from shared.core.model import Diagnosis, FailureSignal

ACCOUNT = ("/subscriptions/11111111-1111-1111-1111-111111111111/resourceGroups/rg/providers/"
           "Microsoft.CognitiveServices/accounts/a")
CALLER = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"


def _signal(route: str | None) -> FailureSignal:
    return FailureSignal(status=401, object_id=CALLER, resource_id=ACCOUNT, route=route)


def _diagnosis(cause: str, scope: str | None) -> Diagnosis:
    return Diagnosis(cause=cause, role_fixable=scope is not None, confidence="high", summary="", scope=scope)


def test_a_projects_failures_stay_one_incident_when_the_diagnosis_names_no_scope():
    route = "/api/projects/agents/assistants"
    missing = _diagnosis("missing_data_role", f"{ACCOUNT}/projects/agents")
    pending = _diagnosis("propagation_pending", None)  # after the grant: no role to name, so no scope
    first = inc.fingerprint(CALLER, ACCOUNT, missing.cause, inc.keyed_scope(_signal(route), missing))
    later = inc.fingerprint(CALLER, ACCOUNT, pending.cause, inc.keyed_scope(_signal(route), pending))
    assert first == later and "/projects/agents|" in first


def test_two_projects_and_the_account_are_three_incidents():
    keys = {inc.fingerprint(CALLER, ACCOUNT, "missing_data_role",
                            inc.keyed_scope(_signal(route), _diagnosis("propagation_pending", None)))
            for route in ("/api/projects/p1/assistants", "/api/projects/p2/assistants", "/openai/deployments/d")}
    assert len(keys) == 3
