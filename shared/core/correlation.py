"""Client-side records joined to server-side ones. Pure.

A Cognitive Services RequestResponse row names the caller (`objectId`) but carries no error text and no request
path; the calling app's Application Insights records (AppDependencies, AppExceptions) carry both, but name the
caller only through configuration (the app's role name and the managed identity of its resource). When both sides
saw the same failures, the server row keeps its trusted caller and takes the client's URL and text, and the client
group is absorbed: one incident, diagnosed from everything known.

A client group joins a server group when they name the same caller, the same account and the same status, and
their times overlap (within JOIN_SLACK, for ingestion and clock differences). A server row without an object id
(a key caller, or a token the service rejected) joins nothing: the client's caller could not be checked against it.
When several client groups with different URLs join one server group, the server group takes neither URL nor text
(they would disagree), but still absorbs them.

API Management gateway logs join the same way: the account logs the gateway's backend call with the gateway's
identity as caller, and the gateway logs the same call with its backend URL (and the backend's error body when the
diagnostic setting logs it), so without the join every failure would be counted twice. The gateway's identity is
read from its ARM resource, which Azure names in the row, so a gateway group is never "named by telemetry".

A signal whose caller comes only from client records (no server row joined it) is named by the app's own
telemetry, which the app writes itself: `identity_from_client_records` says so. Only a server-side row (the
service's own diagnostic logs, the AI gateway's logs) is a witness the failing app cannot write (`server_witness`):
without one, the policy's `corroborated` rule asks for an engineer's approval before any enforce-mode grant.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import replace
from datetime import timedelta

from shared.core.model import FailureSignal
from shared.core.resource_ids import account_key

# Sources named `appinsights:<workspace>` (shared/adapters/logs.py AppInsightsSource) read client-side records.
CLIENT_SOURCE_PREFIX = "appinsights:"
# Sources whose rows Azure writes, never the calling app: AzureDiagnostics (`logs:<workspace>`) and the API
# Management gateway's ApiManagementGatewayLogs (`apim:<workspace>`, shared/adapters/gateway_logs.py).
GATEWAY_SOURCE_PREFIX = "apim:"
SERVER_SOURCE_PREFIXES = ("logs:", GATEWAY_SOURCE_PREFIX)
JOIN_SLACK = timedelta(minutes=5)
# How far before a claimed failure a server-side row of the same caller on the same account still confirms it.
WITNESS_WINDOW = timedelta(minutes=15)


def is_client_record(signal: FailureSignal) -> bool:
    return (signal.source or "").startswith(CLIENT_SOURCE_PREFIX)


def is_other_side(signal: FailureSignal) -> bool:
    """A group that records failures a server row also records (client-side records, gateway logs)."""
    return is_client_record(signal) or (signal.source or "").startswith(GATEWAY_SOURCE_PREFIX)


def identity_from_client_records(signal: FailureSignal | None) -> bool:
    """The caller of this signal was named only by client-side telemetry (no server row confirmed it)."""
    return signal is not None and bool(signal.object_id) and is_client_record(signal)


def is_server_source(name: str | None) -> bool:
    return (name or "").startswith(SERVER_SOURCE_PREFIXES)


def server_witness(signal: FailureSignal | None) -> str | None:
    """The server-side source whose row names this failure's caller, when it came from one; None otherwise (a
    client-side record, an event, a pasted error)."""
    if signal is None or not signal.object_id or not signal.resource_id or not is_server_source(signal.source):
        return None
    return f"{signal.source} row"


def _key(signal: FailureSignal) -> tuple[str, str, int] | None:
    if not signal.object_id or not signal.resource_id:
        return None
    return signal.object_id.lower(), account_key(signal.resource_id), signal.status


def _overlap(a: FailureSignal, b: FailureSignal) -> bool:
    a_first, a_last, b_first, b_last = a.first_seen, a.last_seen, b.first_seen, b.last_seen
    if a_first is None or a_last is None or b_first is None or b_last is None:
        return False
    return a_first - JOIN_SLACK <= b_last and b_first - JOIN_SLACK <= a_last


def _url(client: FailureSignal) -> str | None:
    """The client's request URL: its endpoint (scheme and host) and its route (the path it called)."""
    route = client.route if client.route and client.route.startswith("/") else ""
    if not client.endpoint:
        return None
    return client.endpoint.rstrip("/") + route


def _enrich(server: FailureSignal, clients: Sequence[FailureSignal]) -> FailureSignal:
    urls = {_url(c) for c in clients}
    if len(urls) != 1:
        return server  # the clients called different URLs: neither can speak for the server group
    url = urls.pop()
    message = server.message or next((c.message for c in clients if c.message), None)
    return replace(server, endpoint=server.endpoint or url, message=message)


def join_client_records(signals: Iterable[FailureSignal]) -> list[FailureSignal]:
    """The signals with every client or gateway group that joins a server group absorbed into it (order kept)."""
    signals = list(signals)
    servers: dict[tuple[str, str, int], list[int]] = {}
    for index, signal in enumerate(signals):
        key = _key(signal) if not is_other_side(signal) else None
        if key is not None:
            servers.setdefault(key, []).append(index)
    if not servers:
        return signals
    joined: dict[int, list[FailureSignal]] = {}
    absorbed: set[int] = set()
    for index, signal in enumerate(signals):
        key = _key(signal) if is_other_side(signal) else None
        if key is None:
            continue
        match = next((i for i in servers.get(key, ()) if _overlap(signals[i], signal)), None)
        if match is not None:
            joined.setdefault(match, []).append(signal)
            absorbed.add(index)
    return [_enrich(signal, joined[index]) if index in joined else signal
            for index, signal in enumerate(signals) if index not in absorbed]
