"""Outcome events through the real EventGridPublisherClient against the local Event Grid stand-in, and the
factory's credential choice."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest
from azure.core.pipeline.transport import RequestsTransport

from localazure import FakeCredential
from shared.adapters import events_out
from shared.adapters.azure import AzureClients
from shared.adapters.clients import build_credential
from shared.settings import Settings
from tests.support.paths import REPO_ROOT


def publisher_for(az, key=None, credential=None):
    settings = Settings(eventgrid_topic_endpoint=az.eventgrid_url, eventgrid_topic_key=key or "",
                        ca_bundle=az.ca_path)
    return AzureClients.from_settings(settings, credential or FakeCredential()).events


@pytest.fixture(autouse=True)
def no_waits(monkeypatch):
    monkeypatch.setattr(RequestsTransport, "sleep", lambda self, seconds: None)


def _received(az, subject):
    return [e for e in az.eventgrid_received if e.event.get("subject") == subject]


def test_publish_sends_a_cloud_event_with_the_topic_key(local_azure, caplog):
    publisher = publisher_for(local_azure, key=local_azure.eventgrid_key)
    data = {"incident_id": "inc-pub-1", "role": "Cognitive Services OpenAI User"}
    with caplog.at_level(logging.WARNING):
        assert publisher.publish(events_out.ASSIGNMENT_CREATED, data) is True
    (received,) = _received(local_azure, "inc-pub-1")
    assert received.schema == "cloudevents"
    assert received.type == "aoai.triage.assignment.created"
    assert received.event["source"] == "/aoai-auth-triage" and received.event["specversion"] == "1.0"
    assert received.data == data
    assert publisher.sent == 1 and publisher.failures == []
    assert not [r for r in caplog.records if "is not a known attribute" in r.getMessage()]


def test_without_a_key_the_service_credential_is_used_for_event_grid(local_azure):
    credential = FakeCredential()
    publisher = publisher_for(local_azure, credential=credential)
    assert publisher.publish(events_out.TICKET_OPENED, {"incident_id": "inc-pub-2"}) is True
    assert _received(local_azure, "inc-pub-2")
    assert ("https://eventgrid.azure.net/.default",) in credential.scopes_requested


def test_a_rejected_key_is_reported_never_raised(local_azure):
    publisher = publisher_for(local_azure, key="wrong-key")
    assert publisher.publish(events_out.INCIDENT_ESCALATED, {"incident_id": "inc-pub-3"}) is False
    assert not _received(local_azure, "inc-pub-3")
    assert len(publisher.failures) == 1 and "ClientAuthenticationError" in publisher.failures[0]


def test_a_failing_topic_is_retried_a_little_then_reported(local_azure):
    publisher = publisher_for(local_azure, key=local_azure.eventgrid_key)
    before = local_azure.calls.count(service="eventgrid")
    fault = local_azure.faults.add(service="eventgrid", status=503, retry_after=1, times=None)
    try:
        assert publisher.publish(events_out.VERIFICATION_RESOLVED, {"incident_id": "inc-pub-4"}) is False
    finally:
        fault.times = 0  # the stand-in is shared by this module: switch the fault off
    assert local_azure.calls.count(service="eventgrid") - before == 3  # retry_total=2
    assert len(publisher.failures) == 1 and "status 503" in publisher.failures[0]


def test_unknown_event_types_are_a_programming_error(local_azure):
    with pytest.raises(ValueError):
        publisher_for(local_azure).publish("aoai.triage.something", {"incident_id": "x"})


def test_no_topic_means_a_no_op_publisher():
    events = AzureClients.from_settings(Settings(), FakeCredential()).events
    assert isinstance(events, events_out.NullPublisher)
    assert events.publish(events_out.TICKET_OPENED, {"incident_id": "x"}) is False


def test_credential_choice_follows_the_settings():
    from azure.identity import DefaultAzureCredential, ManagedIdentityCredential

    uami = replace(Settings(), managed_identity_client_id="11111111-2222-3333-4444-555555555555")
    assert isinstance(build_credential(uami), ManagedIdentityCredential)
    assert isinstance(build_credential(Settings()), DefaultAzureCredential)


@pytest.mark.slow  # a fresh interpreter in a subprocess
def test_building_the_clients_imports_no_azure_sdk():
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from shared.adapters.azure import AzureClients\n"
        "from shared.settings import Settings\n"
        "AzureClients.from_settings(Settings(workspace_ids=('w',)), credential=object())\n"
        "print(sorted(m for m in sys.modules if m.startswith('azure.')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60,
                         cwd=REPO_ROOT)
    assert out.stdout.strip() == "[]"
