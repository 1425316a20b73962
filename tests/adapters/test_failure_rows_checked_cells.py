"""The checked cells a flood repeats (accounts, callers) are remembered per process (failure_rows): a row maps to
the same signal, or is rejected for the same reason, whether its cells were checked before or not."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.adapters import failure_rows

ACCOUNT = ("/subscriptions/00000000-0000-0000-0000-0000000000a1/resourceGroups/rg/providers/"
           "Microsoft.CognitiveServices/accounts/a1")
CALLER = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"
RESOURCES = st.sampled_from([ACCOUNT, ACCOUNT.upper(), f"  {ACCOUNT}  ", f"{ACCOUNT}/projects/p", "/subscriptions/x",
                             "", "   ", None, 42, ["x"]]) | st.text(max_size=30)
CALLERS = st.sampled_from([CALLER, CALLER.upper(), f"{{{CALLER}}}", f" {CALLER} ", "not-a-guid", "", None, 7,
                           ("t",)]) | st.text(max_size=40)
CELLS = st.fixed_dictionaries({"ResourceId": RESOURCES, "ObjectId": CALLERS,
                               "AuthKind": st.sampled_from([None, "entra", "key", "other"])})


def _outcome(row):
    try:
        return failure_rows.diagnostics_signal(row, "logs:w")
    except ValueError as exc:
        return f"rejected: {exc}"


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(CELLS, min_size=1, max_size=6))
def test_a_row_maps_the_same_whether_its_cells_were_checked_before_or_not(rows):
    full = [{"Status": "403", "Failures": 3, "OverlapFailures": 3, "FirstSeen": datetime(2026, 1, 1, tzinfo=UTC),
             "LastSeen": datetime(2026, 1, 1, tzinfo=UTC), **cells} for cells in rows]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(failure_rows, "_checked_resources", {})
        patch.setattr(failure_rows, "_checked_callers", {})
        with pytest.MonkeyPatch.context() as never_kept:
            never_kept.setattr(failure_rows, "CHECKED_CELLS_KEPT", 0)
            checked_every_time = [_outcome(row) for row in full]
            assert failure_rows._checked_resources == {} and failure_rows._checked_callers == {}
        assert [_outcome(row) for row in full] == checked_every_time  # cells remembered on the way
        assert [_outcome(row) for row in full] == checked_every_time  # and found


TEXTS = st.sampled_from(["PermissionDenied", " PermissionDenied ", "", "   ", None, 3, ["x"]]) | st.text(max_size=20)
STATUSES = st.sampled_from([403, 401, 99, 600, True, "403", " 401 ", "x", None, 403.0])
TEXT_CELLS = st.fixed_dictionaries({"ErrorCode": TEXTS, "Route": TEXTS, "OperationName": TEXTS,
                                    "SampleMessage": TEXTS, "Status": STATUSES})


@settings(max_examples=300, deadline=None)
@given(rows=st.lists(TEXT_CELLS, min_size=1, max_size=6))
def test_text_cells_and_statuses_map_the_same_whether_checked_before_or_not(rows):
    full = [{"ResourceId": ACCOUNT, "ObjectId": CALLER, "Failures": 3, "OverlapFailures": 3,
             "FirstSeen": datetime(2026, 1, 1, tzinfo=UTC), "LastSeen": datetime(2026, 1, 1, tzinfo=UTC), **cells}
            for cells in rows]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(failure_rows, "_checked_texts", {})
        with pytest.MonkeyPatch.context() as never_kept:
            never_kept.setattr(failure_rows, "CHECKED_CELLS_KEPT", 0)
            checked_every_time = [_outcome(row) for row in full]
            assert failure_rows._checked_texts == {}
        assert [_outcome(row) for row in full] == checked_every_time  # cells remembered on the way
        assert [_outcome(row) for row in full] == checked_every_time  # and found
        assert all(isinstance(key, str) for key in failure_rows._checked_texts)  # only text cells are kept
