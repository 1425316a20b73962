"""The settled view's stored form (codec.settled_to_json): it reads back as the view it was written from, and a
view stored by the first layout (the whole incident record, less its diagnosis) reads as that incident's view."""

from __future__ import annotations

from dataclasses import replace

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.records import settled_view
from shared.state import codec
from tests.state.test_layout import SETTLING


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
