"""Azure Key Vault, the two data-plane calls the ticket sinks need: sign a digest with a key that never leaves the
vault, and read a secret. HTTPS through the trackers' one stack (`TrackerClient`: azure-core PipelineClient, bounded
retries, redacted errors) with a `BearerTokenCredentialPolicy` for https://vault.azure.net (the service's managed
identity), trusting TRIAGE_CA_BUNDLE through `HttpOptions.connection_verify` as the sinks do.

- Sign: https://learn.microsoft.com/rest/api/keyvault/keys/sign/sign (needs the data action
  Microsoft.KeyVault/vaults/keys/sign/action: the "Key Vault Crypto User" role)
- Get Secret: https://learn.microsoft.com/rest/api/keyvault/secrets/get-secret/get-secret (needs
  Microsoft.KeyVault/vaults/secrets/getSecret/action: the "Key Vault Secrets User" role)
"""

from __future__ import annotations

import base64
from typing import Any

from shared.tickets.base import TicketAuthError, TicketError
from shared.tickets.http import HttpOptions, TrackerClient, segment
from shared.tickets.sanitize import clean_line

KEY_VAULT_SCOPE = "https://vault.azure.net/.default"
API_VERSION = "7.4"
CRYPTO_USER = "Key Vault Crypto User"
SECRETS_USER = "Key Vault Secrets User"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def split_name(name: str) -> tuple[str, str]:
    """`name` or `name/version` -> (name, version); an empty version is the latest."""
    base, _, version = name.partition("/")
    return base, version


class KeyVault:
    """One vault, as the service's identity (`credential`, an azure-core TokenCredential)."""

    def __init__(self, *, vault_url: str, credential: Any, options: HttpOptions, sink: str, setting: str,
                 name_setting: str):
        from azure.core.pipeline.policies import BearerTokenCredentialPolicy

        self._url = vault_url.rstrip("/")
        self._setting, self._name_setting = setting, name_setting
        self._http = TrackerClient(
            sink=sink, base_url=self._url, options=options, secrets=(),
            credential_hint=f"{setting} and the service's identity (it needs a token for https://vault.azure.net "
                            "and a Key Vault data-plane role on the vault)",
            auth_policy=BearerTokenCredentialPolicy(credential, KEY_VAULT_SCOPE),
        )

    def sign_rs256(self, name: str, digest: bytes) -> bytes:
        """The RS256 (RSASSA-PKCS1-v1_5 with SHA-256) signature of a SHA-256 `digest` by key `name[/version]`."""
        key, version = split_name(name)
        path = f"/keys/{segment(key)}" + (f"/{segment(version)}" if version else "") + "/sign"
        result = self._call("POST", path, CRYPTO_USER, "key", name,
                            json={"alg": "RS256", "value": b64url(digest)})
        value = (result.json() or {}).get("value")
        if not isinstance(value, str):
            raise TicketError(self._http._message("Key Vault sign answered without a signature"))
        return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))

    def secret(self, name: str) -> str:
        """The value of secret `name[/version]`, registered so that no error message can carry it."""
        secret, version = split_name(name)
        path = f"/secrets/{segment(secret)}" + (f"/{segment(version)}" if version else "")
        result = self._call("GET", path, SECRETS_USER, "secret", name)
        value = (result.json() or {}).get("value")
        if not isinstance(value, str) or not value:
            raise TicketAuthError(self._http._message(f"Key Vault secret {secret} has no value; check "
                                                      f"{self._name_setting}"))
        self._http.add_secrets(value)
        return value

    def _call(self, method: str, path: str, role: str, kind: str, name: str, **kwargs: Any) -> Any:
        result = self._http.request(method, path, params={"api-version": API_VERSION}, idempotent=True,
                                    allow=(403, 404), **kwargs)
        if result.status == 404:
            raise TicketAuthError(self._http._message(
                f"Key Vault has no {kind} {name!r} at {self._url}; check {self._name_setting} and "
                f"TRIAGE_GITHUB_APP_KEY_KIND ({kind})"))
        if result.status == 403:
            error = (result.json() or {}).get("error") or {}
            detail = clean_line(str(error.get("message") or "").split("\r\n")[0].split("\n")[0], 200)
            raise TicketAuthError(self._http._message(
                f"Key Vault refused the service's identity (HTTP 403: {detail}); give it the {role!r} role on the "
                f"vault in {self._setting}"))
        return result

    def close(self) -> None:
        self._http.close()
