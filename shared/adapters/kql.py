"""Every KQL text the service sends, in one reviewed place. Pure functions: parameters in, query text out.

Golden files (tests/golden/*.kql) pin the exact text for fixed parameters, so any change here shows up in review.
Values are embedded as escaped literals (Log Analytics has no query parameters over its REST API); object ids
must be GUIDs and resource ids are escaped, so no value can break out of its literal.

Real Cognitive Services RequestResponse rows carry no error text and no request path (docs/adapters.md, "What
real rows carry"): the failures query relies only on documented columns and `properties_s` keys (`objectId`,
`apiName`). `errorCode`, `errorMessage` and `requestPath` are read when a row has them and are "" otherwise, so
nothing depends on them: without them a 400 is dropped (only a tenant text makes a 400 an auth failure) and the
route is the row's `apiName`.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from shared.core.allowlist import normalize_object_id
from shared.core.kql_text import datetime_literal, literal
from shared.core.resource_ids import account_key

# Hosts of the inference endpoints the client-side query watches.
INFERENCE_HOST_SUFFIXES = (".openai.azure.com", ".services.ai.azure.com", ".cognitiveservices.azure.com")

FAILURE_STATUSES = ("400", "401", "403")  # 400 only when it is a tenant mismatch (filtered below)
CLIENT_FAILURE_STATUSES = ("401", "403")


def _literal_list(values: Iterable[str]) -> str:
    return "(" + ", ".join(literal(v) for v in values) + ")"


# AzureDiagnostics rows carry the account id (upper-cased), never the project: queries filter on account_key.
account_of = account_key  # the name this module used to define


def _window(start: datetime, watermark: datetime, end: datetime) -> list[str]:
    return [
        f"let WindowStart = {datetime_literal(start)};",
        f"let Watermark = {datetime_literal(watermark)};",
        f"let WindowEnd = {datetime_literal(end)};",
    ]


HEX_DIGITS = "0123456789abcdef"
# The failure group key, as one text: hashing it splits the groups into disjoint buckets (bucket_filter).
_GROUP_KEY = ('strcat(ResourceId, "|", ObjectId, "|", ResultSignature, "|", OperationName, "|", Route, "|", '
              'ErrorCode)')
_GROUP_BY = "ResourceId, ObjectId, AuthKind, Status = ResultSignature, OperationName, Route, ErrorCode"


def _checked_prefixes(prefixes: tuple[str, ...]) -> tuple[str, ...]:
    lengths = {len(p) for p in prefixes}
    if len(lengths) != 1 or 0 in lengths or not set("".join(prefixes)) <= set(HEX_DIGITS):
        raise ValueError(f"bucket prefixes must be hex strings of one length, got {prefixes!r}")
    return prefixes


def bucket_filter(prefixes: tuple[str, ...]) -> str:
    """Keep the groups whose key's MD5 (lower-case hex) starts with one of `prefixes` (all of one length)."""
    _checked_prefixes(prefixes)
    return (f"| extend GroupKey = {_GROUP_KEY}\n"
            f"| where substring(hash_md5(GroupKey), 0, {len(prefixes[0])}) in {_literal_list(prefixes)}")


# A page of a large read: the rows whose account's MD5 starts with one of the page's prefixes. `_ResourceId` is a
# column of the stored row, so the filter runs before `parse_json` and each page parses only its own rows; a group
# never spans pages, since all its rows name one account (a group whose rows spell the account in two cases may:
# the reader merges it). One column, not a concatenation: cheap for the engine (and for DuckDB, the stand-in's).
ACCOUNT_BUCKET = "substring(hash_md5(_ResourceId), 0, 2)"
ACCOUNT_PREFIX_LENGTH = 2


def account_bucket_filter(prefixes: tuple[str, ...]) -> str:
    """Keep the raw rows whose `_ResourceId` MD5 starts with one of `prefixes` (two hex digits each)."""
    if {len(p) for p in _checked_prefixes(prefixes)} != {ACCOUNT_PREFIX_LENGTH}:
        raise ValueError(f"account bucket prefixes have {ACCOUNT_PREFIX_LENGTH} hex digits, got {prefixes!r}")
    return f"| where {ACCOUNT_BUCKET} in {_literal_list(prefixes)}"


# How late a row may arrive (ingestion time minus TimeGenerated) and still be read: the failures query windows on
# ingestion time, and bounds TimeGenerated only this far before the window, for the query's cost.
LATE_ROWS_READ = timedelta(hours=2)
READ_THROUGH = "ReadThrough"  # the column of the failures query's last row: how far its ingestion window reached


