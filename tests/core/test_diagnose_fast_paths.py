"""The fast paths of a diagnosis give exactly what the slow ones give (hypothesis):

- masking (shared/core/text_ids.py, one scan whose GUID checks are in the pattern) masks exactly what the
  scan checking each match's bounds in Python masked (the reference below, the code it replaced; it also masks HTML
  pages now, the same way, unless an id holds a "403"), including around the checks the pattern does: a phrase
  reading digits (`code`, `Azure Search Error:`, with blanks and a line break between), a GUID whose first group is
  the end of a number just masked, case, texts naming more ids than a text may;
- an HTML page with ids (some holding a "403") read through its shape is diagnosed as read exactly;
- a text read through a shape already seen (its ids random) is diagnosed exactly as the same text read with
  masking off, for texts of the bench's uncached corpus;
- the role causes' wording remembered per role (the command put in afterwards) is the wording built anew.
"""

import random
import re
import uuid
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bench.diagnose_speed import _new_ids, load_cases
from shared.core import causes, text_ids
from shared.core import diagnose as diagnose_module
from shared.core.roles import BUILT_IN
from tests.core.test_diagnose_shapes import LINES, clear_caches, masking_off, read

_ANCHOR = re.compile(r"-(?:(?P<guid>[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})"
                     r"|(?P<time>[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}"
                     r"(?:[.,][0-9]{1,7}(?![0-9])(?!\s*\())?Z?)"
                     r"|(?P<number>[0-9]{6,20}))")
_ALNUM = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def reference_mask(text):
    """What text_ids.mask gave before its bounds checks moved into the pattern."""
    if "-" not in text or len(text) > text_ids.MAX_MASKED_TEXT:
        return text, ()
    pieces, ids, seen, done = [], [], {}, 0
    for found in _ANCHOR.finditer(text):
        hyphen, end = found.span()
        kind = found.lastgroup
        if kind == "number":
            start = hyphen + 1
        else:
            start = hyphen - (8 if kind == "guid" else 4)
            allowed = "0123456789abcdefABCDEF" if kind == "guid" else "0123456789"
            if start < done or not set(text[start:hyphen]) <= set(allowed):
                continue
        if (start and text[start - 1] in _ALNUM) or (end < len(text) and text[end] in _ALNUM):
            continue
        token = text[start:end]
        if token[0] in "0123456789" and text_ids._digits_read(text, start):
            continue
        placeholder = seen.get(token)
        if placeholder is None:
            index = len(seen)
            if index >= text_ids.MAX_IDS:
                return text, ()
            if kind == "guid":
                placeholder = ("ffffffff-ffff-ffff-ffff-ffff" if token.islower() else "FFFFFFFF-FFFF-FFFF-FFFF-FFFF"
                               if token.isupper() else None if any(c.isalpha() for c in token)
                               else "99999999-9999-9999-9999-9999")
                placeholder = placeholder and placeholder + text_ids._INDEX_8[index]
            elif kind == "time":
                placeholder = "0" + text_ids._INDEX_3[index] + re.sub(r"\d", "0", token[4:])
            else:
                placeholder = "7" + text_ids._INDEX_3[index] + "0" * (len(token) - 4)
            if placeholder is None:
                continue
            seen[token] = placeholder
            ids.append((placeholder, token))
            if kind != "number" and placeholder != placeholder.lower():
                ids.append((placeholder.lower(), token.lower()))
        pieces += [text[done:start], placeholder]
        done = end
    if not ids:
        return text, ()
    if "<" in text and (len(seen) >= 200 or any("403" in token for token in seen)):
        return text, ()  # an HTML page is a 403 when "403" is anywhere in it: no placeholder or id may hold one
    return "".join(pieces) + text[done:], tuple(ids)


GUIDS = st.uuids().map(str)
ID_PIECES = st.one_of(GUIDS, GUIDS.map(str.upper), GUIDS.map(lambda g: g[:9] + g[9:].upper()),
                      st.sampled_from(["2025-06-02T12:00:00", "2025-06-02 12:00:00,123", "2025-06-02T12:00:00.1234567Z",
                                       "User1-60548584@x", "project-56085343", "-1234567", "code: ", "'code': ",
                                       "Azure Search Error: ", "error: ", "x", "7", "-", " ", "(", "\n",
                                       # around the checks in the pattern
                                       "CODE", "Code", " \t: \"", "\n\n\n\n", "AZURE SEARCH ERROR: ", "-12345678",
                                       "12345678", "-aaaa-bbbb-cccc-dddddddddddd", "-AAAA-BBBB-1234-123456789012",
                                       "-1234-1234-1234-123456789012", "<", "<title>", "403", "ab403cd1"]))
TEXTS = st.one_of(st.lists(ID_PIECES, max_size=10).map("".join),
                  st.text(alphabet="0123456789abcdefABCDEF-:T Z.,x@(", max_size=120),
                  st.sampled_from([line for line in LINES]))


