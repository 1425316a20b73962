"""The triage rules for degraded evidence (shared/core/triage.py): a known incident gets no decision and no ticket
comment while its evidence could not be read, a decision refused for missing evidence is made again, and a failure
goes to the incident of its principal and resource that was last decided on good evidence."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from shared.core import incidents as inc
from shared.core import triage
from shared.core.causes import CAUSE_IDS, family_of
from shared.core.incidents import Action
from shared.core.lifecycle import open_or_update
from shared.core.model import HIGH, Diagnosis, FailureSignal
from shared.core.policy import Decision, Refusal
from shared.core.status import DecisionAction

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
ACCOUNT = ("/subscriptions/6a2c1f3e-1b2c-4d5e-8f90-0123456789ab/resourceGroups/rg-ai/providers/"
           "Microsoft.CognitiveServices/accounts/contoso-aoai")
SP = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"


def incident(cause: str = "missing_data_role", status: str = inc.TICKETED, *rules: str,
             last_seen: datetime = T0) -> inc.Incident:
    signal = FailureSignal(status=401, code=None, message=None, object_id=SP, auth="entra", resource_id=ACCOUNT,
                           count=2, first_seen=last_seen, last_seen=last_seen, source="logs:ws")
    opened = open_or_update(None, signal, Diagnosis(cause, True, HIGH, "s"), last_seen)
    return replace(opened, status=status, ticket_refs={"tracker": "1"}).with_action(
        Action(last_seen, "ticketed", "refused", rules=rules))


def test_a_ticket_refused_for_missing_evidence_awaits_a_new_decision_whatever_else_refused_it():
    refused = incident("missing_data_role", inc.TICKETED, "mode", triage.EVIDENCE_RULE)
    assert triage.decided_without_evidence(refused) and triage.awaits_decision(refused, T0)
    plain = incident("missing_data_role", inc.TICKETED, "allowlist")
    assert not triage.decided_without_evidence(plain) and not triage.awaits_decision(plain, T0)


def test_while_evidence_is_degraded_a_known_incident_gets_no_decision_and_no_comment():
    existing = incident("missing_data_role", inc.DIAGNOSED)  # would await a decision on good evidence
    merged = replace(existing, count=existing.count + 4, last_seen=T0 + timedelta(hours=2))
    assert triage.needs_decision(existing, merged, T0, evidence_complete=True)
    assert not triage.needs_decision(existing, merged, T0, evidence_complete=False)
    assert triage.needs_decision(None, merged, T0, evidence_complete=False)  # a new one is always recorded

    ticketed = incident()
    more = replace(ticketed, count=ticketed.count + 4, last_seen=T0 + timedelta(hours=2))
    now = T0 + timedelta(hours=2)
    assert triage.recurrence(ticketed, more, now, timedelta(minutes=60)).comment_due
    held = triage.recurrence(ticketed, more, now, timedelta(minutes=60), evidence_complete=False)
    assert held.write and not held.comment_due


def test_a_ticket_made_without_evidence_is_rewritten_once_evidence_decides_the_same():
    refused = incident("missing_data_role", inc.TICKETED, triage.EVIDENCE_RULE)
    again = Decision(DecisionAction.TICKET, None, None, None, None, (Refusal("allowlist", "not listed"),),
                     cause="missing_data_role")
    assert not triage.still_refused(refused, refused, again)
    assert triage.still_refused(incident("missing_data_role", inc.TICKETED, "allowlist"), refused, again)


def test_the_ids_of_a_principals_incidents_on_a_resource_cover_every_cause_family():
    ids = triage.incident_ids_of(SP, ACCOUNT)
    assert len(ids) == len({family_of(c) for c in CAUSE_IDS})
    for cause in CAUSE_IDS:
        assert inc.incident_id(inc.fingerprint(SP, ACCOUNT, cause)) in ids


def test_the_last_good_incident_is_an_open_one_then_the_latest_seen():
    closed_later = replace(incident("network_denied", last_seen=T0 + timedelta(hours=3)), status=inc.RESOLVED)
    open_earlier = incident("missing_data_role", last_seen=T0)
    assert triage.last_good([closed_later, open_earlier]) is open_earlier
    assert triage.last_good([closed_later]) is closed_later
    assert triage.last_good([replace(open_earlier, diagnosis=None)]) is None
    assert triage.last_good([]) is None
