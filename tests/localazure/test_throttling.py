"""ARM's token buckets and Resource Graph's quota in the stand-in (localazure/throttle.py), seen through plain HTTPS
and the real SDK clients."""

from __future__ import annotations

import pytest
import requests
from azure.core.exceptions import HttpResponseError
from hypothesis import given, settings
from hypothesis import strategies as st

from localazure import LocalAzure
from localazure.throttle import ArmThrottle, BucketSize, GraphQuota, ThrottleLimits, hhmmss
from tests.support.azure import arm_auth_client, cognitive_client

pytestmark = pytest.mark.slow

SMALL = ThrottleLimits(reads=BucketSize(3, 1), writes=BucketSize(2, 1), deletes=BucketSize(2, 1),
                       graph_queries=2, graph_window_seconds=60)


class FakeTime:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_documented_defaults():
    limits = ThrottleLimits()
    assert (limits.reads, limits.writes, limits.deletes) == (BucketSize(250, 25), BucketSize(200, 10),
                                                             BucketSize(200, 10))
    assert (limits.graph_queries, limits.graph_window_seconds) == (15, 5.0)


def test_bucket_burst_then_refill_per_principal_and_subscription():
    now = FakeTime()
    throttle = ArmThrottle(ThrottleLimits(), now=now)
    admitted = [throttle.admit("sub", "p1", "reads") for _ in range(251)]
    assert all(a.allowed for a in admitted[:250]) and not admitted[250].allowed
    assert admitted[0].remaining == 249 and admitted[249].remaining == 0
    assert admitted[250].retry_after_seconds == 1
    # Another principal, another subscription and another operation type have buckets of their own.
    assert throttle.admit("sub", "p2", "reads").allowed
    assert throttle.admit("other", "p1", "reads").allowed
    assert throttle.admit("sub", "p1", "writes").allowed
    now.t += 1.0  # 25 tokens back
    assert sum(throttle.admit("sub", "p1", "reads").allowed for _ in range(30)) == 25


@settings(max_examples=50, deadline=None)
@given(st.lists(st.floats(min_value=0, max_value=3), min_size=1, max_size=60))
def test_never_admits_more_than_burst_plus_refill(gaps):
    now = FakeTime()
    throttle = ArmThrottle(ThrottleLimits(reads=BucketSize(5, 2)), now=now)
    start, admitted = now.t, 0
    for gap in gaps:
        now.t += gap
        admitted += throttle.admit("s", "p", "reads").allowed
    assert admitted <= 5 + (now.t - start) * 2


def test_graph_quota_window():
    now = FakeTime()
    quota = GraphQuota(ThrottleLimits(graph_queries=2, graph_window_seconds=5), now=now)
    first, _ = quota.admit("u")
    second, _ = quota.admit("u")
    third, resets = quota.admit("u")
    assert (first.remaining, second.remaining, third.allowed, third.retry_after_seconds) == (1, 0, False, 5)
    assert hhmmss(resets) == "00:00:05"
    now.t += 5
    assert quota.admit("u")[0].allowed


def test_off_by_default_no_headers(local_azure_factory):
    az = local_azure_factory(None)
    answer = requests.get(f"{az.arm_url}/subscriptions/{az.subscription_id}/providers/Microsoft.CognitiveServices/"
                          "accounts?api-version=2024-10-01", headers={"Authorization": "Bearer t"}, verify=az.ca_path,
                          timeout=10)
    assert answer.status_code == 200
    assert "x-ms-ratelimit-remaining-subscription-reads" not in answer.headers


def test_over_the_limit_answers_429_with_retry_after(local_azure_factory):
    az = local_azure_factory(None, arm_throttling=SMALL)
    url = (f"{az.arm_url}/subscriptions/{az.subscription_id}/providers/Microsoft.CognitiveServices/accounts"
           "?api-version=2024-10-01")
    answers = [requests.get(url, headers={"Authorization": "Bearer t"}, verify=az.ca_path, timeout=10)
               for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["x-ms-ratelimit-remaining-subscription-reads"] for a in answers] == ["2", "1", "0", "0"]
    assert answers[3].headers["Retry-After"] == "1"
    assert answers[3].json()["error"]["code"] == "TooManyRequests"
    # A tenant-level request draws from the tenant bucket, and says so.
    tenant = requests.post(f"{az.arm_url}/providers/Microsoft.Authorization/roleAssignments?api-version=2022-04-01",
                           headers={"Authorization": "Bearer t"}, verify=az.ca_path, timeout=10)
    assert "x-ms-ratelimit-remaining-tenant-writes" in tenant.headers


def test_sdk_retries_after_retry_after_and_succeeds(local_azure_factory):
    az = local_azure_factory(None, arm_throttling=SMALL)
    az.add_account("a1")
    client = cognitive_client(az, retry_backoff_factor=0.01)
    for _ in range(5):  # 3 in the burst, then 1 per second: the SDK sleeps Retry-After and tries again
        assert client.accounts.get("rg", "a1").name == "a1"
    assert az.calls.count(service="arm", status=429) >= 1
    assert az.calls.count(service="arm", route="accounts.get", status=200) == 5


def test_sdk_without_retries_sees_the_429(local_azure_factory):
    az = local_azure_factory(None, arm_throttling=SMALL)
    client = arm_auth_client(az, retry_total=0)
    scope = f"/subscriptions/{az.subscription_id}"
    for _ in range(3):
        list(client.role_assignments.list_for_scope(scope))
    with pytest.raises(HttpResponseError) as caught:
        list(client.role_assignments.list_for_scope(scope))
    assert caught.value.status_code == 429


def test_scenario_switch(local_azure_factory):
    az = local_azure_factory({"settings": {"arm_throttling": True}})
    answer = requests.get(f"{az.arm_url}/subscriptions/{az.subscription_id}/resourceGroups/rg/providers/"
                          "Microsoft.CognitiveServices/accounts/x?api-version=2024-10-01",
                          headers={"Authorization": "Bearer t"}, verify=az.ca_path, timeout=10)
    assert answer.status_code == 404
    assert answer.headers["x-ms-ratelimit-remaining-subscription-reads"] == "249"


def test_resource_graph_quota_headers(local_azure_factory):
    az: LocalAzure = local_azure_factory(None, arm_throttling=SMALL)
    body = {"query": "resources | project id"}
    answers = [requests.post(f"{az.arm_url}/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01",
                             json=body, headers={"Authorization": "Bearer t"}, verify=az.ca_path, timeout=10)
               for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert [a.headers["x-ms-user-quota-remaining"] for a in answers] == ["1", "0", "0"]
    assert answers[2].headers["Retry-After"] == "60"
    assert answers[0].headers["x-ms-user-quota-resets-after"] == "00:01:00"
    # Resource Graph has its own quota: no subscription bucket was touched.
    assert "x-ms-ratelimit-remaining-subscription-reads" not in answers[0].headers
