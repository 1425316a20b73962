"""Names and read-outs shared by the fast engine tests: the world's ids, what a run left in the store, and the
events Event Grid would deliver."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from shared.core.incidents import Incident

SUBSCRIPTION = "11111111-1111-1111-1111-111111111111"
ACCOUNT = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/"
           "accounts/aoai")
ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"
BILLING = "7f1e2d3c-4b5a-4968-8776-5a4b3c2d1e0f"
SEARCH = "9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d"
STRANGER = "0d3c5e7a-1b2c-4d5e-8f90-a1b2c3d4e5f6"  # on no allowlist
ALICE = "alice@contoso.example"
OPERATOR = "oncall@contoso.example"
OPENAI_USER = "5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"  # Cognitive Services OpenAI User
NETWORK_DENIED = "Access denied due to Virtual Network/Firewall rules."


def incident_of(store: Any, object_id: str) -> Incident:
    """The one incident of this caller (fails the test if there are none or several)."""
    found = [i for i in store.list_incidents() if i.principal_id == object_id.lower()]
    assert len(found) == 1, f"expected one incident for {object_id}, found {[i.id for i in found]}"
    return found[0]


def by_status(store: Any, *object_ids: str) -> dict[str, list[Incident]]:
    found: dict[str, list[Incident]] = {}
    for oid in object_ids:
        incident = incident_of(store, oid)
        found.setdefault(incident.status, []).append(incident)
    return found


def refusals(store: Any, incident_id: str) -> list[list[str]]:
    """The rules of each refusal the audit trail records for the incident, oldest first."""
    return [a.inputs["refusals"] for a in store.list_audit(incident_id) if a.kind == "refusal"]


def audit_kinds(store: Any, incident_id: str | None = None, *, correlation_id: str | None = None) -> list[str]:
    return [a.kind for a in store.list_audit(incident_id)
            if correlation_id is None or a.correlation_id == correlation_id]


def failure_event(event_id: str, object_id: str = ORDERS, **data: Any) -> dict[str, Any]:
    """The documented AOAI.Triage.Failure CloudEvent; `data` overrides (None removes) fields."""
    body = {"status": 401, "code": "PermissionDenied", "auth": "entra", "object_id": object_id,
            "message": f"The principal `{object_id}` lacks the required data action "
                       "`Microsoft.CognitiveServices/accounts/OpenAI/deployments/chat/completions/action` to "
                       "perform `POST /openai/deployments/{deployment-id}/chat/completions` operation.",
            "endpoint": "https://aoai.openai.azure.com/openai/deployments/gpt-4o/chat/completions",
            "resource_id": ACCOUNT, "time": "2026-11-22T10:00:30Z"}
    for key, value in data.items():
        if value is None:
            body.pop(key, None)
        else:
            body[key] = value
    return {"specversion": "1.0", "id": event_id, "source": "/apps/orders", "type": "AOAI.Triage.Failure",
            "time": "2026-11-22T10:00:31Z", "data": body}


# An Event Grid custom topic the operator lists in TRIAGE_TRUSTED_EVENT_TOPICS.
TRUSTED_TOPIC = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-apps/providers/Microsoft.EventGrid/topics/"
                 "triage-failures")


def topic_failure_event(event_id: str, object_id: str = ORDERS, *, topic: str = TRUSTED_TOPIC,
                        **data: Any) -> dict[str, Any]:
    """The same failure event in the Event Grid schema, whose `topic` Event Grid sets (a publisher cannot)."""
    cloud = failure_event(event_id, object_id, **data)
    return {"id": event_id, "topic": topic, "subject": cloud["source"], "eventType": cloud["type"],
            "eventTime": cloud["time"], "dataVersion": "1", "metadataVersion": "1", "data": cloud["data"]}


def role_assignment_event(assignment_id: str, *, event_id: str, deleted: bool = False,
                          actor: str = "Alex Oncall") -> dict[str, Any]:
    """ARM's ResourceWriteSuccess / ResourceDeleteSuccess for a role assignment (Event Grid schema)."""
    verb = "delete" if deleted else "write"
    return {
        "id": event_id, "topic": f"/subscriptions/{SUBSCRIPTION}", "subject": assignment_id,
        "eventType": f"Microsoft.Resources.Resource{'Delete' if deleted else 'Write'}Success",
        "eventTime": "2026-11-22T10:07:31Z", "dataVersion": "2", "metadataVersion": "1",
        "data": {"resourceUri": assignment_id, "operationName": f"Microsoft.Authorization/roleAssignments/{verb}",
                 "claims": {"name": actor}, "correlationId": f"corr-{event_id}", "status": "Succeeded"},
    }


def run_together(*calls: Callable[[], Any]) -> list[Any]:
    """Start every call at the same instant (a barrier), each in its own thread, and return each one's result or the
    exception it raised."""
    barrier = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(index: int, call: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = call()
        except Exception as exc:  # noqa: BLE001 - the test inspects what each caller got
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, c)) for i, c in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return results
