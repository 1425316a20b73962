"""Table-driven: real, public error texts (tests/data/error_texts.jsonl, one case per line with its source URL).

Role-cause cases pair a real text with live evidence; where the report did not say which roles the caller held,
the case's "note" says the evidence was constructed. Expected values are what a human reading the report would
conclude, not what the engine happened to print.
"""

import json
import re

import pytest

from shared.core.causes import CAUSE_IDS, ROLE_FIXABLE
from shared.core.diagnose import diagnose
from shared.core.roles import GRANTABLE, lookup
from shared.core.signals import parse_evidence, parse_failure, parse_time
from tests.support.paths import TEST_DATA

DATA = TEST_DATA / "error_texts.jsonl"
CASES = [json.loads(line) for line in DATA.read_text(encoding="utf-8").splitlines() if line.strip()]
WRAPPERS_REQUIRED = {"openai-python", "azure-core", "dotnet", "python-dict", "json-in-string", "redacted", "html"}
# Seed 000 (the PermissionDenied card) and every error row of seed 001's table (row 1 is advice, not an error).
SEED_ROWS_REQUIRED = {"000", "001#2", "001#3", "001#4", "001#5", "001#6", "001#7"}
MIN_CASES_PER_CAUSE = 3


def _run(case):
    signal = parse_failure(case)
    evidence = parse_evidence(case["evidence"]) if case.get("evidence") is not None else None
    now = parse_time(case["now"]) if case.get("now") else None
    return diagnose(signal, evidence, now=now)


@pytest.mark.parametrize("case", CASES, ids=[c["id"] for c in CASES])
def test_real_error_text(case):
    diagnosis = _run(case)
    assert diagnosis.cause == case["cause"], diagnosis.evidence
    assert diagnosis.role_name == case["expect_role"]
    if case["expect_role"] is not None:
        role = lookup(case["expect_role"])
        assert diagnosis.role_id == role.guid and role.guid in GRANTABLE
        assert diagnosis.role_fixable and diagnosis.cause in ROLE_FIXABLE
        assert f"--role {role.guid}" in diagnosis.fix_command
        assert "--assignee-principal-type " in diagnosis.fix_command
    else:
        assert diagnosis.role_id is None and not diagnosis.role_fixable and diagnosis.fix_command is None
    if "expect_scope" in case:
        assert diagnosis.scope == case["expect_scope"]
        assert diagnosis.fix_command.endswith(f"--scope {case['expect_scope']}")
    if "expect_object_id" in case:
        wanted = case["expect_object_id"] or "<caller-object-id>"
        assert f"--assignee-object-id {wanted} " in diagnosis.fix_command
    if "expect_confidence" in case:
        assert diagnosis.confidence == case["expect_confidence"]
    if "expect_summary_contains" in case:
        assert case["expect_summary_contains"] in diagnosis.summary
    if "expect_evidence_contains" in case:
        assert any(case["expect_evidence_contains"] in line for line in diagnosis.evidence), diagnosis.evidence
    assert diagnosis.summary and "\n" not in diagnosis.summary


def test_every_case_names_its_public_source():
    for case in CASES:
        assert re.match(r"^https?://\S+$", case["source"]), case["id"]
    assert len({c["id"] for c in CASES}) == len(CASES)


def distinct_texts_per_cause() -> dict[str, int]:
    """How many different texts each cause is tested with (seed rows repeat one text for several scenarios)."""
    texts: dict[str, set[str]] = {}
    for case in CASES:
        texts.setdefault(case["cause"], set()).add(case["message"])
    return {cause: len(found) for cause, found in texts.items()}


def test_every_cause_has_several_distinct_real_texts():
    counts = distinct_texts_per_cause()
    assert set(counts) == set(CAUSE_IDS)
    thin = {cause: n for cause, n in counts.items() if n < MIN_CASES_PER_CAUSE}
    assert not thin, thin


def test_every_wrapper_style_and_seed_row_is_covered():
    wrappers = {w for c in CASES for w in c["wrapper"].split(",")}
    assert WRAPPERS_REQUIRED <= wrappers
    assert SEED_ROWS_REQUIRED <= {c["seed"] for c in CASES if "seed" in c}


def test_a_missing_role_on_azure_openai_is_a_401_not_a_403():
    statuses = {c["status"] for c in CASES if c["cause"] == "missing_data_role"}
    assert 401 in statuses
