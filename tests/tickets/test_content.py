"""Ticket content from an incident, the marker, the comment throttle, and the sink factory."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.core.incidents import DIAGNOSED, Incident, fingerprint, incident_id
from shared.core.model import Diagnosis, FixStep
from shared.settings import load_settings
from shared.tickets.base import TicketError
from shared.tickets.content import recurrence_comment, resolution_comment, ticket_content
from shared.tickets.factory import build_sinks
from shared.tickets.marker import marker_for
from shared.tickets.throttle import should_comment
from tests.support.trackers import FAST, make_content, settings_for

OID = "3f2504e0-4f89-11d3-9a0c-0305e82c3301"
ACCOUNT = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/"
           "Microsoft.CognitiveServices/accounts/contoso-openai")
DOC = "https://learn.microsoft.com/azure/ai-foundry/openai/how-to/role-based-access-control"


def _incident(**changes) -> Incident:
    diagnosis = Diagnosis(
        cause="missing_data_role", role_fixable=True, confidence="high",
        summary="orders-api holds no data-plane role on contoso-openai.",
        role_name="Cognitive Services OpenAI User", role_id="5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",
        scope=ACCOUNT, surface="openai", evidence=("assignments at the account: Reader", "disableLocalAuth: true"),
        fix_command=f"az role assignment create --assignee-object-id {OID} --scope {ACCOUNT}",
        fix_steps=(FixStep("Assign the role at the account.", DOC), FixStep("Restart the app.", None),
                   FixStep("Check the role page again.", DOC)),
    )
    fp = fingerprint(OID, ACCOUNT, "missing_data_role")
    incident = Incident(
        id=incident_id(fp), fingerprint=fp, principal_id=OID, resource_id=ACCOUNT, cause="missing_data_role",
        status=DIAGNOSED, first_seen=datetime(2026, 3, 1, 10, 0, tzinfo=UTC),
        last_seen=datetime(2026, 3, 1, 10, 4, tzinfo=UTC), count=12, principal_type="ServicePrincipal",
        principal_name="orders-api", diagnosis=diagnosis,
        sample_error='{"error":{"code":"PermissionDenied"}}',
    )
    return replace(incident, **changes)


def test_ticket_content_carries_the_incident_and_its_diagnosis():
    incident = _incident()
    content = ticket_content(incident, mode="recommend", action="Recommending the fix.",
                             approve_hint="POST /api/incidents/x/approve", escalated=True)
    assert content.incident_id == incident.id and content.fingerprint == incident.fingerprint
    assert content.cause == "missing_data_role"
    assert content.cause_title == "Caller holds no data-plane role"
    assert content.summary == "orders-api holds no data-plane role on contoso-openai."
    assert (content.principal_id, content.principal_type, content.principal_name) == (
        OID, "ServicePrincipal", "orders-api")
    assert content.count == 12
    assert content.first_seen == "2026-03-01T10:00:00+00:00" and content.last_seen == "2026-03-01T10:04:00+00:00"
    assert content.evidence == ("assignments at the account: Reader", "disableLocalAuth: true")
    assert content.fix_steps[1] == ("Restart the app.", None)
    assert content.doc_links == (DOC,)  # de-duplicated
    assert content.fix_command.startswith("az role assignment create")
    assert (content.mode, content.action, content.escalated) == ("recommend", "Recommending the fix.", True)
    assert content.approve_hint == "POST /api/incidents/x/approve"
    assert "orders-api" in content.title and "contoso-openai" in content.title


def test_ticket_content_survives_a_store_round_trip_and_missing_diagnosis():
    incident = _incident()
    again = Incident.from_record(incident.to_record())
    assert ticket_content(again, mode="enforce", action="a") == ticket_content(incident, mode="enforce", action="a")
    bare = ticket_content(_incident(diagnosis=None, cause="no_such_cause"), mode="observe", action="a")
    assert bare.cause_title == "Unrecognised failure" and bare.summary == "Unrecognised failure"
    assert bare.fix_steps == () and bare.fix_command is None


def test_comment_texts_say_what_and_when():
    content = make_content(count=42, last_seen="2026-03-01T11:00:00+00:00")
    assert "42 failures so far (was 40)" in recurrence_comment(content, previous_count=40)
    assert recurrence_comment(content, reopened=True).startswith("The problem came back")
    text = resolution_comment(what_fixed="assigned Cognitive Services OpenAI User at contoso-openai",
                              verified_at=datetime(2026, 3, 1, 10, 20, tzinfo=UTC))
    assert "assigned Cognitive Services OpenAI User" in text and "2026-03-01T10:20:00+00:00" in text


@given(st.text())
def test_marker_is_a_valid_label_tag_and_correlation_id_everywhere(fp):
    marker = marker_for(fp)
    assert re.fullmatch(r"triage-[0-9a-f]{12}", marker)  # no spaces (Jira), <= 50 (GitHub), <= 100 (ServiceNow)
    assert marker == marker_for(fp)


def test_markers_differ_per_fingerprint():
    assert marker_for("a|/x|rbac") != marker_for("a|/x|token")


def test_should_comment_first_time_and_after_the_interval_only():
    now = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)
    hour = timedelta(hours=1)
    assert should_comment(None, now, hour)
    assert not should_comment(now - timedelta(minutes=59), now, hour)
    assert should_comment(now - hour, now, hour)
    assert not should_comment(now + timedelta(minutes=5), now, hour)  # clock skew: never two comments


@given(st.integers(min_value=-10_000, max_value=10_000), st.integers(min_value=0, max_value=5_000),
       st.integers(min_value=0, max_value=5_000))
def test_should_comment_is_elapsed_at_least_interval_and_monotonic(elapsed, interval, later):
    last = datetime(2026, 3, 1, tzinfo=UTC)
    now = last + timedelta(seconds=elapsed)
    window = timedelta(seconds=interval)
    assert should_comment(last, now, window) == (elapsed >= interval)
    if should_comment(last, now, window):
        assert should_comment(last, now + timedelta(seconds=later), window)


# ---- factory ----




def test_build_sinks_follows_the_configured_order(standins):
    sinks = build_sinks(settings_for(standins, "jira,log,webhook,github,servicenow,azuredevops"), http_options=FAST)
    assert [s.name for s in sinks] == ["jira", "log", "webhook", "github", "servicenow", "azuredevops"]
    assert [s.name for s in build_sinks(load_settings({}))] == ["log"]


def test_tls_is_verified_against_the_configured_ca_bundle_only(standins):
    env = standins.settings_env() | {"TRIAGE_TICKET_SINKS": "github"}
    (trusting,) = build_sinks(load_settings(env | {"TRIAGE_CA_BUNDLE": standins.ca_path}), http_options=FAST)
    assert trusting.open_or_update(make_content()).created
    (untrusting,) = build_sinks(load_settings(env), http_options=FAST)  # system CAs do not know the stand-in
    with pytest.raises(TicketError, match="github sink: tracker unreachable"):
        untrusting.open_or_update(make_content())


def test_a_ticket_for_another_identity_carries_the_exact_command_and_no_grant():
    from shared.core.diagnose import diagnose
    from shared.core.model import FailureSignal

    text = ("Invalid AzureCognitiveSearch configuration detected: Call to get Azure Search index failed. Azure Search "
            "Error: 403, message='Server responded with status 403. Error message: {\"error\":{\"code\":\"\","
            "\"message\":\"Authorization failed.\"}}', url=URL('https://srch-acme.search.windows.net/indexes/docs')")
    diagnosis = diagnose(FailureSignal(status=400, message=text, auth="entra", object_id=OID, resource_id=ACCOUNT))
    fp = fingerprint(OID, ACCOUNT, diagnosis.cause)
    content = ticket_content(_incident(cause=diagnosis.cause, diagnosis=diagnosis, fingerprint=fp,
                                       id=incident_id(fp)), mode="enforce", action="Ticketed.")
    assert content.cause == "other_principal_denied" and content.fix_command is None
    assert content.cause_title == "The refused identity is not the caller"
    commands = [text for text, _ in content.fix_steps if "az role assignment create" in text]
    assert len(commands) == 2 and all("srch-acme" in c for c in commands)
