"""Azure Key Vault data plane (REST 7.4), the two operations the service uses: sign with a key the vault holds, and
get a secret. Served behind the stand-in's front door like the other services (call log, faults).

- Sign: `POST /keys/{name}[/{version}]/sign?api-version=7.4` with `{"alg": "RS256", "value": <base64url SHA-256
  digest>}` answers `{"kid", "value": <base64url signature>}`; the private key never leaves the vault.
  https://learn.microsoft.com/rest/api/keyvault/keys/sign/sign
- Get Secret: `GET /secrets/{name}[/{version}]?api-version=7.4` answers `{"value", "id", "attributes"}`.
  https://learn.microsoft.com/rest/api/keyvault/secrets/get-secret/get-secret
- Tokens: an Entra bearer token for the audience https://vault.azure.net (scope https://vault.azure.net/.default),
  issued by the stand-in's token issuer (`localazure.credentials.JwtCredential`, unsigned: audience and times are
  checked); without one, 401 with the `WWW-Authenticate: Bearer authorization=..., resource=...` challenge Key Vault
  sends. https://learn.microsoft.com/azure/key-vault/general/authentication-requests-and-responses
- Azure RBAC on the vault (off until `assign` is first called, as the other stand-ins accept any caller): sign needs
  the data action `Microsoft.KeyVault/vaults/keys/sign/action` ("Key Vault Crypto User"), get secret
  `Microsoft.KeyVault/vaults/secrets/getSecret/action` ("Key Vault Secrets User"); a caller without it gets 403
  `Forbidden` / `ForbiddenByRbac`. https://learn.microsoft.com/azure/key-vault/general/rbac-guide

    vault = KeyVaultStandIn.start(ca)          # or TrackerStandIns' `keyvault`
    version = vault.service.add_key("github-app", private_key)     # a cryptography RSA private key
    vault.service.add_secret("github-app-pem", pem_text)
    vault.service.assign(object_id, "Key Vault Crypto User")
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from typing import Any

from localazure.calls import READ, WRITE, CallLog
from localazure.clock import Clock
from localazure.credentials import bearer_claims
from localazure.faults import Fault, Faults
from localazure.frontdoor import RouteFn, fault_headers, front
from localazure.https import CertificateAuthority, HttpsServer, Request, Response

AUDIENCE = "https://vault.azure.net"
SIGN_ACTION = "Microsoft.KeyVault/vaults/keys/sign/action"
GET_SECRET_ACTION = "Microsoft.KeyVault/vaults/secrets/getSecret/action"
# The built-in data-plane roles and the data actions of theirs this stand-in serves (rbac-guide above).
ROLE_ACTIONS = {
    "Key Vault Administrator": {SIGN_ACTION, GET_SECRET_ACTION},
    "Key Vault Crypto Officer": {SIGN_ACTION},
    "Key Vault Crypto User": {SIGN_ACTION},
    "Key Vault Secrets Officer": {GET_SECRET_ACTION},
    "Key Vault Secrets User": {GET_SECRET_ACTION},
}
_DIGEST_BYTES = {"RS256": 32}


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _error(status: int, code: str, message: str, inner: str | None = None,
           headers: dict[str, str] | None = None) -> Response:
    error: dict[str, Any] = {"code": code, "message": message}
    if inner:
        error["innererror"] = {"code": inner}
    return Response.json({"error": error}, status, headers)


class KeyVaultService:
    """One vault: keys (RSA, held as private keys that never leave it) and secrets, each with versions."""

    name = "keyvault"

    def __init__(self, clock: Clock | None = None, tenant_id: str = "00000000-0000-0000-0000-0000000000aa"):
        self.clock = clock or Clock()
        self.tenant_id = tenant_id
        self.base_url = ""
        self.lock = threading.RLock()
        self.keys: dict[str, list[tuple[str, Any, tuple[str, ...]]]] = {}  # name -> [(version, key, key_ops)]
        self.secrets: dict[str, list[tuple[str, str]]] = {}  # name -> [(version, value)]
        self.grants: dict[str, set[str]] | None = None  # object id -> role names; None: RBAC not checked

    # ---- world helpers ----

    def add_key(self, name: str, private_key: Any, key_ops: tuple[str, ...] = ("sign", "verify")) -> str:
        """Import an RSA private key (a `cryptography` key object) as a new version of key `name`."""
        version = uuid.uuid4().hex
        with self.lock:
            self.keys.setdefault(name, []).append((version, private_key, key_ops))
        return version

    def add_secret(self, name: str, value: str) -> str:
        version = uuid.uuid4().hex
        with self.lock:
            self.secrets.setdefault(name, []).append((version, value))
        return version

    def assign(self, object_id: str, role: str) -> None:
        """Give `object_id` a Key Vault data-plane role on the vault; from the first call on, RBAC is checked."""
        if role not in ROLE_ACTIONS:
            raise ValueError(f"role must be one of {sorted(ROLE_ACTIONS)}")
        with self.lock:
            if self.grants is None:
                self.grants = {}
            self.grants.setdefault(object_id.lower(), set()).add(role)

    # ---- front-door Service ----

    def authenticate(self, request: Request) -> Response | None:
        challenge = {"WWW-Authenticate": f'Bearer authorization="https://login.microsoftonline.com/{self.tenant_id}", '
                                         f'resource="{AUDIENCE}"'}
        auth = request.headers.get("authorization", "")
        if not auth:
            return _error(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.",
                          headers=challenge)
        claims = bearer_claims(auth)
        if claims is None:
            return _error(401, "Unauthorized", "AKV10032: Invalid issuer. Expected one of https://sts.windows.net/"
                          f"{self.tenant_id}/, found: (none).", headers=challenge)
        audience = str(claims.get("aud", ""))
        if audience.rstrip("/") != AUDIENCE:
            return _error(401, "Unauthorized", f"AKV10022: Invalid audience. Expected {AUDIENCE}, found: "
                          f"{audience}.", headers=challenge)
        if float(claims.get("exp", 0)) <= time.time():
            return _error(401, "Unauthorized", "AKV10021: Token is expired.", headers=challenge)
        return None

    def fault_response(self, fault: Fault) -> Response:
        status = fault.status or 500
        code = "Throttled" if status == 429 else "ServiceUnavailable"
        return _error(status, code, "Request was not processed", headers=fault_headers(fault))

    def route(self, request: Request) -> tuple[str, str, RouteFn]:
        parts = request.path.split("/")[1:]
        method = request.method.upper()

        def run(handler: Any) -> RouteFn:
            def fn(req: Request, _ctx: Any) -> Response:
                with self.lock:
                    if not req.param("api-version"):
                        return _error(400, "BadParameter", "The request URI contains an invalid or missing "
                                      "api-version.")
                    return handler(req)
            return fn

        # /keys/{name}/sign, /keys/{name}/{version}/sign (and an empty version: /keys/{name}//sign)
        if len(parts) in (3, 4) and parts[0] == "keys" and parts[-1] == "sign" and method == "POST":
            name, version = parts[1], parts[2] if len(parts) == 4 else ""
            return "keys.sign", WRITE, run(lambda r: self._sign(r, name, version))
        if len(parts) in (2, 3) and parts[0] == "secrets" and method == "GET":
            name, version = parts[1], parts[2] if len(parts) == 3 else ""
            return "secrets.get", READ, run(lambda r: self._get_secret(r, name, version))
        return "notFound", READ, run(lambda r: _error(404, "NotFound", "The requested resource was not found."))

    # ---- handlers ----

    def _forbidden(self, request: Request, action: str) -> Response | None:
        if self.grants is None:
            return None
        claims = bearer_claims(request.headers.get("authorization", "")) or {}
        oid = str(claims.get("oid", "")).lower()
        if any(action in ROLE_ACTIONS[role] for role in self.grants.get(oid, ())):
            return None
        return _error(403, "Forbidden", "Caller is not authorized to perform action on resource.\r\nIf role "
                      "assignments, deny assignments or role definitions were changed recently, please observe "
                      f"propagation time.\r\nCaller: oid={oid}\r\nAction: '{action}'\r\nAssignment: (not found)",
                      inner="ForbiddenByRbac")

    def _sign(self, request: Request, name: str, version: str) -> Response:
        if (denied := self._forbidden(request, SIGN_ACTION)) is not None:
            return denied
        versions = self.keys.get(name, [])
        found = [v for v in versions if v[0] == version] if version else versions[-1:]
        if not found:
            return _error(404, "KeyNotFound", f"A key with (name/id) {name}"
                          + (f"/{version}" if version else "") + " was not found in this key vault.")
        key_version, key, key_ops = found[0]
        if "sign" not in key_ops:
            return _error(403, "Forbidden", "Operation sign is not permitted on this key.",
                          inner="KeyOperationForbidden")
        body = request.json() or {}
        alg, value = body.get("alg"), body.get("value")
        if alg not in _DIGEST_BYTES or not isinstance(value, str):
            return _error(400, "BadParameter", "Property 'alg' or 'value' is missing or invalid.")
        try:
            digest = _unb64url(value)
        except ValueError:
            return _error(400, "BadParameter", "Property 'value' is not base64url.")
        if len(digest) != _DIGEST_BYTES[alg]:
            return _error(400, "BadParameter", f"Invalid length of digest for algorithm {alg}.")
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding, utils

        signature = key.sign(digest, padding.PKCS1v15(), utils.Prehashed(hashes.SHA256()))
        return Response.json({"kid": f"{self.base_url}/keys/{name}/{key_version}", "value": _b64url(signature)})

    def _get_secret(self, request: Request, name: str, version: str) -> Response:
        if (denied := self._forbidden(request, GET_SECRET_ACTION)) is not None:
            return denied
        versions = self.secrets.get(name, [])
        found = [v for v in versions if v[0] == version] if version else versions[-1:]
        if not found:
            return _error(404, "SecretNotFound", f"A secret with (name/id) {name}"
                          + (f"/{version}" if version else "") + " was not found in this key vault.")
        secret_version, value = found[0]
        created = int(self.clock.now().timestamp())
        return Response.json({"value": value, "id": f"{self.base_url}/secrets/{name}/{secret_version}",
                              "attributes": {"enabled": True, "created": created, "updated": created,
                                             "recoveryLevel": "Recoverable+Purgeable"}})


class KeyVaultStandIn:
    """A Key Vault stand-in on its own HTTPS port on 127.0.0.1 (trust `ca`), with its own call log and faults."""

    def __init__(self, ca: CertificateAuthority, clock: Clock | None = None, calls: CallLog | None = None,
                 faults: Faults | None = None, *, record_requests: bool = True):
        self.service = KeyVaultService(clock)
        self.calls = calls or CallLog()
        self.faults = faults or Faults(services=(KeyVaultService.name,))
        self._server = HttpsServer(front(self.service, self.calls, self.faults, self.service.clock,
                                         record_requests=record_requests), ca)
        self.service.base_url = self._server.url

    @classmethod
    def start(cls, ca: CertificateAuthority, clock: Clock | None = None) -> KeyVaultStandIn:
        vault = cls(ca, clock)
        vault._server.start()
        return vault

    @property
    def url(self) -> str:
        """The vault URL (TRIAGE_GITHUB_APP_KEY_VAULT_URL), as https://<name>.vault.azure.net is in Azure."""
        return self._server.url

    def stop(self) -> None:
        self._server.stop()
