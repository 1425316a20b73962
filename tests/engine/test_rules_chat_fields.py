"""The scan's tickets carry the chat fields from the settings: the approve and suppress links on the app's address
(TRIAGE_PUBLIC_BASE_URL, for the people TRIAGE_CHAT_APPROVERS names), the Log Analytics link on the workspace
(TRIAGE_LOG_ANALYTICS_WORKSPACE_RESOURCE_ID), and on the next update each sink's own reference."""

from __future__ import annotations

from shared.engine.scan import run_scan
from tests.engine.common import ORDERS, incident_of

BASE = "https://triage.contoso.example"
WORKSPACE = ("/subscriptions/00000000-0000-0000-0000-000000000002/resourceGroups/rg-logs/providers/"
             "Microsoft.OperationalInsights/workspaces/contoso-logs")


def test_a_recommendation_ticket_carries_the_links_and_then_its_own_reference(make_runtime, traffic, store, sink):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS], TRIAGE_PUBLIC_BASE_URL=BASE,
                      TRIAGE_LOG_ANALYTICS_WORKSPACE_RESOURCE_ID=WORKSPACE, TRIAGE_CHAT_APPROVERS="alex@contoso.com")
    traffic(3, failing=[ORDERS])
    run_scan(rt)
    incident = incident_of(store, ORDERS)
    [ticket] = sink.tickets.values()
    content = ticket.content
    assert content.approve_url == f"{BASE}/api/act/{incident.id}/approve"
    assert f"--url {BASE}/api/incidents/{incident.id}/approve" in content.approve_command
    assert incident.approval_terms.fingerprint in content.approve_command
    assert content.suppress_url == f"{BASE}/api/act/{incident.id}/suppress" and ORDERS in content.suppress_command
    assert content.logs_url.startswith("https://portal.azure.com/#blade/Microsoft_OMS_Portal/LogsBlade/")
    assert content.rollback_command is None  # nothing was assigned
    assert content.refs == ()  # no ticket yet when it was opened

    recorded = incident_of(store, ORDERS).ticket_refs[sink.name]
    updates = len(sink.calls)
    traffic(5, failing=[ORDERS])  # the next update carries the reference the first call recorded
    run_scan(rt)
    assert len(sink.calls) > updates and sink.created() == 1
    assert ticket.content.refs == ((sink.name, recorded),) and ticket.content.ref_for(sink.name) == recorded

def test_without_the_settings_there_are_no_links_but_the_commands_name_a_placeholder_host(make_runtime, traffic,
                                                                                          store, sink):
    rt = make_runtime(mode="recommend", allowlist=[ORDERS])
    traffic(3, failing=[ORDERS])
    run_scan(rt)
    [ticket] = sink.tickets.values()
    content = ticket.content
    assert content.approve_url is None and content.suppress_url is None and content.logs_url is None
    assert "https://<function-app-host>/api/incidents/" in content.approve_command
