"""GitHub App installation tokens: a JWT signed with the app's private key buys a one-hour installation token, kept
and reused until shortly before it expires.

- The JWT (RS256): `iat` 60 s in the past (GitHub's advice against clock drift), `exp` 9 minutes ahead (GitHub
  refuses one more than 10 minutes into the future by its own clock; the minute left over absorbs a clock that runs
  ahead), `iss` the app's client id or app id.
  https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/generating-a-json-web-token-jwt-for-a-github-app
- The token: `POST /app/installations/{id}/access_tokens` answers 201 `{token, expires_at}`, valid one hour.
  https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/authenticating-as-a-github-app-installation
- Signing: by Key Vault with a key that never leaves it (`KeyVaultKeySigner`, the default: GitHub's own advice is a
  sign-only key vault), or locally with a PEM read once from a Key Vault secret (`PemSecretSigner`).

`installation_tokens` gives the cache (token_cache.RefreshingToken): callable for the current token, refreshed
`REFRESH_EARLY` seconds before the token's own `expires_at`, and `invalidate`d when GitHub answers 401 to it (the
sink then asks once more). The clock is injectable (epoch seconds).
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

from shared.tickets.base import TicketAuthError, TicketError
from shared.tickets.http import HttpOptions, TrackerClient
from shared.tickets.keyvault import KeyVault, b64url, split_name
from shared.tickets.token_cache import RefreshingToken

log = logging.getLogger("triage.tickets")
JWT_BACKDATE = 60
JWT_AHEAD = 540
REFRESH_EARLY = 300  # seconds before expires_at a cached installation token is replaced
TOKEN_LIFETIME = 3600  # when an answer's expires_at cannot be read
API_VERSION = "2022-11-28"

Clock = Callable[[], float]


class Signer(Protocol):
    def sign(self, message: bytes) -> bytes:
        """The RS256 signature of `message`."""
        ...


def app_jwt(issuer: str, signer: Signer, now: float) -> str:
    """The app's JWT at time `now` (epoch seconds)."""
    header = b64url(json.dumps({"alg": "RS256", "typ": "JWT"}, separators=(",", ":")).encode())
    issued = int(now) - JWT_BACKDATE
    claims: dict[str, Any] = {"iat": issued, "exp": int(now) + JWT_AHEAD,
                              "iss": int(issuer) if issuer.isdigit() else issuer}
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    signing_input = f"{header}.{payload}"
    return f"{signing_input}.{b64url(signer.sign(signing_input.encode('ascii')))}"


class KeyVaultKeySigner:
    """Signs with Key Vault's `sign` operation: only the SHA-256 digest leaves the service."""

    def __init__(self, vault: KeyVault, key_name: str):
        self._vault, self._name = vault, key_name

    def sign(self, message: bytes) -> bytes:
        return self._vault.sign_rs256(self._name, hashlib.sha256(message).digest())


class PemSecretSigner:
    """Signs locally with the PEM private key held in a Key Vault secret, read on first use and kept in memory."""

    def __init__(self, vault: KeyVault, secret_name: str, setting: str):
        self._vault, self._name, self._setting = vault, secret_name, setting
        self._key: Any = None
        self._lock = threading.Lock()

    def sign(self, message: bytes) -> bytes:
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        from cryptography.hazmat.primitives.serialization import load_pem_private_key

        with self._lock:
            if self._key is None:
                pem = self._vault.secret(self._name)
                try:
                    key = load_pem_private_key(pem.strip().encode(), password=None)
                except (ValueError, TypeError):
                    key = None
                if not isinstance(key, rsa.RSAPrivateKey):
                    raise TicketAuthError(f"github sink: the Key Vault secret {split_name(self._name)[0]!r} is not an "
                                          f"unencrypted RSA private key in PEM form; check {self._setting}")
                self._key = key
            return self._key.sign(message, padding.PKCS1v15(), hashes.SHA256())


class GitHubApp:
    """Mints installation tokens for one installation of one app."""

    def __init__(self, *, api_url: str, app_id: str, installation_id: str, signer: Signer, options: HttpOptions,
                 clock: Clock = time.time):
        self._app_id, self._installation = app_id, installation_id
        self._signer, self._clock = signer, clock
        self._http = TrackerClient(
            sink="github", base_url=api_url, options=options, secrets=(),
            credential_hint="TRIAGE_GITHUB_APP_ID (the app's client id or app id) and that the key in "
                            "TRIAGE_GITHUB_APP_KEY_NAME is that app's private key",
            authorization=lambda: f"Bearer {app_jwt(self._app_id, self._signer, self._clock())}",
            headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": API_VERSION},
        )

    def mint(self) -> tuple[str, float]:
        result = self._http.request("POST", f"/app/installations/{int(self._installation)}/access_tokens",
                                    idempotent=False, allow=(404,))
        if result.status == 404:
            raise TicketAuthError(f"github sink: GitHub App {self._app_id} has no installation "
                                  f"{self._installation}; check TRIAGE_GITHUB_APP_INSTALLATION_ID (the number at the "
                                  "end of the installation's settings URL)")
        body = result.json() or {}
        token = body.get("token")
        if not isinstance(token, str) or not token:
            raise TicketError("github sink: GitHub answered an installation token request without a token")
        self._http.add_secrets(token)
        expires = _epoch(body.get("expires_at"))
        log.info("github sink: minted an installation token for installation %s (expires %s)", self._installation,
                 body.get("expires_at"))
        return token, expires if expires is not None else self._clock() + TOKEN_LIFETIME

    def close(self) -> None:
        self._http.close()


def _epoch(value: Any) -> float | None:
    try:
        at = datetime.fromisoformat(str(value).strip())
    except ValueError:
        return None
    return (at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp()


def installation_tokens(*, api_url: str, app_id: str, installation_id: str, vault_url: str, key_name: str,
                        key_kind: str, credential: Any, options: HttpOptions,
                        clock: Clock = time.time) -> RefreshingToken:
    """The token source the settings describe (TRIAGE_GITHUB_APP_*)."""
    vault = KeyVault(vault_url=vault_url, credential=credential, options=options, sink="github",
                     setting="TRIAGE_GITHUB_APP_KEY_VAULT_URL", name_setting="TRIAGE_GITHUB_APP_KEY_NAME")
    signer: Signer = (PemSecretSigner(vault, key_name, "TRIAGE_GITHUB_APP_KEY_NAME") if key_kind == "secret"
                      else KeyVaultKeySigner(vault, key_name))
    app = GitHubApp(api_url=api_url, app_id=app_id, installation_id=installation_id, signer=signer,
                    options=options, clock=clock)
    return RefreshingToken(app.mint, clock, REFRESH_EARLY)
