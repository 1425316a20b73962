"""Per-shape diagnosis templates (shared/core/diagnose.py) give exactly what the full path gives (hypothesis).

Texts of the bench's corpora with every id new, callers new, named in the text or absent, and the evidence varied
(principal type and name, the account's settings, assignment ages, the clock) are diagnosed with the templates on,
each case several times so later ones are filled from a template, and with the templates off: the same diagnoses.
So are texts padded so that an id straddles where the first evidence line's message is cut (the template fills the
id's head), and such a key is templated.
"""

import random
import re
import uuid
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.diagnose_speed import _new_ids, _with_caller, load_cases
from shared.core import diagnose as diagnose_module
from shared.core import messages
from shared.core.diagnose import diagnose
from shared.core.model import Evidence, FailureSignal, ResourceEvidence
from tests.core.test_diagnose_shapes import clear_caches

CASES = load_cases()
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
USER = re.compile(r"[\w.-]+@[\w.-]+")


@contextmanager
def templates(enabled):
    diagnose_module.use_templates(enabled)
    clear_caches()
    try:
        yield
    finally:
        diagnose_module.use_templates(True)
        clear_caches()


def new_guid(rng):
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def varied(case, rng, caller_kind, evidence_kind, clock):
    """The case with new ids, a caller of the kind drawn, and its evidence and clock varied."""
    signal, evidence, now = _with_caller(case, new_guid(rng))
    if signal.message:
        message = _new_ids(signal.message, rng)
        if rng.random() < 0.5:
            message += f"\nRequest ID: {new_guid(rng)}"
        signal = replace(signal, message=message)
    named = [g.lower() for g in GUID.findall(signal.message or "")]
    if caller_kind == "named" and named:
        signal = replace(signal, object_id=rng.choice(named), auth=signal.auth or "entra")
    elif caller_kind == "none":
        signal = replace(signal, object_id=None)
    elif caller_kind == "digits":
        signal = replace(signal, object_id=f"{rng.randrange(10**8):08d}-1234-4567-8901-{rng.randrange(10**12):012d}")
    users = USER.findall(signal.message or "")
    if evidence_kind == "none":
        evidence = None
    elif evidence_kind == "user named" and users:
        evidence = replace(evidence or Evidence(), principal_name=rng.choice(users), principal_type="User")
    elif evidence_kind == "other user":
        evidence = replace(evidence or Evidence(), principal_name="someone@contoso.com", principal_type="User")
    elif evidence_kind == "settings" and evidence is not None:
        resource = evidence.resource or ResourceEvidence(resource_id=signal.resource_id or "x")
        evidence = replace(evidence, resource=replace(
            resource, disable_local_auth=rng.choice([True, False, None]),
            public_network_access=rng.choice(["Enabled", "Disabled", None]), kind=rng.choice(["AIServices", "OpenAI",
                                                                                              None])))
    if clock == "none":
        now = None
    elif clock == "later" and now is not None:
        now = now + timedelta(minutes=rng.choice([1, 9, 11, 600]))
    return signal, evidence, now


