"""ServiceNow's OAuth 2.0 client credentials grant, for the ServiceNow sink (TRIAGE_SERVICENOW_AUTH=oauth).

The instance issues tokens at POST {instance}/oauth_token.do, a URL-encoded form (grant_type=client_credentials,
client_id, client_secret), answering JSON {access_token, token_type: Bearer, expires_in, scope}:
https://www.servicenow.com/docs/bundle/geneva-servicenow-platform/page/administer/security/reference/r_OAuthTokens.html
The grant is off until an admin creates the system property glide.oauth.inbound.client.credential.grant_type.enabled
(Washington DC and later) and sets the application's OAuth Application User, whose roles the token carries:
https://www.servicenow.com/docs/r/platform-security/authentication/client-credentials.html
A refused request answers 401 (e.g. {"error": "server_error", "error_description": "access_denied"}).

A token is kept and reused until `REFRESH_MARGIN` before it expires by `expires_in` (on an injectable monotonic
clock), and dropped when the instance answers 401 to it (revoked, or the lifespan shortened). The token and the
client secret are secrets of the sink's TrackerClient: every issued header is registered for redaction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from urllib.parse import urlencode

from shared.tickets.base import TicketAuthError
from shared.tickets.http import HttpOptions, TrackerClient, secret_forms
from shared.tickets.token_cache import RefreshingToken

TOKEN_PATH = "/oauth_token.do"  # noqa: S105 - a path, not a secret
REFRESH_MARGIN = 60.0  # seconds before expiry a token is replaced (at most half its lifetime)
DEFAULT_LIFETIME = 1800.0  # ServiceNow's default access token lifespan, when an answer omits expires_in


class ClientCredentialsToken:
    """Bearer tokens from the client credentials grant: fetched on first use, reused, refreshed before expiry
    (token_cache.RefreshingToken)."""

    def __init__(self, *, instance_url: str, client_id: str, client_secret: str, options: HttpOptions,
                 credential_hint: str, clock: Callable[[], float] = time.monotonic):
        if not instance_url.lower().startswith("https://"):
            raise ValueError("the ServiceNow client secret is only sent over https")
        self._form = urlencode({"grant_type": "client_credentials", "client_id": client_id,
                                "client_secret": client_secret}).encode("ascii")
        self._hint = credential_hint
        # The margin depends on each token's lifetime, so `_fetch` returns when to refresh, not when it expires.
        self._tokens = RefreshingToken(self._fetch, clock, refresh_early=0.0)
        self._http = TrackerClient(
            sink="servicenow", base_url=instance_url, options=options, credential_hint=credential_hint,
            secrets=secret_forms(client_secret, self._form.decode("ascii")), authorization=None,
        )

    def header(self) -> str:
        return f"Bearer {self._tokens()}"

    def use_clock(self, clock: Callable[[], float]) -> None:
        self._tokens.use_clock(clock)

    def invalidate(self, header: str | None = None) -> None:
        """Drop the cached token (the instance refused it); only if it is still the one that was refused."""
        self._tokens.invalidate(None if header is None else header.removeprefix("Bearer "))

    def _fetch(self) -> tuple[str, float]:
        result = self._http.request(
            "POST", TOKEN_PATH, content=self._form, idempotent=True,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        payload = result.json()
        token = payload.get("access_token") if isinstance(payload, dict) else None
        if not isinstance(token, str) or not token:
            raise TicketAuthError(f"servicenow sink: the token endpoint answered HTTP {result.status} without an "
                                  f"access_token; check {self._hint}")
        try:
            lifetime = float(payload.get("expires_in") or DEFAULT_LIFETIME)
        except (TypeError, ValueError):
            lifetime = DEFAULT_LIFETIME
        lifetime = max(lifetime, 1.0)
        return token, self._tokens.clock() + lifetime - min(REFRESH_MARGIN, lifetime / 2)

    def close(self) -> None:
        self._http.close()
