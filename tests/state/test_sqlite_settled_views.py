"""SQLite's get_settled keeps the views it decoded by their stored text (bounded): what it returns is always the
view of the incident as last written, whether its text was decoded before, by another store, or the bound emptied
what was kept."""

from __future__ import annotations

from dataclasses import replace

import pytest

from shared.core.incidents import TICKETED
from shared.core.records import settled_view
from shared.state.sqlite import SqliteStore
from tests.state.test_store_contract import make_incident


@pytest.mark.parametrize("kept", [0, 1, 2, 20_000])
def test_views_read_are_those_of_the_incidents_as_last_written(tmp_path, monkeypatch, kept):
    monkeypatch.setattr(SqliteStore, "_views_by_text", {})
    monkeypatch.setattr(SqliteStore, "VIEWS_KEPT", kept)
    store, other = SqliteStore(str(tmp_path / "a.sqlite3")), SqliteStore(str(tmp_path / "b.sqlite3"))
    incidents = [make_incident(n, status=TICKETED) for n in range(1, 6)]
    store.create_incidents([(i, ()) for i in incidents])
    other.create_incidents([(i, ()) for i in incidents[:2]])
    ids = [i.id for i in incidents]
    expected = {i.id: settled_view(i) for i in incidents}
    assert store.get_settled(ids) == expected
    assert store.get_settled(ids) == expected  # found again
    changed = replace(store.get_incident(ids[0]), count=99)
    store.put_incident(changed, expected_etag=changed.etag)
    expected[ids[0]] = settled_view(changed)
    assert store.get_settled(ids) == expected  # a new text: the view of the new write
    assert other.get_settled(ids) == {i: settled_view(incidents[n]) for n, i in enumerate(ids[:2])}
    assert len(SqliteStore._views_by_text) <= max(kept, 1)
