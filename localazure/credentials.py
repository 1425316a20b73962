"""A token credential for driving real Azure SDK clients against the stand-in (which accepts any bearer token).

The token text is the caller's identity as far as the ARM stand-in is concerned: a token equal to a known
principal's object id acts as that principal; any other token acts as the scenario's own identity.
"""

from __future__ import annotations

import time
from typing import Any


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
