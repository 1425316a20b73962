"""Helpers for the function_app tests: call the entry points as the Functions worker would, without a host.

There is no Functions host on our machines (platform notes), so each test calls the decorated function's plain
Python function. Event Grid events go through the worker's own converter (`EventGridEventInConverter.decode`), so
a test event is exactly what the function would receive from a real delivery, Event Grid schema or CloudEvents.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import azure.functions as func
from azure.functions import meta
from azure.functions.eventgrid import EventGridEventInConverter

import function_app
from shared.bootstrap import set_runtime
from tests.support.engine import World, service_world
from tests.support.paths import TEST_DATA

DATA = TEST_DATA / "events"

# The sample payloads in tests/data/events name this subscription, account and caller; the world below is built
# to match them, so the samples are delivered unchanged.
SUBSCRIPTION = "11111111-1111-1111-1111-111111111111"
ACCOUNT = "contoso-openai"
ACCOUNT_ID = (f"/subscriptions/{SUBSCRIPTION}/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/"
              f"accounts/{ACCOUNT}")
OTHER_ACCOUNT = "contoso-other"
CALLER = "6f1c2b3a-0d9e-4f8a-b7c6-5d4e3f2a1b0c"  # the sample failure event's object id
WRITTEN_ASSIGNMENT_NAME = "0b5f7a52-4e61-4b3c-9d4c-6fa3c8c1b9e2"  # the sample ResourceWriteSuccess names it
CHAT_ROUTE = "/openai/deployments/gpt-4o/chat/completions"


def sample(name: str) -> dict[str, Any]:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def contoso_scenario(caller_role: str = "Contributor") -> dict[str, Any]:
    """The samples' world: contoso-openai in rg-ai, the sample caller holding only `caller_role` on it."""
    return {
        "subscription_id": SUBSCRIPTION,
        "resources": [
            {"name": ACCOUNT, "kind": "OpenAI", "resource_group": "rg-ai"},
            {"name": OTHER_ACCOUNT, "kind": "OpenAI", "resource_group": "rg-ai"},
        ],
        "principals": [{"id": CALLER, "type": "ServicePrincipal", "managed_identity": True,
                        "display_name": "orders-api"}],
        "assignments": [{"principal": CALLER, "role": caller_role, "scope": f"account:{ACCOUNT}",
                         "created_ago_seconds": 864000}],
    }


@contextmanager
def installed_world(tmp_path: Path, **kwargs: Any) -> Iterator[World]:
    """A service world whose runtime is the one the functions use; the runtime is dropped afterwards.
    The sample caller is allowlisted, so in recommend mode its incidents are approvable recommendations."""
    kwargs.setdefault("scenario", contoso_scenario())
    kwargs.setdefault("allowlist", [{"object_id": CALLER, "name": "orders-api"}])
    with service_world(tmp_path, **kwargs) as world:
        set_runtime(world.rt)
        try:
            yield world
        finally:
            set_runtime(None)


def user_function(name: str) -> Any:
    """The plain function behind one decorated entry point (indexing the whole app is allowed only once)."""
    return getattr(function_app, name).build().get_user_function()


# ---- Event Grid ------------------------------------------------------------------------------------------------


def delivered(raw: dict[str, Any]) -> Any:
    """What the Functions worker hands the Event Grid trigger for one event of a delivery (its own converter)."""
    return EventGridEventInConverter.decode(meta.Datum(json.dumps(raw), "json"), trigger_metadata=None)


def deliver(raw: dict[str, Any]) -> None:
    """Invoke the `events` function with one event, as the worker does; returning normally acknowledges it."""
    user_function("events")(delivered(raw))


def eventgrid_event(event_type: str, data: Any, *, event_id: str, subject: str = "",
                    topic: str = f"/subscriptions/{SUBSCRIPTION}", event_time: str = "2026-11-22T10:05:30Z",
                    ) -> dict[str, Any]:
    return {"id": event_id, "topic": topic, "subject": subject, "eventType": event_type, "eventTime": event_time,
            "dataVersion": "1.0", "metadataVersion": "1", "data": data}


