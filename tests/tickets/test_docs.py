"""docs/tickets.md shows samples rendered by the current code."""

from __future__ import annotations

from shared.tickets.samples import BEGIN, END, HOSTILE, render_samples
from tests.support.paths import REPO_ROOT

DOC = REPO_ROOT / "docs" / "tickets.md"


def test_generated_samples_in_the_docs_are_current():
    text = DOC.read_text(encoding="utf-8")
    generated = text[text.index(BEGIN) + len(BEGIN): text.index(END)].strip()
    assert generated == render_samples().strip(), "run: python -m shared.tickets.samples docs/tickets.md"


def test_samples_cover_every_tracker_and_the_hostile_string():
    samples = render_samples()
    for heading in ("GitHub Issues", "Azure DevOps Boards", "ServiceNow", "Jira Cloud", "Webhook", "Log"):
        assert f"### {heading}" in samples
    assert HOSTILE in samples
    markdown = samples.split("GitHub Markdown:")[1].split("Azure DevOps HTML:")[0]
    html = samples.split("Azure DevOps HTML:")[1].split("ServiceNow text:")[0]
    assert "<img" not in markdown.replace("\\<img", "") and "<img" not in html  # text, not markup
