"""The incident id a repeat scan finds a signal's incident by, remembered per process (signals.text_incident_id),
is always the one the full text-only triage gives: a signal the cache finds is settled exactly when the full path
would settle it."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.core.model import FailureSignal
from shared.engine import signals as sig
from tests.core.test_diagnose_properties import BASE, signals
from tests.engine.common import ACCOUNT, ORDERS

TIMES = st.integers(-90, 90).map(lambda m: BASE + timedelta(minutes=m))
COUNTS = st.integers(0, 50)
TEXT_FIELDS = ["status", "code", "message", "object_id", "auth", "endpoint", "route", "operation", "resource_id",
               "principal_type"]
FIXTURES_ARE_READ_ONLY = [HealthCheck.function_scoped_fixture, HealthCheck.too_slow]


def _full(rt, signal: FailureSignal, now) -> str:
    return sig.triage_signal(rt, signal, None, now).incident_id


@settings(max_examples=400, deadline=None, suppress_health_check=FIXTURES_ARE_READ_ONLY)
@given(signal=signals, other=signals, taken=st.sets(st.sampled_from(TEXT_FIELDS), min_size=1),
       first=st.none() | TIMES, last=st.none() | TIMES, count=COUNTS, overlap=COUNTS,
       other_first=st.none() | TIMES, other_count=COUNTS, other_overlap=COUNTS, now=TIMES)
def test_the_remembered_incident_id_is_the_full_triages(make_runtime, monkeypatch, signal, other, taken, first,
                                                        last, count, overlap, other_first, other_count,
                                                        other_overlap, now):
    monkeypatch.setattr(sig, "TEXT_IDS", {})
    rt = make_runtime()
    seen = replace(signal, first_seen=first, last_seen=last, count=count, overlap_count=overlap)
    assert sig.text_incident_id(rt, seen, now) == _full(rt, seen, now)  # found cold
    # The same group read again with other rows in the window: found from what the first read left.
    again = replace(seen, first_seen=other_first, count=other_count, overlap_count=other_overlap)
    assert sig.text_incident_id(rt, again, now) == _full(rt, again, now)
    assert sig.text_incident_id(rt, seen, now) == _full(rt, seen, now)
    # Another group, the same but in some of the fields a diagnosis reads: never answered from the first.
    different = replace(seen, **{name: getattr(other, name) for name in taken})
    assert sig.text_incident_id(rt, different, now) == _full(rt, different, now)


def test_what_is_remembered_is_bounded_and_past_the_bound_still_right(make_runtime, monkeypatch):
    monkeypatch.setattr(sig, "TEXT_IDS", {})
    monkeypatch.setattr(sig, "TEXT_IDS_KEPT", 3)
    rt = make_runtime()
    texts = [FailureSignal(status=401, code="PermissionDenied", object_id=ORDERS, auth="entra", resource_id=ACCOUNT,
                           message=message, count=1, overlap_count=1, last_seen=BASE)
             for message in ("Access denied due to Virtual Network/Firewall rules.", "Key based authentication is "
                             "disabled for this resource.", "", "Token expired", "Principal does not have access")]
    for signal in texts * 2:
        assert sig.text_incident_id(rt, signal, BASE) == _full(rt, signal, BASE)
    assert len(sig.TEXT_IDS) == 3


def test_a_window_or_a_failure_time_of_its_own_is_never_answered_from_another(make_runtime, monkeypatch):
    monkeypatch.setattr(sig, "TEXT_IDS", {})
    signal = FailureSignal(status=403, object_id=ORDERS, auth="entra", resource_id=ACCOUNT, count=2,
                           overlap_count=2, last_seen=BASE)
    short, long = make_runtime(TRIAGE_PROPAGATION_WINDOW_SECONDS="60"), make_runtime()
    sig.text_incident_id(short, signal, BASE)
    sig.text_incident_id(long, signal, BASE)
    sig.text_incident_id(long, signal, BASE - timedelta(hours=1))  # judged at now, before the failures
    assert len(sig.TEXT_IDS) == 3
