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
HTML pages (where a "403" anywhere in the text decides) and texts longer than the analysis reads are not masked.
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


def mask(text: str) -> tuple[str, Ids]:
    """(the text with its ids replaced, the placeholders and ids to put back); no ids: (text, ())."""
    if "-" not in text or len(text) > MAX_MASKED_TEXT or "<" in text:
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
            elif kind == "time":  # every digit zero, the index in the year
                placeholder = "0" + _INDEX_3[index] + _DIGIT.sub("0", token[4:])
                ids.append((placeholder, token))
                if placeholder != (folded_placeholder := placeholder.lower()):
                    ids.append((folded_placeholder, token.lower()))
            else:  # a number: 6 digits at least
                placeholder = "7" + _INDEX_3[index] + "0" * (len(token) - 4)
                ids.append((placeholder, token))
            seen[token] = placeholder
        shape = shape + text[done:start] + placeholder
        done = end
    if not ids:
        return text, ()
    return shape + text[done:], tuple(ids)


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
