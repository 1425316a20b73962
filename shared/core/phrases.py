"""Ordered phrase lists checked against a text with a few substring tests instead of one per phrase.

The text analysis (`shared.core.messages`) asks, family after family, which phrase of a list comes first (in the
list's order) among those the lower-cased text contains: about a hundred substring tests for a text that matches
nothing. A `PhraseFamily` answers the same with guards: a few words taken from its own phrases such that every
phrase contains one of them. A text without any of a family's guards contains none of its phrases (a phrase in the
text brings its guard along), so only the phrases under the guards found are tested, still in the list's order.
Most texts carry the guards of one or two families.
"""

from __future__ import annotations

MIN_GUARD = 4  # shorter words ("is", "the", "api") are in most texts and would guard nothing


class PhraseFamily:
    """An ordered list of phrases (each with a key: what the analysis reads when it matches)."""

    __slots__ = ("phrases", "_groups")

    def __init__(self, phrases: tuple[str, ...] | tuple[tuple[str, str], ...]):
        keyed = tuple(item if isinstance(item, tuple) else (item, "") for item in phrases)
        self.phrases: tuple[tuple[str, str], ...] = keyed
        # (guard, the phrases that contain it and no guard chosen before, with their places in the list)
        self._groups: tuple[tuple[str, tuple[tuple[int, str, str], ...]], ...] = tuple(
            (guard, tuple((place, *keyed[place]) for place in places)) for guard, places in _guards(
                [phrase for phrase, _ in keyed]))

    @property
    def guards(self) -> tuple[str, ...]:
        return tuple(guard for guard, _ in self._groups)

    def first(self, text: str) -> tuple[str, str]:
        """(phrase, key) of the first phrase in the list that `text` contains, or ("", "")."""
        found = None
        for guard, members in self._groups:
            if guard in text:
                if found is None:
                    found = members
                else:  # two groups' phrases: tested together in the list's order
                    found = tuple(sorted(found + members))
        if found is not None:
            for _, phrase, key in found:
                if phrase in text:
                    return phrase, key
        return "", ""


def first_in_order(text: str, phrases: tuple[tuple[str, str], ...]) -> tuple[str, str]:
    """What `PhraseFamily.first` answers, by testing every phrase in order (the reference)."""
    for phrase, key in phrases:
        if phrase in text:
            return phrase, key
    return "", ""


def _guards(phrases: list[str]) -> list[tuple[str, list[int]]]:
    """Words of the phrases that cover them all, greedily: the word in most phrases not yet covered first (the
    longer on a tie, as a longer word is found in fewer texts). A phrase without a word of MIN_GUARD characters
    guards itself. Each phrase belongs to the first guard it contains."""
    words: dict[str, set[int]] = {}
    for phrase in phrases:
        for word in {word for word in phrase.split() if len(word) >= MIN_GUARD} or {phrase}:
            words.setdefault(word, set())
    for word, places in words.items():
        places.update(place for place, phrase in enumerate(phrases) if word in phrase)
    uncovered = set(range(len(phrases)))
    chosen: list[tuple[str, list[int]]] = []
    while uncovered:
        word = max(sorted(words), key=lambda w: (len(words[w] & uncovered), len(w)))
        covered = sorted(words[word] & uncovered)
        chosen.append((word, covered))
        uncovered -= set(covered)
    return chosen
