"""Texts that differ only in their ids share one analysis (shared/core/text_ids.py): properties (hypothesis).

- a case whose ids are all replaced (consistently: the caller named in the text stays the caller) is diagnosed as
  the original, apart from the ids themselves;
- the shape cache never changes a diagnosis: whatever was diagnosed before, a text is diagnosed as its own text
  read without masking would be;
- masking is exact: unmasking gives the text back, and placeholders keep each id's length;
- the quoted-message scanner finds what the backtracking regex it replaced found.
"""

import json
import random
import re
import uuid
from contextlib import contextmanager
from unittest import mock

from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from shared.core import diagnose as diagnose_module
from shared.core import messages, roles, text_ids
from shared.core.diagnose import diagnose
from shared.core.model import FailureSignal
from shared.core.signals import parse_evidence, parse_failure, parse_time
from tests.support.paths import REPO_ROOT, TEST_DATA

LINES = [line for path in (TEST_DATA / "error_texts.jsonl", REPO_ROOT / "shared" / "samples" / "failures.jsonl")
         for line in path.read_text("utf-8").splitlines() if line.strip()]
GUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d")
NAME_NUMBER = re.compile(r"(?<=[A-Za-z0-9]-)\d{6,}(?![0-9A-Za-z])")
ANY_ID = re.compile(f"(?P<guid>{GUID.pattern})|(?P<time>{TIMESTAMP.pattern})|(?P<number>{NAME_NUMBER.pattern})")
SEEDED = st.integers(0, 2**32).map(random.Random)  # ids of full entropy: no two drawn ids are ever alike
# Ids added to texts, in the places real reports carry them.
ID_LINES = ["\nRequest ID: {guid}", " (request id {guid})", "\nTrace ID: {guid}\nTimestamp: {time}Z",
            " x-ms-correlation-request-id: {GUID}", " The principal `{guid}` lacks the required data action",
            " User1-{number}@contoso.onmicrosoft.com", " Token tenant {guid} does not match resource tenant.", ""]
# And where the analysis reads an id's own characters (a JSON code's first three digits, a phrase ending in digits,
# a code cut at the id's first hyphen): there the diagnosis may depend on the id, and the shape must not hide it.
ID_VALUE_READ = [" 'code': {guid}", '\\"code\\": {guid}', " Azure Search Error: {number}", " ErrorCode: {guid}",
                 " 'code': {time}", " (code {guid}-x)"]


def clear_caches():
    for module in (diagnose_module, messages, text_ids):
        for cached in vars(module).values():
            if hasattr(cached, "cache_clear"):
                cached.cache_clear()


@contextmanager
def masking_off():
    with mock.patch.object(text_ids, "mask", lambda text: (text, ())):
        clear_caches()
        yield
    clear_caches()


def case_of(line):
    raw = json.loads(line)
    evidence = parse_evidence(raw["evidence"]) if raw.get("evidence") is not None else None
    return parse_failure(raw), evidence, parse_time(raw["now"]) if raw.get("now") else None


def vary(line, rng, extra=""):
    """The case's JSON line with `extra` appended to its message, then every GUID but a role's (anywhere), and
    every timestamp and name's number in its message, replaced consistently. Returns (line, new-to-old)."""
    raw = json.loads(line)
    if raw.get("message") or extra:
        raw["message"] = (raw.get("message") or "") + extra
    back = {}

    def guid(found):
        old = found.group()
        if old.lower() in roles.BY_GUID:
            return old  # a role definition: another GUID would be another role
        new = back.setdefault(old.lower(), str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        return new.upper() if old.isupper() else new

    def timestamp(found):
        old = found.group()
        return back.setdefault(old, f"20{rng.randint(10, 39)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}{old[10]}"
                                    f"1{rng.randint(0, 9)}:2{rng.randint(0, 9)}:3{rng.randint(0, 9)}")

    def number(found):
        old = found.group()
        return back.setdefault(old, str(rng.randint(10 ** (len(old) - 1), 10 ** len(old) - 1)))

    def other(found):
        kind = found.lastgroup
        return found.group() if kind == "guid" else timestamp(found) if kind == "time" else number(found)

    raw = json.loads(GUID.sub(guid, json.dumps(raw)))
    if raw.get("message"):
        raw["message"] = ANY_ID.sub(other, raw["message"])
    return json.dumps(raw), {new: old for old, new in back.items()}


def filled(template, rng):
    return template.format(guid=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                           GUID=str(uuid.UUID(int=rng.getrandbits(128), version=4)).upper(),
                           time=f"20{rng.randint(10, 39)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}"
                                f"T1{rng.randint(0, 9)}:00:0{rng.randint(0, 9)}",
                           number=str(rng.randint(100_000, 10 ** 12)))


def read(case):
    signal, evidence, now = case
    return json.dumps(diagnose(signal, evidence, now=now).to_json(), sort_keys=True)


def without(text, ids):
    """`text` with the varied ids put back to the original's (as written, and upper-cased)."""
    for new, old in ids.items():
        text = text.replace(new, old).replace(new.upper(), old.upper())
    return text


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(line=st.sampled_from(LINES), rng=SEEDED, extra=st.sampled_from(ID_LINES))
def test_a_case_with_its_ids_varied_is_diagnosed_as_the_original(line, rng, extra):
    base = vary(line, rng, filled(extra, rng))[0]
    # An evidence line quotes the message's first 300 characters: an id cut there differs in a piece of itself,
    # which the next property covers (the shape cache against the text read as it is).
    assume(len(json.loads(base).get("message") or "") <= messages.DISPLAY)
    first, first_ids = vary(base, rng)
    second, second_ids = vary(base, rng)
    clear_caches()
    original = read(case_of(first))
    varied = read(case_of(second))  # read through the shape the first variant left in the cache
    assert without(varied, second_ids) == without(original, first_ids)


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow], deadline=None)
@given(lines=st.lists(st.sampled_from(LINES), min_size=1, max_size=4), rng=SEEDED,
       extras=st.lists(st.sampled_from(ID_LINES + ID_VALUE_READ), min_size=4, max_size=4))
