"""Who calls from an Application Insights app: settings.app_identities maps an AppRoleName to either the caller's
object id, or the ARM id of the app resource, whose managed identity is then read from ARM (once per run).

The same read gives the identity an API Management gateway calls its backends with (`resource_identity`).

An app's AppRoleName also names its caller (`name_of`): tickets and chat messages show it instead of the object id
where Resource Graph did not name the identity. Several apps with one identity: the first in the mapping names it."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

from shared.adapters.clients import subscription_of
from shared.core.allowlist import normalize_object_id

log = logging.getLogger("triage.adapters")

# api-versions for the resource types whose managed identity we read (a plain ARM GET).
_API_VERSIONS = {
    "microsoft.web/sites": "2023-12-01",
    "microsoft.app/containerapps": "2024-03-01",
    "microsoft.containerinstance/containergroups": "2023-05-01",
    "microsoft.compute/virtualmachines": "2024-03-01",
    "microsoft.managedidentity/userassignedidentities": "2023-01-31",
    "microsoft.apimanagement/service": "2024-05-01",
}


def resource_type(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    lowered = [p.lower() for p in parts]
    if "providers" not in lowered:
        return ""
    at = len(lowered) - 1 - lowered[::-1].index("providers")
    return "/".join(lowered[at + 1 : at + 3])


def principal_of(body: Mapping[str, Any], rtype: str) -> str | None:
    """The object id of an ARM resource's managed identity: a user-assigned identity's own principalId, the
    system-assigned one, or the only user-assigned one."""
    if rtype == "microsoft.managedidentity/userassignedidentities":
        return normalize_object_id((body.get("properties") or {}).get("principalId"))
    identity = body.get("identity") or {}
    system = normalize_object_id(identity.get("principalId"))
    if system:
        return system
    user_assigned = [normalize_object_id((v or {}).get("principalId"))
                     for v in (identity.get("userAssignedIdentities") or {}).values()]
    user_assigned = [u for u in user_assigned if u]
    return user_assigned[0] if len(user_assigned) == 1 else None


class AppIdentities:
    def __init__(self, mapping: Mapping[str, Any], get_json: Callable[[str, str], Mapping[str, Any] | None]):
        self._mapping = {str(k): str(v) for k, v in mapping.items()}
        self._get_json = get_json
        self._resolved: dict[str, str | None] = {}
        self._lock = threading.Lock()
        self.errors: list[str] = []
        # object id -> the AppRoleName it was resolved from (direct ids now, resource ids once read; kept across
        # runs: a name is only shown).
        self._names: dict[str, str] = {}
        for app, value in self._mapping.items():
            if oid := normalize_object_id(value):
                self._names.setdefault(oid, app)

    @property
    def app_names(self) -> tuple[str, ...]:
        return tuple(self._mapping)

    def new_run(self) -> None:
        with self._lock:
            self._resolved.clear()
            self.errors = []

    def identity_of(self, app_role_name: str) -> str | None:
        value = self._mapping.get(app_role_name)
        if value is None:
            return None
        direct = normalize_object_id(value)
        if direct or not value.lower().startswith("/subscriptions/"):
            return direct
        resolved = self.resource_identity(value)
        if resolved:
            with self._lock:
                if self._names.get(resolved) is None:
                    self._names[resolved] = self._first_app_of(resolved, app_role_name)
        return resolved

    def _first_app_of(self, oid: str, app_role_name: str) -> str:
        """Of the apps mapped to `oid` (directly, or through a resource already read), the first in the mapping."""
        for app, value in self._mapping.items():
            if normalize_object_id(value) == oid or self._resolved.get(value.lower()) == oid:
                return app
        return app_role_name

    def name_of(self, object_id: str) -> str | None:
        """The AppRoleName the caller `object_id` was resolved from, if any (no look-up)."""
        oid = normalize_object_id(object_id)
        if oid is None:
            return None
        with self._lock:
            return self._names.get(oid)

    def resource_identity(self, resource_id: str) -> str | None:
        """The object id of an ARM resource's managed identity (read once per run); None when it has none, or
        several user-assigned ones and no system-assigned one, or the read failed (noted in `errors`)."""
        key = resource_id.lower()
        with self._lock:
            if key in self._resolved:
                return self._resolved[key]
        resolved = self._from_arm(resource_id)
        with self._lock:
            self._resolved[key] = resolved
        return resolved

    def _from_arm(self, resource_id: str) -> str | None:
        rtype = resource_type(resource_id)
        api_version = _API_VERSIONS.get(rtype)
        if api_version is None:
            self._note(f"{resource_id}: cannot read the managed identity of resource type {rtype!r}")
            return None
        try:
            body = self._get_json(resource_id, api_version)
        except Exception as exc:  # noqa: BLE001 - an unresolved app leaves the caller unknown, nothing more
            self._note(f"{resource_id}: {type(exc).__name__}: {str(exc).strip()[:300]}")
            return None
        principal = principal_of(body or {}, rtype)
        if principal is None:
            self._note(f"{resource_id}: no single managed identity found")
        return principal

    def _note(self, problem: str) -> None:
        log.warning("app identity not resolved: %s", problem)
        with self._lock:
            self.errors.append(problem)


def arm_get_json(client_for: Callable[[str], Any]) -> Callable[[str, str], Mapping[str, Any] | None]:
    """A plain ARM GET through a management client's pipeline (auth, retries, counting); `client_for(sub)`
    gives a client that has `_send_request` (the generated clients' raw-request entry point)."""

    def get(resource_id: str, api_version: str) -> Mapping[str, Any] | None:
        from azure.core.exceptions import HttpResponseError
        from azure.core.rest import HttpRequest

        client = client_for(subscription_of(resource_id))
        response = client._send_request(HttpRequest("GET", f"{resource_id}?api-version={api_version}"))
        if response.status_code == 404:
            return None
        if response.status_code >= 400:
            raise HttpResponseError(response=response)
        return response.json()

    return get
