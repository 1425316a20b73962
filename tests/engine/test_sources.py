"""Issue 11 over the local stand-in and the real SDK clients: every source stands alone (a workspace without
`AzureDiagnostics` beside a healthy one; a 403 on one), and an evidence outage (ARM answering 503) never
downgrades a diagnosis nor rewrites its ticket."""

from __future__ import annotations

import pytest

from shared.core import incidents as inc
from shared.core.sources import health_key
from tests.support.engine import service_world

pytestmark = pytest.mark.slow  # every test runs a service world on the local Azure stand-in

ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"
STRANGER = "0d3c5e7a-1b2c-4d5e-8f90-a1b2c3d4e5f6"  # not allowlisted
MAIN = "11111111-2222-4333-8444-0000000000aa"
EMPTY = "11111111-2222-4333-8444-0000000000bb"  # no diagnostics received yet
TWO_WORKSPACES = {"workspace_id": MAIN, "workspaces": [{"id": EMPTY, "missing_tables": ["AzureDiagnostics"]}]}


def health(world, name: str) -> dict:
    value, _ = world.rt.store.get_value(health_key(name))
    return value


def test_a_workspace_without_azure_diagnostics_is_no_data_yet_and_the_healthy_one_is_handled(tmp_path):
    with service_world(tmp_path, mode="observe", scenario=TWO_WORKSPACES,
                       TRIAGE_WORKSPACE_IDS=f"{MAIN},{EMPTY}") as world:
        healthy, empty = (s.name for s in world.rt.sources)
        world.failing_caller(ORDERS)
        failed = world.run_traffic(3)
        report = world.scan()

        assert not report.failed and report.failed_sources == []
        assert report.sources[healthy]["state"] == "ok"
        no_data = report.sources[empty]
        assert no_data["state"] == "no_data" and no_data["transient"] is False
        assert (f"Log Analytics query on workspace {EMPTY}: no data yet: HTTP 400 BadArgumentError: The request had "
                "some invalid properties; SemanticError: A semantic error occurred.; SEM0100: 'where' operator: "
                "Failed to resolve table or column expression named 'AzureDiagnostics'") == no_data["detail"]
        assert world.incident_of(ORDERS).count == failed
        assert world.rt.store.get_watermark(healthy) is not None
        assert world.rt.store.get_watermark(empty) is None
        assert health(world, empty)["state"] == "no_data" and health(world, empty)["last_success"] is None

        # The first diagnostics arrive in that workspace: its next read takes them.
        first = world.az.query("AzureDiagnostics | take 1")
        names = [name for name, _ in first.columns]
        world.az.add_log_rows("AzureDiagnostics", [dict(zip(names, row, strict=True)) for row in first.rows],
                              workspace=EMPTY)
        again = world.scan()
        assert again.sources[empty]["state"] == "ok" and not again.failed
        assert health(world, empty)["state"] == "ok"


def test_a_403_on_one_workspace_is_reported_and_the_others_are_handled(tmp_path):
    scenario = {"workspace_id": MAIN, "workspaces": [{"id": EMPTY}]}
    with service_world(tmp_path, mode="observe", scenario=scenario, TRIAGE_WORKSPACE_IDS=f"{EMPTY},{MAIN}") as world:
        denied, healthy = (s.name for s in world.rt.sources)
        world.failing_caller(ORDERS)
        world.run_traffic(2)
        world.scan()
        watermark = world.rt.store.get_watermark(denied)

        failed = world.run_traffic(2)
        counted = world.incident_of(ORDERS).count
        world.az.faults.add("logs", route=f"/v1/workspaces/{EMPTY}/query", status=403, times=None)
        report = world.scan()
        assert report.failed and report.failed_sources == [denied]
        read = report.sources[denied]
        assert read["state"] == "failed" and read["transient"] is False
        assert read["detail"] == (f"Log Analytics query on workspace {EMPTY} failed: HTTP 403 "
                                  "InsufficientAccessError: The provided credentials have insufficient access to "
                                  "perform the requested operation; InsufficientAccessError: Injected fault (403).")
        assert read["last_error"] == read["detail"] and read["last_success"] is not None
        assert report.sources[healthy]["state"] == "ok"
        assert world.incident_of(ORDERS).count == counted + failed  # the healthy workspace was read
        assert world.rt.store.get_watermark(denied) == watermark  # the failed one's window is read again later
        assert health(world, denied)["state"] == "failed"


def test_an_arm_outage_after_a_good_scan_keeps_the_diagnosis_and_leaves_the_ticket_alone(tmp_path):
    with service_world(tmp_path, mode="enforce", sinks="github") as world:
        world.failing_caller(STRANGER)
        world.run_traffic(3)
        good = world.scan()
        assert not good.failed
        ticketed = world.incident_of(STRANGER)
        assert (ticketed.status, ticketed.cause, ticketed.diagnosis.confidence) == (
            inc.TICKETED, "missing_data_role", "high")
        requests = len(world.github_requests())
        [issue] = world.github_issues()
        body = issue.body

        world.az.faults.add("arm", route=".*", status=503, retry_after=0.01, times=None)
        world.advance(3600)  # a "still failing" comment would be due
        world.run_traffic(2)
        outage = world.scan()
        assert outage.failed and outage.evidence_errors
        assert any("ServiceUnavailable" in e for e in outage.evidence_errors)
        kept = world.incident_of(STRANGER)
        assert (kept.cause, kept.diagnosis.confidence, kept.diagnosis) == (ticketed.cause, "high",
                                                                           ticketed.diagnosis)
        assert kept.count > ticketed.count
        assert len(world.github_requests()) == requests  # the ticket is neither rewritten nor commented
        [issue] = world.github_issues()
        assert issue.body == body

        world.az.faults.clear()
        world.run_traffic(1)
        assert not world.scan().failed


def test_a_new_failure_during_an_arm_outage_is_recorded_but_granted_only_on_good_evidence(tmp_path):
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}]) as world:
        world.failing_caller(ORDERS)
        world.az.faults.add("arm", route=".*", status=503, retry_after=0.01, times=None)
        world.run_traffic(2)
        outage = world.scan()
        assert outage.failed and outage.evidence_errors
        recorded = world.incident_of(ORDERS)
        assert recorded.status == inc.TICKETED and "evidence_complete" in recorded.actions[-1].rules
        assert world.arm_calls("PUT") == 0

        world.az.faults.clear()
        world.run_traffic(1)
        world.scan()
        assert world.incident_of(ORDERS).status == inc.VERIFYING and world.arm_calls("PUT") == 1
