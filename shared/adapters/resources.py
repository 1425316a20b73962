"""Cognitive Services / Foundry account settings over azure-mgmt-cognitiveservices: kind, endpoint, custom
subdomain, disableLocalAuth, publicNetworkAccess, networkAcls, private endpoints and the account's projects.

Projects come from the account's own `associatedProjects`, so one GET per account is all the evidence needs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

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


class Accounts:
    """Account look-ups with one CognitiveServicesManagementClient per subscription (the SDK binds one)."""

    def __init__(self, client_for: Callable[[str], Any]):
        self._client_for = client_for
        self._clients: dict[str, Any] = {}
        self._lock = threading.Lock()

    def client(self, subscription_id: str) -> Any:
        with self._lock:
            client = self._clients.get(subscription_id)
            if client is None:
                client = self._clients[subscription_id] = self._client_for(subscription_id)
            return client

    def get(self, account_id: str) -> Any | None:
        """The SDK Account model, or None when it does not exist (404)."""
        from azure.core.exceptions import ResourceNotFoundError

        subscription, rg, name = _parts(account_id)
        try:
            return self.client(subscription).accounts.get(rg, name)
        except ResourceNotFoundError:
            return None

    def list_in(self, subscription_id: str) -> list[Any]:
        return list(self.client(subscription_id).accounts.list())

    def close(self) -> None:
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()
