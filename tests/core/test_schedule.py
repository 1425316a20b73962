"""The timer schedule as the Functions host reads it (shared/core/schedule.py): NCRONTAB field by field, and the
TimeSpan form. Examples are those of the Functions timer-trigger docs; the properties generate expressions field by
field."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core.schedule import SIX_FIELDS, Field, schedule_problem

DOCUMENTED = ["0 5 * * * *", "0 * 5 * * *", "5-7 * * * * *", "5,8,10 * * * * *", "0 */5 * * * *", "0 0 * * * *",
              "0 0 */2 * * *", "0 0 9-17 * * *", "0 30 9 * * *", "0 30 9 * * 1-5", "0 30 9 * Jan Mon"]
TIMESPANS = ["01:00:00", "00:01:00", "25:00:00:00", "1.00:00:00", "00:05:00"]


@pytest.mark.parametrize("value", DOCUMENTED + TIMESPANS + [
    "*/15 * * * * *", "0 0 0 1 January,July Sunday", "0 0 0 1-31/2 * *", "0 0 0 * * Sat-Sun", " 0 */5 * * * * ",
    "*/5 * * * *",  # five fields: the host reads them without seconds
    "0 0 12 * * MONDAY", "0 0 0 * Dec *", "0 0 10-2 * * *",  # NCrontab reads a reversed range in order
])
def test_what_the_host_accepts_passes(value):
    assert schedule_problem(value) is None


@pytest.mark.parametrize("value, field", [
    ("0 60 * * * *", "minute"),  # the example: it passed the old check, the host refuses it
    ("60 * * * * *", "second"), ("0 0 24 * * *", "hour"), ("0 0 0 0 * *", "day"), ("0 0 0 32 * *", "day"),
    ("0 0 0 * 13 *", "month"), ("0 0 0 * 0 *", "month"), ("0 0 0 * * 7", "day-of-week"),
    ("0 0 0 * Foo *", "month"), ("0 0 0 * * Funday", "day-of-week"), ("0 0 5-25 * * *", "hour"),
    ("0 1,,2 * * * *", "minute"), ("0 */x * * * *", "minute"), ("0 5- * * * *", "minute"), ("0 -5 * * * *", "minute"),
    ("0 1-2-3 * * * *", "minute"), ("x * * * * *", "second"), ("0 0 0 * * 1/", "day-of-week"),
])
def test_an_out_of_range_or_unreadable_field_is_named(value, field):
    problem = schedule_problem(value)
    assert problem is not None and f"the {field} field" in problem


@pytest.mark.parametrize("value, says", [
    ("", "empty"), ("   ", "empty"), ("* * * *", "4 field(s)"), ("0 */5 * * * * *", "7 field(s)"),
    ("00:60:00", "minutes"), ("00:00:60", "seconds"), ("24:30:00", "hours"), ("1.24:00:00", "hours"),
    ("00:00:00", "zero"), ("5:5:5", "hh:mm:ss"),
    ("0\t*/5 * * * *", "minute field"),  # the host splits on spaces only: five fields, the first unreadable
])
def test_other_bad_values_say_what_is_wrong(value, says):
    problem = schedule_problem(value)
    assert problem is not None and says in problem and "NCRONTAB" in problem


def value_of(field: Field) -> st.SearchStrategy[str]:
    numbers = st.integers(field.low, field.high).map(str)
    if not field.names:
        return numbers
    named = st.tuples(st.sampled_from(field.names), st.integers(3, 12), st.booleans()).map(
        lambda t: (t[0][: t[1]].upper() if t[2] else t[0][: t[1]].lower()))
    return numbers | named


def element_of(field: Field) -> st.SearchStrategy[str]:
    single = value_of(field)
    ranged = st.tuples(value_of(field), value_of(field)).map("-".join)
    base = st.just("*") | single | ranged
    step = st.none() | st.integers(1, 100)
    return st.tuples(base, step).map(lambda t: t[0] if t[1] is None else f"{t[0]}/{t[1]}")


def field_expression(field: Field) -> st.SearchStrategy[str]:
    return st.lists(element_of(field), min_size=1, max_size=3).map(",".join)


valid_expressions = st.tuples(*(field_expression(f) for f in SIX_FIELDS)).map(" ".join)


@settings(max_examples=200, deadline=None)
@given(expression=valid_expressions)
def test_expressions_generated_field_by_field_are_accepted(expression):
    assert schedule_problem(expression) is None, expression


def out_of_range(field: Field) -> st.SearchStrategy[str]:
    above = st.integers(field.high + 1, field.high + 1000)
    below = st.integers(0, field.low - 1) if field.low > 0 else st.nothing()
    return (above | below).map(str)


@st.composite
def one_field_out_of_range(draw: st.DrawFn) -> tuple[str, str]:
    tokens = [draw(field_expression(f)) for f in SIX_FIELDS]
    index = draw(st.integers(0, len(SIX_FIELDS) - 1))
    field = SIX_FIELDS[index]
    bad = draw(out_of_range(field))
    form = draw(st.sampled_from(["{bad}", "{bad}/2", "{ok}-{bad}", "{bad}-{ok}", "{ok},{bad}", "{bad},{ok}"]))
    tokens[index] = form.format(bad=bad, ok=field.low)
    return " ".join(tokens), field.name


@settings(max_examples=200, deadline=None)
@given(case=one_field_out_of_range())
def test_an_out_of_range_field_is_refused_with_a_message_naming_it(case):
    expression, name = case
    problem = schedule_problem(expression)
    assert problem is not None, expression
    assert f"the {name} field" in problem


@settings(max_examples=200, deadline=None)
@given(text=st.text(alphabet=st.sampled_from(list("0123456789*/-,: .JanMonxyz\t")), max_size=30))
def test_any_text_is_judged_without_raising(text):
    problem = schedule_problem(text)
    assert problem is None or problem.endswith("(App Service and Premium plans only)")
