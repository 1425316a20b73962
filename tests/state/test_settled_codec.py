"""The settled view's stored form (codec.settled_to_json): it reads back as the view it was written from, and a
view stored by the first layout (the whole incident record, less its diagnosis) reads as that incident's view."""

from __future__ import annotations

from dataclasses import replace

import pytest
from azure.data.tables import TableServiceClient, UpdateMode
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.incidents import TICKETED
from shared.core.records import settled_view
from shared.state import codec
from shared.state.tables import TableStore, incident_partition, table_key
from tests.state.test_layout import SETTLING
from tests.state.test_store_contract import make_incident
from tests.support.azurite import unique_table_prefix


@settings(max_examples=300, deadline=None)
@given(incident=SETTLING, queued=st.lists(st.sampled_from(["github", "jira", "log"]), max_size=2).map(tuple))
def test_a_stored_view_reads_back_as_written(incident, queued):
    view = settled_view(replace(incident, ticket_queued=queued))
    assert codec.settled_from_json(codec.settled_to_json(view)) == view


@settings(max_examples=100, deadline=None)
@given(incident=SETTLING)
def test_a_view_stored_as_an_incident_record_reads_as_that_incidents_view(incident):
    first_layout = codec.dumps(codec.incident_record(replace(incident, diagnosis=None, etag=None)))
    assert codec.settled_from_json(first_layout) == settled_view(incident)


@pytest.mark.azurite
def test_table_views_in_parts_or_in_the_first_layout_read_by_range_as_their_incidents_views(azurite):
    prefix = unique_table_prefix()
    store = TableStore(azurite, prefix)
    # More than a partition's point reads: every view is read by one range query.
    incidents = [i for i in (make_incident(n, status=TICKETED) for n in range(1, 400))
                 if incident_partition(i.id) == incident_partition(make_incident(1).id)][:8]
    store.create_incidents([(i, ()) for i in incidents])
    table = TableServiceClient.from_connection_string(azurite).get_table_client(prefix + "Incidents")
    try:
        for n, incident in enumerate(incidents):
            text = (codec.dumps(codec.incident_record(replace(incident, diagnosis=None))) if n % 2
                    else codec.settled_to_json(settled_view(incident)))
            parts = {"json_parts": 2, "json_0": text[:7], "json_1": text[7:]} if n % 3 == 0 else {
                "json_parts": 1, "json_0": text}
            table.upsert_entity({"PartitionKey": incident_partition(incident.id),
                                 "RowKey": "~settled|" + table_key(incident.id), **parts}, mode=UpdateMode.REPLACE)
        assert store.get_settled([i.id for i in incidents]) == {i.id: settled_view(i) for i in incidents}
    finally:
        table.close()
        store.close()
