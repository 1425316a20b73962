"""The azd postdeploy hook (infra/hooks/postdeploy.py): the Event Grid subscription it creates on each watched
subscription's system topic keeps exactly the role-assignment writes and deletes the service acts on, retries for a
day and dead-letters with the topic's identity. Run with a fake `az`: nothing leaves the machine."""

from __future__ import annotations

import importlib.util
import json
import subprocess

import pytest

from shared.core import events
from tests.support.bicep import INFRA
from tests.support.paths import REPO_ROOT

SITE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Web/sites/func-x"
STORAGE = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/stx"
TOPICS = ["/subscriptions/s/resourceGroups/rg/providers/Microsoft.EventGrid/systemTopics/evgt-0",
          "/subscriptions/t/resourceGroups/rg/providers/Microsoft.EventGrid/systemTopics/evgt-1"]
ENV = {"SERVICE_API_RESOURCE_ID": SITE, "EVENT_GRID_SYSTEM_TOPIC_IDS": json.dumps(TOPICS),
       "EVENT_GRID_DEAD_LETTER_STORAGE_ID": STORAGE, "EVENT_GRID_DEAD_LETTER_CONTAINER": "eventgrid-deadletter"}


@pytest.fixture(scope="module")
def hook():
    spec = importlib.util.spec_from_file_location("postdeploy", INFRA / "hooks" / "postdeploy.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class FakeAz:
    def __init__(self, failures: int = 0):
        self.calls: list[tuple[list[str], dict]] = []
        self.failures = failures

    def __call__(self, args):
        body = json.loads(open(args[args.index("--body") + 1].removeprefix("@"), encoding="utf-8").read())
        self.calls.append((list(args), body))
        failed = len(self.calls) <= self.failures
        return subprocess.CompletedProcess(args, 1 if failed else 0, "", "validation failed" if failed else "")


def test_the_filter_is_role_assignment_writes_and_deletes(hook):
    body = hook.subscription_body(SITE, STORAGE, "eventgrid-deadletter")["properties"]
    assert body["filter"]["includedEventTypes"] == [events.RESOURCE_WRITE_SUCCESS, events.RESOURCE_DELETE_SUCCESS]
    (advanced,) = body["filter"]["advancedFilters"]
    assert advanced["operatorType"] == "StringIn" and advanced["key"] == "data.operationName"
    assert [v.lower() for v in advanced["values"]] == [events.ROLE_ASSIGNMENT_WRITE, events.ROLE_ASSIGNMENT_DELETE]


def test_delivery_goes_to_the_events_function_with_retries_and_dead_letters(hook):
    body = hook.subscription_body(SITE, STORAGE, "eventgrid-deadletter")["properties"]
    assert body["destination"]["endpointType"] == "AzureFunction"
    assert body["destination"]["properties"]["resourceId"] == f"{SITE}/functions/events"
    assert body["eventDeliverySchema"] == "EventGridSchema"
    assert body["retryPolicy"] == {"maxDeliveryAttempts": 30, "eventTimeToLiveInMinutes": 1440}
    dead_letter = body["deadLetterWithResourceIdentity"]
    assert dead_letter["identity"] == {"type": "SystemAssigned"}  # the topic's identity: storage has no keys
    assert dead_letter["deadLetterDestination"] == {"endpointType": "StorageBlob", "properties": {
        "resourceId": STORAGE, "blobContainerName": "eventgrid-deadletter"}}


def test_the_events_function_exists(hook):
    source = (REPO_ROOT / "function_app.py").read_text(encoding="utf-8")
    assert f'@app.function_name(name="{hook.FUNCTION_NAME}")\n@app.event_grid_trigger(' in source


def test_main_puts_one_subscription_per_topic(hook):
    az = FakeAz()
    assert hook.main(ENV, az) == 0
    urls = [args[args.index("--url") + 1] for args, _ in az.calls]
    assert urls == [f"{t}/eventSubscriptions/triage-role-assignments?api-version={hook.API_VERSION}" for t in TOPICS]
    assert all(args[:3] == ["rest", "--method", "put"] for args, _ in az.calls)
    assert all(body == hook.subscription_body(SITE, STORAGE, "eventgrid-deadletter") for _, body in az.calls)


def test_main_retries_a_validation_failure_then_reports(hook, monkeypatch):
    monkeypatch.setattr(hook, "CREATE_PAUSE_SECONDS", 0)
    az = FakeAz(failures=2)
    assert hook.main({**ENV, "EVENT_GRID_SYSTEM_TOPIC_IDS": json.dumps(TOPICS[:1])}, az) == 0
    assert len(az.calls) == 3
    always = FakeAz(failures=100)
    assert hook.main(ENV, always) == 1
    assert len(always.calls) == 2 * hook.CREATE_ATTEMPTS


def test_main_refuses_without_the_provisioning_outputs(hook, capsys):
    assert hook.main({}, FakeAz()) == 1
    assert "SERVICE_API_RESOURCE_ID" in capsys.readouterr().err
    with pytest.raises(ValueError):
        hook.topic_ids('["not-a-resource-id"]')


def test_azd_runs_the_hook_after_deploy():
    text = (REPO_ROOT / "azure.yaml").read_text(encoding="utf-8")
    assert "postdeploy:" in text and text.count("infra/hooks/postdeploy.py") == 2  # posix and windows
    assert "host: function" in text and "language: python" in text
    funcignore = (REPO_ROOT / ".funcignore").read_text(encoding="utf-8").split()
    assert {"infra/", "azure.yaml", "localazure/", "tests/"} <= set(funcignore)
