"""Ids in error texts, masked so that texts differing only in their ids share one analysis (a "shape").

Most real error texts name ids that change from one failure to the next: the caller's object id, request and
correlation ids, tenant, subscription and app ids, timestamps, numeric suffixes of user and project names. The
text analysis (`shared.core.messages`) never decides anything from an id's value, only from its place among the
words, so the text with every id replaced by a placeholder of the same length and character classes analyses the
same; the ids are put back into whatever the analysis pulled out of the text (`unmask`).

What is masked, each found with one scan anchored on a hyphen (a literal the regex engine finds fast) and bounded by
characters that are not letters or digits on both sides:
- GUIDs, all lower-case or all upper-case (mixed case is left alone): placeholders keep the case and, with it,
  whether the id contains letters (a GUID of digits only gets a placeholder of digits only);
- ISO timestamps (`2025-06-02T12:00:00`, `2025-06-02 12:00:00,123`; a fraction only when no `(` follows);
- runs of 6 to 20 digits after a hyphen (`User1-60548584@...`, `project-56085343`). Numbers standing alone (a
  documentation link's id, a line number) are left in the shape: finding them costs a scan of every character.
Texts longer than the analysis reads are not masked, nor HTML pages (where a "403" anywhere in the text decides)
whose ids hold a "403" or that name so many ids that a placeholder would.
Placeholders are the same length as the ids they stand for, so anything cut at a fixed length is cut at the same
place, and unmasking never moves a character.
"""

from __future__ import annotations

import re

from shared.core import messages

_ANCHOR = re.compile(r"-(?:(?P<guid>[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
                     r"|(?P<time>[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"
                     r"(?:[.,][0-9]{1,7}(?![0-9])(?!\s*\())?Z?)"
                     r"|(?P<number>[0-9]{6,20}))")
_HEX = frozenset("0123456789abcdefABCDEF")
_DIGITS = frozenset("0123456789")
_DIGIT = re.compile(r"\d")
_LETTERS_AND_DIGITS = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
# Where the analysis reads the first digits of what follows: `"code": 403...` (JSON, maybe escaped), and the phrases
# that end in digits ("Azure Search Error: 403").
_READS_DIGITS_AFTER = re.compile(r"(?:code\W{0,8}|" + "|".join(
    re.escape(head) for head in messages.PHRASE_HEADS_BEFORE_DIGITS) + ")$")
_DIGITS_READER_WORDS = ("code", *(head.split()[-1] for head in messages.PHRASE_HEADS_BEFORE_DIGITS))
_DIGITS_READER_REACH = max(len("code") + 8, *(len(head) for head in messages.PHRASE_HEADS_BEFORE_DIGITS))
MAX_ID_LENGTH = 36  # a GUID; timestamps are shorter and numbers are at most 20 digits
MAX_IDS = 7**3  # a text naming more ids than this is analysed as it is
# An HTML page is a 403 when "403" is anywhere in it: one is masked only when no id holds a "403" and no placeholder
# does (index 199 is "403" in digits 0-6; every placeholder before it holds none, and an id's bounds are not letters
# or digits, so none can make one with its neighbours).
_HTML_DECIDES = "403"
_HTML_MAX_IDS = 4 * 49 + 3
MAX_MASKED_TEXT = 20_000  # messages.MAX_TEXT: beyond it the analysis cuts the text, maybe through an id
Ids = tuple[tuple[str, str], ...]  # (placeholder as it may appear in what the analysis pulled out, the original)


def _digits_read(text: str, start: int) -> bool:
    """Whether the analysis reads the first digits of what starts at `start`."""
    before = text[max(0, start - _DIGITS_READER_REACH):start].lower()
    for word in _DIGITS_READER_WORDS:
        if word in before:
            return _READS_DIGITS_AFTER.search(before) is not None
    return False


def _base7(index: int, width: int) -> str:
    """The index in digits 0-6: no placeholder holds a 7 but where a number's placeholder starts, so none is ever
    a piece of another (and putting ids back one after another is exact)."""
    digits = []
    for _ in range(width):
        index, digit = divmod(index, 7)
        digits.append(str(digit))
    return "".join(reversed(digits))


_INDEX_8 = tuple(_base7(index, 8) for index in range(MAX_IDS))
_INDEX_3 = tuple(_base7(index, 3) for index in range(MAX_IDS))


