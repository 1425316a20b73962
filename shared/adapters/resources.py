"""Cognitive Services / Foundry account settings over azure-mgmt-cognitiveservices: kind, endpoint, custom
subdomain, disableLocalAuth, publicNetworkAccess, networkAcls, private endpoints and the account's projects.

Projects come from the account's own `associatedProjects`, so one GET per account is all the evidence needs. That
GET goes through an ARM pipeline built as the generated client builds its own (shared.adapters.clients.arm_pipeline:
same policies, credential, retries, user agent and error mapping), and its JSON is read as the SDK's models read it
(`ArmJson`): a first invocation does not import the SDK's whole models package to read one account.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import quote

from shared.adapters.clients import host_of, subscription_of
from shared.adapters.kql import INFERENCE_HOST_SUFFIXES
from shared.core.model import ResourceEvidence
from shared.core.resource_ids import enclosing_account


def _parts(account_id: str) -> tuple[str, str, str]:
    """(subscription, resource group, account name) of an account id (or of a project under it)."""
    account = enclosing_account(account_id)
    if account is None:
        raise ValueError(f"{account_id!r} is not a Cognitive Services account id")
    return subscription_of(account_id), account.resource_group, account.account_name


def to_evidence(account: Any, account_id: str) -> ResourceEvidence:
    props = account.properties
    acls = getattr(props, "network_acls", None) if props else None
    projects = tuple(f"{account_id}/projects/{p}" for p in (getattr(props, "associated_projects", None) or ()))
    identity = getattr(account, "identity", None)
    return ResourceEvidence(
        resource_id=account_id,
        kind=account.kind,
        endpoint=getattr(props, "endpoint", None),
        custom_subdomain=getattr(props, "custom_sub_domain_name", None),
        disable_local_auth=getattr(props, "disable_local_auth", None),
        public_network_access=getattr(props, "public_network_access", None),
        network_default_action=getattr(acls, "default_action", None) if acls else None,
        ip_rules=tuple(r.value for r in (getattr(acls, "ip_rules", None) or ()) if r.value) if acls else (),
        virtual_network_rules=tuple(r.id for r in (getattr(acls, "virtual_network_rules", None) or ()) if r.id)
        if acls
        else (),
        private_endpoints=len(getattr(props, "private_endpoint_connections", None) or ()),
        projects=projects,
        tenant_id=getattr(identity, "tenant_id", None) if identity else None,
        identity_type=_identity_type(identity),
        identity_principal_id=getattr(identity, "principal_id", None) if identity else None,
        tags=tuple(sorted((str(k), str(v)) for k, v in (getattr(account, "tags", None) or {}).items())),
    )


def _identity_type(identity: Any) -> str | None:
    kind = getattr(identity, "type", None) if identity else None
    return getattr(kind, "value", kind)  # the SDK gives an enum member, or a plain string


def hosts_of(account: Any) -> tuple[str, ...]:
    """Every inference host name of the account: its endpoints and the custom subdomain under each suffix."""
    props = account.properties
    hosts: list[str] = []
    for url in [getattr(props, "endpoint", None), *((getattr(props, "endpoints", None) or {}).values())]:
        if url and host_of(url):
            hosts.append(host_of(url))
    subdomain = (getattr(props, "custom_sub_domain_name", None) or "").lower()
    if subdomain:
        hosts.extend(subdomain + suffix for suffix in INFERENCE_HOST_SUFFIXES)
    return tuple(dict.fromkeys(hosts))


# The API version and package of the generated client whose `accounts.get` this GET is (a test holds them equal).
ACCOUNTS_API_VERSION = "2025-09-01"
ACCOUNTS_SDK_PACKAGE = "azure-mgmt-cognitiveservices"
# What the generated `accounts.get` maps before its generic HttpResponseError (ARM error format).
_GET_ERROR_MAP = {401: "ClientAuthenticationError", 404: "ResourceNotFoundError", 409: "ResourceExistsError",
                  304: "ResourceNotModifiedError"}


def _sdk_bool(value: Any) -> bool:
    """What the generated deserializer makes of a boolean property."""
    if value in (True, False, 1, 0):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
        return value.lower() in ("true", "1")
    raise TypeError(f"Invalid boolean value: {value}")


class ArmJson:
    """A resource's JSON read as the generated SDK models read it, for the attributes the adapters read: attribute
    `custom_sub_domain_name` is key `customSubDomainName`; an absent key is None; objects become ArmJson, lists of
    objects lists of ArmJson; maps (`endpoints`, `tags`, ...) stay dicts; booleans and strings are converted as the
    SDK's deserializer converts them (enums stay the strings ARM sent, as the SDK leaves them)."""

    _MAPS = frozenset({"endpoints", "tags", "user_assigned_identities"})
    _BOOLS = frozenset({"disable_local_auth", "restrict_outbound_network_access", "dynamic_throttling_enabled",
                        "allow_project_management", "restore"})

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]):
        self._data = data

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        value = self._data.get(json_key(name))
        if value is None:
            return None
        if name in self._BOOLS:
            return _sdk_bool(value)
        if name in self._MAPS:
            return dict(value)
        return _read(value)

    def __repr__(self) -> str:
        return f"ArmJson({self._data!r})"


