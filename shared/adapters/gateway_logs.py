"""A failure source over Azure API Management gateway logs (resource-specific table `ApiManagementGatewayLogs`).

Many teams put API Management in front of Azure OpenAI / Foundry, and the gateway calls the account with its own
managed identity (the `authentication-managed-identity` policy). A backend 401/403 to an inference host is then a
failure of **the gateway's identity**, whoever called the gateway: the principal is read from the API Management
resource (`_ResourceId` of the row) through ARM, never from the gateway's caller. The account is the one behind
the backend host.

Columns read (Azure Monitor table reference, ApiManagementGatewayLogs): `TimeGenerated`, `_ResourceId`,
`BackendUrl`, `BackendMethod`, `BackendResponseCode`, `LastErrorReason`, `LastErrorMessage`, and
`BackendResponseBody` (logged only when the diagnostic setting logs backend bodies). A workspace that has not
received `ApiManagementGatewayLogs` yet is no data yet, as for the other sources (shared/adapters/logs.py).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any

from shared.adapters import kql
from shared.adapters.failure_rows import (
    RowRejected,
    checked_host,
    checked_resource_id,
    map_rows,
    row_group,
    row_text,
)
from shared.adapters.logs import NoDataYet, SourceError, overlap_start, workspace_query
from shared.core.allowlist import normalize_object_id
from shared.core.model import ENTRA, FailureSignal
from shared.core.ports import Activity, SourceBatch
from shared.core.resource_ids import account_key

GATEWAY_TYPE = "microsoft.apimanagement/service"


def gateway_signal(
    row: Mapping[str, Any],
    source: str,
    *,
    identity_of: Callable[[str], str | None],
    resource_of: Callable[[str], str | None],
) -> FailureSignal:
    """A FailureSignal from one gateway_failures_query() row: the caller is the gateway's managed identity
    (`identity_of(gateway id)`), the resource the account behind the backend host (`resource_of(host)`); either
    may stay unknown. Raises RowRejected (the reason) when the row is malformed."""
    raw_gateway = row_text(row, "GatewayId")
    if not raw_gateway:
        raise RowRejected("missing gateway resource id")
    gateway = checked_resource_id(raw_gateway, "gateway resource id")
    if f"/providers/{GATEWAY_TYPE}/" not in gateway + "/":
        raise RowRejected(f"gateway resource id {gateway[:200]!r} is not an API Management service")
    raw_host = row_text(row, "BackendHost")
    if not raw_host:
        raise RowRejected("missing backend host")
    host = checked_host(raw_host)
    status, count, overlap, first, last = row_group(row)
    path = row_text(row, "BackendPath")
    method = row_text(row, "BackendMethod")
    object_id = normalize_object_id(identity_of(gateway))
    return FailureSignal(
        status=status,
        code=row_text(row, "ErrorCode"),
        message=row_text(row, "SampleMessage"),
        object_id=object_id,
        auth=ENTRA if object_id else None,  # a gateway without a readable identity may send a key: unknown
        endpoint=f"https://{host}",
        route=path,
        operation=f"{method.upper()} {path}" if method and path else path,
        resource_id=resource_of(host),
        count=count,
        overlap_count=overlap,
        first_seen=first,
        last_seen=last,
        source=source,
    )


class GatewayLogsSource:
    """Backend 401/403s of API Management gateways from one Log Analytics workspace. `identity_of(gateway id)`
    gives a gateway's managed identity, `resource_of(host)` the account behind a host, and `hosts_of(account)`
    an account's hosts for verification."""

    def __init__(
        self,
        client: Any,
        workspace_id: str,
        *,
        identity_of: Callable[[str], str | None],
        resource_of: Callable[[str], str | None],
        hosts_of: Callable[[str], tuple[str, ...]],
        server_timeout: int = 180,
    ):
        self.workspace_id = workspace_id
        self.name = f"apim:{workspace_id}"
        self._query = workspace_query(client, workspace_id, "API Management gateway logs", server_timeout)
        self._identity_of = identity_of
        self._resource_of = resource_of
        self._hosts_of = hosts_of

    def read(
        self,
        start: datetime,
        end: datetime,
        resource_ids: tuple[str, ...] | None = None,
        *,
        watermark: datetime | None = None,
    ) -> SourceBatch:
        text = kql.gateway_failures_query(start=start, watermark=overlap_start(start, watermark), end=end)
        try:
            rows, partial = self._query.run(text, start, end)
        except NoDataYet as missing:  # no gateway has sent its logs to this workspace yet
            return SourceBatch(self.name, start, end, (), no_data=str(missing))

        def to_signal(row: Mapping[str, Any]) -> FailureSignal:
            return gateway_signal(row, self.name, identity_of=self._identity_of, resource_of=self._resource_of)

        signals, rejected = map_rows(rows, self.name, to_signal)
        if resource_ids is not None:
            wanted = {account_key(r) for r in resource_ids}
            signals = tuple(s for s in signals if s.resource_id and account_key(s.resource_id) in wanted)
        return SourceBatch(self.name, start, end, signals, partial_errors=partial, rejected=rejected)

    def activity(self, principal_id: str | None, resource_id: str, since: datetime, until: datetime) -> Activity:
        """Backend failures and successes to the account's hosts of every gateway whose identity is
        `principal_id`. Key callers and accounts without known hosts have no gateway traffic here."""
        wanted = normalize_object_id(principal_id)
        hosts = self._hosts_of(resource_id) if wanted else ()
        if not wanted or not hosts:
            return Activity(0, 0)
        try:
            rows, partial = self._query.run(kql.gateway_activity_query(hosts=hosts, since=since, until=until),
                                            since, until)
        except NoDataYet:
            return Activity(0, 0)
        if partial:
            # A partial answer may undercount failures; verification must not resolve on it.
            raise SourceError(f"{self.name}: partial result while verifying: {'; '.join(partial)}")
        failures = successes = 0
        for row in rows:
            gateway = row.get("GatewayId")
            if isinstance(gateway, str) and gateway and normalize_object_id(self._identity_of(gateway)) == wanted:
                failures += int(row.get("Failures") or 0)
                successes += int(row.get("Successes") or 0)
        return Activity(failures=failures, successes=successes)
