"""The "Open in Log Analytics" link of tickets and chat messages: the portal's Logs blade on the configured workspace
(TRIAGE_LOG_ANALYTICS_WORKSPACE_RESOURCE_ID) with the KQL of one incident's failing requests. Pure.

The link has the form the portal's own "Share > Copy link to query" produces: the workspace's resource id, then
`q/` + the query as UTF-8, gzip-compressed, base64-encoded and URL-encoded, then `timespan/` + an ISO 8601
interval. The query reads what the scan reads (shared/adapters/kql.py `failures_query`): AzureDiagnostics
RequestResponse rows of Cognitive Services, the account as `tolower(_ResourceId)`, the caller as
`properties_s.objectId` (empty for key callers), 401/403 (and a 400 only when it names the tenant). Every value is a
KQL literal (shared/core/kql_text.py): a resource id or object id from a log can never break out of it.
"""

from __future__ import annotations

import base64
import gzip
from datetime import UTC, datetime, timedelta
from urllib.parse import quote

from shared.core.allowlist import normalize_object_id
from shared.core.kql_text import datetime_literal, literal
from shared.core.resource_ids import enclosing_account

PORTAL = "https://portal.azure.com"
# The link's time range reaches this far either side of the incident's first and last failure, so the rows at its
# edges are inside the portal's range whatever its rounding.
TIMESPAN_MARGIN = timedelta(minutes=5)


def failing_requests_query(*, principal_id: str | None, resource_id: str, since: datetime,
                           until: datetime) -> str | None:
    """The failing requests of one caller (`principal_id`; None: key callers) on one account over [since, until]
    (both inclusive: an incident's first_seen and last_seen), newest first. None when the resource is not a
    Cognitive Services account or the caller is not an Entra object id: no query would find its rows."""
    account = enclosing_account(resource_id) if isinstance(resource_id, str) else None
    if account is None or since.tzinfo is None or until.tzinfo is None:  # KQL datetimes are UTC instants
        return None
    if principal_id is None:
        caller = "| where isempty(ObjectId)"
    else:
        oid = normalize_object_id(principal_id)
        if oid is None:
            return None
        caller = f"| where ObjectId == {literal(oid)}"
    return "\n".join([
        f"let Since = {datetime_literal(since)};",
        f"let Until = {datetime_literal(until)};",
        "AzureDiagnostics",
        "| where TimeGenerated between (Since .. Until)",
        '| where ResourceProvider == "MICROSOFT.COGNITIVESERVICES" and Category == "RequestResponse"',
        f"| where tolower(_ResourceId) == {literal(account.key)}",
        '| where ResultSignature in ("400", "401", "403")',
        "| extend Props = parse_json(properties_s)",
        "| extend ObjectId = tolower(tostring(Props.objectId)), ErrorCode = tostring(Props.errorCode),"
        " ErrorMessage = tostring(Props.errorMessage), ApiName = tostring(Props.apiName)",
        '| where ResultSignature != "400" or ErrorCode contains "tenant" or ErrorMessage contains "tenant"',
        caller,
        "| project TimeGenerated, ResultSignature, OperationName, ApiName, ObjectId, CallerIPAddress, ErrorCode,"
        " ErrorMessage, _ResourceId",
        "| order by TimeGenerated desc",
    ])


def encode_query(query: str) -> str:
    """The `q/` part of a portal link: gzip (no timestamp: one query, one link), base64, URL-encoded."""
    return quote(base64.b64encode(gzip.compress(query.encode("utf-8"), mtime=0)).decode("ascii"), safe="")


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def logs_link(workspace_resource_id: str, query: str, since: datetime, until: datetime) -> str:
    """The portal's Logs blade on the workspace with `query`, over [since, until] widened by TIMESPAN_MARGIN."""
    timespan = f"{_iso(since - TIMESPAN_MARGIN)}/{_iso(until + TIMESPAN_MARGIN)}"
    return (f"{PORTAL}/#blade/Microsoft_OMS_Portal/LogsBlade/resourceId/{quote(workspace_resource_id, safe='')}"
            f"/source/LogsBlade.AnalyticsShareLinkToQuery/q/{encode_query(query)}/timespan/{quote(timespan, safe='')}")


def incident_logs_link(workspace_resource_id: str, *, principal_id: str | None, resource_id: str,
                       since: datetime, until: datetime) -> str | None:
    """The link for one incident's failing requests; None without a workspace or when no query finds its rows."""
    if not workspace_resource_id:
        return None
    query = failing_requests_query(principal_id=principal_id, resource_id=resource_id, since=since, until=until)
    if query is None or not _is_utf8(query):  # a lone surrogate (from a log): no real resource id has one
        return None
    return logs_link(workspace_resource_id, query, since, until)


def _is_utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
