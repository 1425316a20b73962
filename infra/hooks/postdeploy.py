"""azd postdeploy hook: subscribe the `events` function to role-assignment writes and deletes on every watched
subscription's Event Grid system topic (main.bicep creates the topics).

Why a hook and not Bicep: an Event Grid subscription to an Azure Functions endpoint is validated against the
function when it is created, and the function exists only once azd has deployed the code, after provisioning.

The subscription keeps only `Microsoft.Resources.ResourceWriteSuccess` / `ResourceDeleteSuccess` events whose
`data.operationName` is a role-assignment write or delete (what shared/core/events.py acts on), retries for 24 hours
(30 attempts) and dead-letters to the service's storage with the topic's own identity (shared keys are off there).

Reads the azd environment (main.bicep's outputs): SERVICE_API_RESOURCE_ID, EVENT_GRID_SYSTEM_TOPIC_IDS (a JSON
array), EVENT_GRID_DEAD_LETTER_STORAGE_ID, EVENT_GRID_DEAD_LETTER_CONTAINER. Needs the Azure CLI (`az login`).
Standard library only: it runs with whatever Python azd finds, not the project's environment.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

API_VERSION = "2025-02-15"
SUBSCRIPTION_NAME = "triage-role-assignments"
FUNCTION_NAME = "events"
EVENT_TYPES = ("Microsoft.Resources.ResourceWriteSuccess", "Microsoft.Resources.ResourceDeleteSuccess")
OPERATIONS = ("Microsoft.Authorization/roleAssignments/write", "Microsoft.Authorization/roleAssignments/delete")
MAX_DELIVERY_ATTEMPTS = 30
EVENT_TTL_MINUTES = 1440
# The function endpoint may not answer validation for a minute after a deployment: the create is tried again.
CREATE_ATTEMPTS = 5
CREATE_PAUSE_SECONDS = 20

REQUIRED = ("SERVICE_API_RESOURCE_ID", "EVENT_GRID_SYSTEM_TOPIC_IDS", "EVENT_GRID_DEAD_LETTER_STORAGE_ID",
            "EVENT_GRID_DEAD_LETTER_CONTAINER")


def subscription_body(function_app_id: str, dead_letter_storage_id: str, dead_letter_container: str) -> dict[str, Any]:
    """The event subscription, as the Event Grid REST API takes it."""
    return {
        "properties": {
            "destination": {
                "endpointType": "AzureFunction",
                "properties": {"resourceId": f"{function_app_id}/functions/{FUNCTION_NAME}", "maxEventsPerBatch": 1},
            },
            "eventDeliverySchema": "EventGridSchema",
            "filter": {
                "includedEventTypes": list(EVENT_TYPES),
                "advancedFilters": [{"operatorType": "StringIn", "key": "data.operationName",
                                     "values": list(OPERATIONS)}],
            },
            "retryPolicy": {"maxDeliveryAttempts": MAX_DELIVERY_ATTEMPTS,
                            "eventTimeToLiveInMinutes": EVENT_TTL_MINUTES},
            "deadLetterWithResourceIdentity": {
                "identity": {"type": "SystemAssigned"},
                "deadLetterDestination": {
                    "endpointType": "StorageBlob",
                    "properties": {"resourceId": dead_letter_storage_id, "blobContainerName": dead_letter_container},
                },
            },
        }
    }


def subscription_url(topic_id: str) -> str:
    """A resource path: `az rest` puts the current cloud's ARM endpoint in front of it."""
    return f"{topic_id.rstrip('/')}/eventSubscriptions/{SUBSCRIPTION_NAME}?api-version={API_VERSION}"


def topic_ids(raw: str) -> list[str]:
    """azd stores an array output as JSON; one bare id is accepted too."""
    text = raw.strip()
    if not text:
        return []
    value = json.loads(text) if text.startswith("[") else [text]
    if not isinstance(value, list) or not all(isinstance(v, str) and v.startswith("/subscriptions/") for v in value):
        raise ValueError(f"EVENT_GRID_SYSTEM_TOPIC_IDS is not a list of resource ids: {raw!r}")
    return value


Runner = Callable[[Sequence[str]], "subprocess.CompletedProcess[str]"]


def _az(args: Sequence[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["az", *args], capture_output=True, text=True, check=False)


def put_subscription(topic_id: str, body: dict[str, Any], run: Runner = _az,
                     pause: Callable[[float], None] = time.sleep) -> bool:
    with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
        json.dump(body, handle)
    try:
        for attempt in range(1, CREATE_ATTEMPTS + 1):
            result = run(["rest", "--method", "put", "--url", subscription_url(topic_id), "--body", f"@{handle.name}"])
            if result.returncode == 0:
                print(f"event subscription {SUBSCRIPTION_NAME} on {topic_id}: ok")
                return True
            print(f"attempt {attempt}/{CREATE_ATTEMPTS} on {topic_id} failed: {result.stderr.strip()}",
                  file=sys.stderr)
            if attempt < CREATE_ATTEMPTS:
                pause(CREATE_PAUSE_SECONDS)
        return False
    finally:
        os.unlink(handle.name)


def main(env: Mapping[str, str] = os.environ, run: Runner = _az) -> int:
    missing = [key for key in REQUIRED if not env.get(key)]
    if missing:
        print("postdeploy: missing from the azd environment (run azd provision first): " + ", ".join(missing),
              file=sys.stderr)
        return 1
    body = subscription_body(env["SERVICE_API_RESOURCE_ID"], env["EVENT_GRID_DEAD_LETTER_STORAGE_ID"],
                             env["EVENT_GRID_DEAD_LETTER_CONTAINER"])
    topics = topic_ids(env["EVENT_GRID_SYSTEM_TOPIC_IDS"])
    failed = [topic for topic in topics if not put_subscription(topic, body, run)]
    if failed:
        print("postdeploy: no event subscription on " + ", ".join(failed), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