def alert_event(alert: dict[str, Any], event_id: str) -> dict[str, Any]:
    """A common-alert-schema payload forwarded to a custom topic (Event Grid schema)."""
    return eventgrid_event("Contoso.Monitoring.AlertFired", alert, event_id=event_id,
                           subject=alert["data"]["essentials"]["alertRule"])


def log_alert(targets: list[str] | None = None, *, window: tuple[str, str] | None = None,
              condition: str = "Fired", alert_guid: str = "b9569717-bc32-442f-add5-83a997729330") -> dict[str, Any]:
    """The sample log search alert, re-targeted; the defaults reproduce the sample file."""
    alert = sample("common_alert_log_v2.json")
    essentials = alert["data"]["essentials"]
    if targets is not None:
        essentials["alertTargetIDs"] = list(targets)
        essentials["configurationItems"] = list(targets)
    essentials["alertId"] = f"/subscriptions/{SUBSCRIPTION}/providers/Microsoft.AlertsManagement/alerts/{alert_guid}"
    essentials["originAlertId"] = alert_guid
    essentials["monitorCondition"] = condition
    if condition == "Resolved":
        essentials["resolvedDateTime"] = "2026-11-22T10:20:00.0000000Z"
    if window is not None:
        cond = alert["data"]["alertContext"]["condition"]
        cond["windowStartTime"], cond["windowEndTime"] = window
    return alert


def role_assignment_event(assignment_id: str, *, deleted: bool = False, event_id: str,
                          actor: str = "Alex Oncall") -> dict[str, Any]:
    """ARM's ResourceWriteSuccess / ResourceDeleteSuccess for a role assignment, from the documented schema."""
    event = copy.deepcopy(sample("resource_write_success_role_assignment.json"))
    verb = "delete" if deleted else "write"
    event["id"] = event_id
    event["subject"] = assignment_id
    event["eventType"] = f"Microsoft.Resources.Resource{'Delete' if deleted else 'Write'}Success"
    data = event["data"]
    data["resourceUri"] = assignment_id
    data["operationName"] = f"Microsoft.Authorization/roleAssignments/{verb}"
    data["authorization"]["scope"] = assignment_id
    data["authorization"]["action"] = f"Microsoft.Authorization/roleAssignments/{verb}"
    data["claims"]["name"] = actor
    data["httpRequest"]["method"] = "DELETE" if deleted else "PUT"
    data["httpRequest"]["url"] = f"https://management.azure.com{assignment_id}?api-version=2022-04-01"
    return event


def failure_cloudevent(event_id: str, **data_changes: Any) -> dict[str, Any]:
    """The documented AOAI.Triage.Failure CloudEvent; `data_changes` overrides (None removes) data fields."""
    event = sample("failure_cloudevent.json")
    event["id"] = event_id
    for key, value in data_changes.items():
        if value is None:
            event["data"].pop(key, None)
        else:
            event["data"][key] = value
    return event


# ---- HTTP ------------------------------------------------------------------------------------------------------


def http_request(method: str, route: str, *, body: Any = None, params: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None, route_params: dict[str, str] | None = None,
                 ) -> func.HttpRequest:
    """An HttpRequest as the worker builds it. `body`: bytes as-is, anything else JSON-encoded."""
    raw = body if isinstance(body, bytes) else (b"" if body is None else json.dumps(body).encode())
    return func.HttpRequest(method, f"https://triage.example/api/{route}", headers=headers or {},
                            params=params or {}, route_params=route_params or {}, body=raw)


def call_http(name: str, request: func.HttpRequest) -> tuple[int, dict[str, Any]]:
    """Invoke an HTTP function; every answer must be JSON and must never carry a stack trace."""
    response = user_function(name)(request)
    text = response.get_body().decode("utf-8")
    assert "Traceback" not in text, text
    assert response.mimetype == "application/json"
    return response.status_code, json.loads(text)


def rejections(world: World) -> list[Any]:
    return [a for a in world.rt.store.list_audit() if a.kind == "event-rejected"]
