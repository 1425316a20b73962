"""Incident lifecycle: open, merge (without double counting overlapping scans), reopen, decisions, approvals,
grants and waits for propagation."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.core import incidents as inc
from shared.core import roles
from shared.core.allowlist import Allowlist, AllowlistEntry
from shared.core.lifecycle import (
    SAMPLE_ERROR_LIMIT,
    apply_decision,
    approval_valid,
    open_or_update,
    record_grant,
    start_waiting,
)
from shared.core.model import HIGH, Diagnosis, FailureSignal
from shared.core.policy import Decision, PolicyConfig, PolicyContext, Refusal, decide

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
SUB = "6a2c1f3e-1b2c-4d5e-8f90-0123456789ab"
ACCOUNT = f"/subscriptions/{SUB}/resourceGroups/rg-ai/providers/Microsoft.CognitiveServices/accounts/contoso-aoai"
SP = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
WINDOW, LAG, MAX_VERIFY, TTL = timedelta(minutes=10), timedelta(minutes=5), timedelta(hours=24), timedelta(hours=24)
OPENAI_USER = roles.COGNITIVE_SERVICES_OPENAI_USER


def diagnosis(cause: str = "missing_data_role", **changes) -> Diagnosis:
    return replace(
        Diagnosis(cause=cause, role_fixable=cause != "propagation_pending", confidence=HIGH,
                  summary=f"summary of {cause}", role_name=OPENAI_USER.name, role_id=OPENAI_USER.guid,
                  scope=ACCOUNT, surface="openai"),
        **changes,
    )


def signal(first: datetime = T0, last: datetime | None = None, count: int = 3, **changes) -> FailureSignal:
    return replace(
        FailureSignal(status=401, code="PermissionDenied", message="The principal lacks the required data action",
                      object_id=SP.upper(), auth="entra", resource_id=ACCOUNT, principal_type="ServicePrincipal",
                      count=count, first_seen=first, last_seen=last or first + timedelta(minutes=4),
                      source="logs:ws"),
        **changes,
    )


def opened(**changes) -> inc.Incident:
    return open_or_update(None, signal(**changes), diagnosis(), T0 + timedelta(minutes=5))


def decision(action: str, *refusals: Refusal) -> Decision:
    return Decision(action, OPENAI_USER.guid, OPENAI_USER.name, ACCOUNT, "ServicePrincipal", refusals,
                    cause="missing_data_role")


# ---- open and merge ---------------------------------------------------------------------------------------------


def test_a_new_failure_opens_a_diagnosed_incident():
    now = T0 + timedelta(minutes=5)
    incident = open_or_update(None, signal(), diagnosis(), now)
    fp = inc.fingerprint(SP, ACCOUNT, "missing_data_role")
    assert (incident.id, incident.fingerprint) == (inc.incident_id(fp), fp)
    assert incident.status == inc.DIAGNOSED and incident.is_open
    assert incident.principal_id == SP  # normalized
    assert incident.resource_id == ACCOUNT
    assert (incident.count, incident.first_seen, incident.last_seen) == (3, T0, T0 + timedelta(minutes=4))
    assert incident.diagnosis == diagnosis()
    assert incident.sample_error == "The principal lacks the required data action"
    assert [a.kind for a in incident.actions] == ["diagnosed"]


def test_key_callers_share_one_incident_per_resource():
    incident = open_or_update(None, signal(object_id=None, auth="key"), diagnosis("invalid_api_key"), T0)
    assert incident.principal_id is None
    assert incident.fingerprint.startswith(inc.KEY_CALLERS + "|")


def test_sample_error_is_truncated():
    incident = opened(message="x" * 5000)
    assert len(incident.sample_error) == SAMPLE_ERROR_LIMIT == 2000


def test_merge_adds_counts_and_widens_the_seen_range():
    first = opened()
    later = signal(first=T0 + timedelta(minutes=10), count=4, message="newer error")
    merged = open_or_update(first, later, diagnosis(), T0 + timedelta(minutes=15))
    assert merged.id == first.id
    assert merged.count == 7
    assert (merged.first_seen, merged.last_seen) == (T0, T0 + timedelta(minutes=14))
    assert merged.sample_error == "newer error"
    earlier = signal(first=T0 - timedelta(hours=1), last=T0 - timedelta(minutes=50), count=2, message=None)
    merged = open_or_update(merged, earlier, diagnosis(), T0 + timedelta(minutes=16))
    assert merged.first_seen == T0 - timedelta(hours=1) and merged.last_seen == T0 + timedelta(minutes=14)
    assert merged.sample_error == "newer error"  # a signal without a message keeps the last one


def test_cause_moves_within_the_family_and_keeps_the_incident():
    first = opened()
    pending = diagnosis("propagation_pending", role_fixable=False)
    merged = open_or_update(first, signal(first=T0 + timedelta(minutes=10)), pending, T0 + timedelta(minutes=15))
    assert merged.id == first.id
    assert merged.cause == "propagation_pending" and merged.diagnosis.cause == "propagation_pending"
    assert merged.actions[-1].kind == "cause-changed"
    assert "missing_data_role -> propagation_pending" in merged.actions[-1].detail


def test_a_failure_of_another_family_is_not_merged():
    with pytest.raises(ValueError, match="belongs to incident"):
        open_or_update(opened(), signal(), diagnosis("token_audience_invalid", role_fixable=False), T0)


def test_overlap_rows_are_not_counted_twice():
    first = opened()  # rows T0 .. T0+4m, count 3
    # The next scan re-reads T0+3m.. (overlap) and finds 2 of its 5 rows there.
    again = signal(first=T0 + timedelta(minutes=3), last=T0 + timedelta(minutes=9), count=5, overlap_count=2)
    assert open_or_update(first, again, diagnosis(), T0 + timedelta(minutes=10)).count == 3 + 3


def test_overlap_rows_after_everything_counted_are_new():
    first = opened()  # last seen T0+4m
    # Late-ingested rows in the overlap, all newer than anything counted: they were never counted.
    late = signal(first=T0 + timedelta(minutes=5), last=T0 + timedelta(minutes=6), count=2, overlap_count=2)
    assert open_or_update(first, late, diagnosis(), T0 + timedelta(minutes=10)).count == 3 + 2


def test_overlap_larger_than_count_never_subtracts():
    first = opened()
    odd = signal(first=T0, count=1, overlap_count=9)
    assert open_or_update(first, odd, diagnosis(), T0 + timedelta(minutes=10)).count == 3


@st.composite
def scan_streams(draw):
    """Failure rows (minute offsets, with an ingestion delay each) and scan end times over an hour."""
    rows = draw(st.lists(st.tuples(st.integers(0, 120), st.integers(0, 20)), min_size=1, max_size=40))
    ends = sorted(set(draw(st.lists(st.integers(1, 160), min_size=1, max_size=12)))) + [200]
    overlap = draw(st.integers(0, 30))
    return rows, ends, overlap


def _run_scans(rows, ends, overlap) -> tuple[int, inc.Incident | None]:
    """Replay scans like the engine: each reads [previous end - overlap, end) of the rows ingested by then."""
    incident = None
    watermark = None
    for end in ends:
        start = 0 if watermark is None else max(0, watermark - overlap)
        visible = [t for t, delay in rows if start <= t < end and t + delay <= end]
        if visible:
            in_overlap = 0 if watermark is None else sum(1 for t in visible if t < watermark)
            sig = signal(first=T0 + timedelta(minutes=min(visible)), last=T0 + timedelta(minutes=max(visible)),
                         count=len(visible), overlap_count=in_overlap)
            incident = open_or_update(incident, sig, diagnosis(), T0 + timedelta(minutes=end))
        watermark = end
    return len(rows), incident


@settings(max_examples=300, deadline=None)
@given(stream=scan_streams())
def test_overlapping_scans_never_count_more_than_the_true_count(stream):
    true_count, incident = _run_scans(*stream)
    assert incident is None or incident.count <= true_count


@settings(max_examples=200, deadline=None)
@given(stream=scan_streams())
def test_without_late_rows_overlapping_scans_count_exactly(stream):
    rows, ends, overlap = stream
    on_time = [(t, 0) for t, _ in rows if t < ends[-1]]
    true_count, incident = _run_scans(on_time, ends, overlap)
    assert incident is not None and incident.count == true_count


# ---- reopen -----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("closed_status", [inc.RESOLVED, inc.CLOSED_UNVERIFIED])
def test_a_closed_incident_that_recurs_reopens(closed_status):
    closed_at = T0 + timedelta(hours=1)
    closed = replace(opened(), status=closed_status, closed_at=closed_at, verify_due=None,
                     verify_deadline=closed_at, approval_handle="x", approval_expires_at=closed_at)
    recur = signal(first=closed_at + timedelta(minutes=1), count=2)
    reopened = open_or_update(closed, recur, diagnosis(), closed_at + timedelta(minutes=10))
    assert reopened.status == inc.DIAGNOSED and reopened.is_open
    assert reopened.actions[-1].kind == "reopened"
    assert reopened.closed_at is None and reopened.verify_deadline is None and reopened.approval_handle is None
    assert reopened.count == 5 and reopened.id == closed.id


def test_late_rows_from_before_the_close_do_not_reopen():
    closed_at = T0 + timedelta(hours=1)
    closed = replace(opened(), status=inc.RESOLVED, closed_at=closed_at)
    late = signal(first=closed_at - timedelta(minutes=20), last=closed_at - timedelta(minutes=15), count=1)
    merged = open_or_update(closed, late, diagnosis(), closed_at + timedelta(minutes=5))
    assert merged.status == inc.RESOLVED and merged.count == 4
    assert merged.actions[-1].kind != "reopened"


def test_open_incidents_keep_their_status_on_recurrence():
    ticketed = replace(opened(), status=inc.TICKETED)
    merged = open_or_update(ticketed, signal(first=T0 + timedelta(minutes=30)), diagnosis(), T0 + timedelta(hours=1))
    assert merged.status == inc.TICKETED


# ---- decisions and approvals ------------------------------------------------------------------------------------


def test_recommendation_issues_an_expiring_approval_handle():
    now = T0 + timedelta(minutes=6)
    incident = apply_decision(opened(), decision("recommend", Refusal("mode", "recommend")), now, TTL)
    assert incident.status == inc.RECOMMENDED
    assert incident.approval_handle == incident.id
    assert incident.approval_expires_at == now + TTL
    assert incident.actions[-1].kind == "recommended"
    assert OPENAI_USER.name in incident.actions[-1].detail and ACCOUNT in incident.actions[-1].detail
    assert approval_valid(incident, now)
    assert approval_valid(incident, now + TTL - timedelta(seconds=1))
    assert not approval_valid(incident, now + TTL)  # expires exactly at the end of the TTL
    assert not approval_valid(incident, now + TTL + timedelta(hours=1))


def test_a_valid_recommendation_is_not_extended_but_an_expired_one_is_reissued():
    now = T0 + timedelta(minutes=6)
    rec = decision("recommend", Refusal("mode", "recommend"))
    first = apply_decision(opened(), rec, now, TTL)
    again = apply_decision(first, rec, now + timedelta(hours=3), TTL)
    assert again == first  # no new action, no longer expiry
    later = now + TTL + timedelta(minutes=1)
    reissued = apply_decision(first, rec, later, TTL)
    assert reissued.approval_expires_at == later + TTL and approval_valid(reissued, later)
    assert len(reissued.actions) == len(first.actions) + 1


def test_approval_requires_a_recommendation():
    now = T0 + timedelta(minutes=6)
    recommended = apply_decision(opened(), decision("recommend", Refusal("mode", "recommend")), now, TTL)
    assert not approval_valid(replace(recommended, status=inc.TICKETED), now)
    assert not approval_valid(replace(recommended, approval_handle=None), now)
    assert not approval_valid(opened(), now)


def test_a_ticket_decision_withdraws_the_recommendation_and_names_the_rules():
    now = T0 + timedelta(minutes=6)
    recommended = apply_decision(opened(), decision("recommend", Refusal("mode", "recommend")), now, TTL)
    ticket = decision("ticket", Refusal("mode", "recommend"), Refusal("circuit_breaker", "breaker open"))
    ticketed = apply_decision(recommended, ticket, now + timedelta(minutes=1), TTL)
    assert ticketed.status == inc.TICKETED
    assert ticketed.approval_handle is None and not approval_valid(ticketed, now)
    assert ticketed.actions[-1].kind == "ticketed"
    assert "[mode]" in ticketed.actions[-1].detail and "[circuit_breaker]" in ticketed.actions[-1].detail


def test_repeating_the_same_decision_does_not_grow_the_record():
    ticket = decision("ticket", Refusal("allowlist", "not on the allowlist"))
    once = apply_decision(opened(), ticket, T0 + timedelta(minutes=6), TTL)
    twice = apply_decision(once, ticket, T0 + timedelta(minutes=11), TTL)
    assert len(twice.actions) == len(once.actions)
    other = decision("ticket", Refusal("daily_cap", "cap"))
    assert len(apply_decision(twice, other, T0 + timedelta(minutes=16), TTL).actions) == len(once.actions) + 1


@pytest.mark.parametrize(("action", "status", "kind"), [
    ("suppressed", inc.SUPPRESSED, "suppressed"),
    ("observe", inc.DIAGNOSED, "observed"),
    ("wait", inc.DIAGNOSED, "waiting"),
    ("assign", inc.ASSIGNED, "assign-decided"),
])
def test_other_decisions(action, status, kind):
    refusals = (Refusal("suppression", "opted out"),) if action == "suppressed" else ()
    incident = apply_decision(opened(), decision(action, *refusals), T0 + timedelta(minutes=6), TTL)
    assert incident.status == status and incident.actions[-1].kind == kind


def test_lifecycle_with_a_real_policy_decision():
    cfg = PolicyConfig(mode="recommend", allowlist=Allowlist((AllowlistEntry(SP),)))
    ctx = PolicyContext(now=T0, grants_this_run=0, grants_last_24h=0, last_grant_at=None,
                        suppressed_targets=frozenset(), breaker_open=False, approved=False)
    recommended = apply_decision(opened(), decide(diagnosis(), SP, cfg, ctx), T0, TTL)
    assert recommended.status == inc.RECOMMENDED and approval_valid(recommended, T0)
    # At approval time the policy is asked again with the mode gate lifted, for exactly the terms it showed.
    assert recommended.approval_terms is not None and recommended.approval_terms.role_id == diagnosis().role_id
    approved = decide(diagnosis(), SP, cfg, replace(ctx, approved=approval_valid(recommended, T0),
                                                    approved_terms=recommended.approval_terms))
    assert approved.grants


# ---- grants and waits -------------------------------------------------------------------------------------------


def test_record_grant_schedules_verification_after_propagation():
    now = T0 + timedelta(minutes=7)
    created = now - timedelta(seconds=2)
    recommended = apply_decision(opened(), decision("recommend", Refusal("mode", "m")), T0, TTL)
    granted = record_grant(recommended, "created", "/sub/ra/1", created, now, WINDOW, LAG, MAX_VERIFY)
    assert granted.status == inc.VERIFYING
    assert granted.verify_due == created + WINDOW + LAG
    assert granted.verify_deadline == created + MAX_VERIFY
    assert granted.last_grant_at == now
    assert (granted.assignment_id, granted.assignment_created_at) == ("/sub/ra/1", created)
    assert granted.approval_handle is None  # an approval authorizes one grant
    assert granted.actions[-1].kind == "assigned"
    assert inc.Incident.from_record(granted.to_record()) == granted


def test_an_existing_assignment_is_verified_but_never_marked_as_ours():
    now = T0 + timedelta(minutes=7)
    granted = record_grant(opened(), "exists", None, None, now, WINDOW, LAG, MAX_VERIFY)
    assert granted.assignment_id is None
    assert granted.assignment_created_at == now and granted.verify_due == now + WINDOW + LAG
    assert granted.actions[-1].kind == "assignment-exists"


@pytest.mark.parametrize("status", ["retry_later", "forbidden", "failed", ""])
def test_record_grant_refuses_unsuccessful_outcomes(status):
    with pytest.raises(ValueError, match="successful outcome"):
        record_grant(opened(), status, None, None, T0, WINDOW, LAG, MAX_VERIFY)


def test_group_case_verifies_for_at_least_a_day():
    group = open_or_update(None, signal(), diagnosis("group_membership_cache"), T0)
    granted = record_grant(group, "created", "ra", T0, T0, WINDOW, LAG, timedelta(hours=1))
    assert granted.verify_deadline == T0 + timedelta(hours=24)
    plain = record_grant(opened(), "created", "ra", T0, T0, WINDOW, LAG, timedelta(hours=1))
    assert plain.verify_deadline == T0 + timedelta(hours=1)


def test_deadline_is_never_before_the_first_check():
    granted = record_grant(opened(), "created", "ra", T0, T0, WINDOW, LAG, timedelta(minutes=1))
    assert granted.verify_deadline == granted.verify_due == T0 + WINDOW + LAG


def test_waiting_for_propagation_makes_no_grant():
    role_created = T0 - timedelta(minutes=3)
    pending = open_or_update(opened(), signal(first=T0 + timedelta(minutes=5)),
                             diagnosis("propagation_pending", role_fixable=False), T0 + timedelta(minutes=6))
    waiting = start_waiting(pending, role_created, T0 + timedelta(minutes=6), WINDOW, LAG, MAX_VERIFY)
    assert waiting.status == inc.VERIFYING
    assert waiting.verify_due == role_created + WINDOW + LAG
    assert waiting.verify_deadline == role_created + MAX_VERIFY
    assert waiting.last_grant_at is None and waiting.assignment_id is None
    assert waiting.actions[-1].kind == "waiting"
    again = start_waiting(waiting, role_created, T0 + timedelta(minutes=8), WINDOW, LAG, MAX_VERIFY)
    assert len(again.actions) == len(waiting.actions) and again.verify_due == waiting.verify_due
