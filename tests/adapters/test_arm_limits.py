"""ARM throttling seen from the evidence provider: the run's client-side limiter (shared/adapters/arm_limiter.py),
azure-core's RetryPolicy honouring Retry-After, and what still fails becoming an evidence error. Real SDK clients
against the throttling stand-in."""

from __future__ import annotations

import pytest

from localazure.throttle import BucketSize, ThrottleLimits
from shared.adapters.arm_limiter import ArmLimiter, Rate, TokenBucket, _target
from shared.core import roles
from tests.adapters.test_evidence import make_clients

OPENAI_USER = roles.COGNITIVE_SERVICES_OPENAI_USER.guid


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0
        self.slept: list[float] = []

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.t += seconds


def test_bucket_lets_the_burst_through_then_paces_at_the_refill_rate():
    time = FakeTime()
    bucket = TokenBucket(Rate(250, 25), now=time.now, sleep=time.sleep)
    for _ in range(250):
        assert bucket.acquire() == 0
    waits = [bucket.acquire() for _ in range(50)]
    assert waits == pytest.approx([0.04] * 50)
    assert time.t == pytest.approx(2.0)  # 50 reads beyond the burst take 50 / 25 s


def test_reservations_wait_in_order_without_sleeping_under_the_lock():
    time = FakeTime()
    bucket = TokenBucket(Rate(1, 10), now=time.now, sleep=lambda s: time.slept.append(s))  # the clock stands still
    bucket.acquire()
    assert [bucket.acquire(), bucket.acquire(), bucket.acquire()] == pytest.approx([0.1, 0.2, 0.3])


def test_arm_says_how_many_are_left():
    time = FakeTime()
    bucket = TokenBucket(Rate(250, 25), now=time.now, sleep=time.sleep)
    bucket.observe_remaining(0)
    assert bucket.acquire() == pytest.approx(0.04)


def test_zero_rate_is_no_limit():
    bucket = TokenBucket(Rate(1, 0))
    assert [bucket.acquire() for _ in range(1000)] == [0.0] * 1000


def test_targets():
    assert _target("https://m/subscriptions/S/providers/x?api-version=1", "GET") == ("S", "reads")
    assert _target("https://m/subscriptions/S/x", "DELETE") == ("S", "writes")
    assert _target("https://m/providers/Microsoft.Authorization/roleAssignments", "GET") == ("tenant", "reads")
    assert _target("https://m/providers/Microsoft.ResourceGraph/resources?api-version=2021-03-01", "POST") is None
    limiter = ArmLimiter(Rate(2, 1), Rate(1, 1))
    assert limiter.bucket("s", "reads") is limiter.bucket("S", "reads")


# ---- against the throttling stand-in -------------------------------------------------------------------------

SMALL = ThrottleLimits(reads=BucketSize(4, 4), writes=BucketSize(4, 4), deletes=BucketSize(4, 4))


def _world(local_azure_factory, principals: int = 6):
    az = local_azure_factory(None, arm_throttling=SMALL)
    account = az.add_account("acct")
    oids = [az.add_principal().object_id for _ in range(principals)]
    for oid in oids[::2]:
        az.add_assignment(oid, OPENAI_USER, account)
    return az, account, oids


@pytest.mark.slow
def test_without_the_limiter_throttled_reads_are_retried_after_retry_after(local_azure_factory):
    az, account, oids = _world(local_azure_factory)
    clients = make_clients(az, arm_reads_per_second=0)
    evidence = clients.evidence.gather_evidence({(oid, account) for oid in oids})
    assert az.calls.count(service="arm", status=429) >= 1  # ARM throttled the burst...
    assert clients.evidence.failures() == ()  # ...and every read was retried after Retry-After, not recorded
    assert all(e.complete and e.assignments is not None for e in evidence.values())
    held = {oid for (oid, _), e in evidence.items() if e.assignments}
    assert held == set(oids[::2])


@pytest.mark.slow
def test_a_limiter_within_arms_rate_draws_no_429(local_azure_factory):
    # A little inside ARM's bucket: the stand-in's bucket starts when the first request arrives, after the new
    # connections' TLS handshakes, so pacing at exactly its sizes can arrive some milliseconds early (the SDK then
    # waits Retry-After, as the test above shows).
    az, account, oids = _world(local_azure_factory)
    clients = make_clients(az, arm_read_burst=3, arm_reads_per_second=3.5)
    evidence = clients.evidence.gather_evidence({(oid, account) for oid in oids})
    assert az.calls.count(service="arm", status=429) == 0
    assert az.calls.count(service="arm") == len(oids) + 1
    assert clients.config.arm_limiter.waited_seconds > 0
    assert clients.evidence.failures() == () and all(e.complete for e in evidence.values())


@pytest.mark.slow
def test_a_read_still_throttled_after_the_retries_is_an_evidence_error(local_azure_factory):
    az, account, oids = _world(local_azure_factory)
    clients = make_clients(az, {"retry_total": 0}, arm_reads_per_second=0)
    evidence = clients.evidence.gather_evidence({(oid, account) for oid in oids})
    failures = clients.evidence.failures()
    assert failures and all("429" in f or "TooManyRequests" in f for f in failures)
    degraded = [e for e in evidence.values() if not e.complete]
    assert degraded and all(e.assignments is None for e in degraded if e.failed[0].startswith("role assign"))


def test_a_429_empties_the_bucket_so_the_other_callers_wait_too():
    from types import SimpleNamespace

    time = FakeTime()
    limiter = ArmLimiter(Rate(250, 25), Rate(200, 10), now=time.now, sleep=time.sleep)
    policy = limiter.policy()
    request = SimpleNamespace(http_request=SimpleNamespace(url="https://m/subscriptions/S/x", method="GET"))
    response = SimpleNamespace(http_response=SimpleNamespace(status_code=429, headers={"Retry-After": "1"}))
    policy.on_request(request)
    policy.on_response(request, response)
    assert limiter.bucket("S", "reads").acquire() == pytest.approx(0.04)