def test_the_shape_cache_never_changes_a_diagnosis(lines, rng, extras):
    cases = [case_of(vary(line, rng, filled(extra, rng))[0]) for line, extra in zip(lines * 4, extras, strict=False)]
    with masking_off():
        expected = [read(case) for case in cases]
    clear_caches()
    assert [read(case) for case in cases] == expected


@settings(max_examples=500, deadline=None)
@given(text=st.one_of(st.sampled_from([json.loads(line).get("message") or "" for line in LINES]),
                      st.text(alphabet="0123456789abcdefABCDEF-:T Z.,x@", max_size=120)),
       rng=SEEDED)
def test_masking_gives_the_text_back_and_keeps_every_length(text, rng):
    for message in (text, json.loads(vary(json.dumps({"message": text}), rng)[0]).get("message") or ""):
        shape, ids = text_ids.mask(message)
        assert len(shape) == len(message)
        assert text_ids.unmask(shape, ids) == message
        assert all(len(placeholder) == len(original) for placeholder, original in ids)


BACKTRACKING_MESSAGE = re.compile(r"""["']message["']\s*:\s*(["'])((?:\\.|(?!\1).)*)\1""", re.DOTALL)


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(["\\", "'", '"', "a", " ", "'message': '", '"message":"', "\n", "\\'"]),
                max_size=14).map("".join))
def test_quoted_messages_are_found_as_the_backtracking_regex_found_them(text):
    assert messages._json_messages(text) == [m.group(2) for m in BACKTRACKING_MESSAGE.finditer(text)]


def test_a_message_of_backslashes_without_a_closing_quote_is_read_at_once():
    # The old pattern took seconds at 20 backslash pairs and doubled with each one more.
    facts = messages.analyze(401, None, "'code': 'x', 'message': '" + "\\a" * 5000 + "\\")
    assert facts.kind == messages.OTHER


def test_texts_naming_other_ids_share_one_shape():
    clear_caches()
    text = "The principal `{}` lacks the required data action `Microsoft.CognitiveServices/accounts/OpenAI/x`."
    for n in range(5):
        shape, ids = text_ids.mask(text.format(uuid.UUID(int=random.Random(n).getrandbits(128), version=4)))
        assert ids and shape == text.format("ffffffff-ffff-ffff-ffff-ffff00000000")


def test_the_principal_a_text_names_is_still_compared_with_the_caller_through_a_shared_shape():
    clear_caches()
    caller = "5d4c3b2a-1908-4776-a655-443322110f04"
    text = ("The principal `{}` lacks the required data action `Microsoft.CognitiveServices/accounts/OpenAI/"
            "deployments/chat/completions/action`")
    own, other = (FailureSignal(status=401, code="PermissionDenied", message=text.format(named), object_id=caller,
                                auth="entra") for named in (caller, "11111111-1908-4776-a655-443322110f04"))
    assert text_ids.mask(own.message)[0] == text_ids.mask(other.message)[0]
    assert diagnose(own).cause == "missing_data_role"
    assert diagnose(other).cause == "other_principal_denied"
    assert diagnose_module._read_shape.cache_info().hits >= 1


QUOTED_BODY = {q: re.compile(r"(?:\\.|[^\\" + q + "])*" + q, re.DOTALL) for q in "'\""}


@settings(max_examples=500, deadline=None)
@given(st.text(alphabet="ab\\'\"\n", max_size=24), st.integers(0, 24))
def test_the_closing_quote_is_found_where_the_regex_found_it(text, begin):
    begin = min(begin, len(text))
    for quote in "'\"":
        found = QUOTED_BODY[quote].match(text, begin)
        assert messages._first_unescaped(text, begin, quote) == (found.end() - 1 if found else -1)


JSON_CODE = re.compile(r"""["']code["']\s*:\s*(?:(["'])(.*?)\1|(\d{3}))""", re.DOTALL)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(["code", "'", '"', ":", " ", "x", "403", "1", "\n", "'code'", '"code"', ": '"]),
                max_size=14).map("".join))
def test_json_codes_are_found_as_the_quote_first_regex_found_them(text):
    assert ([(m.group(2), m.group(3)) for m in messages._json_codes(text)]
            == [(m.group(2), m.group(3)) for m in JSON_CODE.finditer(text)])


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.uuids().map(str), st.text(alphabet="0123456789abcdefABCDEF- {}\n", min_size=30, max_size=40)))
def test_a_caller_id_taken_as_it_is_is_what_normalizing_gives(text):
    from shared.core.allowlist import normalize_object_id
    if diagnose_module._CANONICAL_GUID.fullmatch(text):
        assert normalize_object_id(text) == text
    signal = FailureSignal(status=403, object_id=text, message="PermissionDenied")
    assert diagnose(signal) == diagnose_module.diagnose(FailureSignal(status=403, object_id=normalize_object_id(text)
                                                                      or text, message="PermissionDenied"))
