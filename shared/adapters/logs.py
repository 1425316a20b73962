"""Failure sources over Log Analytics (azure-monitor-query `LogsQueryClient`).

- `LogAnalyticsSource`: server-side AzureDiagnostics (Cognitive Services RequestResponse) of one workspace.
- `AppInsightsSource`: client-side AppDependencies of one workspace-based Application Insights workspace, with the
  AppExceptions message of each group when the workspace has that table.

Only summarized groups come back (kql.py). 429/5xx are retried by the azure-core retry policy; when retries run
out, or the query fails outright, `SourceError` says which workspace and why, with the whole error (every code and
message of the answer's error chain). Partial results are used and reported in `SourceBatch.partial_errors`.

A workspace that has not received the table (or a column) a query reads answers 400 with the semantic error
SEM0100 "Failed to resolve table or column expression named 'AzureDiagnostics'" (or "... scalar expression named
'properties_s'") until its first diagnostics arrive. That is no data yet, not a failure: `read` returns an empty
batch whose `no_data` is the whole answer, and `activity` counts nothing.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from shared.adapters import kql
from shared.adapters.failure_rows import dependency_signal, diagnostics_signal, map_rows, merge_groups
from shared.core.collector import collection_paused
from shared.core.model import FailureSignal
from shared.core.ports import Activity, RejectedRow, SourceBatch
from shared.core.resource_ids import account_key

log = logging.getLogger("triage.adapters")


class SourceError(RuntimeError):
    """A failure source could not be read (after the SDK's retries). The scan records it, reports it and reads the
    other sources; this source's watermark stays."""


class NoDataYet(SourceError):
    """The workspace has no such table or column (yet): no diagnostics of that kind were ever received."""


# How Log Analytics names what a query reads and the workspace does not have (semantic error SEM0100).
_UNRESOLVED = re.compile(r"Failed to resolve (?:table or column|scalar|column or scalar) expression named", re.I)
MISSING_NAME_CODE = "SEM0100"


def _rows(tables: list[Any]) -> list[dict[str, Any]]:
    return [dict(zip(table.columns, row, strict=False)) for table in tables for row in table.rows]


class _WorkspaceQuery:
    """Runs one KQL text on one workspace and returns (rows, partial errors), or raises SourceError."""

    def __init__(self, client: Any, workspace_id: str, label: str, server_timeout: int = 180):
        self.client = client
        self.workspace_id = workspace_id
        self.label = label
        self.server_timeout = server_timeout

    def run(self, query: str, start: datetime, end: datetime) -> tuple[list[dict[str, Any]], tuple[str, ...]]:
        tables, partial = self.run_tables(query, start, end)
        return _rows(tables), partial

    def run_tables(self, query: str, start: datetime, end: datetime) -> tuple[list[Any], tuple[str, ...]]:
        """The answer's tables as the SDK gave them (rows not yet turned into dicts), and its partial errors."""
        from azure.core.exceptions import AzureError, HttpResponseError
        from azure.monitor.query import LogsQueryStatus

        try:
            result = self.client.query_workspace(
                self.workspace_id, query, timespan=(start, end), server_timeout=self.server_timeout
            )
        except HttpResponseError as exc:
            chain = _error_chain(exc)
            text = "; ".join(f"{code}: {message}" if code else message for code, message in chain)
            where = f"{self.label} query on workspace {self.workspace_id}"
            if exc.status_code == 400 and _names_something_missing(chain):
                raise NoDataYet(f"{where}: no data yet: HTTP 400 {text}") from exc
            raise SourceError(f"{where} failed: HTTP {exc.status_code} {text}") from exc
        except AzureError as exc:  # connection failures, timeouts after the retry policy gave up
            raise SourceError(
                f"{self.label} query on workspace {self.workspace_id} failed: {type(exc).__name__}: "
                f"{_whole(str(exc))}"
            ) from exc
        if result.status == LogsQueryStatus.PARTIAL:
            err = result.partial_error
            detail = f"{getattr(err, 'code', '') or 'PartialError'}: {getattr(err, 'message', '') or ''}".strip()
            log.warning("%s workspace %s returned partial results: %s", self.label, self.workspace_id, detail)
            return list(result.partial_data), (detail,)
        return list(result.tables), ()


def _error_chain(exc: Any) -> list[tuple[str, str]]:
    """(code, message) of the answer's error and each inner error, outermost first, as azure-core parsed the body
    (`exc.error`, OData v4); without a parsed body, the exception's whole message."""
    error = getattr(exc, "error", None)
    chain = [(str(getattr(error, "code", "") or ""), _whole(getattr(error, "message", "") or ""))] if error else []
    inner = getattr(error, "innererror", None)
    while isinstance(inner, dict) and len(chain) < 10:
        chain.append((str(inner.get("code") or ""), _whole(str(inner.get("message") or ""))))
        inner = inner.get("innererror")
    chain = [(code, message) for code, message in chain if code or message]
    return chain or [("", _whole(getattr(exc, "message", None) or str(exc)))]


def _names_something_missing(chain: list[tuple[str, str]]) -> bool:
    return any(code == MISSING_NAME_CODE or _UNRESOLVED.search(message) for code, message in chain)


def _whole(text: str | None) -> str:
    """Every line of a message, joined with spaces."""
    return " ".join(line.strip() for line in (text or "").strip().splitlines() if line.strip())


def overlap_start(start: datetime, watermark: datetime | None) -> datetime:
    # Without a watermark nothing was read before: an overlap boundary at `start` makes every overlap count 0.
    return start if watermark is None else max(start, watermark)


# At most this many failure groups in one response. A flood of distinct groups is read in pages instead, each
# response converted and dropped before the next: memory stays bounded, and every response stays far below the
# query API's result limits (500,000 rows, ~100 MB).
GROUPS_PER_RESPONSE = 20_000
_BUCKET_FILL = 0.75  # hash buckets are sized for this share of the limit: hashing spreads groups only about evenly
_PAGE_FILL = 0.9  # pages are packed from counted groups, so closer to the limit; a page that grows past it splits
_MAX_BUCKETS = 256  # two hex digits of the key's MD5; a bucket that still overflows splits on the next digit
ACCOUNT_PREFIXES = tuple(a + b for a in kql.HEX_DIGITS for b in kql.HEX_DIGITS)  # kql.ACCOUNT_BUCKET's values


def buckets(count: int) -> list[tuple[str, ...]]:
    """`count` disjoint buckets covering every group: contiguous runs of the 256 two-digit MD5 prefixes."""
    count = max(1, min(count, _MAX_BUCKETS))
    prefixes = [a + b for a in kql.HEX_DIGITS for b in kql.HEX_DIGITS]
    return [tuple(prefixes[n * 256 // count : (n + 1) * 256 // count]) for n in range(count)]


def split_bucket(bucket: tuple[str, ...]) -> list[tuple[str, ...]]:
    """Two disjoint buckets covering `bucket` (one prefix becomes its 16 one-digit-longer children, halved)."""
    prefixes = bucket if len(bucket) > 1 else tuple(bucket[0] + d for d in kql.HEX_DIGITS)
    half = len(prefixes) // 2
    return [prefixes[:half], prefixes[half:]]


def buckets_for(groups: int) -> int:
    return max(1, min(_MAX_BUCKETS, math.ceil(groups / (GROUPS_PER_RESPONSE * _BUCKET_FILL))))


@dataclass(frozen=True)
class Page:
    """One query of a large read: the rows of some account buckets (`accounts`, kql.account_bucket_filter, before
    any row is parsed), and, for one account bucket too big for a response, one hash bucket of its groups
    (`groups`). `Page()` is the whole window. `groups` is the count the last read found in it (0: unknown)."""

    accounts: tuple[str, ...] | None = None
    buckets: tuple[str, ...] | None = None
    groups: int = 0

    def split(self) -> list[Page]:
        """Two disjoint pages covering this one (never called on the whole window: that one is planned)."""
        if self.buckets is None and self.accounts is not None and len(self.accounts) > 1:
            half = len(self.accounts) // 2
            return [Page(self.accounts[:half]), Page(self.accounts[half:])]
        # One account bucket (with any empty ones riding along): its groups tell apart only after parsing.
        halves = buckets(2) if self.buckets is None else split_bucket(self.buckets)
        return [Page(self.accounts, half) for half in halves]


WHOLE_WINDOW = (Page(),)


def plan_pages(groups_per_bucket: Mapping[str, int]) -> tuple[Page, ...]:
    """Pages for groups counted per account bucket: runs of buckets packed up to `_PAGE_FILL` of a response, every
    bucket in exactly one page (empty ones too: groups may appear there later); an account bucket holding more
    than that alone is read in hash buckets of its groups."""
    target = GROUPS_PER_RESPONSE * _PAGE_FILL
    if sum(groups_per_bucket.values()) <= target:
        return WHOLE_WINDOW
    pages: list[Page] = []
    run: list[str] = []
    filled = 0
    for prefix in ACCOUNT_PREFIXES:
        count = groups_per_bucket.get(prefix, 0)
        if count > target:
            parts = buckets(buckets_for(count))
            pages.extend(Page((prefix,), bucket, math.ceil(count / len(parts))) for bucket in parts)
            continue
        if run and filled + count > target:
            pages.append(Page(tuple(run), None, filled))
            run, filled = [], 0
        run.append(prefix)
        filled += count
    if run:
        pages.append(Page(tuple(run), None, filled))
    return _without_empty_pages(pages)


def _without_empty_pages(pages: list[Page]) -> tuple[Page, ...]:
    """Account buckets where no group was counted ride along with a page that has groups (they may have some by
    the next read): with a page of whole buckets, or with every hash bucket of one account bucket's groups."""
    spare = tuple(a for p in pages if p.buckets is None and not p.groups for a in p.accounts or ())
    kept = [p for p in pages if p.buckets is not None or p.groups]
    if not spare or not kept:
        return tuple(pages)
    host = next((n for n, p in enumerate(kept) if p.buckets is None), None)
    if host is not None:
        kept[host] = Page(tuple(sorted((kept[host].accounts or ()) + spare)), None, kept[host].groups)
    else:
        family = kept[0].accounts
        kept = [Page(tuple(sorted((p.accounts or ()) + spare)), p.buckets, p.groups) if p.accounts == family else p
                for p in kept]
    return tuple(kept)


def replan(pages: list[Page]) -> tuple[Page, ...]:
    """The next read's pages from what this read found in each: all in one query when they fit, else neighbouring
    account pages merged while they fit (a flood that ebbs needs fewer queries); group-bucket pages stay."""
    target = GROUPS_PER_RESPONSE * _PAGE_FILL
    if sum(p.groups for p in pages) <= target:
        return WHOLE_WINDOW
    merged: list[Page] = []
    for page in sorted(pages, key=lambda p: (p.accounts or ("",))[0]):
        last = merged[-1] if merged else None
        if (last is not None and last.buckets is None and page.buckets is None and last.accounts is not None
                and page.accounts is not None and last.groups + page.groups <= target):
            merged[-1] = Page(last.accounts + page.accounts, None, last.groups + page.groups)
        else:
            merged.append(page)
    return tuple(merged)


@dataclass(frozen=True)
class _PageRead:
    """What one page's query gave: its groups as signals and rejected rows, its partial errors, where the workspace
    said it read through, and whether it came back over the limit (`cut`: nothing of it is used)."""

    signals: tuple[FailureSignal, ...]
    rejected: tuple[RejectedRow, ...]
    errors: tuple[str, ...]
    read_through: datetime | None
    cut: bool = False


class LogAnalyticsSource:
    """Server-side Cognitive Services failures from one Log Analytics workspace."""

    def __init__(self, client: Any, workspace_id: str, *, server_timeout: int = 180):
        self.workspace_id = workspace_id
        self.name = f"logs:{workspace_id}"
        self._query = _WorkspaceQuery(client, workspace_id, "Log Analytics", server_timeout)
        # The pages the last read needed, with the groups each held: a flood usually lasts, so the next read starts
        # there, with no capped attempt and no count. Only a page that comes back over the limit is split.
        self._pages: tuple[Page, ...] = WHOLE_WINDOW

    def read(
        self,
        start: datetime,
        end: datetime,
        resource_ids: tuple[str, ...] | None = None,
        *,
        watermark: datetime | None = None,
    ) -> SourceBatch:
        """One query when the window holds up to GROUPS_PER_RESPONSE groups (the usual case); else one per page.
        A response that comes back over the limit is not used: its page is split and read again."""
        window: dict[str, Any] = {"start": start, "watermark": overlap_start(start, watermark), "end": end,
                                  "resource_ids": resource_ids}
        try:
            return self._read(window)
        except NoDataYet as missing:
            return SourceBatch(self.name, start, end, (), no_data=str(missing))

    def _read(self, window: dict[str, Any]) -> SourceBatch:
        """Rows by ingestion time (kql.failures_query): the batch's `read_through` is where the workspace said the
        window ended. Every query after the first is asked to end exactly there, so pages read one window."""
        start, end, resource_ids = window["start"], window["end"], window["resource_ids"]
        overlap_from = window["watermark"]
        pending = list(reversed(self._pages)) if resource_ids is None else [Page()]
        done: list[Page] = []
        signals: list[FailureSignal] = []
        rejected: list[RejectedRow] = []
        partial: list[str] = []
        read_through: datetime | None = None
        while pending:
            page = pending.pop()
            text = kql.failures_query(start=start, watermark=overlap_from, end=read_through or end,
                                      resource_ids=resource_ids, buckets=page.buckets, account_buckets=page.accounts,
                                      limit=GROUPS_PER_RESPONSE + 1)
            read = self._read_page(text, start, end)
            read_through = read_through or read.read_through
            if read.cut:  # its groups are read again
                more = page.split() if page != Page() else self._planned({**window, "end": read_through or end})
                pending.extend(reversed(more))
                continue
            partial.extend(read.errors)
            signals.extend(read.signals)
            rejected.extend(read.rejected)
            done.append(replace(page, groups=len(read.signals) + len(read.rejected)))
        if read_through is None and not partial:
            raise SourceError(f"{self.name}: the failures query's answer does not say where it read through "
                              f"({kql.READ_THROUGH})")
        if resource_ids is None and not partial:  # a partial answer undercounts: the plan stays
            self._pages = replan(done)
        # map_rows merged each page's groups: one page needs no second pass.
        merged = tuple(signals) if len(done) == 1 else merge_groups(signals)
        return SourceBatch(self.name, start, end, merged, partial_errors=tuple(partial),
                           rejected=tuple(rejected), read_through=read_through)

    def _read_page(self, text: str, start: datetime, end: datetime) -> _PageRead:
        """One page's query and its rows mapped, with the cyclic collector held off (`collection_paused`): the
        SDK makes several containers per row that live until the rows are mapped; dropped before the collector runs
        again, they are never promoted to be traversed again by the oldest generation's collections."""
        with collection_paused():
            tables, errors = self._query.run_tables(text, *kql.failures_timespan(start, end))
            read_through = _stated_read_through(tables)
            if sum(len(table.rows) for table in tables) > GROUPS_PER_RESPONSE:
                del tables
                return _PageRead((), (), errors, read_through, cut=True)
            # Row by row: each dict is dropped once its signal is made; the SDK's rows go with the tables.
            found, bad = map_rows(_group_rows(tables), self.name, lambda row: diagnostics_signal(row, self.name))
            del tables
        return _PageRead(found, bad, errors, read_through)

    def _planned(self, window: dict[str, Any]) -> list[Page]:
        """Pages for a window that holds more groups than one response: one count per account bucket."""
        rows, _ = self._query.run(kql.failures_account_buckets_query(**window),
                                  *kql.failures_timespan(window["start"], window["end"]))
        counts = {str(row.get("Bucket") or ""): int(row.get("Groups") or 0) for row in rows}
        pages = plan_pages(counts)
        return list(pages) if pages != WHOLE_WINDOW else [Page(ACCOUNT_PREFIXES)]

    def activity(self, principal_id: str | None, resource_id: str, since: datetime, until: datetime) -> Activity:
        text = kql.activity_query(principal_id=principal_id, resource_id=resource_id, since=since, until=until)
        try:
            rows, partial = self._query.run(text, since, until)
        except NoDataYet:
            return Activity(0, 0)
        return _activity(rows, partial, self.name)


def _stated_read_through(tables: list[Any]) -> datetime | None:
    """The `ReadThrough` the failures query's last row states (None when it is missing: a partial answer may have
    lost it, and then the watermark does not move)."""
    for table in tables:
        if kql.READ_THROUGH in table.columns:
            at = list(table.columns).index(kql.READ_THROUGH)
            stated = next((row[at] for row in table.rows if row[at] is not None), None)
            if stated is not None:
                return _as_time(stated)
    return None


def _group_rows(tables: list[Any]) -> Iterator[dict[str, Any]]:
    """The failure groups of the answer as dicts, one at a time (the ReadThrough row left out)."""
    for table in tables:
        columns = list(table.columns)
        stated = kql.READ_THROUGH in columns
        for row in table.rows:
            # The cell read from the dict: the SDK's row looks a column up through a method with type checks.
            cells = dict(zip(columns, row, strict=False))
            if not stated or cells[kql.READ_THROUGH] is None:
                yield cells


def _as_time(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _activity(rows: list[dict[str, Any]], partial: tuple[str, ...], name: str) -> Activity:
    if partial:
        # A partial answer may undercount failures; verification must not resolve on it.
        raise SourceError(f"{name}: partial result while verifying: {'; '.join(partial)}")
    if not rows:
        return Activity(failures=0, successes=0)
    row = rows[0]
    return Activity(failures=int(row.get("Failures") or 0), successes=int(row.get("Successes") or 0))


class AppInsightsSource:
    """Client-side failures (AppDependencies to the inference endpoints) from one workspace-based Application
    Insights workspace. The caller identity comes from `identity_of(app_role_name)`; the account from
    `resource_of(host)`; `hosts_of(resource_id)` gives the endpoint hosts of an account for verification."""

    def __init__(
        self,
        client: Any,
        workspace_id: str,
        *,
        app_identities: Mapping[str, str],
        identity_of: Callable[[str], str | None] | None = None,
        resource_of: Callable[[str], str | None] | None = None,
        hosts_of: Callable[[str], tuple[str, ...]] | None = None,
        server_timeout: int = 180,
    ):
        self.workspace_id = workspace_id
        self.name = f"appinsights:{workspace_id}"
        self._query = _WorkspaceQuery(client, workspace_id, "Application Insights", server_timeout)
        self._app_identities = dict(app_identities)
        self._identity_of = identity_of or (lambda app: self._app_identities.get(app))
        self._resource_of = resource_of or (lambda host: None)
        self._hosts_of = hosts_of or (lambda resource_id: ())

    def read(
        self,
        start: datetime,
        end: datetime,
        resource_ids: tuple[str, ...] | None = None,
        *,
        watermark: datetime | None = None,
    ) -> SourceBatch:
        text = kql.client_failures_query(start=start, watermark=overlap_start(start, watermark), end=end)
        try:
            rows, partial = self._query.run(text, start, end)
        except NoDataYet as missing:
            return SourceBatch(self.name, start, end, (), no_data=str(missing))
        if rows:
            messages, more = self._messages(start, end)
            rows = [{**row, "SampleMessage": messages.get(_client_group(row))} for row in rows]
            partial += more

        def to_signal(row: Mapping[str, Any]):
            return dependency_signal(row, self.name, identity_of=self._identity_of, resource_of=self._resource_of)

        signals, rejected = map_rows(rows, self.name, to_signal)
        if resource_ids is not None:
            wanted = {account_key(r) for r in resource_ids}
            signals = tuple(s for s in signals if s.resource_id and account_key(s.resource_id) in wanted)
        return SourceBatch(self.name, start, end, signals, partial_errors=partial, rejected=rejected)

    def _messages(self, start: datetime, end: datetime) -> tuple[dict[tuple[str, ...], Any], tuple[str, ...]]:
        """The exception message of each failure group that has one. No AppExceptions table (the apps never logged
        an exception) means no messages: the failures are still read."""
        try:
            rows, partial = self._query.run(kql.client_messages_query(start=start, end=end), start, end)
        except NoDataYet as missing:
            log.debug("%s: no exception messages: %s", self.name, missing)
            return {}, ()
        return {_client_group(row): row.get("SampleMessage") for row in rows}, partial

    def activity(self, principal_id: str | None, resource_id: str, since: datetime, until: datetime) -> Activity:
        if principal_id is None:
            return Activity(0, 0)  # client telemetry names apps, not key callers
        wanted = principal_id.lower()
        apps = tuple(sorted(app for app in self._app_identities if (self._identity_of(app) or "").lower() == wanted))
        hosts = self._hosts_of(resource_id)
        if not apps or not hosts:
            return Activity(0, 0)
        text = kql.client_activity_query(app_role_names=apps, hosts=hosts, since=since, until=until)
        try:
            rows, partial = self._query.run(text, since, until)
        except NoDataYet:
            return Activity(0, 0)
        return _activity(rows, partial, self.name)


def _client_group(row: Mapping[str, Any]) -> tuple[str, ...]:
    """The group key both client-side queries summarize by."""
    return tuple(str(row.get(column) or "") for column in ("AppRoleName", "Host", "Name", "Status"))


def workspace_query(client: Any, workspace_id: str, label: str, server_timeout: int = 180) -> _WorkspaceQuery:
    """The query runner these sources share (errors, partial results), for sources in other modules."""
    return _WorkspaceQuery(client, workspace_id, label, server_timeout)
