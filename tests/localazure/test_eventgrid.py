"""The Event Grid topic stand-in, fed by the real EventGridPublisherClient."""

from __future__ import annotations

import pytest
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError
from azure.core.messaging import CloudEvent
from azure.eventgrid import EventGridEvent

from localazure import Clock, LocalAzure
from tests.support.azure import eventgrid_client

pytestmark = pytest.mark.slow  # every test talks to a running stand-in


@pytest.fixture(scope="module")
def az():
    with LocalAzure.start(clock=Clock.frozen("2025-06-01T12:00:00Z")) as stand_in:
        yield stand_in


def test_event_grid_schema_events_are_recorded(az):
    before = len(az.eventgrid_received)
    event = EventGridEvent(subject="/incidents/42", event_type="Contoso.Rbac.Reverify",
                           data={"incident": "42", "scope": "/subscriptions/x"}, data_version="1.0")
    eventgrid_client(az).send([event], connection_verify=az.ca_path)
    [received] = az.eventgrid_received[before:]
    assert received.schema == "eventgrid" and received.type == "Contoso.Rbac.Reverify"
    assert received.data == {"incident": "42", "scope": "/subscriptions/x"}
    assert received.event["subject"] == "/incidents/42" and received.event["id"] == str(event.id)


def test_cloud_events_are_recorded(az):
    before = len(az.eventgrid_received)
    events = [CloudEvent(source="/contoso/rbac", type="Contoso.Rbac.Reverify", data={"n": n}) for n in range(2)]
    eventgrid_client(az).send(events, connection_verify=az.ca_path)
    received = az.eventgrid_received[before:]
    assert [r.schema for r in received] == ["cloudevents", "cloudevents"]
    assert [r.data for r in received] == [{"n": 0}, {"n": 1}]
    assert received[0].event["specversion"] == "1.0" and received[0].event["source"] == "/contoso/rbac"


def test_a_wrong_key_is_rejected(az):
    before = len(az.eventgrid_received)
    with pytest.raises(ClientAuthenticationError):
        eventgrid_client(az, key="wrong").send(
            [EventGridEvent(subject="s", event_type="t", data={}, data_version="1")], connection_verify=az.ca_path)
    assert len(az.eventgrid_received) == before


def test_faults_apply_to_the_topic(az):
    az.faults.add("eventgrid", status=400, times=1)
    with pytest.raises(HttpResponseError) as info:
        eventgrid_client(az).send([EventGridEvent(subject="s", event_type="t", data={}, data_version="1")],
                                  connection_verify=az.ca_path)
    assert info.value.status_code == 400
    assert az.calls.count(service="eventgrid", route="eventgrid.publish", status=400) == 1