def json_key(attribute: str) -> str:
    """The camelCase JSON key of a generated model's snake_case attribute (`disable_local_auth` ->
    `disableLocalAuth`), as the SDK's attribute maps name them."""
    head, *rest = attribute.split("_")
    return head + "".join(part[:1].upper() + part[1:] for part in rest)


def _read(value: Any) -> Any:
    if isinstance(value, Mapping):
        return ArmJson(value)
    if isinstance(value, list):
        return [_read(item) for item in value]
    return value


class Accounts:
    """Account look-ups: `get` through one ARM pipeline (built on first use by `pipeline`); the rest (listing, the
    raw GETs of arm_get_json) with one CognitiveServicesManagementClient per subscription (the SDK binds one)."""

    def __init__(self, client_for: Callable[[str], Any], pipeline: Callable[[], Any] | None = None):
        self._client_for = client_for
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._build_pipeline = pipeline
        self._pipeline: Any = None

    def client(self, subscription_id: str) -> Any:
        with self._lock:
            client = self._clients.get(subscription_id)
            if client is None:
                client = self._clients[subscription_id] = self._client_for(subscription_id)
            return client

    def get(self, account_id: str) -> Any | None:
        """The account as the SDK's Account model reads it (ArmJson through the pipeline), or None when it does
        not exist (404)."""
        from azure.core.exceptions import ResourceNotFoundError

        subscription, rg, name = _parts(account_id)
        try:
            if self._build_pipeline is None:
                return self.client(subscription).accounts.get(rg, name)
            return self._get(subscription, rg, name)
        except ResourceNotFoundError:
            return None

    def _get(self, subscription: str, rg: str, name: str) -> ArmJson | None:
        """`accounts.get` of the generated client: the same request, pipeline and error mapping."""
        from azure.core import exceptions
        from azure.core.rest import HttpRequest
        from azure.mgmt.core.exceptions import ARMErrorFormat

        with self._lock:
            if self._pipeline is None:
                self._pipeline = self._build_pipeline()  # type: ignore[misc]
            pipeline = self._pipeline
        path = (f"/subscriptions/{quote(subscription, safe='')}/resourceGroups/{quote(rg, safe='')}/providers/"
                f"Microsoft.CognitiveServices/accounts/{quote(name, safe='')}")
        request = HttpRequest("GET", pipeline.format_url(path), params={"api-version": ACCOUNTS_API_VERSION},
                              headers={"Accept": "application/json"})
        response = pipeline.send_request(request)
        if response.status_code != 200:
            error_map = {status: getattr(exceptions, kind) for status, kind in _GET_ERROR_MAP.items()}
            exceptions.map_error(status_code=response.status_code, response=response, error_map=error_map)
            raise exceptions.HttpResponseError(response=response, error_format=ARMErrorFormat)
        if not response.text():
            return None  # what the SDK's deserializer makes of an empty body
        return ArmJson(response.json())

    def list_in(self, subscription_id: str) -> list[Any]:
        return list(self.client(subscription_id).accounts.list())

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
            if self._pipeline is not None:
                self._pipeline.close()
                self._pipeline = None
