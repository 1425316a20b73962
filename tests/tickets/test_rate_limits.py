"""Trackers' rate-limit answers through the real sinks: GitHub's documented limits and headers as the stand-in
serves them (primary quota, search quota, secondary content limit), and every tracker's 429 with Retry-After,
become TicketRateLimited with the wait the tracker asked for, without spending more requests inside the call."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from localazure.trackers.github import GitHubRateLimits
from shared.core.ticket_model import TicketRateLimited
from shared.tickets.http import TrackerClient, rate_limit_wait
from tests.support.trackers import FAST, make_content, new_sink, tickets_for

RATE_HEADERS = ("x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-used", "x-ratelimit-reset",
                "x-ratelimit-resource")


@pytest.fixture
def github(standins):
    app = standins.app("github")
    yield app
    app.set_limits(GitHubRateLimits())


def _answers(standins, since):
    return standins.calls.records[since:]


def test_every_github_answer_carries_the_documented_rate_limit_headers(standins, github):
    github.set_limits(GitHubRateLimits())
    client = TrackerClient(sink="github", base_url=standins.github_url,
                           options=replace(FAST, connection_verify=standins.ca_path), secrets=(),
                           credential_hint="TRIAGE_GITHUB_TOKEN",
                           authorization=lambda: f"Bearer {standins.credentials.github_token}")
    repo = f"/repos/{standins.credentials.github_repo}/issues"
    first = {k.lower(): v for k, v in client.request("GET", repo, idempotent=True).headers.items()}
    second = {k.lower(): v for k, v in client.request("GET", repo, idempotent=True).headers.items()}
    search = {k.lower(): v for k, v in client.request("GET", "/search/issues", idempotent=True,
                                                      params={"q": "repo:x is:issue"}).headers.items()}
    client.close()
    assert set(RATE_HEADERS) <= set(first)
    assert (first["x-ratelimit-limit"], first["x-ratelimit-used"], first["x-ratelimit-remaining"]) == (
        "5000", "1", "4999")
    assert (second["x-ratelimit-used"], second["x-ratelimit-remaining"]) == ("2", "4998")
    assert first["x-ratelimit-resource"] == "core" and first["x-ratelimit-reset"] == second["x-ratelimit-reset"]
    assert (search["x-ratelimit-resource"], search["x-ratelimit-limit"]) == ("search", "30")


def test_the_secondary_limit_on_content_refuses_with_retry_after_and_the_sink_waits_for_it(standins, github):
    github.set_limits(GitHubRateLimits(content_per_minute=2))
    sink = new_sink(standins, "github")
    for _ in range(2):
        assert sink.open_or_update(make_content()).created
    third = make_content()
    before = len(standins.calls.records)
    with pytest.raises(TicketRateLimited) as info:
        sink.open_or_update(third)
    assert 0 < info.value.retry_after <= 60
    assert "secondary rate limit" in str(info.value)
    creates = [c for c in _answers(standins, before) if c.method == "POST"]
    assert [c.status for c in creates] == [403]  # Retry-After beyond the call's budget: not retried
    assert tickets_for(standins, "github", third) == []

    standins.clock.advance(61)
    assert sink.open_or_update(third).created


def test_an_exhausted_primary_quota_answers_403_with_remaining_0_and_the_reset(standins, github):
    github.set_limits(GitHubRateLimits(core_per_hour=1))
    sink = new_sink(standins, "github")
    before = len(standins.calls.records)
    with pytest.raises(TicketRateLimited) as info:
        sink.open_or_update(make_content())  # list (core), search (its own quota), then the create is over
    assert 3500 < info.value.retry_after <= 3601
    assert [c.status for c in _answers(standins, before)] == [200, 200, 403]  # no retries against an empty quota


@pytest.mark.parametrize("tracker", ["azuredevops", "jira", "servicenow", "github"])
def test_a_429_with_a_long_retry_after_is_a_rate_limit_with_that_wait(standins, github, tracker):
    standins.faults.add(tracker, status=429, times=1, retry_after=900)
    with pytest.raises(TicketRateLimited) as info:
        new_sink(standins, tracker, FAST).open_or_update(make_content())
    assert info.value.retry_after == 900


@given(headers=st.dictionaries(
    st.sampled_from(["retry-after", "x-ratelimit-remaining", "x-ratelimit-reset", "date"]),
    st.one_of(st.text(max_size=40), st.integers(-10**12, 10**12).map(str), st.floats(allow_nan=True).map(str),
              st.just("0"), st.just("Wed, 21 Oct 2015 07:28:00 GMT"))))
def test_any_rate_limit_headers_give_no_wait_or_a_wait_of_zero_or_more(headers):
    wait = rate_limit_wait(headers)
    assert wait is None or 0 <= wait < float("inf")


def test_the_wait_is_the_longer_of_retry_after_and_the_reset():
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    epoch = 1445412480
    assert rate_limit_wait({"retry-after": "30", "x-ratelimit-remaining": "0", "x-ratelimit-reset": str(epoch + 90),
                            "date": date}) == 90
    assert rate_limit_wait({"retry-after": "120", "x-ratelimit-remaining": "5", "x-ratelimit-reset": "1"}) == 120
    assert rate_limit_wait({"retry-after": "Wed, 21 Oct 2015 07:29:00 GMT", "date": date}) == 60
    assert rate_limit_wait({"x-ratelimit-remaining": "3", "x-ratelimit-reset": str(epoch)}) is None


def test_jira_s_iso_reset_counts_too():
    date = "Wed, 21 Oct 2015 07:28:00 GMT"
    assert rate_limit_wait({"retry-after": "10", "x-ratelimit-reset": "2015-10-21T07:30Z", "date": date}) == 120
