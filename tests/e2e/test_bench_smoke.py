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
    "tickets_opened_first_scan_10k", "arm_calls_repeat_scan_tickets_queued",
    "scan_first_resumes",
    "scan_first_s_table_10k", "scan_first_s_table_10k_arm", "arm_reads_per_scan_first_graph",
    "scan_steady_own_s_per_10k", "scan_steady_ratio_100k", "scan_rss_kb_per_group",
    "diagnose_per_s_uncached", "first_invocation_ratio",
}
MUST_BE_ZERO = ("arm_calls_repeat_scan", "ticket_calls_repeat_scan", "eventgrid_burst_duplicate_effects",
                "arm_calls_repeat_scan_tickets_queued")
MUST_BE_ZERO = ("arm_calls_repeat_scan", "ticket_calls_repeat_scan", "eventgrid_burst_duplicate_effects")
TABLE_SCALE = {"eventgrid_burst_s_table": "<= 3", "eventgrid_burst_store_ops_per_event_table": "<= 3",
               "scan_steady_ratio_table": "<= 1.5"}
METRICS |= set(TABLE_SCALE)


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


def test_the_flat_scan_metrics_state_their_targets_and_floors(results):
    assert results["scan_steady_own_s_per_10k"]["target"] == "<= 0.25"
    assert results["scan_steady_ratio_100k"]["target"] == "<= 2" and results["scan_steady_ratio_100k"]["baseline"] > 0
    assert results["scan_peak_rss_mb"]["target"] == "<= 150"
    assert results["scan_rss_kb_per_group"]["target"] == "<= 0.8" and results["scan_rss_kb_per_group"]["baseline"] > 0


@pytest.mark.parametrize("name", MUST_BE_ZERO)
def test_the_repeat_scan_calls_nobody_and_redeliveries_have_no_effect(results, name):
    assert results[name]["value"] == 0 and results[name]["target"] == "== 0" and results[name]["ok"]


def test_a_cut_first_scan_resumes_without_repeating_arm_reads(results):
    # A flag over call counts (the cut is after half the chunks, not half the time): it holds at any size.
    entry = results["scan_first_resumes"]
    assert entry["unit"] == "flag" and entry["target"] == "== 1" and entry["value"] == 1 and entry["ok"]


def test_first_scan_scale_reads_no_arm_with_resource_graph_and_states_the_throttling_floor(results):
    assert results["arm_reads_per_scan_first_graph"]["value"] == 0  # every answer came from Resource Graph
    assert results["arm_reads_per_scan_first_graph"]["target"] == "<= 5"
    assert results["scan_first_s_table_10k"]["target"] == "<= 60"
    floor = results["scan_first_s_table_10k_arm"]["baseline"]
    assert floor == 0  # the tiny world reads far less than ARM's 250-read burst
    assert results["scan_first_s_table_10k_arm"]["target"] == f"<= {1.5 * floor}"


def test_only_runs_the_chosen_group(tmp_path, capsys):
    out = tmp_path / "one.json"
    assert main(["--quick", "--only", "scan_steady", "--out", str(out)]) == 0
    assert set(json.loads(out.read_text())) == {"scan_steady_ratio", "arm_calls_repeat_scan",
                                                "ticket_calls_repeat_scan", "scan_steady_own_s_per_10k"}
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


def test_the_first_scan_opens_at_most_the_ticket_budget_and_queues_the_rest(results):
    from bench.sizes import TINY

    entry = results["tickets_opened_first_scan_10k"]
    assert entry["target"] == f"<= {TINY.ticket_budget}" and entry["ok"]
    assert entry["value"] == TINY.ticket_budget  # the tiny storm wants more: the whole budget, and no more
def test_the_table_scale_group_measures_the_production_store(results):
    for name, target in TABLE_SCALE.items():
        assert results[name]["target"] == target and results[name]["value"] > 0, name
    # every distinct event is claimed and written at least: fewer than two requests each would mean nothing counted
    assert results["eventgrid_burst_store_ops_per_event_table"]["value"] >= 2
    assert results["scan_steady_ratio_table"]["baseline"] > 0
