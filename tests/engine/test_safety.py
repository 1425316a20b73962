"""Failing dependencies are reported loudly and lose nothing; and nothing ever grants a principal or a scope the
policy does not allow, whatever the failure rows say."""

from __future__ import annotations

import random
import sqlite3

import pytest

from localazure import telemetry
from shared.core import incidents as inc
from shared.state import sqlite as sqlite_store
from shared.state.base import StoreError
from tests.support.engine import OPENAI_ROUTE, service_world

pytestmark = pytest.mark.slow  # every test runs a service world on the local Azure stand-in

ORDERS = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"
DANA = "2b7e9c41-5a3d-4f6e-8b1c-9d0e1f2a3b4c"  # a user
STRANGER = "0d3c5e7a-1b2c-4d5e-8f90-a1b2c3d4e5f6"  # not allowlisted


def watermark(world):
    return world.rt.store.get_watermark(world.rt.sources[0].name)


def refusal_rules(world, incident_id: str) -> list[str]:
    [refusal] = [a for a in world.rt.store.list_audit(incident_id) if a.kind == "refusal"]
    return refusal.inputs["refusals"]


# ---- failing dependencies ----


def test_a_failing_source_is_reported_keeps_the_watermark_and_the_next_run_loses_nothing(tmp_path):
    with service_world(tmp_path, mode="observe") as world:
        world.failing_caller(ORDERS)
        failed = world.run_traffic(3)
        world.scan()
        before = watermark(world)
        counted = world.incident_of(ORDERS).count
        assert before is not None and counted == failed

        failed += world.run_traffic(4)
        # Log Analytics answers 503 to every attempt: the SDK retries (after Retry-After), then gives up.
        world.az.faults.add("logs", route=".*", status=503, retry_after=0.01, times=None)
        report = world.scan()  # issue 11: a failing source is reported, no longer raised out of the scan
        assert report.failed and "503" in report.sources[world.rt.sources[0].name]["detail"]
        assert report.sources[world.rt.sources[0].name]["transient"] is True
        assert watermark(world) == before
        assert world.incident_of(ORDERS).count == counted

        world.az.faults.clear()
        failed += world.run_traffic(1)
        world.scan()
        assert watermark(world) > before
        assert world.incident_of(ORDERS).count == failed


def test_a_partial_answer_keeps_the_watermark_and_still_counts_each_failure_once(tmp_path):
    with service_world(tmp_path, mode="observe") as world:
        world.failing_caller(ORDERS, per_tick=3)
        world.failing_caller(STRANGER, per_tick=3)
        world.run_traffic(3)
        world.scan()
        before = watermark(world)

        world.run_traffic(3)
        world.az.faults.add("logs", partial=True, times=1)  # half the groups, and a PartialError
        report = world.scan()
        assert report.partial and watermark(world) == before

        world.run_traffic(3)
        world.scan()
        assert watermark(world) > before
        assert world.incident_of(ORDERS).count == world.incident_of(STRANGER).count == 27


@pytest.fixture
def impatient_sqlite(monkeypatch):
    """Stores opened from here on give up on a locked database after 50 ms instead of 30 s."""
    monkeypatch.setattr(sqlite_store, "BUSY_TIMEOUT_SECONDS", 0.05)


def test_a_failed_store_write_fails_the_run_before_any_grant_and_the_next_run_recovers(tmp_path, impatient_sqlite):
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}]) as world:
        world.failing_caller(ORDERS)
        failed = world.run_traffic(3)
        # Another process holds the database's write lock for longer than the store waits.
        blocker = sqlite3.connect(world.env["TRIAGE_SQLITE_PATH"], isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        try:
            with pytest.raises(StoreError, match="locked"):
                world.scan()
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert watermark(world) is None
        assert world.rt.store.list_incidents() == []
        assert world.arm_calls("PUT") == 0

        report = world.scan()
        assert report.actions == {"assign": 1}
        assert world.incident_of(ORDERS).count == failed
        assert world.arm_calls("PUT") == 1
        assert watermark(world) is not None


# ---- nothing grants what the policy does not allow ----


def test_a_principal_not_on_the_allowlist_is_ticketed_never_granted(tmp_path):
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}], sinks="github") as world:
        world.failing_caller(STRANGER)
        world.run_traffic(3)
        assert world.scan().actions == {"ticket": 1}
        incident = world.incident_of(STRANGER)
        assert incident.status == inc.TICKETED
        assert "allowlist" in refusal_rules(world, incident.id)
        assert world.arm_calls("PUT") == 0 and world.role_assignments_of(STRANGER) == []
        assert len(world.github_issues()) == 1


