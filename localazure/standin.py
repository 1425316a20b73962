"""`LocalAzure`: starts the ARM, Log Analytics and Event Grid stand-ins on 127.0.0.1 and offers the helpers tests,
the demo and benchmarks drive them with."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from localazure import roles
from localazure import scenario as scenario_file
from localazure.arm import ArmService
from localazure.calls import CallLog
from localazure.clock import Clock, as_utc
from localazure.credentials import jwt_token
from localazure.dataplane import CallSpec, Outcome
from localazure.eventgrid import EventGridService, ReceivedEvent
from localazure.faults import Faults
from localazure.frontdoor import front
from localazure.https import CertificateAuthority, HttpsServer
from localazure.keyvault import KeyVaultService
from localazure.logsapi import LogsService
from localazure.logshape import LogShape
from localazure.logstore import LogStore, QueryResult
from localazure.state import Account, Assignment, Principal, Project, State
from localazure.throttle import ThrottleLimits
from localazure.traffic import Simulator, spec_from


class LocalAzure:
    """The running stand-in. Use `LocalAzure.start(...)`, or as a context manager."""

    def __init__(self, state: State, *, seed: int = 0, ca_dir: str | None = None):
        self.state = state
        self.clock = state.clock
        self.calls = CallLog()
        self.faults = Faults()
        self.logs = LogStore(tenant_id=state.workspace_id)  # the main workspace: traffic is logged here
        self._workspaces: dict[str, LogStore] = {state.workspace_id.lower(): self.logs}
        self.simulator = Simulator(state, self.logs, seed=seed)
        self._eventgrid = EventGridService(state, state.clock)
        self._ca = CertificateAuthority(ca_dir)
        self._servers: dict[str, HttpsServer] = {}
        self._arm = ArmService(state)
        # Key Vault (keys: sign; secrets: get), for a GitHub App's private key (localazure/keyvault.py).
        self.keyvault = KeyVaultService(state.clock, tenant_id=state.tenant_id)
        for service in (self._arm, LogsService(state, self._workspaces), self._eventgrid, self.keyvault):
            self._servers[service.name] = HttpsServer(front(service, self.calls, self.faults, self.clock), self._ca)
        self.keyvault.base_url = self._servers[KeyVaultService.name].url

    # ------------------------------------------------------------ lifecycle
    @classmethod
    def start(
        cls,
        scenario: str | Path | dict | None = None,
        *,
        propagation_seconds: float | None = None,
        clock: Clock | datetime | str | None = None,
        page_size: int | None = None,
        seed: int = 0,
        log_shape: LogShape | None = None,
        arm_throttling: bool | ThrottleLimits | None = None,
    ) -> LocalAzure:
        """Start the servers. `scenario` is a dict, a JSON path or a bundled name ("basic"); `clock` a Clock
        or an instant to freeze at (default: the scenario's clock.start, else real time); `log_shape` replaces
        the scenario's answers where Azure's log documentation is silent; `arm_throttling` (True, or smaller
        ThrottleLimits) turns on ARM's token buckets and Resource Graph's quota (else the scenario's
        settings.arm_throttling, off by default)."""
        raw = scenario_file.read(scenario)
        state = State(clock=_make_clock(clock, raw))
        loaded = scenario_file.apply(state, raw)
        if propagation_seconds is not None:
            state.settings.propagation_seconds = float(propagation_seconds)
        if page_size is not None:
            state.settings.page_size = int(page_size)
        if log_shape is not None:
            state.settings.log_shape = log_shape
        az = cls(state, seed=seed)
        if arm_throttling is not None:
            az.set_arm_throttling(arm_throttling)
        try:
            for workspace in loaded.workspaces:
                az.add_workspace(**workspace)
            for spec in loaded.traffic:
                az.simulator.add(spec)
            for table, table_rows in loaded.logs.items():
                az.logs.add_rows(table, table_rows)
            for fault in loaded.faults:
                az.faults.add(**fault)
        except Exception:
            az.stop()
            raise
        for server in az._servers.values():
            server.start()
        return az

    def stop(self) -> None:
        for server in self._servers.values():
            server.stop()
        for store in self._workspaces.values():
            store.close()

    def __enter__(self) -> LocalAzure:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def set_arm_throttling(self, on: bool | ThrottleLimits = True) -> None:
        """ARM's token buckets per subscription and principal, and Resource Graph's query quota
        (localazure/throttle.py): True for the documented sizes, ThrottleLimits for smaller ones, False for off.
        Every bucket starts full."""
        self.state.settings.arm_throttling = bool(on)
        self._arm.set_throttle_limits(on if isinstance(on, ThrottleLimits) else ThrottleLimits())

    # ------------------------------------------------------------ addresses
    @property
    def arm_url(self) -> str:
        return self._servers["arm"].url

    @property
    def logs_url(self) -> str:
        return self._servers["logs"].url

    @property
    def eventgrid_url(self) -> str:
        """The topic endpoint to give `EventGridPublisherClient` (basic topic)."""
        return self._servers["eventgrid"].url + "/api/events"

    @property
    def keyvault_url(self) -> str:
        """The Key Vault stand-in's vault URL (TRIAGE_GITHUB_APP_KEY_VAULT_URL)."""
        return self._servers[KeyVaultService.name].url

    @property
    def eventgrid_key(self) -> str:
        return self.state.settings.eventgrid_key

    @property
    def ca_path(self) -> str:
        return self._ca.ca_path

    @property
    def ca(self) -> CertificateAuthority:
        """The CA behind every server, for other stand-ins (ticket trackers) to share."""
        return self._ca

    @property
    def workspace_id(self) -> str:
        return self.state.workspace_id

    @property
    def subscription_id(self) -> str:
        return self.state.subscription_id

    @property
    def tenant_id(self) -> str:
        return self.state.tenant_id

    @property
    def own_principal_id(self) -> str:
        return self.state.settings.own_identity.principal_id

    def own_token(self, lifetime_seconds: int = 7 * 86400) -> str:
        """A JWT-shaped bearer token (unsigned) for the scenario's own identity: its `oid` tells a caller who it is
        (`python -m shared doctor`); the stand-in takes it as the own identity, as it does any unknown token."""
        return jwt_token(self.own_principal_id, self.tenant_id, "https://management.azure.com", lifetime_seconds)

    def info(self) -> dict[str, str]:
        """What `python -m localazure` prints: every address and id a client needs."""
        return {
            "arm": self.arm_url,
            "logs": self.logs_url,
            "eventgrid": self.eventgrid_url,
            "eventgrid_key": self.eventgrid_key,
            "keyvault": self.keyvault_url,
            "ca": self.ca_path,
            "workspace_id": self.workspace_id,
            "subscription_id": self.subscription_id,
            "tenant_id": self.tenant_id,
            "own_principal_id": self.own_principal_id,
            "own_token": self.own_token(),
        }

    # ------------------------------------------------------------ world helpers
    def add_principal(
        self,
        object_id: str | None = None,
        type: str = "ServicePrincipal",  # noqa: A002 - the brief's public name
        groups: Iterable[str] = (),
        replicating_until: datetime | str | None = None,
        display_name: str | None = None,
        *,
        managed_identity: bool = False,
    ) -> Principal:
        now = self.clock.now()
        principal = Principal(
            object_id=object_id or str(uuid.uuid4()),
            type=type,
            display_name=display_name or "",
            managed_identity=managed_identity,
            groups={g: now - timedelta(days=3650) for g in groups},
            replicating_until=as_utc(replicating_until) if replicating_until else None,
        )
        return self.state.put_principal(principal)

    def add_group_member(self, principal_id: str, group_id: str, since: datetime | None = None) -> None:
        """Make `principal_id` a member of `group_id` from `since` (default: now, so caches start cold)."""
        principal = self.state.principal(principal_id)
        if principal is None:
            raise KeyError(principal_id)
        with self.state.lock:
            principal.groups[group_id] = since or self.clock.now()

    def add_account(
        self,
        name: str,
        kind: str = "OpenAI",
        resource_group: str = "rg",
        disable_local_auth: bool = False,
        public_network_access: str = "Enabled",
        default_action: str = "Allow",
        projects: Iterable[str] = (),
        **more: Any,
    ) -> str:
        """Add a Cognitive Services account; returns its resource id. `more`: ip_rules, virtual_network_rules,
        private_endpoints, deployments, location, custom_subdomain, tenant_id, tags, keys."""
        account = Account(
            name=name, subscription_id=self.subscription_id, resource_group=resource_group, kind=kind,
            disable_local_auth=disable_local_auth, public_network_access=public_network_access,
            default_action=default_action, projects={p.lower(): Project(p) for p in projects}, **more,
        )
        return self.state.put_account(account).id

    def update_account(self, name: str, **changes: Any) -> Account:
        """Change account settings in place (e.g. disable_local_auth=True, default_action="Deny")."""
        account = self.state.require_account(name)
        with self.state.lock:
            for key, value in changes.items():
                if not hasattr(account, key):
                    raise AttributeError(f"Account has no setting {key!r}")
                setattr(account, key, value)
        return account

    def add_app_resource(self, resource_id: str, principal_id: str, *, user_assigned: bool = False) -> dict:
        """Serve an app's ARM resource (GET) whose managed identity is `principal_id`."""
        return self.state.put_app_resource(resource_id, principal_id, user_assigned=user_assigned)

    def add_managed_identity(self, name: str, object_id: str | None = None, *, resource_group: str = "rg-identities",
                             resource_type: str = "Microsoft.ManagedIdentity/userAssignedIdentities") -> Principal:
        """A managed identity: a service principal (`managed_identity=True`, display name `name`) and the ARM
        resource behind it, served by ARM and Resource Graph: a user-assigned identity named `name` (its
        `properties.principalId` is the object id), or with another `resource_type` (e.g. "Microsoft.Web/sites")
        a resource named `name` whose system-assigned identity it is (`identity.principalId`)."""
        principal = self.add_principal(object_id, display_name=name, managed_identity=True)
        resource_id = (f"/subscriptions/{self.subscription_id}/resourceGroups/{resource_group}/providers/"
                       f"{resource_type}/{name}")
        self.state.put_app_resource(resource_id, principal.object_id)
        return principal

    def add_gateway(self, name: str, principal_id: str | None = None, *, resource_group: str = "rg",
                    **more: Any) -> str:
        """Add an API Management gateway whose managed identity (`principal_id`, a new managed-identity service
        principal unless it exists) calls the backends; returns its resource id. Send traffic through it with
        `add_traffic(..., gateway=name)`. `more`: user_assigned, location, public_ip, api_id, log_backend_body."""
        gateway = scenario_file.gateway_from({"name": name, "principal_id": principal_id,
                                              "resource_group": resource_group, **more}, self.state)
        return self.state.put_gateway(gateway).id

    def gateway_id(self, name: str) -> str:
        return self.state.require_gateway(name).id

    def account_id(self, name: str) -> str:
        return self.state.require_account(name).id

    def project_id(self, account: str, project: str) -> str:
        return self.state.require_account(account).project_id(project)

    def add_assignment(
        self,
        principal_id: str,
        role_guid: str,
        scope: str,
        created_ago_seconds: float = 3600,
        description: str | None = None,
        *,
        condition: str | None = None,
        name: str | None = None,
    ) -> str:
        """Add a role assignment directly (no ARM call, no authorization); returns its id. `role_guid` may be a
        GUID, a role definition id or a role name; `scope` an ARM scope or a scenario shorthand."""
        principal = self.state.principal(principal_id)
        role = self.state.role(role_guid) or roles.require(role_guid)
        resolved = scenario_file.resolve_scope(self.state, scope)
        created = self.clock.now() - timedelta(seconds=created_ago_seconds)
        assignment = Assignment(
            name=name or str(uuid.uuid4()), scope=resolved, role_guid=role.guid, principal_id=principal_id,
            principal_type=principal.type if principal else "ServicePrincipal", created_on=created,
            updated_on=created, created_by="test", description=description, condition=condition,
            condition_version="2.0" if condition else None,
        )
        return self.state.put_assignment(assignment).id

    def add_custom_role(
        self,
        name: str,
        *,
        data_actions: Iterable[str] = (),
        actions: Iterable[str] = ("Microsoft.CognitiveServices/*/read",),
        not_data_actions: Iterable[str] = (),
        not_actions: Iterable[str] = (),
        guid: str | None = None,
    ) -> str:
        """Define a custom role in this subscription (served by the role definitions list and get like the
        built-ins, with type CustomRole, and honoured by the data plane); returns its GUID."""
        role = roles.RoleDefinition(
            (guid or str(uuid.uuid4())).lower(), name, f"Custom role {name}", tuple(actions), tuple(not_actions),
            tuple(data_actions), tuple(not_data_actions), custom=True)
        with self.state.lock:
            self.state.custom_roles[role.guid] = role
        return role.guid

    def assignments(self) -> list[Assignment]:
        return self.state.all_assignments()

    # ------------------------------------------------------------ traffic
    def add_traffic(self, resource: str | None = None, route: str | None = None, **fields: Any) -> CallSpec:
        """Add a traffic entry (fields as in the scenario's `traffic` list) made each tick from now on."""
        if resource is not None:
            fields["resource"] = resource
        if route is not None:
            fields["route"] = route
        spec = spec_from(fields)
        self.simulator.add(spec)
        return spec

    def clear_traffic(self) -> None:
        self.simulator.clear()

    def tick(self) -> list[Outcome]:
        return self.simulator.tick()

    def simulate(self, ticks: int = 1, every_seconds: float | None = None) -> list[Outcome]:
        return self.simulator.simulate(ticks, every_seconds)

    def call(self, resource: str, route: str, *, log: bool = True, **fields: Any) -> Outcome:
        """Decide (and by default log) one data-plane request now, e.g. call("aoai", "/openai/...", caller=oid)."""
        return self.simulator.call(spec_from({"resource": resource, "route": route, **fields}), log=log)

    # ------------------------------------------------------------ logs
    @property
    def log_shape(self) -> LogShape:
        """The answers to what Azure's log documentation leaves open (localazure/logshape.py)."""
        return self.state.settings.log_shape

    def set_log_shape(self, **changes: Any) -> LogShape:
        """Change the log shape for rows written from now on, e.g. set_log_shape(rejections_logged=False)."""
        self.state.settings.log_shape = replace(self.state.settings.log_shape, **changes)
        return self.state.settings.log_shape

    def add_workspace(self, workspace_id: str | None = None, *, missing_tables: Iterable[str] = (),
                      missing_columns: Mapping[str, Iterable[str]] | None = None) -> str:
        """Serve another workspace (or change the main one, given its id) that has not received `missing_tables`
        nor `missing_columns` ({table: [column]}) yet: a query naming one answers 400 SEM0100 as Log Analytics
        does, until rows carrying it are added (`add_log_rows(..., workspace=id)`). Returns the workspace id."""
        workspace_id = workspace_id or str(uuid.uuid4())
        store = self._workspaces.get(workspace_id.lower())
        if store is None:
            store = self._workspaces[workspace_id.lower()] = LogStore(tenant_id=workspace_id)
        for table in [*missing_tables, *(missing_columns or {})]:
            store.columns(table)
        store.unreceived.mark(missing_tables, missing_columns)
        return workspace_id

    def workspace(self, workspace_id: str | None = None) -> LogStore:
        """A workspace's tables (the main one by default)."""
        return self._workspaces[(workspace_id or self.workspace_id).lower()]

    def add_log_rows(self, table: str, rows: Iterable[Mapping[str, Any]], *, workspace: str | None = None) -> int:
        """Rows into the main workspace, or into `workspace`; a table or column not received yet exists from now."""
        return self.workspace(workspace).add_rows(
            table, [{**r, "TimeGenerated": r.get("TimeGenerated") or self.clock.now()} for r in rows])

    def load_rows_bulk(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]] | str | Path) -> int:
        return self.logs.load_bulk(table, columns, rows)

    def load_rows_sql(self, table: str, select_sql: str) -> int:
        return self.logs.load_sql(table, select_sql)

    def query(self, kql: str, timespan: timedelta | None = None) -> QueryResult:
        """Run KQL in-process (no HTTP), relative to the stand-in clock."""
        now = self.clock.now()
        return self.logs.query(kql, now=now, start=now - timespan if timespan else None,
                               end=now if timespan else None, max_rows=self.state.settings.max_query_rows)

    # ------------------------------------------------------------ event grid
    @property
    def eventgrid_received(self) -> list[ReceivedEvent]:
        return list(self._eventgrid.received)


def _make_clock(clock: Clock | datetime | str | None, raw: dict[str, Any]) -> Clock:
    if isinstance(clock, Clock):
        return clock
    if clock is not None:
        return Clock.frozen(clock)
    start = (raw.get("clock") or {}).get("start")
    return Clock.frozen(start) if start else Clock()
