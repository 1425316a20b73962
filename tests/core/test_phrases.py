"""The guarded phrase lists (shared/core/phrases.py) answer exactly what testing every phrase in order answers."""

from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core import messages
from shared.core.phrases import PhraseFamily, first_in_order

PHRASES = sorted({phrase for family in messages.FAMILIES for phrase, _ in family.phrases})
# Pieces of phrases (a guard without its phrase, a phrase cut short), glued to phrases and noise.
PIECES = sorted({phrase[start:start + size] for phrase in PHRASES for start in range(0, len(phrase), 5)
                 for size in (4, 9, 15)})
NOISE = st.text(alphabet="abcdefghijklmnopqrstuvwxyz0123456789 _-:/.'\"()", max_size=12)
TEXTS = st.lists(st.one_of(st.sampled_from(PHRASES), st.sampled_from(PIECES), NOISE), max_size=8).map("".join)


def test_every_phrase_holds_a_guard_of_its_family():
    for family in messages.FAMILIES:
        assert family.guards
        for phrase, _ in family.phrases:
            assert any(guard in phrase for guard in family.guards), phrase


def test_a_family_finds_each_of_its_phrases_alone():
    for family in messages.FAMILIES:
        for phrase, _ in family.phrases:
            found = family.first(f"x {phrase} y")
            assert found[0] and found == first_in_order(f"x {phrase} y", family.phrases)


@settings(max_examples=400, deadline=None)
@given(TEXTS)
def test_guarded_families_find_what_the_ordered_scan_finds(text):
    for family in messages.FAMILIES:
        assert family.first(text) == first_in_order(text, family.phrases)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(alphabet="abcdef xy", min_size=1, max_size=14), min_size=1, max_size=8, unique=True),
       st.lists(st.text(alphabet="abcdef xy", max_size=10), max_size=6).map("".join))
def test_any_phrase_list_is_guarded_exactly(phrases, text):
    family = PhraseFamily(tuple(phrases))
    assert family.first(text) == first_in_order(text, family.phrases)
    for phrase in phrases:
        assert family.first(text + phrase)[0] == first_in_order(text + phrase, family.phrases)[0] != ""


OPTIONAL_TEXT = st.none() | st.text(max_size=6)


@settings(max_examples=200, deadline=None)
@given(st.tuples(st.text(max_size=6), st.booleans(), OPTIONAL_TEXT, OPTIONAL_TEXT, st.text(max_size=6),
                 OPTIONAL_TEXT, OPTIONAL_TEXT, OPTIONAL_TEXT, OPTIONAL_TEXT, OPTIONAL_TEXT, st.booleans(),
                 st.booleans(), OPTIONAL_TEXT, OPTIONAL_TEXT))
def test_facts_built_through_the_slots_equal_the_constructors(values):
    names = messages.TextFacts.__slots__
    built, constructed = messages._facts(*values), messages.TextFacts(*values)
    assert built == constructed and hash(built) == hash(constructed) and repr(built) == repr(constructed)
    assert [getattr(built, name) for name in names] == list(values)
    keywords = dict(zip(names[2:], values[2:], strict=True))
    assert messages._facts(values[0], values[1], **keywords) == messages.TextFacts(values[0], values[1], **keywords)
