"""The scan cycle: watermarks move only after a complete read, re-read rows are counted once, the steady state
costs nothing, and a grant claimed by an instance that died is taken over once its claim is stale."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from shared.core import incidents as inc
from shared.core.incidents import Action
from shared.engine.scan import run_scan
from tests.engine.common import ACCOUNT, ALICE, ORDERS, STRANGER, incident_of

OVERLAP_MINUTES = 10  # TRIAGE_LOOKBACK_OVERLAP_MINUTES default


def test_the_first_scan_reads_the_initial_lookback_and_later_ones_re_read_the_overlap(make_runtime, traffic,
                                                                                       source, store, clock):
    rt = make_runtime(mode="observe")
    traffic(3, failing=[ORDERS])
    run_scan(rt)
    first = source.reads[-1]
    assert first.watermark is None and first.end - first.start == timedelta(minutes=60)
    assert store.get_watermark(source.name) == first.end == clock.now()

    traffic(4, failing=[ORDERS])
    run_scan(rt)
    second = source.reads[-1]
    assert second.watermark == first.end and second.start == first.end - timedelta(minutes=OVERLAP_MINUTES)
    assert incident_of(store, ORDERS).count == 14


def test_a_failing_source_is_reported_keeps_the_watermark_and_the_next_run_loses_nothing(make_runtime, traffic,
                                                                                          source, store):
    rt = make_runtime(mode="observe")
    failed = traffic(3, failing=[ORDERS])
    run_scan(rt)
    before = store.get_watermark(source.name)
    assert incident_of(store, ORDERS).count == failed

    failed += traffic(4, failing=[ORDERS])
    source.fail_reads()
    report = run_scan(rt)  # issue 11: a failing source no longer raises out of the scan; it is reported
    assert report.failed and report.failed_sources == [source.name]
    assert "503" in report.sources[source.name]["detail"]
    assert store.get_watermark(source.name) == before
    assert incident_of(store, ORDERS).count == 6

    failed += traffic(1, failing=[ORDERS])
    run_scan(rt)
    assert store.get_watermark(source.name) > before
    assert incident_of(store, ORDERS).count == failed


def test_a_partial_answer_keeps_the_watermark_and_still_counts_each_failure_once(make_runtime, traffic, source,
                                                                                  store):
    rt = make_runtime(mode="observe")
    traffic(3, failing=[ORDERS, STRANGER], per_minute=3)
    run_scan(rt)
    before = store.get_watermark(source.name)

    traffic(3, failing=[ORDERS, STRANGER], per_minute=3)
    source.partial_reads()  # half the groups, and a PartialError
    report = run_scan(rt)
    assert report.partial and store.get_watermark(source.name) == before
    assert [a.kind for a in store.list_audit() if a.kind == "partial-result"] == ["partial-result"]

    traffic(3, failing=[ORDERS, STRANGER], per_minute=3)
    run_scan(rt)
    assert store.get_watermark(source.name) > before
    assert incident_of(store, ORDERS).count == incident_of(store, STRANGER).count == 27


def test_a_malformed_row_is_audited_and_the_other_groups_still_handled(make_runtime, traffic, source, store):
    rt = make_runtime(mode="observe")
    source.add_malformed_row({"ResourceId": "", "Status": "401"}, "missing resource id")
    traffic(2, failing=[ORDERS])
    report = run_scan(rt)
    assert report.rejected == 1 and report.signals == 1
    [record] = [a for a in store.list_audit() if a.kind == "row-rejected"]
    assert record.detail == "missing resource id" and record.inputs["source"] == source.name
    assert incident_of(store, ORDERS).count == 4


@pytest.mark.parametrize("minutes", [1, 8, 30])
def test_repeated_scans_keep_one_incident_and_one_ticket_and_count_every_failure_once(make_runtime, traffic, store,
                                                                                      sink, minutes):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    failed = 0
    for _ in range(4):
        failed += traffic(minutes, failing=[ORDERS], per_minute=3)
        run_scan(rt)
        assert incident_of(store, ORDERS).count == failed
    assert len(store.list_incidents()) == 1
    assert sink.created() == 1 and len(sink.tickets) == 1
    # Recurrence comments are throttled to one per TRIAGE_TICKET_COMMENT_INTERVAL_MINUTES (60).
    [ticket] = sink.tickets.values()
    assert len(ticket.comments) <= 1 + 4 * minutes // 60


def test_steady_state_writes_nothing_calls_no_sink_and_reads_no_evidence(make_runtime, traffic, store, source,
                                                                         evidence, roles, sink, clock):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    traffic(4, failing=[ORDERS])
    run_scan(rt)
    traffic(5, failing=[ORDERS])
    run_scan(rt)
    settled = incident_of(store, ORDERS)
    writes, sink_calls, evidence_reads = store.writes["put_incident"], len(sink.calls), len(evidence.gather_calls)
    audit = len(store.list_audit())

    # Scans whose window still overlaps the old failures: nothing new, so no write, no ticket call, no evidence.
    clock.advance(minutes=5)
    report = run_scan(rt)
    assert report.signals == 1 and report.incidents == [settled.id]
    clock.advance(minutes=OVERLAP_MINUTES)
    run_scan(rt)
    # Once the window has moved past them, nothing is read at all.
    for _ in range(3):
        clock.advance(minutes=5)
        assert run_scan(rt).signals == 0

    assert store.writes["put_incident"] == writes
    assert len(sink.calls) == sink_calls
    assert len(evidence.gather_calls) == evidence_reads
    assert len(store.list_audit()) == audit
    assert roles.grants == []
    assert incident_of(store, ORDERS).etag == settled.etag


def test_a_grant_claimed_by_an_instance_that_died_is_taken_over_once_stale(make_runtime, traffic, store, roles,
                                                                          evidence, clock):
    rt = make_runtime(mode="enforce", allowlist=[ORDERS])
    roles.answer_next("retry_later", message="ARM kept failing after retries: 503")
    traffic(2, failing=[ORDERS])
    assert run_scan(rt).actions == {"assign": 1}
    deferred = incident_of(store, ORDERS)
    assert deferred.status == inc.DIAGNOSED and deferred.actions[-1].kind == "grant-retry-later"
    calls_so_far = len(roles.grants)

    # Another instance claims the grant (exactly the record the engine writes first) and dies before calling ARM.
    now = clock.now()
    claim = replace(deferred, status=inc.ASSIGNED, assignment_id=None, updated_at=now).with_action(
        Action(now, "grant-claimed", "Cognitive Services OpenAI User at the account", "service"))
    store.put_incident(claim, expected_etag=deferred.etag)

    traffic(1, failing=[ORDERS])
    run_scan(rt)  # a fresh claim is respected: its owner may still be at work
    assert len(roles.grants) == calls_so_far
    assert incident_of(store, ORDERS).status == inc.ASSIGNED

    traffic(2, failing=[ORDERS])
    run_scan(rt)  # the claim is older than two minutes: taken over
    assert len(roles.grants) == calls_so_far + 1
    taken_over = incident_of(store, ORDERS)
    assert taken_over.status == inc.VERIFYING and taken_over.assignment_id
    assert len(evidence.of(ORDERS)) == 1


def test_an_alert_scan_reads_only_its_window_and_targets_and_leaves_the_watermark(make_runtime, traffic, source,
                                                                                  store, clock):
    rt = make_runtime(mode="observe")
    traffic(3, failing=[ORDERS])
    start, end = clock.now() - timedelta(minutes=3), clock.now()
    run_scan(rt, resource_ids=(ACCOUNT.lower(),), window=(start, end), verify=False)
    read = source.reads[-1]
    assert (read.start, read.end, read.resource_ids) == (start, end, (ACCOUNT.lower(),))
    assert store.get_watermark(source.name) is None
    # It acts at once but leaves the counting to the timer scan, which reads these rows again.
    assert incident_of(store, ORDERS).count == 0
    run_scan(rt)
    assert incident_of(store, ORDERS).count == 6

    other = ACCOUNT.replace("accounts/aoai", "accounts/other")
    source.fail(STRANGER, other, count=2, at=clock.now() - timedelta(seconds=30))
    run_scan(rt, resource_ids=(ACCOUNT,), window=(start, clock.now()), verify=False)
    assert [i.principal_id for i in store.list_incidents()] == [ORDERS]  # the other account is no target


def test_an_approved_grant_whose_instance_died_is_completed_by_a_later_run(make_runtime, traffic, store, roles,
                                                                          clock):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    traffic(2, failing=[ORDERS])
    run_scan(rt)
    recommended = incident_of(store, ORDERS)
    clock.advance(hours=3)  # the caller has given up; its failures are long out of the re-read window

    # An engineer approves; the instance claims the grant (exactly the record the engine writes first) and dies
    # before calling ARM.
    now = clock.now()
    claim = replace(recommended, status=inc.ASSIGNED, assignment_id=None, approved_by=ALICE, updated_at=now)
    claim = claim.with_action(Action(now, "approved", "", ALICE)).with_action(
        Action(now, "grant-claimed", "Cognitive Services OpenAI User at the account", ALICE))
    store.put_incident(claim, expected_etag=recommended.etag)

    for _ in range(6):  # half an hour of timer scans
        clock.advance(minutes=5)
        run_scan(rt)

    # "A crash between the two leaves a visible 'claimed' state that a later run completes" (processing.py).
    assert len(roles.grants) == 1
    completed = incident_of(store, ORDERS)
    assert completed.status == inc.VERIFYING and completed.assignment_id