@settings(max_examples=150, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(picks=st.lists(st.integers(0, len(CASES) - 1), min_size=1, max_size=5), seed=st.integers(0, 2**32),
       kinds=st.lists(st.tuples(st.sampled_from(["new", "named", "none", "digits"]),
                                st.sampled_from(["as is", "none", "user named", "other user", "settings"]),
                                st.sampled_from(["as is", "none", "later"])), min_size=4, max_size=4))
def test_templated_diagnoses_are_the_full_path_diagnoses(picks, seed, kinds):
    rng = random.Random(seed)
    # Each case with each variation twice (the second filled from the template the first built, where the draws
    # left the key as it was), in an order that mixes them.
    cases = [varied(CASES[index], rng, *kind) for index in picks for kind in kinds for _ in range(2)]
    rng.shuffle(cases)
    with templates(False):
        expected = [diagnose(s, e, now=now) for s, e, now in cases]
    with templates(True):
        assert [diagnose(s, e, now=now) for s, e, now in cases] == expected


def test_the_templates_are_used_and_can_be_turned_off():
    rng = random.Random(3)
    cases = [varied(CASES[n % len(CASES)], rng, "new", "as is", "as is") for n in range(3 * len(CASES))]
    fills = []
    real_fill = diagnose_module._Template.fill

    def counted(template, values):
        fills.append(1)
        return real_fill(template, values)

    diagnose_module._Template.fill = counted
    try:
        with templates(True):
            on = [diagnose(s, e, now=now) for s, e, now in cases]
        used = len(fills)
        with templates(False):
            off = [diagnose(s, e, now=now) for s, e, now in cases]
    finally:
        diagnose_module._Template.fill = real_fill
    assert on == off
    assert used > len(cases) // 2  # most texts name ids: filled from a template (each checked once when built)
    assert len(fills) == used  # off: never


def test_the_caller_named_by_the_text_is_told_from_another_through_one_template():
    caller, other = "5d4c3b2a-1908-4776-a655-443322110f04", "11111111-1908-4776-a655-443322110f04"
    text = ("The principal `{}` lacks the required data action `Microsoft.CognitiveServices/accounts/OpenAI/"
            "deployments/chat/completions/action`. Request ID: {}")
    signals = [FailureSignal(status=401, code="PermissionDenied", message=text.format(named, request), object_id=caller,
                             auth="entra")
               for named, request in ((other, uuid.uuid4()), (caller, uuid.uuid4()), (other, uuid.uuid4()),
                                      (caller, uuid.uuid4()))]
    with templates(False):
        expected = [diagnose(s) for s in signals]
    with templates(True):
        assert [diagnose(s) for s in signals] == expected
    assert [d.cause for d in expected] == ["other_principal_denied", "missing_data_role"] * 2


TEXT_CASES = [case for case in CASES if case[0].message]


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(pick=st.integers(0, len(TEXT_CASES) - 1), seed=st.integers(0, 2**32), pad=st.integers(0, 60),
       upper=st.booleans(), second=st.booleans())
def test_ids_the_message_cut_goes_through_are_filled_as_the_full_path_cuts_them(pick, seed, pad, upper, second):
    """A text padded so that an id (or two, alike in their heads' placeholders) straddles where the first
    evidence line's message is cut: the template fills the id's head, or the key is not templated."""
    rng = random.Random(seed)
    signal, evidence, now = TEXT_CASES[pick]
    cases = []
    for _ in range(3):
        request = new_guid(rng).upper() if upper else new_guid(rng)
        ids = f"{request} {new_guid(rng)}" if second else request
        text = _new_ids(signal.message, rng).replace("\n", " ")[:messages.DISPLAY - 20 - pad]
        cases.append((replace(signal, message=f"{text}{' ' * pad} Request ID: {ids}"), evidence, now))
    with templates(True):
        templated = [diagnose(s, e, now=n) for s, e, n in cases]
    with templates(False):
        assert templated == [diagnose(s, e, now=n) for s, e, n in cases]


def test_a_key_whose_ids_the_cut_goes_through_is_templated():
    rng = random.Random(5)
    head = "Access denied due to invalid subscription key or wrong API endpoint. "
    ids = [new_guid(rng) for _ in range(4)]
    texts = [(head * 10)[:messages.DISPLAY - 33] + f" Request ID: {request}" for request in ids]
    cases = [(FailureSignal(status=401, message=text, auth="key"), None, None) for text in texts]
    with templates(False):
        expected = [diagnose(s, e, now=n) for s, e, n in cases]
    assert expected[0].evidence[0].split(" [matched")[0].endswith(": " + ids[0][:20])  # the id cut after 20
    calls = []
    full_path = diagnose_module._diagnose
    with templates(True):
        diagnose_module._diagnose = lambda *args: calls.append(1) or full_path(*args)
        try:
            assert [diagnose(s, e, now=n) for s, e, n in cases] == expected
        finally:
            diagnose_module._diagnose = full_path
    assert len(calls) == 2  # the first signal and its template built; the other three filled from it
