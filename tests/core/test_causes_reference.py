"""docs/causes.md is generated from the cause catalogue."""

from pathlib import Path

from shared.core.causes import CAUSES

ROOT = Path(__file__).resolve().parents[2]


def test_the_causes_doc_is_generated_from_the_catalogue():
    from shared.causes_reference import causes_markdown

    text = (ROOT / "docs" / "causes.md").read_text()
    assert text == causes_markdown(), "run: python -m shared settings-files"
    assert [c for c in CAUSES if f"### `{c}`" not in text] == []


def test_every_cause_has_its_text_on_the_record():
    for cause in CAUSES.values():
        assert cause.title and cause.doc and cause.summary and cause.steps, cause.id
