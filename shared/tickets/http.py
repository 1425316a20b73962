"""One HTTP stack for every tracker: azure-core's PipelineClient with bounded retries, redacted logging and a
per-tracker auth policy. Tracker answers become TicketError (retry next cycle) or TicketAuthError (operator).

Retries are for requests the tracker did not act on: rate limits (429; 403/503 with Retry-After) are retried
for any method; 5xx only for calls marked idempotent, because a create or comment that failed with 5xx may
still have been applied (the next cycle's look-up finds it instead of creating a second ticket). A Retry-After
longer than `max_retry_after` is not waited for, nor is an exhausted quota (`x-ratelimit-remaining: 0`, reset
often an hour away): the call raises TicketRateLimited with the wait the tracker asked for, and the engine opens no
new ticket on that sink until then (engine/ticketing.py).
"""

from __future__ import annotations

import base64
import json as jsonlib
import logging
import math
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

from shared.core.ticket_model import TicketRateLimited
from shared.tickets.base import TicketAuthError, TicketError
from shared.tickets.sanitize import clean_line, redact

HTTP_LOGGER = "triage.tickets.http"
_ALL_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS", "TRACE", "POST", "PATCH"})
_SAFE_QUERY_PARAMS = (
    "state", "labels", "per_page", "sort", "direction", "q", "ids", "fields", "$top", "sysparm_query",
    "sysparm_limit", "sysparm_fields", "sysparm_exclude_reference_link", "jql", "maxResults", "errorPolicy",
)
_SAFE_RESPONSE_HEADERS = ("x-ratelimit-remaining", "x-ratelimit-reset", "x-github-request-id", "x-ratelimit-resource",
                          "x-ratelimit-limit", "x-ratelimit-used", "retry-after")
# GitHub: a secondary rate limit without Retry-After or an exhausted quota means "wait at least one minute".
SECONDARY_LIMIT_WAIT = 60.0


@dataclass(frozen=True)
class HttpOptions:
    connection_verify: bool | str = True  # a CA bundle path for the local stand-in
    transport: Any = None  # an azure-core HttpTransport; default RequestsTransport
    retry_total: int = 3
    retry_backoff_factor: float = 0.8
    retry_backoff_max: int = 30
    max_retry_after: float = 30.0
    timeout: float = 60.0  # all attempts of one call together
    connection_timeout: float = 10.0
    read_timeout: float = 30.0


