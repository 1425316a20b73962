"""A token credential for driving real Azure SDK clients against the stand-in (which accepts any bearer token).

The token text is the caller's identity as far as the ARM stand-in is concerned: a token equal to a known
principal's object id acts as that principal; any other token acts as the scenario's own identity.

`JwtCredential` issues JWT-shaped tokens (unsigned) with the claims Entra puts in an access token (`aud` from the
scope, `iss`, `oid`, `tid`, times): what Azurite's OAuth mode checks, and what a caller decodes to learn who it is.
"""

from __future__ import annotations

import base64
import json
import time
from typing import Any

# Azure AD v1 tokens carry this issuer (tenant appended); Azurite's OAuth mode checks the prefix.
ISSUER_PREFIX = "https://sts.windows.net/"


class FakeCredential:
    def __init__(self, token: str = "local-token", lifetime_seconds: int = 3600 * 24):  # noqa: S107 - not a secret
        self.token = token
        self.lifetime_seconds = lifetime_seconds
        self.scopes_requested: list[tuple[str, ...]] = []

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.core.credentials import AccessToken

        self.scopes_requested.append(scopes)
        return AccessToken(self.token, int(time.time()) + self.lifetime_seconds)

    def get_token_info(self, *scopes: str, options: Any = None):
        from azure.core.credentials import AccessTokenInfo

        self.scopes_requested.append(scopes)
        return AccessTokenInfo(self.token, int(time.time()) + self.lifetime_seconds)

    def close(self) -> None:
        return None

    def __enter__(self) -> FakeCredential:
        return self

    def __exit__(self, *exc: object) -> None:
        return None


def _b64url(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).rstrip(b"=").decode()


def jwt_token(object_id: str, tenant_id: str, audience: str, lifetime_seconds: int = 3600,
              **claims: Any) -> str:
    """An unsigned access token with Entra's claims; no service of ours checks a signature (Azurite's OAuth
    basic mode checks the issuer, audience and times only)."""
    now = int(time.time())
    body = {"aud": audience, "iss": f"{ISSUER_PREFIX}{tenant_id}/", "iat": now, "nbf": now - 60,
            "exp": now + lifetime_seconds, "oid": object_id, "tid": tenant_id, "sub": object_id, "ver": "1.0",
            **claims}
    return f"{_b64url({'alg': 'none', 'typ': 'JWT'})}.{_b64url(body)}.unsigned"


def audience_of(scope: str) -> str:
    """The token audience a scope asks for: `https://storage.azure.com/.default` -> `https://storage.azure.com`."""
    return scope.removesuffix("/.default")


class JwtCredential:
    """A TokenCredential issuing `jwt_token`s for `object_id` in `tenant_id`, one audience per requested scope."""

    def __init__(self, object_id: str, tenant_id: str, lifetime_seconds: int = 3600, **claims: Any):
        self.object_id = object_id
        self.tenant_id = tenant_id
        self.lifetime_seconds = lifetime_seconds
        self.claims = claims
        self.scopes_requested: list[tuple[str, ...]] = []

    def _token(self, scopes: tuple[str, ...]) -> tuple[str, int]:
        self.scopes_requested.append(scopes)
        audience = audience_of(scopes[0]) if scopes else ""
        token = jwt_token(self.object_id, self.tenant_id, audience, self.lifetime_seconds, **self.claims)
        return token, int(time.time()) + self.lifetime_seconds

    def get_token(self, *scopes: str, **kwargs: Any):
        from azure.core.credentials import AccessToken

        return AccessToken(*self._token(scopes))

    def get_token_info(self, *scopes: str, options: Any = None):
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(*self._token(scopes))

    def close(self) -> None:
        return None


def claims_of(token: str) -> dict[str, Any] | None:
    """The claims of a JWT-shaped bearer token (the payload segment), None when it is not one. The signature is not
    checked: the stand-in's Entra tokens are unsigned (`jwt_token`); services check audience and times."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        claims = json.loads(base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4)))
    except (ValueError, UnicodeDecodeError):
        return None
    return claims if isinstance(claims, dict) else None


def bearer_claims(authorization: str) -> dict[str, Any] | None:
    """The claims of an `Authorization: Bearer <jwt>` header value, None without one."""
    if not authorization.startswith("Bearer "):
        return None
    return claims_of(authorization[len("Bearer "):].strip())
