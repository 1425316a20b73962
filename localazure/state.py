"""The stand-in's in-memory world: directory principals, Cognitive Services accounts, role assignments, settings.

Plain mutable dataclasses guarded by one re-entrant lock (`State.lock`); the HTTP handlers and the traffic
simulation both read and write it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from localazure import roles, scopes
from localazure.clock import Clock
from localazure.logshape import LogShape
from localazure.policy import PolicyWorld

if TYPE_CHECKING:
    from localazure.apim import Gateway

PRINCIPAL_TYPES = ("User", "Group", "ServicePrincipal", "ForeignGroup", "Device")
# The log categories of Cognitive Services accounts (Azure Monitor's supported-logs reference).
DEFAULT_DIAGNOSTIC_CATEGORIES = ("Audit", "RequestResponse", "Trace")
LONG_AGO = timedelta(days=3650)


@dataclass
class Principal:
    object_id: str
    type: str = "ServicePrincipal"
    display_name: str = ""
    managed_identity: bool = False
    # group object id -> when this principal became a member
    groups: dict[str, datetime] = field(default_factory=dict)
    # Directory replication: role assignment PUTs fail with PrincipalNotFound until then.
    replicating_until: datetime | None = None


@dataclass
class Project:
    name: str
    display_name: str = ""
    description: str = ""
    is_default: bool = False
    identity_principal_id: str = ""  # the project's system-assigned managed identity, if the scenario names it


@dataclass
class Account:
    name: str
    subscription_id: str
    resource_group: str = "rg"
    kind: str = "OpenAI"
    location: str = "eastus"
    custom_subdomain: str = ""
    disable_local_auth: bool = False
    public_network_access: str = "Enabled"
    default_action: str = "Allow"
    ip_rules: list[str] = field(default_factory=list)
    virtual_network_rules: list[str] = field(default_factory=list)
    private_endpoints: list[str] = field(default_factory=list)  # private endpoint resource ids
    deployments: list[str] | None = None  # None: every deployment name exists
    projects: dict[str, Project] = field(default_factory=dict)  # lower-cased name -> project
    keys: tuple[str, str] = ("", "")
    tenant_id: str = ""
    tags: dict[str, str] = field(default_factory=dict)
    # Log categories its one diagnostic setting sends to the main workspace; empty: the account has no setting.
    diagnostic_categories: list[str] = field(default_factory=lambda: list(DEFAULT_DIAGNOSTIC_CATEGORIES))

    def __post_init__(self) -> None:
        self.custom_subdomain = self.custom_subdomain or self.name.lower()
        if not any(self.keys):
            self.keys = (f"{self.name}-key-1", f"{self.name}-key-2")

    @property
    def id(self) -> str:
        return scopes.account_id(self.subscription_id, self.resource_group, self.name)

    def project_id(self, project: str) -> str:
        return scopes.project_id(self.subscription_id, self.resource_group, self.name, project)

    @property
    def openai_host(self) -> str:
        return f"{self.custom_subdomain}.openai.azure.com"

    @property
    def services_host(self) -> str:
        return f"{self.custom_subdomain}.services.ai.azure.com"

    @property
    def cognitive_host(self) -> str:
        return f"{self.custom_subdomain}.cognitiveservices.azure.com"

    @property
    def endpoint(self) -> str:
        host = self.openai_host if self.kind.lower() == "openai" else self.cognitive_host
        return f"https://{host}/"

    def has_deployment(self, name: str) -> bool:
        return self.deployments is None or name.lower() in {d.lower() for d in self.deployments}


@dataclass
class Assignment:
    name: str  # a GUID
    scope: str
    role_guid: str
    principal_id: str
    principal_type: str
    created_on: datetime
    updated_on: datetime
    created_by: str = ""
    description: str | None = None
    condition: str | None = None
    condition_version: str | None = None

    @property
    def id(self) -> str:
        return f"{self.scope}/providers/Microsoft.Authorization/roleAssignments/{self.name}"


@dataclass
class OwnIdentity:
    """What the service's own identity may do with role assignments (the ARM caller by default).

    The `allowed_*` sets act like the ABAC condition of azure-facts section 4 (None = unrestricted). With
    `use_assignments`, the identity also needs a role assignment granting roleAssignments/write (or delete)
    at or above the target scope, and that assignment's own ABAC condition, if any, must hold.
    """

    principal_id: str = "00000000-0000-0000-0000-00000000a11c"
    allowed_roles: frozenset[str] | None = None
    allowed_principal_types: frozenset[str] | None = None
    allowed_principals: frozenset[str] | None = None
    can_write: bool = True
    can_delete: bool = True
    use_assignments: bool = False


@dataclass
class Settings:
    propagation_seconds: float = 300.0
    # Managed identities see group membership (and roles held through groups) only after this cache delay.
    group_cache_seconds: float = 86400.0
    page_size: int = 100
    tick_seconds: float = 60.0
    max_query_rows: int = 500_000
    eventgrid_key: str = "local-eventgrid-key"
    own_identity: OwnIdentity = field(default_factory=OwnIdentity)
    # Where Azure's documentation is silent, what the written log rows look like (localazure/logshape.py).
    log_shape: LogShape = field(default_factory=LogShape)
    # ARM's token buckets and Resource Graph's query quota (localazure/throttle.py); off unless a scenario or
    # LocalAzure.start(arm_throttling=True) turns it on: the existing suite and benchmarks read ARM far faster.
    arm_throttling: bool = False


@dataclass
class State:
    clock: Clock
    subscription_id: str = "00000000-0000-0000-0000-0000000000a1"
    tenant_id: str = "00000000-0000-0000-0000-0000000000e1"
    workspace_id: str = "00000000-0000-0000-0000-0000000000f1"
    settings: Settings = field(default_factory=Settings)
    principals: dict[str, Principal] = field(default_factory=dict)  # lower-cased object id -> principal
    accounts: dict[str, Account] = field(default_factory=dict)  # lower-cased account name -> account
    assignments: dict[str, Assignment] = field(default_factory=dict)  # lower-cased name -> assignment
    extra_resource_groups: set[str] = field(default_factory=set)  # lower-cased names of groups without accounts
    # Other ARM resources served as plain JSON (e.g. the web apps whose managed identities call the accounts).
    app_resources: dict[str, dict] = field(default_factory=dict)  # lower-cased id -> ARM body
    gateways: dict[str, Gateway] = field(default_factory=dict)  # lower-cased name -> API Management service
    custom_roles: dict[str, roles.RoleDefinition] = field(default_factory=dict)  # GUID -> custom role definition
    policies: PolicyWorld = field(default_factory=PolicyWorld)  # Azure Policy on the scope chain (policy.py)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    # ---- role definitions ----
    def role(self, role_definition_id: str) -> roles.RoleDefinition | None:
        """A built-in role or one of this world's custom roles, by GUID or role definition id."""
        guid = roles.guid_of(role_definition_id)
        return roles.BY_GUID.get(guid) or self.custom_roles.get(guid)

    def all_roles(self) -> list[roles.RoleDefinition]:
        return [*roles.BUILT_IN, *self.custom_roles.values()]

    # ---- principals ----
    def principal(self, object_id: str | None) -> Principal | None:
        return self.principals.get(object_id.lower()) if object_id else None

    def put_principal(self, principal: Principal) -> Principal:
        with self.lock:
            self.principals[principal.object_id.lower()] = principal
            return principal

    def is_replicating(self, principal: Principal) -> bool:
        return principal.replicating_until is not None and self.clock.now() < principal.replicating_until

    # ---- accounts ----
    def account(self, name: str) -> Account | None:
        return self.accounts.get(name.lower())

    def account_by_id(self, resource_id: str) -> Account | None:
        for account in self.accounts.values():
            if scopes.same(account.id, resource_id):
                return account
        return None

    def require_account(self, name_or_id: str) -> Account:
        account = self.account_by_id(name_or_id) if "/" in name_or_id else self.account(name_or_id)
        if account is None:
            raise KeyError(f"no account {name_or_id!r} in the stand-in")
        return account

    def put_account(self, account: Account) -> Account:
        with self.lock:
            self.accounts[account.name.lower()] = account
            return account

    def resource_groups(self) -> set[str]:
        return {a.resource_group.lower() for a in self.accounts.values()} | self.extra_resource_groups

    # ---- assignments ----
    def assignment(self, name: str) -> Assignment | None:
        return self.assignments.get(name.lower())

    def put_assignment(self, assignment: Assignment) -> Assignment:
        with self.lock:
            self.assignments[assignment.name.lower()] = assignment
            return assignment

    def remove_assignment(self, name: str) -> Assignment | None:
        with self.lock:
            return self.assignments.pop(name.lower(), None)

    def all_assignments(self) -> list[Assignment]:
        with self.lock:
            return list(self.assignments.values())

    def put_app_resource(self, resource_id: str, principal_id: str, *, user_assigned: bool = False) -> dict:
        """An app resource (web app, container app, VM, user-assigned identity) whose identity is `principal_id`."""
        resource_id = scopes.normalize(resource_id)
        segs = [p for p in resource_id.split("/") if p]
        body: dict = {"id": resource_id, "name": segs[-1], "type": "/".join(segs[-3:-1]) if len(segs) >= 3 else ""}
        if resource_id.lower().split("/providers/")[-1].startswith("microsoft.managedidentity/userassignedidentities"):
            body["properties"] = {"principalId": principal_id, "tenantId": self.tenant_id}
        elif user_assigned:
            uami = f"{resource_id}-identity"
            body["identity"] = {"type": "UserAssigned",
                                "userAssignedIdentities": {uami: {"principalId": principal_id}}}
        else:
            body["identity"] = {"type": "SystemAssigned", "principalId": principal_id, "tenantId": self.tenant_id}
        with self.lock:
            self.app_resources[resource_id.lower()] = body
        return body

    # ---- API Management gateways ----
    def gateway(self, name: str) -> Gateway | None:
        return self.gateways.get(name.lower())

    def require_gateway(self, name: str) -> Gateway:
        gateway = self.gateway(name)
        if gateway is None:
            raise KeyError(f"no gateway {name!r} in the stand-in")
        return gateway

    def put_gateway(self, gateway: Gateway) -> Gateway:
        """Add a gateway; ARM serves its resource (with its managed identity) like the other app resources."""
        with self.lock:
            self.gateways[gateway.name.lower()] = gateway
            self.app_resources[gateway.id.lower()] = gateway.arm_body(self.tenant_id)
            return gateway

    def long_ago(self) -> datetime:
        return self.clock.now() - LONG_AGO
