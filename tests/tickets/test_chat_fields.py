"""The TicketContent fields chat messages render (approve link and command, suppress, rollback, the Log Analytics
link, each sink's own reference), as ticket_content fills them from an incident."""

from __future__ import annotations

import base64
import gzip
import re
import shlex
from dataclasses import replace
from datetime import UTC, datetime
from urllib.parse import unquote

import pytest
from hypothesis import given

from shared.core.approval import terms_for
from shared.core.incidents import RECOMMENDED, RESOLVED, Incident
from shared.core.kql_text import literal
from shared.core.resource_ids import enclosing_account
from shared.settings import SettingsError, load_settings
from shared.tickets.content import ticket_content
from tests.tickets.test_content import ACCOUNT, OID, _incident
from tests.tickets.test_markup import FAST, HOSTILE

BASE = "https://triage.contoso.example"
WORKSPACE = ("/subscriptions/00000000-0000-0000-0000-000000000002/resourceGroups/rg-logs/providers/"
             "Microsoft.OperationalInsights/workspaces/contoso-logs")
ASSIGNMENT = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/"
              "Microsoft.CognitiveServices/accounts/contoso-openai/providers/Microsoft.Authorization/"
              "roleAssignments/0b5f7a52-4e61-4b3c-9d4c-6fa3c8c1b9e2")


def recommended() -> Incident:
    incident = _incident(status=RECOMMENDED)
    return replace(incident, approval_terms=terms_for(incident.diagnosis, incident.principal_id))


def content(incident: Incident, *, hint: str | None = "approve it", base_url: str = BASE,
            workspace: str = WORKSPACE):
    return ticket_content(incident, mode="recommend", action="a", approve_hint=hint, base_url=base_url,
                          workspace_resource_id=workspace)


def decoded_query(url: str) -> str:
    """The KQL of a portal link: url-decode, base64, gunzip (what the portal does)."""
    match = re.search(r"/q/([^/]+)/timespan/", url)
    assert match, url
    return gzip.decompress(base64.b64decode(unquote(match.group(1)))).decode("utf-8")


def kql_string_at(text: str, start: int) -> tuple[str, int]:
    """The value of the KQL double-quoted literal starting at text[start] and where it ends (KQL's escapes)."""
    assert text[start] == '"'
    escapes = {"\\": "\\", '"': '"', "n": "\n", "r": "\r", "t": "\t"}
    out, i = [], start + 1
    while text[i] != '"':
        if text[i] == "\\":
            out.append(escapes[text[i + 1]])
            i += 2
        else:
            out.append(text[i])
            i += 1
    return "".join(out), i + 1


# ---- refs ----------------------------------------------------------------------------------------------------


def test_refs_carry_each_sinks_own_reference():
    incident = _incident(ticket_refs={"github": "12", "teams": "1700000000.1234"})
    made = content(incident)
    assert made.refs == (("github", "12"), ("teams", "1700000000.1234"))
    assert made.ref_for("teams") == "1700000000.1234" and made.ref_for("slack") is None
    assert content(_incident()).refs == ()


# ---- approve ---------------------------------------------------------------------------------------------------


def test_an_incident_awaiting_approval_gets_the_link_and_the_full_az_rest_command():
    incident = recommended()
    made = content(incident)
    assert made.approve_url == f"{BASE}/api/act/{incident.id}/approve"
    command = made.approve_command.splitlines()[0]
    args = shlex.split(command)
    assert args[:4] == ["az", "rest", "--method", "post"]
    assert args[args.index("--url") + 1] == f"{BASE}/api/incidents/{incident.id}/approve"
    assert args[args.index("--headers") + 1] == "x-functions-key=<function key>"  # a placeholder, never a key
    body = args[args.index("--body") + 1]
    assert f'"fingerprint": "{incident.approval_terms.fingerprint}"' in body and '"by": "<you>"' in body


def test_no_approve_link_without_the_hint_and_none_without_the_host():
    incident = recommended()
    assert content(incident, hint=None).approve_url is None and content(incident, hint=None).approve_command is None
    unknown = content(incident, base_url="")
    assert unknown.approve_url is None  # a relative link is useless in chat
    assert "https://<function-app-host>/api/incidents/" in unknown.approve_command


# ---- suppress ------------------------------------------------------------------------------------------------------


def test_suppress_targets_the_principal_and_for_key_callers_the_account():
    made = content(_incident())
    assert made.suppress_url == f"{BASE}/api/act/{made.incident_id}/suppress"
    cli = shlex.split(made.suppress_command.splitlines()[0])
    assert cli[:5] == ["python", "-m", "shared", "suppress", OID] and cli[cli.index("--for") + 1] == "24h"
    assert f"/api/incidents/{made.incident_id}/suppress" in made.suppress_command
    keys = content(_incident(principal_id=None))
    assert shlex.split(keys.suppress_command.splitlines()[0])[4] == ACCOUNT.lower()