def _guid_placeholder(guid: str, index: int) -> str | None:
    # A GUID holds hex digits and hyphens only: comparing it with its ASCII-folded forms answers islower() and
    # isupper() without their per-character Unicode look-ups.
    folded = guid.lower()
    if guid == folded:
        if guid != guid.upper():
            return "ffffffff-ffff-ffff-ffff-ffff" + _INDEX_8[index]
        return "99999999-9999-9999-9999-9999" + _INDEX_8[index]  # digits only
    if guid == guid.upper():
        return "FFFFFFFF-FFFF-FFFF-FFFF-FFFF" + _INDEX_8[index]
    return None  # mixed case: left in the shape


# The same scan with a GUID's checks in the pattern: its bounds, its case (digits only, lower, upper; mixed case
# matches none of the three) and whether a phrase reads its first digits are zero-width groups after the
# GUID's own (the structure matched is the one `_ANCHOR` matches, so the scan consumes the same text and finds
# the same candidates): a GUID the pattern accepts is one the checks in Python accept, and the group that
# matched (`lastindex`) tells which placeholder it gets. Timestamps and numbers are checked in Python as before.
_AN = "[0-9A-Za-z]"
_CODE_READS = (  # `_READS_DIGITS_AFTER` found before a GUID's first digit ("$" also matches before a last "\n")
    "".join(f"(?<![cC][oO][dD][eE]{chr(92) + 'W'}{{{k}}}[0-9].{{35}})" for k in range(9))
    + r"(?<![cC][oO][dD][eE]\W{8}\n[0-9].{35})"
    + r"(?<![aA][zZ][uU][rR][eE] [sS][eE][aA][rR][cC][hH] [eE][rR][rR][oO][rR]: [0-9].{35})")


def _guid_case(name: str, hex_digit: str) -> str:
    guid = f"{hex_digit}{{8}}-{hex_digit}{{4}}-{hex_digit}{{4}}-{hex_digit}{{4}}-{hex_digit}{{12}}"
    return f"(?<=(?<!{_AN})(?P<{name}>{guid})){_CODE_READS}"


