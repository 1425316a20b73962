"""A timer schedule as the Azure Functions host reads it: an NCRONTAB expression or a TimeSpan.

The host (azure-webjobs-sdk-extensions `TimerSchedule.Create`) tries the NCrontab library first: five fields
separated by spaces are read without seconds, any other count must be six, `{second} {minute} {hour} {day} {month}
{day-of-week}`. Failing that, it tries a TimeSpan, which the Functions docs allow on App Service and Premium plans.
Each NCRONTAB field is `*`, a value, a range `a-b`, either followed by a step `/n`, or a comma list of those;
months and weekdays may be named by any leading part of their English name, case-insensitive ("Jan", "mon",
"September"). NCrontab's own leniencies are kept, since the host accepts them: a reversed range is read in order
and a step below 1 counts as 1.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

INT32_MAX = 2**31 - 1
EXAMPLE = "'0 */5 * * * *'"
EXPECTED = ("a 6-field NCRONTAB expression {second} {minute} {hour} {day} {month} {day-of-week}, e.g. " + EXAMPLE +
            ", or a TimeSpan hh:mm:ss (App Service and Premium plans only)")

MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday")


@dataclass(frozen=True)
class Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()

    @property
    def accepts(self) -> str:
        named = f", or {self.names[0][:3]}-{self.names[-1][:3]}" if self.names else ""
        return f"{self.low}-{self.high}{named}"


SECOND, MINUTE, HOUR = Field("second", 0, 59), Field("minute", 0, 59), Field("hour", 0, 23)
DAY, MONTH, WEEKDAY = Field("day", 1, 31), Field("month", 1, 12, MONTHS), Field("day-of-week", 0, 6, WEEKDAYS)
SIX_FIELDS = (SECOND, MINUTE, HOUR, DAY, MONTH, WEEKDAY)
FIVE_FIELDS = SIX_FIELDS[1:]

_DIGITS = re.compile(r"[0-9]+")
_STEP = re.compile(r"[+-]?[0-9]+")
# The TimeSpan forms of the Functions docs: hh:mm:ss (hh below 24), dd:hh:mm (first part 24 or more),
# d.hh:mm:ss and d:hh:mm:ss.
_TIMESPAN = re.compile(r"(?:(?P<days>[0-9]+)[.:])?(?P<a>[0-9]+):(?P<b>[0-9]{2}):(?P<c>[0-9]{2})")


class _Bad(ValueError):
    pass


def schedule_problem(text: str) -> str | None:
    """None when the host accepts the schedule; otherwise what is wrong, naming the field, then the expected form."""
    value = text.strip(" ")
    if not value:
        return f"empty; expected {EXPECTED}"
    tokens = [t for t in value.split(" ") if t]
    if len(tokens) == 1 and ":" in value:
        why = _timespan_problem(value)
        return f"TimeSpan {value!r}: {why}; expected {EXPECTED}" if why else None
    fields = FIVE_FIELDS if len(tokens) == 5 else SIX_FIELDS
    if len(tokens) != len(fields):
        return f"{len(tokens)} field(s) in {value!r}; expected {EXPECTED}"
    for field, token in zip(fields, tokens, strict=True):
        try:
            _check_field(field, token)
        except _Bad as exc:
            return f"the {field.name} field {token!r}: {exc} ({field.name} takes {field.accepts}); expected {EXPECTED}"
    return None


def _check_field(field: Field, token: str) -> None:
    # NCrontab reads a list only when the first comma is not the first character.
    elements = token.split(",") if token.find(",") > 0 else [token]
    for element in elements:
        if not element:
            raise _Bad("an empty list element")
        _check_element(field, element)


def _check_element(field: Field, element: str) -> None:
    base, step = element, None
    if element.find("/") > 0:
        base, step = element.split("/", 1)
        if not _STEP.fullmatch(step) or abs(int(step)) > INT32_MAX:
            raise _Bad(f"the step {step!r} is not a whole number")
    if base == "*":
        return
    if base.find("-") > 0:
        first, last = base.split("-", 1)
        low, high = sorted((_value(field, first), _value(field, last)))
        _in_range(field, low)
        _in_range(field, high)
        return
    _in_range(field, _value(field, base))


def _value(field: Field, text: str) -> int:
    if not text:
        raise _Bad("a value is missing")
    if text[0].isdigit():
        if not _DIGITS.fullmatch(text) or int(text) > INT32_MAX:
            raise _Bad(f"{text!r} is not a number")
        return int(text)
    folded = text.lower()
    for index, name in enumerate(field.names):
        if name.lower().startswith(folded):
            return field.low + index
    raise _Bad(f"{text!r} is not a {field.name}" + (" name" if field.names else " number"))


def _in_range(field: Field, value: int) -> None:
    if not field.low <= value <= field.high:
        raise _Bad(f"{value} is out of range")


def _timespan_problem(value: str) -> str | None:
    match = _TIMESPAN.fullmatch(value)
    if not match:
        return "not in the form hh:mm:ss"
    a, b, c = int(match["a"]), int(match["b"]), int(match["c"])
    if match["days"] is not None or a < 24:
        hours, minutes, seconds = a, b, c  # d.hh:mm:ss, d:hh:mm:ss or hh:mm:ss
    else:
        hours, minutes, seconds = b, c, 0  # dd:hh:mm
    if hours > 23:
        return "hours must be 00-23"
    if minutes > 59:
        return "minutes must be 00-59"
    if seconds > 59:
        return "seconds must be 00-59"
    if not (int(match["days"] or 0) or a or b or c):
        return "an interval of zero would never stop firing"
    return None