def test_a_closed_incident_offers_no_suppress():
    made = content(_incident(status=RESOLVED))
    assert made.suppress_url is None and made.suppress_command is None


# ---- rollback ------------------------------------------------------------------------------------------------------


def test_rollback_only_for_an_assignment_this_service_created_and_the_revoke_first():
    assert content(_incident()).rollback_command is None
    made = content(_incident(assignment_id=ASSIGNMENT))
    first, *rest = made.rollback_command.splitlines()
    assert shlex.split(first) == ["python", "-m", "shared", "revoke", made.incident_id, "--by", "<you>"]
    assert f"/api/incidents/{made.incident_id}/revoke" in rest[0]
    assert rest[-1].endswith(f"az role assignment delete --ids {ASSIGNMENT}")


# ---- the Log Analytics link ---------------------------------------------------------------------------------------


def test_the_logs_link_opens_the_workspace_with_the_incidents_failing_requests():
    made = content(_incident())
    assert made.logs_url.startswith("https://portal.azure.com/#blade/Microsoft_OMS_Portal/LogsBlade/resourceId/")
    assert unquote(made.logs_url.split("/resourceId/")[1].split("/")[0]) == WORKSPACE
    assert "/source/LogsBlade.AnalyticsShareLinkToQuery/q/" in made.logs_url
    query = decoded_query(made.logs_url)
    assert "AzureDiagnostics" in query and 'Category == "RequestResponse"' in query
    assert f"| where tolower(_ResourceId) == {literal(ACCOUNT.lower())}" in query
    assert f'| where ObjectId == "{OID}"' in query
    assert 'ResultSignature in ("400", "401", "403")' in query
    assert "let Since = datetime(2026-03-01T10:00:00.000000Z);" in query
    assert "let Until = datetime(2026-03-01T10:04:00.000000Z);" in query
    span = unquote(made.logs_url.rsplit("/timespan/", 1)[1])
    assert span == "2026-03-01T09:55:00.000Z/2026-03-01T10:09:00.000Z"


def test_key_callers_query_the_rows_without_an_object_id():
    query = decoded_query(content(_incident(principal_id=None)).logs_url)
    assert "| where isempty(ObjectId)" in query and "ObjectId ==" not in query


def test_no_logs_link_without_the_workspace_or_for_a_resource_that_is_no_account():
    assert content(_incident(), workspace="").logs_url is None
    assert content(_incident(resource_id="/subscriptions/x/resourceGroups/rg")).logs_url is None
    assert content(_incident(principal_id="not-a-guid")).logs_url is None
    assert content(_incident(first_seen=datetime(2026, 3, 1, 10, 0))).logs_url is None  # naive: no instant


def test_the_same_incident_gives_the_same_link():
    assert content(_incident()).logs_url == content(_incident()).logs_url


@FAST
@given(HOSTILE)
def test_a_hostile_account_name_stays_one_kql_literal(name):
    resource = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg/providers/"
                f"Microsoft.CognitiveServices/accounts/{name}")
    account = enclosing_account(resource)
    made = content(_incident(resource_id=resource, first_seen=datetime(2026, 3, 1, tzinfo=UTC)))
    if account is None or any("\ud800" <= c <= "\udfff" for c in account.key):  # no account, or not UTF-8
        assert made.logs_url is None
        return
    query = decoded_query(made.logs_url)
    marker = "| where tolower(_ResourceId) == "
    assert query.count(marker) == 1
    start = query.index(marker) + len(marker)
    value, end = kql_string_at(query, start)
    assert value == account.key
    assert query[end] == "\n"  # nothing after the literal on its line: the value never became query text
    assert query.splitlines()[-1] == "| order by TimeGenerated desc"


def test_the_workspace_resource_id_setting_is_checked():
    base = {"TRIAGE_MODE": "recommend"}
    assert load_settings({**base, "TRIAGE_LOG_ANALYTICS_WORKSPACE_RESOURCE_ID": WORKSPACE + "/"}) \
        .log_analytics_workspace_resource_id == WORKSPACE
    assert load_settings(base).log_analytics_workspace_resource_id == ""
    for bad in ("contoso-logs", "00000000-0000-0000-0000-000000000002", ACCOUNT, WORKSPACE + "/tables/x"):
        with pytest.raises(SettingsError, match="TRIAGE_LOG_ANALYTICS_WORKSPACE_RESOURCE_ID"):
            load_settings({**base, "TRIAGE_LOG_ANALYTICS_WORKSPACE_RESOURCE_ID": bad})