_SCAN = re.compile(
    r"-(?:[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    f"(?:(?!{_AN})(?:{_guid_case('digits', '[0-9]')}|{_guid_case('lower', '[0-9a-f]')}"
    f"|{_guid_case('upper', '[0-9A-F]')}))?"
    r"|(?P<time>[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"
    r"(?:[.,][0-9]{1,7}(?![0-9])(?!\s*\())?Z?)"
    r"|(?P<number>[0-9]{6,20}))")
_DIGITS_GUID, _LOWER_GUID, _UPPER_GUID, _TIME = 1, 2, 3, 4  # the groups' numbers, as `lastindex` gives them
_GUID_PLACEHOLDERS = (None, tuple("99999999-9999-9999-9999-9999" + i for i in _INDEX_8),
                      tuple("ffffffff-ffff-ffff-ffff-ffff" + i for i in _INDEX_8),
                      tuple("FFFFFFFF-FFFF-FFFF-FFFF-FFFF" + i for i in _INDEX_8))
_FOLDED_UPPER = tuple(p.lower() for p in _GUID_PLACEHOLDERS[_UPPER_GUID])  # type: ignore[union-attr]


def mask(text: str) -> tuple[str, Ids]:
    """(the text with its ids replaced, the placeholders and ids to put back); no ids: (text, ())."""
    if "-" not in text or len(text) > MAX_MASKED_TEXT:
        return text, ()
    shape = ""  # the text up to `done`, ids masked
    ids: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    done = 0
    for found in _SCAN.finditer(text):
        kind = found.lastindex
        if kind is None:
            continue  # a GUID the checks refused
        if kind < _TIME:
            start, end = found.span(kind)
            if start < done:  # its first group is the end of an id just masked (`-12345678-...`)
                continue
            token = text[start:end]
            placeholder = seen.get(token)
            if placeholder is None:
                index = len(seen)
                if index >= MAX_IDS - 1:  # the last id a text may name: the checks' order decides what follows
                    return _mask_checked(text)
                placeholder = seen[token] = _GUID_PLACEHOLDERS[kind][index]  # type: ignore[index]
                ids.append((placeholder, token))
                if kind == _UPPER_GUID:
                    ids.append((_FOLDED_UPPER[index], token.lower()))
        else:
            hyphen, end = found.span()
            if kind == _TIME:
                start = hyphen - 4  # the year
                if start < done or not _DIGITS.issuperset(text[start:hyphen]) or (
                        start and text[start - 1] in _LETTERS_AND_DIGITS):
                    continue
            else:
                start = hyphen + 1  # the hyphen before a number stays, and bounds it
            if end < len(text) and text[end] in _LETTERS_AND_DIGITS:
                continue
            token = text[start:end]
            if _digits_read(text, start):
                continue
            placeholder = seen.get(token)
            if placeholder is None:
                index = len(seen)
                if index >= MAX_IDS - 1:  # the last id a text may name: the checks' order decides what follows
                    return _mask_checked(text)
                placeholder = seen[token] = _time_or_number(kind == _TIME, token, index, ids)
        shape = shape + text[done:start] + placeholder
        done = end
    return _masked(text, shape + text[done:], ids, len(seen))


def _time_or_number(is_time: bool, token: str, index: int, ids: list[tuple[str, str]]) -> str:
    """The placeholder of the `index`th id of a text when it is a timestamp or a name's number, its pairs (the
    placeholder and the id, and their lower-case forms when they differ) appended to `ids`."""
    if is_time:  # every digit zero, the index in the year
        placeholder = "0" + _INDEX_3[index] + _DIGIT.sub("0", token[4:])
        ids.append((placeholder, token))
        if placeholder != (folded := placeholder.lower()):
            ids.append((folded, token.lower()))
        return placeholder
    placeholder = "7" + _INDEX_3[index] + "0" * (len(token) - 4)  # a number: 6 digits at least
    ids.append((placeholder, token))
    return placeholder


def _masked(text: str, shape: str, ids: list[tuple[str, str]], named: int) -> tuple[str, Ids]:
    """(shape, ids), or the text as it is when it names no id, or is an HTML page where a placeholder could hide what
    decides (a "403" inside an id, or more ids than the page may name)."""
    if not ids or ("<" in text and (named > _HTML_MAX_IDS or any(_HTML_DECIDES in token for _, token in ids))):
        return text, ()
    return shape, tuple(ids)


def _mask_checked(text: str) -> tuple[str, Ids]:
    """`mask` with every check in Python (the scan `mask` replaced): for texts naming more ids than MAX_IDS, where
    which id makes the text be analysed as it is depends on the order of the checks."""
    if "-" not in text or len(text) > MAX_MASKED_TEXT:
        return text, ()
    shape = ""  # the text up to `done`, ids masked
    ids: list[tuple[str, str]] = []
    seen: dict[str, str] | None = None
    done = 0
    size = len(text)
    for found in _ANCHOR.finditer(text):
        hyphen, end = found.span()
        kind = found.lastgroup
        if kind == "number":
            start = hyphen + 1  # the hyphen before it stays, and bounds it
        else:
            start = hyphen - 8 if kind == "guid" else hyphen - 4  # a GUID's first group, a timestamp's year
            if start < done or not (_HEX if kind == "guid" else _DIGITS).issuperset(text[start:hyphen]) or (
                    start and text[start - 1] in _LETTERS_AND_DIGITS):
                continue
        if end < size and text[end] in _LETTERS_AND_DIGITS:
            continue
        token = text[start:end]
        if token[0] in _DIGITS and _digits_read(text, start):
            continue
        if seen is None:
            seen = {}
        placeholder = seen.get(token)
        if placeholder is None:
            index = len(seen)
            if index >= MAX_IDS:
                return text, ()
            if kind == "guid":
                placeholder = _guid_placeholder(token, index)
                if placeholder is None:
                    continue  # mixed case: left in the shape
                ids.append((placeholder, token))
                if placeholder[0] == "F":
                    ids.append((placeholder.lower(), token.lower()))
            else:
                placeholder = _time_or_number(kind == "time", token, index, ids)
            seen[token] = placeholder
        shape = shape + text[done:start] + placeholder
        done = end
    return _masked(text, shape + text[done:], ids, len(seen or ()))


def unmask(value: str, ids: Ids) -> str:
    """`value` (something the analysis pulled out of a masked text) with the ids put back."""
    for placeholder, original in ids:
        if placeholder in value:
            value = value.replace(placeholder, original)
    return value


def has_placeholder(value: str | None, ids: Ids) -> bool:
    """Whether `value` holds any of the placeholders."""
    if value:
        for placeholder, _ in ids:
            if placeholder in value:
                return True
    return False


def has_piece_of_guid_placeholder(value: str | None, ids: Ids) -> bool:
    """Whether `value`, once its whole placeholders are taken out, still holds what looks like a piece of a GUID's
    (an analysis that cut an id in two: its halves cannot be put back)."""
    if not value:
        return False
    for placeholder, _ in ids:
        value = value.replace(placeholder, "")
    folded = value.lower()
    return "ffff" in folded or "9999" in folded
