"""What every stand-in service shares in front of its own logic: routing to a named route, call counting,
fault injection, and the authentication header check."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from localazure.calls import READ, Call, CallLog
from localazure.clock import Clock
from localazure.faults import Fault, Faults
from localazure.https import Handler, Request, Response


@dataclass(frozen=True)
class CallContext:
    base_url: str  # https://127.0.0.1:P as the client addressed us (for nextLink)
    partial: bool = False  # a fault asked for a partial query result


RouteFn = Callable[[Request, CallContext], Response]


class Service(Protocol):
    name: str

    def route(self, request: Request) -> tuple[str, str, RouteFn]:
        """(route name, read|write, function) for the request."""
        ...

    def authenticate(self, request: Request) -> Response | None:
        """None when the credentials are acceptable, else the service's 401 answer."""
        ...

    def fault_response(self, fault: Fault) -> Response:
        ...


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response:
    return Response.json({"error": {"code": code, "message": message}}, status, headers)


def fault_headers(fault: Fault, statuses: tuple[int, ...] = (429, 503)) -> dict[str, str]:
    """Retry-After for a fault whose status is one of `statuses` (the ones the service sends it with)."""
    if fault.retry_after is None or fault.status not in statuses:
        return {}
    value = fault.retry_after
    return {"Retry-After": str(int(value)) if float(value).is_integer() else f"{value:g}"}


def front(service: Service, calls: CallLog, faults: Faults, clock: Clock, *, record_requests: bool = False) -> Handler:
    """The handler to serve `service` with. `record_requests` keeps each request in its `Call` (the ticket
    trackers' tests read what was sent; the Azure services' call volume makes that too costly there)."""

    def handle(request: Request) -> Response:
        route_name, kind, fn = service.route(request)
        fault = faults.take(service.name, request.method, request.path, route_name)
        if fault is not None and fault.delay:
            time.sleep(fault.delay)
        if fault is not None and not fault.after_apply and (fault.drop or fault.status):
            response = _failure(service, fault)
        else:
            response = service.authenticate(request) or fn(
                request,
                CallContext(
                    base_url="https://" + request.headers.get("host", "127.0.0.1"),
                    partial=bool(fault and fault.partial),
                ),
            )
            if fault is not None and fault.after_apply and (fault.drop or fault.status) and response.status < 400:
                response = _failure(service, fault)  # carried out, yet the client sees a failure
        calls.record(
            Call(service.name, request.method.upper(), route_name, request.path,
                 0 if response.drop_connection else response.status, kind, clock.now(),
                 request if record_requests else None)
        )
        return response

    return handle


def _failure(service: Service, fault: Fault) -> Response:
    return Response(drop_connection=True) if fault.drop else service.fault_response(fault)


def bearer_token(request: Request) -> str | None:
    value = request.headers.get("authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


__all__ = ["READ", "CallContext", "Service", "bearer_token", "error", "front", "fault_headers"]
