"""Trackers down, rate-limited or refusing credentials: TicketError/TicketAuthError, real bounded retries, no
duplicate ticket afterwards, and no secret in anything the trackers received, in logs or in error messages."""

from __future__ import annotations

import base64
import logging
import re
import socket
from dataclasses import replace

import pytest

from shared.tickets.base import TicketAuthError, TicketError
from shared.tickets.http import HttpOptions, HttpResult, TrackerClient
from tests.support.trackers import (
    CREDENTIALS,
    FAST,
    TRACKERS,
    make_content,
    new_sink,
    tickets_for,
)

BAD_CREDENTIALS = {
    "github": {"TRIAGE_GITHUB_TOKEN": "ghs_wrong"},
    "azuredevops": {"TRIAGE_ADO_PAT": "wrong-pat"},
    "servicenow": {"TRIAGE_SERVICENOW_PASSWORD": "wrong-password"},
    "jira": {"TRIAGE_JIRA_TOKEN": "wrong-token"},
}
SETTING_NAMED = {"github": "TRIAGE_GITHUB_TOKEN", "azuredevops": "TRIAGE_ADO_PAT",
                 "servicenow": "TRIAGE_SERVICENOW_PASSWORD", "jira": "TRIAGE_JIRA_TOKEN"}


def _calls(standins, tracker, since):
    return standins.received(tracker)[since:]


@pytest.mark.parametrize("tracker", TRACKERS)
def test_a_rate_limit_within_the_retry_budget_is_absorbed_by_a_real_retry(standins, tracker):
    content = make_content()
    before = len(standins.received(tracker))
    standins.faults.add(tracker, status=429, times=1, retry_after=0.01)
    ref = new_sink(standins, tracker).open_or_update(content)
    calls = _calls(standins, tracker, before)
    assert ref.created
    assert calls[0].method == calls[1].method and calls[0].path == calls[1].path  # the same call, sent twice
    assert len(tickets_for(standins, tracker, content)) == 1


@pytest.mark.parametrize("tracker", TRACKERS)
@pytest.mark.parametrize("status", [429, 503])
def test_a_tracker_down_longer_than_the_retries_raises_ticket_error_then_recovers_without_duplicate(
        standins, tracker, status):
    content = make_content()
    sink = new_sink(standins, tracker)
    sink.open_or_update(content)
    before = len(standins.received(tracker))
    standins.faults.add(tracker, status=status, times=FAST.retry_total + 1, retry_after=0.01)
    with pytest.raises(TicketError) as info:
        sink.open_or_update(replace(content, count=8))
    assert not isinstance(info.value, TicketAuthError)
    assert info.value.args[0].startswith(f"{tracker} sink:")
    assert len(_calls(standins, tracker, before)) == FAST.retry_total + 1  # bounded: 1 try + 3 retries
    again = sink.open_or_update(replace(content, count=9))
    assert not again.created
    assert len(tickets_for(standins, tracker, content)) == 1


CREATE_CALLS = {"github": ("POST", "/issues"), "azuredevops": ("POST", "/workitems/$Issue"),
                "servicenow": ("POST", "/api/now/table/incident"), "jira": ("POST", "/rest/api/3/issue")}


@pytest.mark.parametrize("tracker", TRACKERS)
def test_a_create_whose_answer_is_lost_is_found_next_cycle_not_created_twice(standins, tracker):
    content = make_content()
    method, path = CREATE_CALLS[tracker]
    # The tracker creates the ticket, then answers 500. The create is not retried (it may have been applied);
    # the engine keeps the ticket pending, and the next cycle's look-up finds the ticket.
    standins.faults.add(tracker, route=re.escape(path), status=500, after_apply=True, method=method)
    before = len(standins.received(tracker))
    with pytest.raises(TicketError, match="tracker unavailable"):
        new_sink(standins, tracker).open_or_update(content)
    creates = [c for c in _calls(standins, tracker, before) if c.method == method and c.path.endswith(path)]
    assert len(creates) == 1
    assert len(tickets_for(standins, tracker, content)) == 1
    assert not new_sink(standins, tracker).open_or_update(content).created
    assert len(tickets_for(standins, tracker, content)) == 1


def test_github_secondary_rate_limit_403_with_retry_after_is_retried(standins):
    content = make_content()
    before = len(standins.received("github"))
    standins.faults.add("github", status=403, times=2, retry_after=0.01)
    assert new_sink(standins, "github").open_or_update(content).created
    assert [c.method for c in _calls(standins, "github", before)][:3] == ["GET", "GET", "GET"]


def test_a_retry_after_longer_than_the_budget_is_not_waited_for(standins):
    content = make_content()
    before = len(standins.received("github"))
    standins.faults.add("github", status=403, times=1, retry_after=3600)
    with pytest.raises(TicketError) as info:
        new_sink(standins, "github").open_or_update(content)
    assert not isinstance(info.value, TicketAuthError)
    assert "rate-limited" in str(info.value) and "3600" in str(info.value)
    assert len(_calls(standins, "github", before)) == 1
    assert tickets_for(standins, "github", content) == []


