"""The composition root: the one place that builds a Runtime from settings and wires adapters to the engine.

    from shared.bootstrap import build_runtime
    rt = build_runtime(load_settings(env), credential=credential, clock=clock)   # tests, benchmarks, embedding

Every entry point (function_app.py, the CLI, the demo, bench/, tests/) gets its runtime here. Any port may be
injected instead of the adapter the settings would build (in-memory fakes in the fast test tier); what is not
injected is built from settings. Adapter modules are imported inside `build_runtime`, so importing this module
stays cheap on the Function App's cold-start path.

Telemetry is off (the engine's no-op) unless a `telemetry` port is injected; the Function App instance's runtime
(`get_runtime`) gets OpenTelemetry when APPLICATIONINSIGHTS_CONNECTION_STRING is set, and only then is any of
OpenTelemetry or the Azure Monitor distro imported (docs/deploy.md, "Telemetry").
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from shared.adapters.errors import is_transient
from shared.core.ports import (
    Clock,
    EventPublisher,
    EvidenceProvider,
    FailureSource,
    ReviewReader,
    RoleWriter,
    Store,
    Telemetry,
    TicketSink,
)
from shared.engine.runtime import Runtime, utcnow
from shared.engine.telemetry import NoTelemetry
from shared.settings import Settings, load_settings, unknown_settings_warning

if TYPE_CHECKING:
    from shared.core.doctor import DoctorPorts

log = logging.getLogger("triage.settings")

# azure-core logs every request and response at INFO through this logger: ten records for one small scan.
AZURE_HTTP_LOGGER = "azure.core.pipeline.policies.http_logging_policy"


def build_runtime(
    settings: Settings,
    *,
    credential: Any = None,
    clock: Clock | None = None,
    client_options: dict[str, Any] | None = None,
    store: Store | None = None,
    sources: Sequence[FailureSource] | None = None,
    evidence: EvidenceProvider | None = None,
    roles: RoleWriter | None = None,
    sinks: Sequence[TicketSink] | None = None,
    events: EventPublisher | None = None,
    telemetry: Telemetry | None = None,
) -> Runtime:
    """A runtime for `settings`. `credential` reaches every Azure client (None: the settings choose one:
    TRIAGE_LOCAL_TOKEN, a user-assigned managed identity, or DefaultAzureCredential); `clock` is what "now" is;
    `telemetry` receives the spans and metrics (None: off)."""
    for key, closest in settings.unknown_settings:
        log.warning(unknown_settings_warning(key, closest))
    azure_ports = (sources, evidence, roles, events)
    clients = None
    if any(port is None for port in azure_ports[:3]):
        from shared.adapters.azure import AzureClients

        clients = AzureClients.from_settings(settings, credential=credential, client_options=client_options)
    if store is None:
        from shared.state.factory import open_store

        store = open_store(settings)
    if sinks is None:
        sinks = _settings_sinks(settings, credential if credential is not None
                                else clients.config.credential if clients else None)
    return Runtime(
        settings=settings,
        store=store,
        sources=list(sources if sources is not None else clients.sources if clients else ()),
        evidence=evidence if evidence is not None else clients.evidence,  # type: ignore[union-attr]
        roles=roles if roles is not None else clients.roles,  # type: ignore[union-attr]
        sinks=list(sinks),
        events=events if events is not None else (clients.events if clients else None),
        clock=clock or utcnow,
        transient=is_transient,
        telemetry=telemetry if telemetry is not None else NoTelemetry(),
    )


def build_doctor_ports(
    settings: Settings,
    *,
    credential: Any = None,
    client_options: dict[str, Any] | None = None,
    store: Store | None = None,
    sinks: Sequence[TicketSink] | None = None,
) -> DoctorPorts:
    """What the self-check (`python -m shared doctor`, `/api/health/deep`) calls: the Azure clients the settings
    build (or with `credential`), the store (a running instance's `store`, else one opened and closed for the
    check) and the ticket sinks' read-only probes."""
    from shared.adapters.azure import AzureClients
    from shared.adapters.self_check import AzureSelfCheck
    from shared.core.doctor import DoctorPorts, SinkProbe

    clients = AzureClients.from_settings(settings, credential=credential, client_options=client_options)

    def ping_store() -> None:
        if store is not None:
            store.ping()
            return
        from shared.state.factory import open_store

        opened = open_store(settings)
        try:
            opened.ping()
        finally:
            opened.close()

    if sinks is None:
        sinks = _settings_sinks(settings, clients.config.credential)
    return DoctorPorts(AzureSelfCheck(clients), ping_store,
                       [SinkProbe(sink.name, getattr(sink, "probe", None)) for sink in sinks])


_instance_runtime: Runtime | None = None


def get_runtime() -> Runtime:
    """The runtime of this Function App instance, built from the environment on first use and reused across
    invocations."""
    global _instance_runtime
    if _instance_runtime is None:
        quiet_azure_http_logging()
        settings = load_settings()
        _instance_runtime = build_runtime(settings, telemetry=instance_telemetry(settings))
    return _instance_runtime


def instance_telemetry(settings: Settings) -> Telemetry | None:
    """OpenTelemetry exporting to Application Insights when its connection string is set, else None (off).

    Lazy by design: importing the Azure Monitor distro costs about a quarter of a second, so it happens on the first
    invocation of an instance that exports telemetry, never on a cold start without it."""
    if not settings.appinsights_connection_string:
        return None
    from shared.adapters.telemetry import azure_monitor_telemetry

    return azure_monitor_telemetry(settings.appinsights_connection_string)


def quiet_azure_http_logging() -> None:
    """azure-core's per-request INFO records only from WARNING up, unless a level was chosen for that logger."""
    http_log = logging.getLogger(AZURE_HTTP_LOGGER)
    if http_log.level == logging.NOTSET:
        http_log.setLevel(logging.WARNING)


def set_runtime(runtime: Runtime | None) -> None:
    """Install a runtime (tests, the demo) or drop the cached one."""
    global _instance_runtime
    _instance_runtime = runtime


def build_review_reader(settings: Settings, *, credential: Any = None,
                        client_options: dict[str, Any] | None = None) -> ReviewReader:
    """What the access reviews (`python -m shared review`, `/api/review/...`) read through: reads only."""
    from shared.adapters.azure import AzureClients
    from shared.adapters.reviews import AzureReviewReader

    return AzureReviewReader(AzureClients.from_settings(settings, credential=credential,
                                                        client_options=client_options))


def build_review_sinks(settings: Settings) -> Sequence[TicketSink]:
    """The ticket sinks a review's `--ticket` writes to: the configured ones, as the scan's."""
    return _settings_sinks(settings, None)


def _settings_sinks(settings: Settings, credential: Any) -> list[TicketSink]:
    """The sinks the settings name. The Azure credential reaches them too, for a GitHub App's key in Key Vault and
    TRIAGE_ADO_AUTH=entra: `credential`, else the one the settings choose, built only when a sink needs it."""
    from shared.tickets.factory import build_sinks

    def settings_credential() -> Any:
        from shared.adapters.clients import build_credential

        return build_credential(settings)

    return build_sinks(settings, credential=credential, credential_factory=settings_credential)
