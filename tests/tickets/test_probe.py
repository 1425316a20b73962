"""The ticket sinks' read-only probe (the self-check, `python -m shared doctor`): against each tracker stand-in it
reads and writes nothing, and refused credentials are the sink's one clear TicketAuthError."""

from __future__ import annotations

import pytest

from shared.tickets.base import TicketAuthError
from tests.support.trackers import TRACKERS, new_sink

BAD_CREDENTIALS = {
    "github": {"TRIAGE_GITHUB_TOKEN": "ghs_wrong"},
    "azuredevops": {"TRIAGE_ADO_PAT": "wrong-pat"},
    "servicenow": {"TRIAGE_SERVICENOW_PASSWORD": "wrong-password"},
    "jira": {"TRIAGE_JIRA_TOKEN": "wrong-token"},
}


@pytest.mark.parametrize("tracker", TRACKERS)
def test_the_probe_reads_and_changes_nothing(standins, tracker):
    before = len(standins.received(tracker))
    tickets_before = len(standins.tickets(tracker))
    said = new_sink(standins, tracker).probe()
    assert "readable" in said
    calls = [c for c in standins.calls.records if c.service == tracker][before:]
    assert calls and all(c.kind == "read" and c.status == 200 for c in calls), calls
    assert len(standins.tickets(tracker)) == tickets_before


@pytest.mark.parametrize("tracker", TRACKERS)
def test_refused_credentials_make_the_probe_raise_the_auth_error(standins, tracker):
    with pytest.raises(TicketAuthError, match="credentials rejected"):
        new_sink(standins, tracker, **BAD_CREDENTIALS[tracker]).probe()


def test_the_webhook_has_no_read_only_call_and_the_log_sink_reaches_nothing(standins):
    assert not hasattr(new_sink(standins, "webhook"), "probe")
    assert "log" in new_sink(standins, "log").probe()