def _ingestion_window(start: datetime, watermark: datetime, end: datetime) -> list[str]:
    """The failures query's window is on ingestion time, as Azure Monitor log search alerts may use: a row is in
    it when it arrived in [WindowStart, ReadThrough), whenever it was generated. ReadThrough is the workspace's
    own clock (`now()`, evaluated by Log Analytics) capped at WindowEnd, so an instance whose clock runs ahead
    never moves its watermark past rows not yet ingested. Rows of the query's own instant are left to the next
    read (never read by this one and counted as read)."""
    return [
        *_window(start, watermark, end),
        f"let {READ_THROUGH} = min_of(WindowEnd, now());",
        f"let GeneratedSince = {datetime_literal(start - LATE_ROWS_READ)};",
    ]


def failures_timespan(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """The query API's `timespan` (it limits TimeGenerated) for a failures read of [start, end) by ingestion."""
    return start - LATE_ROWS_READ, end + LATE_ROWS_READ


def _failure_rows(
    start: datetime, watermark: datetime, end: datetime, resource_ids: tuple[str, ...] | None,
    buckets: tuple[str, ...] | None, account_buckets: tuple[str, ...] | None = None,
) -> list[str]:
    lines = _ingestion_window(start, watermark, end)
    lines += [
        "AzureDiagnostics",
        "| where TimeGenerated >= GeneratedSince",
        '| where ResourceProvider == "MICROSOFT.COGNITIVESERVICES" and Category == "RequestResponse"',
        f"| where ResultSignature in {_literal_list(FAILURE_STATUSES)}",
        "| extend IngestedAt = ingestion_time()",
        f"| where IngestedAt >= WindowStart and IngestedAt < {READ_THROUGH}",
    ]
    if account_buckets is not None:
        lines.append(account_bucket_filter(account_buckets))
    lines += [
        "| extend Props = parse_json(properties_s)",
        "| extend ObjectId = tolower(tostring(Props.objectId)), ErrorCode = tostring(Props.errorCode),"
        " ErrorMessage = tostring(Props.errorMessage), RequestPath = tostring(Props.requestPath),"
        " ApiName = tostring(Props.apiName)",
        '| where ResultSignature != "400" or ErrorCode contains "tenant" or ErrorMessage contains "tenant"',
        "| extend ResourceId = tolower(_ResourceId), AuthKind = iff(isempty(ObjectId), \"key\", \"entra\"),"
        " Route = iff(isempty(RequestPath), ApiName, RequestPath)",
    ]
    if resource_ids is not None:
        accounts = sorted({account_key(r) for r in resource_ids})
        lines.append(f"| where ResourceId in {_literal_list(accounts)}")
    if buckets is not None:
        lines.append(bucket_filter(buckets))
    return lines


def failures_group_count_query(
    *, start: datetime, watermark: datetime, end: datetime, resource_ids: tuple[str, ...] | None = None
) -> str:
    """How many groups failures_query() would return (one row, `Count`): sizes the buckets of a large read."""
    return "\n".join([*_failure_rows(start, watermark, end, resource_ids, None), f"| summarize by {_GROUP_BY}",
                      "| count"])


def failures_account_buckets_query(
    *, start: datetime, watermark: datetime, end: datetime, resource_ids: tuple[str, ...] | None = None
) -> str:
    """How many groups failures_query() would return per account bucket (`Bucket`, `Groups`; buckets without groups
    are absent): plans the pages of a large read. Hashes each group's account once, not each row's."""
    return "\n".join([*_failure_rows(start, watermark, end, resource_ids, None),
                      "| summarize by _ResourceId, ObjectId, AuthKind, ResultSignature, OperationName, Route,"
                      " ErrorCode",
                      f"| summarize Groups = count() by Bucket = {ACCOUNT_BUCKET}"])


def failures_query(
    *,
    start: datetime,
    watermark: datetime,
    end: datetime,
    resource_ids: tuple[str, ...] | None = None,
    buckets: tuple[str, ...] | None = None,
    limit: int | None = None,
    account_buckets: tuple[str, ...] | None = None,
) -> str:
    """Server-side 401/403 (and 400 tenant-mismatch) groups from AzureDiagnostics that arrived in [start, end)
    (ingestion time; `_ingestion_window`), so a row that arrives late is read once, by the read after it arrived.

    `OverlapFailures` counts the rows that arrived before `watermark`, i.e. the part of the window an earlier scan
    already read: the lifecycle subtracts it so re-reading the overlap never double counts. FirstSeen and LastSeen
    are when the failures happened (TimeGenerated). The error code is a group key too, so a token problem and a
    missing role of the same caller stay apart. One more row carries only `ReadThrough`, where this read's window
    really ended: the next read's watermark.

    `account_buckets` keeps the rows of one page of accounts (account_bucket_filter, before any row is parsed);
    `buckets` keeps one hash bucket of the groups (bucket_filter, for a page of one account bucket that holds more
    groups than one response); `limit` caps the rows returned, so a reader learns that there are more groups than
    it wants in one response without receiving them all.
    """
    lines = _failure_rows(start, watermark, end, resource_ids, buckets, account_buckets)
    lines += [
        "| summarize Failures = count(), OverlapFailures = countif(IngestedAt < Watermark),"
        " FirstSeen = min(TimeGenerated), LastSeen = max(TimeGenerated), SampleMessage = take_any(ErrorMessage)"
        f" by {_GROUP_BY}",
        "| order by ResourceId asc, ObjectId asc, Status asc, OperationName asc, Route asc, ErrorCode asc",
        f"| union (print {READ_THROUGH} = {READ_THROUGH})",
    ]
    if limit is not None:  # rows, the ReadThrough row included: an answer of `limit` rows may have been cut
        lines.append(f"| take {int(limit)}")
    return "\n".join(lines)


def activity_query(*, principal_id: str | None, resource_id: str, since: datetime, until: datetime) -> str:
    """Failures (401/403) and successes (2xx) of one caller on one account over [since, until).

    `principal_id=None` means key callers: rows with an empty objectId.
    """
    if principal_id is None:
        caller = "| where isempty(ObjectId)"
    else:
        oid = normalize_object_id(principal_id)
        if oid is None:
            raise ValueError(f"principal id {principal_id!r} is not an Entra object id")
        caller = f"| where ObjectId == {literal(oid)}"
    lines = [
        f"let Since = {datetime_literal(since)};",
        f"let Until = {datetime_literal(until)};",
        "AzureDiagnostics",
        "| where TimeGenerated >= Since and TimeGenerated < Until",
        '| where ResourceProvider == "MICROSOFT.COGNITIVESERVICES" and Category == "RequestResponse"',
        f"| where tolower(_ResourceId) == {literal(account_key(resource_id))}",
        "| extend ObjectId = tolower(tostring(parse_json(properties_s).objectId))",
        caller,
        "| extend Status = toint(ResultSignature)",
        "| summarize Failures = countif(Status == 401 or Status == 403),"
        " Successes = countif(Status >= 200 and Status < 300)",
    ]
    return "\n".join(lines)


def _host_filter() -> str:
    return "| where " + " or ".join(f"Host endswith {literal(s)}" for s in INFERENCE_HOST_SUFFIXES)


_CLIENT_GROUP_BY = "AppRoleName, Host, Name, Status = ResultCode"


def _client_failure_rows() -> list[str]:
    return [
        "AppDependencies",
        "| where TimeGenerated >= WindowStart and TimeGenerated < WindowEnd",
        f"| where ResultCode in {_literal_list(CLIENT_FAILURE_STATUSES)}",
        '| extend Host = tolower(tostring(split(Target, ":")[0]))',
        _host_filter(),
    ]


def client_failures_query(*, start: datetime, watermark: datetime, end: datetime) -> str:
    """Client-side 401/403 groups from workspace-based Application Insights: dependency calls to the inference
    endpoints. AppDependencies only: an app that never logged an exception has no AppExceptions table, and a query
    naming it would fail as a whole; the messages come from client_messages_query()."""
    lines = _window(start, watermark, end)
    lines += [
        *_client_failure_rows(),
        "| summarize Failures = count(), OverlapFailures = countif(TimeGenerated < Watermark),"
        f" FirstSeen = min(TimeGenerated), LastSeen = max(TimeGenerated) by {_CLIENT_GROUP_BY}",
        "| order by AppRoleName asc, Host asc, Name asc, Status asc",
    ]
    return "\n".join(lines)


def client_messages_query(*, start: datetime, end: datetime) -> str:
    """One error message per client_failures_query() group over [start, end): the text of the AppExceptions
    record of a failed call's operation. Groups without one are not returned; a workspace whose apps never logged
    an exception has no AppExceptions table, and this query answers "no such table" (no messages)."""
    lines = [
        f"let WindowStart = {datetime_literal(start)};",
        f"let WindowEnd = {datetime_literal(end)};",
        *_client_failure_rows(),
        "| join kind=inner (AppExceptions"
        " | where TimeGenerated >= WindowStart and TimeGenerated < WindowEnd and isnotempty(OperationId)"
        " | summarize ExceptionMessage = take_any(OuterMessage) by OperationId) on OperationId",
        f"| summarize SampleMessage = take_any(ExceptionMessage) by {_CLIENT_GROUP_BY}",
        "| order by AppRoleName asc, Host asc, Name asc, Status asc",
    ]
    return "\n".join(lines)


def client_activity_query(
    *, app_role_names: tuple[str, ...], hosts: tuple[str, ...], since: datetime, until: datetime
) -> str:
    """Failures (401/403) and successes (2xx) of the given apps' calls to the given hosts over [since, until)."""
    lines = [
        f"let Since = {datetime_literal(since)};",
        f"let Until = {datetime_literal(until)};",
        "AppDependencies",
        "| where TimeGenerated >= Since and TimeGenerated < Until",
        f"| where AppRoleName in {_literal_list(sorted(app_role_names))}",
        '| extend Host = tolower(tostring(split(Target, ":")[0]))',
        f"| where Host in {_literal_list(sorted(h.lower() for h in hosts))}",
        "| extend Status = toint(ResultCode)",
        "| summarize Failures = countif(Status == 401 or Status == 403),"
        " Successes = countif(Status >= 200 and Status < 300)",
    ]
    return "\n".join(lines)


# ---- API Management gateways in front of the accounts (resource-specific ApiManagementGatewayLogs) ----------

GATEWAY_FAILURE_CODES = (401, 403)


def _backend_columns() -> list[str]:
    """BackendHost and BackendPath from the URL the gateway called, and only calls to the inference hosts."""
    return [
        "| extend Backend = parse_url(BackendUrl)",
        "| extend BackendHost = tolower(tostring(Backend.Host)), BackendPath = tostring(Backend.Path)",
        "| where " + " or ".join(f"BackendHost endswith {literal(s)}" for s in INFERENCE_HOST_SUFFIXES),
    ]


def gateway_failures_query(*, start: datetime, watermark: datetime, end: datetime) -> str:
    """Backend 401/403 groups of API Management gateways calling the inference endpoints over [start, end).

    The gateway's own error (`LastErrorReason`, `LastErrorMessage`) is empty when the backend simply answered
    401/403; the backend's error body is there only when the diagnostic setting logs backend response bodies.
    Either gives the code and message; neither is required. `OverlapFailures` as in failures_query()."""
    lines = _window(start, watermark, end)
    lines += [
        "ApiManagementGatewayLogs",
        "| where TimeGenerated >= WindowStart and TimeGenerated < WindowEnd",
        f"| where BackendResponseCode in ({', '.join(str(c) for c in GATEWAY_FAILURE_CODES)})",
        *_backend_columns(),
        "| extend Body = parse_json(BackendResponseBody)",
        "| extend BodyCode = tostring(Body.error.code),"
        " BodyMessage = iff(isnotempty(tostring(Body.error.message)), tostring(Body.error.message),"
        " tostring(Body.message))",
        "| extend ErrorCode = iff(isnotempty(LastErrorReason), LastErrorReason, BodyCode),"
        " ErrorMessage = iff(isnotempty(LastErrorMessage), LastErrorMessage, BodyMessage)",
        "| summarize Failures = count(), OverlapFailures = countif(TimeGenerated < Watermark),"
        " FirstSeen = min(TimeGenerated), LastSeen = max(TimeGenerated), SampleMessage = take_any(ErrorMessage)"
        " by GatewayId = tolower(_ResourceId), BackendHost, BackendPath, BackendMethod,"
        " Status = BackendResponseCode, ErrorCode",
        "| order by GatewayId asc, BackendHost asc, BackendPath asc, BackendMethod asc, Status asc, ErrorCode asc",
    ]
    return "\n".join(lines)


def gateway_activity_query(*, hosts: tuple[str, ...], since: datetime, until: datetime) -> str:
    """Backend failures (401/403) and successes (2xx) to the given hosts over [since, until), per gateway: the
    caller is the gateway's identity, which the reader matches to the gateway ids."""
    lines = [
        f"let Since = {datetime_literal(since)};",
        f"let Until = {datetime_literal(until)};",
        "ApiManagementGatewayLogs",
        "| where TimeGenerated >= Since and TimeGenerated < Until",
        "| extend BackendHost = tolower(tostring(parse_url(BackendUrl).Host))",
        f"| where BackendHost in {_literal_list(sorted(h.lower() for h in hosts))}",
        "| summarize Failures = countif(BackendResponseCode == 401 or BackendResponseCode == 403),"
        " Successes = countif(BackendResponseCode >= 200 and BackendResponseCode < 300)"
        " by GatewayId = tolower(_ResourceId)",
        "| order by GatewayId asc",
    ]
    return "\n".join(lines)


def request_traffic_query(*, since: datetime, until: datetime) -> str:
    """The self-check's read (`python -m shared doctor`): RequestResponse rows per account and status over
    [since, until), with the latest row's time. That rows arrive proves both the account's diagnostic setting and
    the service's Log Analytics Reader; the 401/403 counts show whether failures were ever logged."""
    lines = [
        f"let Since = {datetime_literal(since)};",
        f"let Until = {datetime_literal(until)};",
        "AzureDiagnostics",
        "| where TimeGenerated >= Since and TimeGenerated < Until",
        '| where ResourceProvider == "MICROSOFT.COGNITIVESERVICES" and Category == "RequestResponse"',
        "| summarize Rows = count(), LastSeen = max(TimeGenerated) by ResourceId = tolower(_ResourceId),"
        " Status = ResultSignature",
        "| order by ResourceId asc, Status asc",
    ]
    return "\n".join(lines)


def caller_activity_query(*, account_ids: tuple[str, ...], since: datetime, until: datetime) -> str:
    """The access reviews' read: every RequestResponse row of the given accounts over [since, until), summarized by
    account, caller (`objectId`, empty for key callers), operation and API name: calls, first and last seen, and up
    to ten caller addresses (Azure masks their last octet; the review masks them again)."""
    accounts = sorted({account_key(a) for a in account_ids})
    lines = [
        f"let Since = {datetime_literal(since)};",
        f"let Until = {datetime_literal(until)};",
        "AzureDiagnostics",
        "| where TimeGenerated >= Since and TimeGenerated < Until",
        '| where ResourceProvider == "MICROSOFT.COGNITIVESERVICES" and Category == "RequestResponse"',
        "| extend ResourceId = tolower(_ResourceId)",
        f"| where ResourceId in {_literal_list(accounts)}",
        "| extend Props = parse_json(properties_s)",
        "| extend ObjectId = tolower(tostring(Props.objectId)), ApiName = tostring(Props.apiName)",
        "| summarize Calls = count(), FirstSeen = min(TimeGenerated), LastSeen = max(TimeGenerated),"
        " CallerIps = make_set(CallerIPAddress, 10) by ResourceId, ObjectId, OperationName, ApiName",
        "| order by ResourceId asc, ObjectId asc, OperationName asc, ApiName asc",
    ]
    return "\n".join(lines)


def app_calls_query(*, since: datetime, until: datetime) -> str:
    """The access reviews' hint of which app sent key calls: workspace-based App Insights dependency calls to the
    inference hosts over [since, until), per host and app (`AppRoleName`), whatever their outcome."""
    lines = [
        f"let Since = {datetime_literal(since)};",
        f"let Until = {datetime_literal(until)};",
        "AppDependencies",
        "| where TimeGenerated >= Since and TimeGenerated < Until",
        '| extend Host = tolower(tostring(split(Target, ":")[0]))',
        _host_filter(),
        "| where isnotempty(AppRoleName)",
        "| summarize Calls = count(), FirstSeen = min(TimeGenerated), LastSeen = max(TimeGenerated)"
        " by Host, App = AppRoleName",
        "| order by Host asc, App asc",
    ]
    return "\n".join(lines)


def gateway_app_calls_query(*, since: datetime, until: datetime) -> str:
    """The same from API Management gateways: backend calls to the inference hosts per host, gateway and the
    caller's API Management subscription (`ApimSubscriptionId`, empty when the API requires none)."""
    lines = [
        f"let Since = {datetime_literal(since)};",
        f"let Until = {datetime_literal(until)};",
        "ApiManagementGatewayLogs",
        "| where TimeGenerated >= Since and TimeGenerated < Until",
        *_backend_columns(),
        "| summarize Calls = count(), FirstSeen = min(TimeGenerated), LastSeen = max(TimeGenerated)"
        " by Host = BackendHost, GatewayId = tolower(_ResourceId), Subscription = ApimSubscriptionId",
        "| order by Host asc, GatewayId asc, Subscription asc",
    ]
    return "\n".join(lines)