@pytest.mark.parametrize("allow_users", [False, True])
def test_a_user_is_granted_only_with_the_user_setting(tmp_path, allow_users):
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": DANA, "principal_type": "User"}],
                       TRIAGE_ALLOW_USER_GRANTS=str(allow_users).lower()) as world:
        world.failing_caller(DANA, principal_type="User")
        world.run_traffic(3)
        world.scan()
        incident = world.incident_of(DANA)
        if allow_users:
            assert incident.status == inc.VERIFYING
            [assignment] = world.role_assignments_of(DANA)
            assert assignment.principal_type == "User"
        else:
            assert incident.status == inc.TICKETED
            assert refusal_rules(world, incident.id) == ["principal_type"]
            assert world.arm_calls("PUT") == 0 and world.role_assignments_of(DANA) == []


def test_an_allowlist_entry_scoped_to_a_resource_group_grants_only_at_the_account(tmp_path):
    with service_world(tmp_path, mode="enforce", allowlist=[]) as world:
        account = world.failing_caller(ORDERS)
        resource_group = account.split("/providers/")[0]
        # The resource group's id is known once the stand-in runs: a second instance gets the scoped allowlist.
        world.env["TRIAGE_ALLOWLIST"] = f'[{{"object_id": "{ORDERS}", "scopes": ["{resource_group}"]}}]'
        world.rt = world.another_runtime()
        world.run_traffic(3)
        world.scan()
        [assignment] = world.role_assignments_of(ORDERS)
        assert assignment.scope.lower() == account.lower()
        [put] = [c for c in world.az.calls.records if c.service == "arm" and c.method == "PUT"]
        assert put.path.lower().startswith(account.lower() + "/providers/microsoft.authorization/")


def _account_to(kind: str, account: str) -> str:
    return {
        "resource-group": account.split("/providers/")[0],
        "subscription": account.split("/resourcegroups/")[0],
        "dot-dot": account + "/..",
        "trailing-slash": account + "/",
        "project-escape": account + "/projects/p1/../../other",
    }[kind]


@pytest.mark.parametrize("kind", ["resource-group", "subscription", "dot-dot", "trailing-slash", "project-escape"])
def test_failures_logged_against_anything_but_an_account_never_lead_to_a_grant(tmp_path, kind):
    with service_world(tmp_path, mode="enforce", allowlist=[{"object_id": ORDERS}]) as world:
        world.az.add_principal(ORDERS)
        account = world.az.add_account("aoai").lower()
        # A real denied request, logged as if the resource were something broader or malformed.
        outcome = world.az.call("aoai", OPENAI_ROUTE, caller=ORDERS, log=False)
        row = telemetry.diagnostics_row(outcome, random.Random(7))
        row["_ResourceId"] = _account_to(kind, account)
        row["ResourceId"] = row["_ResourceId"].upper()
        world.az.add_log_rows("AzureDiagnostics", [row] * 3)
        world.advance(60)

        report = world.scan()
        assert world.arm_calls("PUT") == 0 and world.role_assignments_of(ORDERS) == []
        assert "assign" not in report.actions
        for incident in world.rt.store.list_incidents():
            assert incident.status == inc.TICKETED
            assert {"resource_scope", "scope_matches_resource"} & set(refusal_rules(world, incident.id))
