"""Golden files pin exact query text (tests/golden/*.kql): a change shows up in review. Regenerate after a reviewed
change with UPDATE_GOLDEN=1."""

from __future__ import annotations

import os

from tests.support.paths import GOLDEN


def assert_matches_golden(name: str, text: str) -> None:
    path = GOLDEN / f"{name}.kql"
    if os.environ.get("UPDATE_GOLDEN"):
        path.write_text(text + "\n", encoding="utf-8")
    assert text + "\n" == path.read_text(encoding="utf-8"), f"{name}: KQL changed; review, then UPDATE_GOLDEN=1"
