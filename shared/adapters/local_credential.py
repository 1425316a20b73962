"""A static-token credential for talking to the local stand-in (`localazure`), which accepts any bearer token.

Selected only when TRIAGE_LOCAL_TOKEN is set; real Azure rejects such a token, so a misconfiguration fails closed.
"""

from __future__ import annotations

import time
from typing import Any


class StaticTokenCredential:
    def __init__(self, token: str):
        self._token = token

    def get_token(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessToken

        return AccessToken(self._token, int(time.time()) + 3600)

    def get_token_info(self, *scopes: str, options: Any = None) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo(self._token, int(time.time()) + 3600)