@dataclass(frozen=True)
class HttpResult:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        if not self.body:
            return None
        try:
            return jsonlib.loads(self.body.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            return None


def segment(value: str) -> str:
    """One URL path segment (project names may contain spaces)."""
    return quote(value, safe="")


def basic_auth(user: str, secret: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{secret}".encode()).decode("ascii")


def secret_forms(*secrets: str, headers: Iterable[str] = ()) -> tuple[str, ...]:
    """The strings that must never leave a sink: raw secrets and the header values built from them."""
    forms: list[str] = [s for s in secrets if s]
    for header in headers:
        forms += [header, header.split(" ", 1)[-1]]
    return tuple(forms)


class _LogRedaction(logging.Filter):
    """Takes secrets out of the HTTP libraries' own log lines: azure-core logs the request URL and urllib3 its
    request line ("POST /path?query HTTP/1.1") at DEBUG, and for a webhook sink the URL is the credential."""

    def __init__(self) -> None:
        super().__init__()
        self._secrets: tuple[str, ...] = ()
        self._lock = threading.Lock()

    def add(self, forms: Iterable[str]) -> None:
        with self._lock:
            self._secrets = tuple(dict.fromkeys((*self._secrets, *(f for f in forms if f))))

    def filter(self, record: logging.LogRecord) -> bool:
        if self._secrets:
            message = record.getMessage()
            cleaned = redact(message, self._secrets)
            if cleaned != message:
                record.msg, record.args = cleaned, ()
        return True


_LOG_REDACTION = _LogRedaction()
URL_LOGGERS = (HTTP_LOGGER, "urllib3.connectionpool")


def redact_in_http_logs(forms: Iterable[str]) -> None:
    """Keep `forms` (a webhook URL and its parts) out of the HTTP loggers that write request URLs."""
    _LOG_REDACTION.add(forms)
    for name in URL_LOGGERS:
        logger = logging.getLogger(name)
        if _LOG_REDACTION not in logger.filters:
            logger.addFilter(_LOG_REDACTION)


def _rate_limited(status: int, headers: Mapping[str, str], message: str) -> bool:
    if status == 429:
        return True
    if status == 403:
        return bool(headers.get("retry-after")) or headers.get("x-ratelimit-remaining") == "0" or (
            "rate limit" in message.lower()
        )
    return False


def _seconds(value: str | None) -> float | None:
    try:
        seconds = float(value) if value is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) else None


def _date_epoch(headers: Mapping[str, str]) -> float:
    """The answer's own time (its Date header), so a reset in epoch seconds becomes a wait by the tracker's clock."""
    try:
        return parsedate_to_datetime(headers["date"]).timestamp()
    except (KeyError, TypeError, ValueError, IndexError):
        return time.time()


def rate_limit_wait(headers: Mapping[str, str]) -> float | None:
    """How long a rate-limited answer asks to wait, in seconds: `retry-after` (seconds or an HTTP date), and
    `x-ratelimit-reset` (epoch seconds when `x-ratelimit-remaining` is 0; Jira's ISO 8601 time); the longer."""
    waits: list[float] = []
    retry_after = headers.get("retry-after")
    if retry_after:
        seconds = _seconds(retry_after)
        if seconds is None:
            try:
                seconds = parsedate_to_datetime(retry_after).timestamp() - _date_epoch(headers)
            except (TypeError, ValueError, IndexError):
                seconds = None
        if seconds is not None:
            waits.append(seconds)
    raw_reset = headers.get("x-ratelimit-reset")
    reset = _seconds(raw_reset)
    if headers.get("x-ratelimit-remaining") == "0" and reset is not None:  # GitHub, Azure DevOps: epoch seconds
        waits.append(reset - _date_epoch(headers))
    elif reset is None and raw_reset:  # Jira Cloud: an ISO 8601 time (yyyy-MM-ddTHH:mmZ)
        try:
            at = datetime.fromisoformat(raw_reset.strip())
            waits.append((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() - _date_epoch(headers))
        except (ValueError, OverflowError):
            pass
    return max(0.0, *waits) if waits else None


def quota_exhausted(headers: Mapping[str, str]) -> bool:
    """An exhausted quota without Retry-After: retrying within the call only spends requests until the reset."""
    return headers.get("x-ratelimit-remaining") == "0" and not headers.get("retry-after")


def _tracker_message(result: HttpResult) -> str:
    """The tracker's own error text, from the error shapes of GitHub, Azure DevOps, ServiceNow and Jira."""
    payload = result.json()
    parts: list[str] = []
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            parts += [str(error.get("message") or ""), str(error.get("detail") or "")]
        if payload.get("message"):
            parts.append(str(payload["message"]))
        if isinstance(payload.get("errorMessages"), list):
            parts += [str(m) for m in payload["errorMessages"]]
        if isinstance(payload.get("errors"), dict):
            parts += [f"{k}: {v}" for k, v in payload["errors"].items()]
    return clean_line(" ".join(p for p in parts if p), 300)


def _make_retry_policy(options: HttpOptions) -> Any:
    from azure.core.pipeline.policies import RetryPolicy

    max_retry_after = options.max_retry_after

    class TrackerRetryPolicy(RetryPolicy):
        def is_retry(self, settings: dict[str, Any], response: Any) -> bool:
            status = response.http_response.status_code
            if status < 400 or status == 401 or not settings["total"]:
                return False
            retry_after = self.get_retry_after(response)
            if retry_after is not None and retry_after > max_retry_after:
                return False
            if status in (403, 429) and quota_exhausted({k.lower(): v for k, v in
                                                          response.http_response.headers.items()}):
                return False
            if status == 429 or (status in (403, 503) and retry_after is not None):
                return True
            if response.http_request.method.upper() not in settings["methods"]:
                return False
            return status in self._retry_on_status_codes

    return TrackerRetryPolicy(
        retry_total=options.retry_total,
        retry_backoff_factor=options.retry_backoff_factor,
        retry_backoff_max=options.retry_backoff_max,
        timeout=options.timeout,
    )


def _make_auth_policy(header_value: Callable[[], str]) -> Any:
    from azure.core.exceptions import ServiceRequestError
    from azure.core.pipeline.policies import SansIOHTTPPolicy

    class AuthorizationPolicy(SansIOHTTPPolicy):
        def on_request(self, request: Any) -> None:
            if not request.http_request.url.lower().startswith("https://"):
                raise ServiceRequestError("credentials are only sent over https")
            request.http_request.headers["Authorization"] = header_value()

    return AuthorizationPolicy()


class TrackerClient:
    """A PipelineClient for one tracker, raising TicketError/TicketAuthError with redacted messages."""

    def __init__(
        self,
        *,
        sink: str,
        base_url: str,
        options: HttpOptions,
        secrets: tuple[str, ...],
        credential_hint: str,
        authorization: Callable[[], str] | None = None,
        auth_policy: Any = None,
        headers: Mapping[str, str] | None = None,
    ):
        from azure.core import PipelineClient
        from azure.core.pipeline.policies import HeadersPolicy, HttpLoggingPolicy
        from azure.core.pipeline.transport import RequestsTransport

        self.sink = sink
        self.base_url = base_url.rstrip("/")
        self._secrets = secrets
        self._issued: set[str] = set()  # header values sent (refreshed tokens too), for redaction
        self._hint = credential_hint
        self._options = options
        logging_policy = HttpLoggingPolicy(
            logger=logging.getLogger(HTTP_LOGGER),
            http_logging_level=logging.DEBUG,
            additional_allowed_query_params=_SAFE_QUERY_PARAMS,
        )
        logging_policy.allowed_header_names.update(_SAFE_RESPONSE_HEADERS)
        def issue() -> str:
            value = authorization()  # type: ignore[misc]
            self._issued.update((value, value.split(" ", 1)[-1]))
            return value

        auth = auth_policy if auth_policy is not None else (_make_auth_policy(issue) if authorization else None)
        base_headers = {"User-Agent": "aoai-auth-triage-tickets/1", "Accept": "application/json"}
        base_headers.update(headers or {})
        policies = [HeadersPolicy(base_headers), _make_retry_policy(options), auth, logging_policy]
        transport = options.transport or RequestsTransport(connection_verify=options.connection_verify)
        self._client: Any = PipelineClient(self.base_url, policies=[p for p in policies if p], transport=transport)

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        content: bytes | None = None,
        headers: Mapping[str, str] | None = None,
        idempotent: bool,
        allow: tuple[int, ...] = (),
    ) -> HttpResult:
        """Send one call (with the pipeline's retries). 2xx and `allow`ed statuses return; others raise."""
        from azure.core.exceptions import AzureError, ClientAuthenticationError
        from azure.core.rest import HttpRequest

        request = HttpRequest(method, self.base_url + path, params=dict(params or {}), json=json,
                              content=content, headers=dict(headers or {}))
        try:
            response = self._client.send_request(
                request,
                retry_on_methods=frozenset({method.upper()}) if idempotent else frozenset(),
                connection_timeout=self._options.connection_timeout,
                read_timeout=self._options.read_timeout,
            )
            result = HttpResult(response.status_code, dict(response.headers), response.read())
        except ClientAuthenticationError as exc:
            raise TicketAuthError(self._message(f"could not get a token ({type(exc).__name__}); "
                                                f"check {self._hint}")) from None
        except AzureError as exc:
            raise TicketError(self._message(f"tracker unreachable ({type(exc).__name__})")) from None
        if 200 <= result.status < 300 and result.status != 203 or result.status in allow:
            return result
        raise self.error_for(result)

    def request_refreshing(self, method: str, path: str, *, refresh: Callable[[], None], idempotent: bool,
                           allow: tuple[int, ...] = (), **kwargs: Any) -> HttpResult:
        """`request` with a token that can be minted again: a 401 calls `refresh` (the kept token is dropped) and
        the call is made once more; a second 401 is the credentials' fault. Safe for creates too: a tracker does
        not act on a request it refused to authenticate."""
        result = self.request(method, path, idempotent=idempotent, allow=(*allow, 401), **kwargs)
        if result.status == 401 and 401 not in allow:
            refresh()
            result = self.request(method, path, idempotent=idempotent, allow=(*allow, 401), **kwargs)
            if result.status == 401:
                raise self.error_for(result)
        return result

    def error_for(self, result: HttpResult) -> TicketError:
        status = result.status
        reason = _tracker_message(result)
        detail = f"HTTP {status}" + (f": {reason}" if reason else "")
        headers = {k.lower(): v for k, v in result.headers.items()}
        if status == 401 or status == 203:  # Azure DevOps answers a bad PAT with 203 and a sign-in page
            return TicketAuthError(self._message(f"credentials rejected ({detail}); check {self._hint}"))
        if _rate_limited(status, headers, reason):
            wait = rate_limit_wait(headers)
            if wait is None and status == 403:
                wait = SECONDARY_LIMIT_WAIT
            return TicketRateLimited(self._message(f"rate-limited ({detail}"
                                                   + (f"; retry after {wait:g} s" if wait is not None else "")
                                                   + "); retry next cycle"), retry_after=wait)
        if status == 403 and "data policy" not in reason.lower():
            return TicketAuthError(self._message(f"permission denied ({detail}); the account behind "
                                                 f"{self._hint} lacks a permission the sink needs"))
        if status >= 500:
            return TicketError(self._message(f"tracker unavailable ({detail}); retry next cycle"))
        return TicketError(self._message(f"request rejected ({detail})"))

    def add_secrets(self, *values: str) -> None:
        """More strings never to show (tokens minted later: GitHub App installation tokens), even before they are
        first sent."""
        self._issued.update(v for v in values if v)

    def _message(self, text: str) -> str:
        return redact(f"{self.sink} sink: {text}", (*self._secrets, *self._issued))

    def close(self) -> None:
        self._client.close()