def test_github_primary_rate_limit_429_without_retry_after_is_a_ticket_error(standins):
    standins.faults.add("github", status=429, times=FAST.retry_total + 1, retry_after=None)
    with pytest.raises(TicketError, match="rate-limited"):
        new_sink(standins, "github").open_or_update(make_content())


@pytest.mark.parametrize("tracker", TRACKERS)
def test_bad_credentials_raise_one_clear_auth_error_without_retrying(standins, tracker):
    before = len(standins.received(tracker))
    sink = new_sink(standins, tracker, **BAD_CREDENTIALS[tracker])
    with pytest.raises(TicketAuthError) as info:
        sink.open_or_update(make_content())
    message = str(info.value)
    assert message.startswith(f"{tracker} sink: credentials rejected (HTTP 401")
    assert SETTING_NAMED[tracker] in message
    wrong = next(iter(BAD_CREDENTIALS[tracker].values()))
    assert wrong not in message and base64.b64encode(wrong.encode()).decode() not in message
    assert len(_calls(standins, tracker, before)) == 1  # 401 is not retried


def test_an_unreachable_tracker_is_a_ticket_error():
    with socket.socket() as probe:  # a port nothing listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    from shared.tickets.jira import JiraSink

    sink = JiraSink(base_url=f"https://127.0.0.1:{port}", project="AIP", user="u", token="LEAKCANARYunreach",
                    options=HttpOptions(retry_total=1, retry_backoff_factor=0.001, connection_timeout=2))
    with pytest.raises(TicketError, match="jira sink: tracker unreachable") as info:
        sink.open_or_update(make_content())
    assert "LEAKCANARY" not in str(info.value)


def test_tracker_error_text_that_echoes_a_secret_is_redacted():
    client = TrackerClient(sink="github", base_url="https://127.0.0.1:1", options=FAST,
                           secrets=("ghs_LEAKCANARYecho",), credential_hint="TRIAGE_GITHUB_TOKEN")
    echoed = HttpResult(422, {}, b'{"message": "Validation Failed for token ghs_LEAKCANARYecho"}')
    assert "LEAKCANARY" not in str(client.error_for(echoed))
    assert "Validation Failed" in str(client.error_for(echoed))


def test_secrets_never_reach_bodies_urls_tickets_logs_or_errors(standins, caplog):
    caplog.set_level(logging.DEBUG)
    secrets = CREDENTIALS.secrets()
    basic_forms = [base64.b64encode(f"{u}:{p}".encode()).decode() for u, p in (
        ("", CREDENTIALS.ado_pat), (CREDENTIALS.servicenow_user, CREDENTIALS.servicenow_password),
        (CREDENTIALS.jira_user, CREDENTIALS.jira_token))]
    forbidden = [*secrets, *basic_forms, "LEAKCANARY"]
    outputs: list[str] = []
    for tracker in (*TRACKERS, "webhook"):
        content = make_content()
        sink = new_sink(standins, tracker)
        outputs.append(repr(sink.open_or_update(content)))
        outputs.append(repr(sink.open_or_update(replace(content, escalated=True), comment="still failing")))
        outputs.append(repr(sink.resolve(content, comment="Resolved: role assigned.")))
        outputs.append(repr(sink.open_or_update(content)))
        standins.faults.add(tracker, status=503, times=FAST.retry_total + 1, retry_after=0.01)
        with pytest.raises(TicketError) as info:
            sink.open_or_update(content)
        outputs.append(str(info.value))
    for tracker in (*TRACKERS, "webhook"):
        for request in standins.received(tracker):
            outputs += [request.text, request.path, repr(request.query)]
        outputs += [t.title + t.body + "".join(t.comments) for t in standins.tickets(tracker)]
    outputs.append(caplog.text)
    assert "Request URL" in caplog.text  # the HTTP logging policy did log the calls
    everything = "\n".join(outputs)
    for secret in forbidden:
        assert secret not in everything


def test_a_github_app_token_provider_is_asked_per_request_and_its_tokens_are_redacted(standins):
    from shared.settings import load_settings
    from shared.tickets.factory import build_sinks

    calls = []

    def installation_token() -> str:
        calls.append(1)
        return CREDENTIALS.github_token

    settings = load_settings(standins.settings_env() | {"TRIAGE_TICKET_SINKS": "github",
                                                        "TRIAGE_CA_BUNDLE": standins.ca_path})
    (sink,) = build_sinks(settings, http_options=FAST, github_token=installation_token)
    before = len(standins.received("github"))
    assert sink.open_or_update(make_content()).created
    assert len(calls) == len(standins.received("github")) - before  # a fresh token for every request
    echoed = HttpResult(422, {}, f'{{"message": "token {CREDENTIALS.github_token} is odd"}}'.encode())
    assert CREDENTIALS.github_token not in str(sink._http.error_for(echoed))
