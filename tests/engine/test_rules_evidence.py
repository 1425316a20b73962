"""An evidence outage never downgrades (issue 11): while ARM cannot be read, a known incident keeps its last good
diagnosis, no decision is made for it and its ticket is not touched; the run reports `evidence_errors`. A new
incident first seen during the outage is recorded, and nothing is granted on its degraded diagnosis."""

from __future__ import annotations

import pytest

from shared.core import incidents as inc
from shared.engine.approvals import ActionRefused, approve
from shared.engine.scan import run_scan
from tests.engine.common import ACCOUNT, ALICE, ORDERS, STRANGER, incident_of


def test_a_known_incident_keeps_its_diagnosis_and_its_ticket_while_arm_is_down(make_runtime, traffic, store, sink,
                                                                                evidence, clock):
    rt = make_runtime(mode="enforce")  # STRANGER is not allowlisted: a ticket
    traffic(3, failing=[STRANGER])
    good = run_scan(rt)
    assert not good.failed and good.evidence_errors == []
    ticketed = incident_of(store, STRANGER)
    assert (ticketed.status, ticketed.cause, ticketed.diagnosis.confidence) == (inc.TICKETED, "missing_data_role",
                                                                                 "high")
    calls = list(sink.calls)

    evidence.arm_down()
    clock.advance(hours=2)  # a "still failing" comment would be due
    traffic(3, failing=[STRANGER])
    outage = run_scan(rt)
    assert outage.failed and outage.evidence_errors
    assert all("ServiceUnavailable" in e for e in outage.evidence_errors)
    assert outage.to_json()["evidence_errors"] == outage.evidence_errors
    kept = incident_of(store, STRANGER)
    assert (kept.status, kept.cause, kept.diagnosis) == (ticketed.status, ticketed.cause, ticketed.diagnosis)
    assert kept.count == ticketed.count + 6  # the failures are still counted
    assert sink.calls == calls  # the ticket is not rewritten, not even commented
    assert [a.kind for a in store.list_audit() if a.kind == "evidence-error"] == ["evidence-error"]

    evidence.arm_up()
    traffic(3, failing=[STRANGER])
    recovered = run_scan(rt)
    assert not recovered.failed
    assert incident_of(store, STRANGER).diagnosis.confidence == "high"
    assert [c.op for c in sink.calls[len(calls):]] == ["open_or_update"]  # the comment that was held back


def test_an_outage_cannot_move_a_failure_to_another_cause_family_nor_grant_for_it(make_runtime, source, store,
                                                                                   roles, evidence, clock):
    """A 403 without text on an account that refuses public traffic is network_denied; with the account unreadable
    the same failure looks like a missing role (another incident, and a grant for an allowlisted caller)."""
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    evidence.add_account(ACCOUNT, public_network_access="Disabled")
    source.fail(ORDERS, ACCOUNT, count=2, status=403, code=None)
    clock.advance(minutes=1)
    run_scan(rt)
    network = incident_of(store, ORDERS)
    assert network.cause == "network_denied" and network.status == inc.TICKETED

    evidence.arm_down()
    source.fail(ORDERS, ACCOUNT, count=2, status=403, code=None)
    clock.advance(minutes=1)
    report = run_scan(rt)
    assert report.failed
    kept = incident_of(store, ORDERS)  # still one incident
    assert kept.id == network.id and kept.cause == "network_denied" and kept.count == 4
    assert roles.grants == []


def test_a_new_incident_during_an_outage_is_recorded_but_nothing_is_granted_until_evidence_is_back(
        make_runtime, traffic, store, roles, evidence, sink):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    evidence.arm_down()
    traffic(3, failing=[ORDERS])
    report = run_scan(rt)
    assert report.failed and report.evidence_errors
    recorded = incident_of(store, ORDERS)
    assert recorded.count == 6 and recorded.status == inc.TICKETED
    assert "evidence_complete" in recorded.actions[-1].rules
    assert roles.grants == []
    assert "live evidence could not be read" in sink.ticket_of(recorded.id).content.action

    evidence.arm_up()
    traffic(1, failing=[ORDERS])
    run_scan(rt)  # the decision made without evidence is made again
    granted = incident_of(store, ORDERS)
    assert granted.status == inc.VERIFYING and len(roles.grants) == 1


def test_an_approval_during_an_outage_is_refused(make_runtime, traffic, store, roles, evidence):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    traffic(3, failing=[ORDERS])
    run_scan(rt)
    recommended = incident_of(store, ORDERS)
    assert recommended.status == inc.RECOMMENDED

    evidence.arm_down()
    with pytest.raises(ActionRefused, match="evidence_complete"):
        approve(rt, recommended.id, ALICE)
    assert roles.grants == []
    evidence.arm_up()
    assert approve(rt, recommended.id, ALICE).status == inc.VERIFYING


def test_settled_failures_need_no_evidence_so_an_outage_reports_nothing(make_runtime, traffic, store, evidence,
                                                                          clock):
    rt = make_runtime(mode="enforce")
    traffic(3, failing=[STRANGER])
    run_scan(rt)
    evidence.arm_down()
    clock.advance(minutes=1)
    quiet = run_scan(rt)  # nothing new: every group is settled, no evidence is read
    assert not quiet.failed and quiet.evidence_errors == []
