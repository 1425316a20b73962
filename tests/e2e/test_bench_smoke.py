"""`python -m bench --quick`: every benchmark runs at tiny size against the real stand-ins and writes the results
file. Structure, and the metrics that count calls or effects that must be zero; never a timing (benchmarks
report, `make test` does not time anything)."""

from __future__ import annotations

import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bench.__main__ import GROUPS, main
from bench.results import Metric, meets, table

METRICS = {
    "diagnose_per_s", "scan_steady_ratio", "arm_calls_repeat_scan", "ticket_calls_repeat_scan",
    "arm_reads_per_scan_first", "evidence_parallel_s", "cold_start_ratio", "eventgrid_burst_s",
    "eventgrid_burst_duplicate_effects", "scan_peak_rss_mb", "store_ops_per_s_sqlite", "store_ops_per_s_table",
    "grant_reservation_ms_sqlite", "grant_reservation_ms_table",
    "diagnose_per_s_uncached", "first_invocation_ratio",
}
MUST_BE_ZERO = ("arm_calls_repeat_scan", "ticket_calls_repeat_scan", "eventgrid_burst_duplicate_effects")


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    out = tmp_path_factory.mktemp("bench") / "bench-results.json"
    assert main(["--quick", "--out", str(out)]) == 0
    return json.loads(out.read_text(encoding="utf-8"))


def test_every_stated_metric_is_written_with_value_unit_target_ok_and_baseline(results):
    assert set(results) == METRICS
    for name, entry in results.items():
        assert set(entry) == {"value", "unit", "target", "ok", "baseline"}, name
        assert isinstance(entry["value"], int | float) and math.isfinite(entry["value"]), name
        assert entry["unit"] and isinstance(entry["ok"], bool), name
        assert entry["baseline"] is None or isinstance(entry["baseline"], int | float), name
        if entry["target"] is not None:
            assert entry["ok"] == meets(entry["value"], entry["target"]), name
    assert results["store_ops_per_s_sqlite"]["target"] is None and results["store_ops_per_s_table"]["target"] is None
    assert results["evidence_parallel_s"]["baseline"] > 0 and results["scan_steady_ratio"]["baseline"] > 0


@pytest.mark.parametrize("name", MUST_BE_ZERO)
def test_the_repeat_scan_calls_nobody_and_redeliveries_have_no_effect(results, name):
    assert results[name]["value"] == 0 and results[name]["target"] == "== 0" and results[name]["ok"]


def test_only_runs_the_chosen_group(tmp_path, capsys):
    out = tmp_path / "one.json"
    assert main(["--quick", "--only", "scan_steady", "--out", str(out)]) == 0
    assert set(json.loads(out.read_text())) == {"scan_steady_ratio", "arm_calls_repeat_scan",
                                                "ticket_calls_repeat_scan"}
    printed = capsys.readouterr().out
    assert "scan_steady_ratio" in printed and "diagnose_per_s" not in printed
    assert set(GROUPS) >= {"scan_steady", "memory", "eventgrid_burst"}


@given(value=st.floats(-1e9, 1e9, allow_nan=False), bound=st.integers(-10**6, 10**6))
def test_targets_compare_as_written(value, bound):
    assert meets(value, f">= {bound}") == (value >= bound)
    assert meets(value, f"<= {bound}") == (value <= bound)
    assert meets(value, f"== {bound}") == (value == bound)
    assert meets(value, None)


def test_an_unreadable_target_is_refused():
    with pytest.raises(ValueError):
        meets(1, "about 5")


def test_the_table_marks_missed_targets():
    printed = table([Metric("fast", 3, "s", "<= 5"), Metric("slow", 7, "s", "<= 5"), Metric("count", 4, "x", None)])
    lines = printed.splitlines()
    assert lines[0].split(" | ")[0].strip() == "metric"
    assert " yes " in lines[2] + " " and "NO" in lines[3] and "(reported)" in lines[4]
