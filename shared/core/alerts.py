"""Pure reading of Azure Monitor alerts in the common alert schema: which of our accounts an alert is about, and
over which window to scan them.

An alert names its resources in three places: `essentials.alertTargetIDs` (for a log search alert, the workspace
or Application Insights component the rule queries), `essentials.configurationItems` (the resources that sent the
data: `_ResourceId`, `ResourceId`, `Resource` or `Computer` of the results) and the log query's own scope (the
resource path of `linkToSearchResultsAPI`, or Log Alerts V1's `SearchResults.dataSources`). Cognitive Services
accounts (or projects) named anywhere are scanned; a log search alert on a Log Analytics workspace that names no
other resource scans every account of the normal set; anything else (a VM, storage, a budget, service health, a
smart detector) is not relevant. Source: MicrosoftDocs azure-monitor-docs `alerts/alerts-common-schema.md` and
`alerts/alerts-payload-samples.md` (kept under tests/data/events/azure-monitor/).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import unquote, urlparse

from shared.core.limits import TimeOutOfRange, checked_time
from shared.core.signals import SignalError, TimeRangeError, parse_time

FIRED = "Fired"

# Alerts without an evaluation window (activity log alerts, some metric alerts): scan this far back from the fired
# time.
DEFAULT_ALERT_LOOKBACK = timedelta(minutes=30)

# The Log Analytics tables this service reads: a log search alert whose query read only other tables (Log Alerts V1
# lists them in SearchResults.dataSources) is not about our accounts.
TABLES_READ = frozenset({"azurediagnostics", "appdependencies", "appexceptions", "apimanagementgatewaylogs"})

_ACCOUNT_OR_PROJECT = re.compile(
    r"^(/subscriptions/[^/]+/resourcegroups/[^/]+/providers/microsoft\.cognitiveservices/accounts/[^/]+"
    r"(?:/projects/[^/]+)?)(?:/.*)?$"
)
_WORKSPACE = "/providers/microsoft.operationalinsights/workspaces/"
# The Log Analytics API addresses a query either at a workspace or at an ARM resource (resource-centric query).
_WORKSPACE_QUERY = re.compile(r"^/v1/workspaces/[^/]+/query/?$", re.IGNORECASE)
_RESOURCE_QUERY = re.compile(r"^/v1(/subscriptions/.+?)/query/?$", re.IGNORECASE)
# Log Alerts V1 writes its search interval in the US form "3/22/2019 1:36:31 PM".
_V1_TIME_FORMATS = ("%m/%d/%Y %I:%M:%S %p", "%m/%d/%Y %H:%M:%S")


class AlertShapeError(ValueError):
    """A part of the alert that must have a shape does not (a link that is no URL, a time out of range)."""


@dataclass(frozen=True)
class AlertScan:
    """One alert notification as the engine acts on it."""

    alert_id: str
    rule: str
    start: datetime
    end: datetime
    resource_ids: tuple[str, ...]  # the accounts (or projects) to scan; empty: every account the sources read
    condition: str = FIRED  # essentials.monitorCondition: Fired or Resolved
    fired_at: datetime | None = None  # essentials.firedDateTime, None when the payload has none
    not_relevant: str = ""  # why no account of ours is concerned: acknowledged and recorded, never scanned

    @property
    def fired(self) -> bool:
        return self.condition.lower() == FIRED.lower()


def as_dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def read_time(value: Any) -> datetime | None:
    """A timestamp as alerts carry it (ISO-8601 text, Log Alerts V1's "M/D/YYYY h:mm:ss AM", or a datetime from the
    Functions worker); None if absent or unreadable. Times without a zone are UTC. AlertShapeError for a time that
    reads but is out of range (core/limits.py)."""
    try:
        if isinstance(value, datetime):
            return checked_time(value)
        if not isinstance(value, str) or not value.strip():
            return None
        try:
            return parse_time(value)
        except TimeRangeError:
            raise
        except SignalError:
            pass
        for form in _V1_TIME_FORMATS:
            try:
                return checked_time(datetime.strptime(value.strip(), form).replace(tzinfo=UTC))
            except ValueError as exc:
                if isinstance(exc, TimeOutOfRange):
                    raise
                continue
    except (TimeRangeError, TimeOutOfRange) as exc:
        raise AlertShapeError(f"a time in the alert ({str(value)[:40]!r}) is out of range") from exc
    return None


def alert_window(context: dict[str, Any], anchor: datetime) -> tuple[datetime, datetime]:
    """The evaluation window the alert states: Log Alerts V2 and metric alerts in `condition.windowStartTime` ..
    `windowEndTime`, Log Alerts V1 in `SearchIntervalStartTimeUtc` .. `SearchIntervalEndtimeUtc` (so cased in the
    published payloads; the schema's table writes `EndTimeUtc`). Without one, DEFAULT_ALERT_LOOKBACK before the
    anchor (the fired time)."""
    return _stated_window(context) or (anchor - DEFAULT_ALERT_LOOKBACK, anchor)


def _stated_window(context: dict[str, Any]) -> tuple[datetime, datetime] | None:
    condition = as_dict(context.get("condition"))
    pairs = (
        (condition.get("windowStartTime"), condition.get("windowEndTime")),
        (context.get("SearchIntervalStartTimeUtc"),
         context.get("SearchIntervalEndtimeUtc", context.get("SearchIntervalEndTimeUtc"))),
    )
    for raw_start, raw_end in pairs:
        start, end = read_time(raw_start), read_time(raw_end)
        if start and end:
            return start, end
    return None


def alert_scope(essentials: dict[str, Any], context: dict[str, Any], targets: list[str],
                items: list[str]) -> tuple[tuple[str, ...], str]:
    """(the accounts or projects to scan, why the alert is not relevant); both empty: every account the sources
    read, in the alert's window (a log search alert on a workspace)."""
    query_scope, tables = _query_scope(context)
    named = [t.strip().lower() for t in (*targets, *items, *query_scope)]
    accounts = tuple(dict.fromkeys(m.group(1) for m in map(_ACCOUNT_OR_PROJECT.match, named) if m))
    if accounts:
        return accounts, ""
    if not _is_log_search(essentials, context) or not any(_WORKSPACE in n or n == "workspace" for n in named):
        shown = ", ".join((targets or items or query_scope)[:3]) or "no resource"
        return (), f"its targets ({shown}) are not Cognitive Services accounts or a Log Analytics workspace"
    others = [i for i in items if _WORKSPACE not in i.lower()]
    if others:
        return (), f"a log search alert about {', '.join(others[:3])}, not a Cognitive Services account"
    if tables and not {t.lower() for t in tables} & TABLES_READ:
        return (), f"a log search alert over {', '.join(sorted(tables))}, tables this service does not read"
    return (), ""


def _is_log_search(essentials: dict[str, Any], context: dict[str, Any]) -> bool:
    """A log search alert (V2: LogQueryCriteria; V1: a SearchQuery), not a smart detector, which is signalType Log
    too but queries nothing of ours."""
    return context.get("conditionType") == "LogQueryCriteria" or "SearchQuery" in context or (
        str(essentials.get("monitoringService") or "") in ("Log Alerts V2", "Log Analytics"))


def _query_scope(context: dict[str, Any]) -> tuple[list[str], set[str]]:
    """The resources the log query ran over ("workspace" for a workspace query) and, where Log Alerts V1 lists
    them, the tables it read."""
    links: list[Any] = [context.get("LinkToSearchResultsAPI"), context.get("LinkToFilteredSearchResultsAPI")]
    for criterion in _as_list(as_dict(context.get("condition")).get("allOf")):
        if isinstance(criterion, dict):
            links += [criterion.get("linkToSearchResultsAPI"), criterion.get("linkToFilteredSearchResultsAPI")]
    scope = [s for s in map(_link_scope, links) if s]
    tables: set[str] = set()
    for source in _as_list(as_dict(context.get("SearchResults")).get("dataSources")):
        if not isinstance(source, dict):
            continue
        if isinstance(source.get("resourceId"), str):
            scope.append(source["resourceId"])
        if isinstance(source.get("tables"), list):
            tables.update(t for t in source["tables"] if isinstance(t, str))
    return scope, tables


def _link_scope(link: Any) -> str | None:
    if not isinstance(link, str):
        return None
    try:
        path = unquote(urlparse(link).path)
    except ValueError:  # e.g. "[" in the host: an invalid IPv6 literal
        raise AlertShapeError(f"the alert's search results link is not a URL: {link[:100]!r}") from None
    if _WORKSPACE_QUERY.match(path):
        return "workspace"
    match = _RESOURCE_QUERY.match(path)
    return match.group(1) if match else None