@settings(max_examples=1500, deadline=None)
@given(TEXTS)
def test_masking_masks_what_the_reference_masked(text):
    assert text_ids.mask(text) == reference_mask(text)


@settings(max_examples=50, deadline=None)
@given(st.integers(190, 400))
def test_texts_naming_many_ids_mask_as_the_reference(count):
    guids = [str(uuid.UUID(int=n * 7919 + 1, version=4)) for n in range(count)]
    for text in (" ".join(guids), "<p>" + " ".join(guids), " ".join(guids) + " " + guids[0][:9] + guids[0][9:].upper(),
                 " ".join(g.upper() for g in guids)):
        assert text_ids.mask(text) == reference_mask(text)


CASES = load_cases()
HTML_CASES = [case for case in CASES if case[0].message and "<" in case[0].message]


# Pages that are not a 403 but for a "403" in an id (the status says 401 or 502, the page does not say forbidden).
OTHER_PAGES = ["<html><head><title>Unauthorized</title></head><body><h1>Unauthorized</h1></body></html>",
               "<!DOCTYPE html><html><body><p>Bad gateway</p><p>trace {guid}</p></body></html>",
               "<title>Error</title> request {guid} at {time}"]


@settings(max_examples=100, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(picks=st.lists(st.sampled_from(range(len(HTML_CASES) + len(OTHER_PAGES))), min_size=2, max_size=6),
       seed=st.integers(0, 2**32), with_403=st.lists(st.booleans(), min_size=6, max_size=6),
       status=st.sampled_from([401, 502]))
def test_html_pages_with_ids_read_through_a_known_shape_are_diagnosed_as_read_exactly(picks, seed, with_403, status):
    rng = random.Random(seed)
    cases = []
    for index, marked in zip(picks + picks, with_403 + with_403, strict=False):
        if index < len(HTML_CASES):
            signal, evidence, now = HTML_CASES[index]
            message = _new_ids(signal.message, rng)
        else:
            signal, evidence, now = HTML_CASES[0]
            signal = replace(signal, status=status)
            message = OTHER_PAGES[index - len(HTML_CASES)].format(
                guid=uuid.UUID(int=rng.getrandbits(128), version=4), time="2025-06-02T12:00:00")
        request = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if marked:
            request = request[:14] + "4403" + request[18:]
        cases.append((replace(signal, message=message + f"\nRequest ID: {request}"), evidence, now))
    with masking_off():
        expected = [read(case) for case in cases]
    clear_caches()
    assert [read(case) for case in cases] == expected
    diagnose_module.use_templates(False)
    try:
        assert [read(case) for case in cases] == expected
    finally:
        diagnose_module.use_templates(True)


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(picks=st.lists(st.integers(0, len(CASES) - 1), min_size=2, max_size=6), seed=st.integers(0, 2**32))
def test_texts_with_random_ids_read_through_a_known_shape_are_diagnosed_as_read_exactly(picks, seed):
    rng = random.Random(seed)
    cases = []
    for index in picks + picks:  # each case twice: the second reads through the shape the first left
        signal, evidence, now = CASES[index]
        if signal.message:
            signal = replace(signal, message=_new_ids(signal.message, rng)
                             + f"\nRequest ID: {uuid.UUID(int=rng.getrandbits(128), version=4)}")
        cases.append((signal, evidence, now))
    with masking_off():
        expected = [read(case) for case in cases]
    clear_caches()
    assert [read(case) for case in cases] == expected
    if any(text_ids.mask(signal.message or "")[1] for signal, _, _ in cases):  # HTML pages are read as they are
        assert diagnose_module._read_shape.cache_info().hits >= 1


ROLES = [role for role in BUILT_IN]


@settings(max_examples=300, deadline=None)
@given(cause=st.sampled_from(["missing_data_role", "wrong_role_for_surface", "control_plane_role_only",
                              "group_membership_cache"]),
       role=st.one_of(st.none(), st.sampled_from(ROLES)),
       surface=st.sampled_from([None, "openai", "models", "project"]),
       scope=st.one_of(st.none(), st.sampled_from(["/subscriptions/s/resourceGroups/g/providers/"
                                                   "Microsoft.CognitiveServices/accounts/a"])),
       held=st.lists(st.sampled_from([r.name for r in ROLES[:5]]), max_size=2), looked_up=st.booleans(),
       command=st.text(max_size=30))
def test_remembered_role_wording_is_the_wording_built_anew(cause, role, surface, scope, held, looked_up, command):
    record = causes.CAUSES[cause]
    for _ in range(2):  # built, then remembered
        assert diagnose_module._role_summary(cause, role, surface, scope, tuple(held), looked_up) == record.summary(
            role=role, surface=surface, scope=scope, held_roles=held, looked_up=looked_up)
        if role is not None:
            assert diagnose_module._role_steps(cause, role, surface, command) == record.steps(
                command=command, surface=surface, role=role)

