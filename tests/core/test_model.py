"""Diagnosis.fast builds exactly the value the dataclass constructor builds (the engine's hot path uses it)."""

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.model import Diagnosis, FixStep

text = st.none() | st.text(max_size=30)
fields = st.fixed_dictionaries({
    "cause": st.text(max_size=20), "role_fixable": st.booleans(), "confidence": st.sampled_from(["high", "low"]),
    "summary": st.text(max_size=40), "role_name": text, "role_id": text, "scope": text, "surface": text,
    "evidence": st.tuples(st.text(max_size=10)), "fix_command": text,
    "fix_steps": st.tuples(st.builds(FixStep, st.text(max_size=10), text)),
})


@given(fields)
def test_fast_equals_the_constructor(values):
    slow, fast = Diagnosis(**values), Diagnosis.fast(**values)
    assert fast == slow and hash(fast) == hash(slow) and repr(fast) == repr(slow)
    assert dataclasses.asdict(fast) == dataclasses.asdict(slow)
    assert fast.to_json() == slow.to_json()


def test_fast_values_stay_frozen():
    value = Diagnosis.fast(cause="unknown", role_fixable=False, confidence="low", summary="", role_name=None,
                           role_id=None, scope=None, surface=None, evidence=(), fix_command=None, fix_steps=())
    with pytest.raises(dataclasses.FrozenInstanceError):
        value.cause = "missing_data_role"  # type: ignore[misc]
