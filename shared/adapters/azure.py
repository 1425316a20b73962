"""One factory for every Azure-facing adapter, built from settings.

    clients = AzureClients.from_settings(settings, credential=None)
    clients.sources   # one LogAnalyticsSource per workspace id, one AppInsightsSource per App Insights workspace,
                      # one GatewayLogsSource per API Management gateway-logs workspace
    clients.evidence  # AzureEvidenceProvider (per-run caches; .new_run() clears them; .gather_evidence(pairs))
    clients.roles     # RoleAssignments (RoleWriter: create / delete_own)
    clients.events    # EventGridOutcomePublisher, or NullPublisher when no topic is configured
    clients.calls     # CallCounter: HTTP attempts per service ("arm", "logs")
    clients.resource_graph  # ResourceGraphReader when TRIAGE_RESOURCE_GRAPH is on, else None

Clients are built lazily on first use, so importing or building this costs no SDK import until a call is made.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from shared.adapters.app_identity import AppIdentities, arm_get_json
from shared.adapters.clients import ClientConfig, build_credential
from shared.adapters.events_out import build_publisher
from shared.adapters.evidence import AzureEvidenceProvider
from shared.adapters.gateway_logs import GatewayLogsSource
from shared.adapters.logs import AppInsightsSource, LogAnalyticsSource
from shared.adapters.resource_graph import ResourceGraphReader
from shared.adapters.resources import ACCOUNTS_SDK_PACKAGE, Accounts
from shared.adapters.role_assignments import ROLES_SDK_PACKAGE, RoleAssignments
from shared.settings import Settings

# The authorization client needs a subscription id but every call we make names its own scope.
_ANY_SUBSCRIPTION = "00000000-0000-0000-0000-000000000000"


class _Lazy:
    """Builds an SDK client on first attribute access."""

    def __init__(self, build: Callable[[], Any]):
        self._build = build
        self._client: Any = None
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        with self._lock:
            if self._client is None:
                self._client = self._build()
        return getattr(self._client, name)


class AzureClients:
    def __init__(self, config: ClientConfig):
        self.config = config
        settings = config.settings
        self.calls = config.counter
        self._logs = _Lazy(self._logs_client)
        self._authorization = _Lazy(self._authorization_client)
        self.roles = RoleAssignments(self._authorization, pipeline=partial(config.arm_pipeline, ROLES_SDK_PACKAGE,
                                                                           multi_api=True))
        self.accounts = Accounts(self._cognitive_client, pipeline=partial(config.arm_pipeline, ACCOUNTS_SDK_PACKAGE))
        self.resource_graph = ResourceGraphReader(_Lazy(self._resource_graph_client)) if settings.resource_graph \
            else None
        self.evidence = AzureEvidenceProvider(
            self.roles,
            self.accounts,
            concurrency=settings.evidence_concurrency,
            subscription_ids=(settings.subscription_id,),
            graph=self.resource_graph,
        )
        self.app_identities = AppIdentities(settings.app_identities, arm_get_json(self.accounts.client))
        self.evidence.on_new_run(self.app_identities.new_run)
        self.evidence.add_name_source(self.app_identities.name_of)
        sources: list[Any] = [LogAnalyticsSource(self._logs, ws) for ws in settings.workspace_ids]
        sources += [
            AppInsightsSource(
                self._logs,
                ws,
                app_identities=settings.app_identities,
                identity_of=self.app_identities.identity_of,
                resource_of=self.evidence.resource_for_host,
                hosts_of=self.evidence.hosts_for,
            )
            for ws in settings.appinsights_workspace_ids
        ]
        sources += [
            GatewayLogsSource(
                self._logs,
                ws,
                identity_of=self.app_identities.resource_identity,
                resource_of=self.evidence.resource_for_host,
                hosts_of=self.evidence.hosts_for,
            )
            for ws in settings.apim_workspace_ids
        ]
        self.sources = tuple(sources)
        self.events = build_publisher(settings, config.credential)

    @classmethod
    def from_settings(
        cls, settings: Settings, credential: Any = None, *, client_options: dict[str, Any] | None = None
    ) -> AzureClients:
        """`credential` is injectable (tests, the local stand-in); `client_options` reach every SDK client
        (e.g. retry tuning or a transport in tests)."""
        return cls(ClientConfig(credential or build_credential(settings), settings, extra=dict(client_options or {})))

    def new_run(self) -> None:
        """Start a run: clears every per-run cache (the engine calls evidence.new_run(), which does the same)."""
        self.evidence.new_run()

    def workspace_query(self, workspace_id: str, label: str = "Log Analytics") -> Any:
        """A query runner on one workspace with the sources' client and error handling (the self-check's reads)."""
        from shared.adapters.logs import workspace_query

        return workspace_query(self._logs, workspace_id, label)

    def _logs_client(self) -> Any:
        from azure.monitor.query import LogsQueryClient

        return LogsQueryClient(self.config.credential, **self.config.logs_kwargs())

    def _authorization_client(self) -> Any:
        from azure.mgmt.authorization import AuthorizationManagementClient

        subscription = self.config.settings.subscription_id or _ANY_SUBSCRIPTION
        return AuthorizationManagementClient(self.config.credential, subscription, **self.config.arm_kwargs())

    def _cognitive_client(self, subscription_id: str) -> Any:
        from azure.mgmt.cognitiveservices import CognitiveServicesManagementClient

        return CognitiveServicesManagementClient(self.config.credential, subscription_id, **self.config.arm_kwargs())

    def _resource_graph_client(self) -> Any:
        from azure.mgmt.resourcegraph import ResourceGraphClient

        return ResourceGraphClient(self.config.credential, **self.config.arm_kwargs())
