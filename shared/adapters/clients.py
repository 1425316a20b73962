"""Credentials and the keyword arguments every Azure SDK client gets: endpoints and audiences (sovereign clouds),
the CA bundle, retry tuning and a per-attempt call counter. SDK modules are imported inside functions."""

from __future__ import annotations

import threading
from collections import Counter
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from shared.settings import Settings

ARM = "arm"
LOGS = "logs"
EVENTGRID = "eventgrid"


def build_credential(settings: Settings) -> Any:
    """DefaultAzureCredential, or the user-assigned managed identity when its client id is configured, or a
    static token for the local stand-in (settings.local_token; real Azure rejects it, so it fails closed)."""
    local_token = getattr(settings, "local_token", "")
    if local_token:
        from shared.adapters.local_credential import StaticTokenCredential

        return StaticTokenCredential(local_token)
    if settings.managed_identity_client_id:
        from azure.identity import ManagedIdentityCredential

        return ManagedIdentityCredential(client_id=settings.managed_identity_client_id)
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


class CallCounter:
    """Counts HTTP attempts (retries included) per service and method; thread-safe. Benchmarks read it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()

    def record(self, service: str, method: str) -> None:
        with self._lock:
            self._counts[(service, method.upper())] += 1

    def count(self, service: str | None = None, method: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (svc, meth), n in self._counts.items()
                if (service is None or svc == service) and (method is None or meth == method.upper())
            )

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()

    def policy(self, service: str) -> Any:
        """An azure-core per-retry policy that records each attempt of `service`."""
        from azure.core.pipeline.policies import SansIOHTTPPolicy

        counter = self

        class _CountingPolicy(SansIOHTTPPolicy):
            def on_request(self, request: Any) -> None:
                counter.record(service, request.http_request.method)

        return _CountingPolicy()


@dataclass
class ClientConfig:
    """What each SDK client is built with. `extra` reaches every client (tests pass retry tuning or a
    transport); `arm_pool_size` sizes the shared ARM connection pool for concurrent evidence look-ups."""

    credential: Any
    settings: Settings
    counter: CallCounter = field(default_factory=CallCounter)
    extra: dict[str, Any] = field(default_factory=dict)
    _arm_transport: Any = None
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _arm_limiter: Any = None

    @property
    def connection_verify(self) -> Any:
        return self.settings.ca_bundle or True

    def kwargs(self, service: str) -> dict[str, Any]:
        out: dict[str, Any] = {"connection_verify": self.connection_verify}
        out.update(self.extra)
        out["per_retry_policies"] = [*out.get("per_retry_policies", ()), self.counter.policy(service)]
        return out

    def arm_kwargs(self) -> dict[str, Any]:
        """Both ARM clients share one pooled transport (evidence look-ups run concurrently)."""
        out = self.kwargs(ARM)
        out["per_retry_policies"] = [*out["per_retry_policies"], self.arm_limiter.policy()]
        out["base_url"] = self.settings.arm_endpoint
        out["credential_scopes"] = [self.settings.arm_scope]
        if "transport" not in out:
            out["transport"] = self._shared_arm_transport()
        return out

    @property
    def arm_limiter(self) -> Any:
        """The one client-side ARM limiter every ARM client of this configuration shares (arm_limiter.py)."""
        with self._lock:
            if self._arm_limiter is None:
                from shared.adapters.arm_limiter import ArmLimiter, Rate

                settings = self.settings
                self._arm_limiter = ArmLimiter(Rate(settings.arm_read_burst, settings.arm_reads_per_second),
                                               Rate(settings.arm_write_burst, settings.arm_writes_per_second))
            return self._arm_limiter

    def _shared_arm_transport(self) -> Any:
        with self._lock:
            if self._arm_transport is None:
                import requests
                from azure.core.pipeline.transport import RequestsTransport

                pool = max(10, self.settings.evidence_concurrency)
                session = requests.Session()
                adapter = requests.adapters.HTTPAdapter(pool_connections=pool, pool_maxsize=pool)
                session.mount("https://", adapter)
                self._arm_transport = RequestsTransport(
                    session=session, session_owner=False, connection_verify=self.connection_verify
                )
            return self._arm_transport

    def arm_pipeline(self, sdk_package: str, *, multi_api: bool = False) -> Any:
        """An ARM pipeline client (azure.mgmt.core) built as the management client of `sdk_package` builds its own
        (a single-API generated client lists its policies; a multi-API one, as azure-mgmt-authorization's, builds
        the pipeline from its configuration), with its user agent and arm_kwargs() (credential scope, retries, the
        counter, the limiter, the shared transport): a call through it is that client's call, without importing the
        SDK's models."""
        from importlib.metadata import version

        from azure.core.pipeline import policies
        from azure.mgmt.core import ARMPipelineClient
        from azure.mgmt.core.policies import (
            ARMAutoResourceProviderRegistrationPolicy,
            ARMChallengeAuthenticationPolicy,
            ARMHttpLoggingPolicy,
        )

        kwargs = self.arm_kwargs()
        base_url, scopes = kwargs.pop("base_url"), kwargs.pop("credential_scopes")
        moniker = sdk_package if multi_api else sdk_package.removeprefix("azure-")
        agent = {"sdk_moniker": f"{moniker}/{version(sdk_package)}", **kwargs}
        if multi_api:
            from azure.core.configuration import Configuration

            config: Any = Configuration(**kwargs)
            config.user_agent_policy = policies.UserAgentPolicy(**agent)
            config.headers_policy = policies.HeadersPolicy(**agent)
            config.proxy_policy = policies.ProxyPolicy(**agent)
            config.logging_policy = policies.NetworkTraceLoggingPolicy(**agent)
            config.http_logging_policy = ARMHttpLoggingPolicy(**agent)
            config.retry_policy = policies.RetryPolicy(**agent)
            config.custom_hook_policy = policies.CustomHookPolicy(**agent)
            config.redirect_policy = policies.RedirectPolicy(**agent)
            config.authentication_policy = ARMChallengeAuthenticationPolicy(self.credential, *scopes, **agent)
            return ARMPipelineClient(base_url=base_url, config=config, **kwargs)
        pipeline_policies = [
            policies.RequestIdPolicy(**kwargs),
            policies.HeadersPolicy(**kwargs),
            policies.UserAgentPolicy(**agent),
            policies.ProxyPolicy(**kwargs),
            policies.ContentDecodePolicy(**kwargs),
            ARMAutoResourceProviderRegistrationPolicy(),
            policies.RedirectPolicy(**kwargs),
            policies.RetryPolicy(**kwargs),
            ARMChallengeAuthenticationPolicy(self.credential, *scopes, **kwargs),
            policies.CustomHookPolicy(**kwargs),
            policies.NetworkTraceLoggingPolicy(**kwargs),
            policies.DistributedTracingPolicy(**kwargs),
            policies.SensitiveHeaderCleanupPolicy(**kwargs),
            ARMHttpLoggingPolicy(**kwargs),
        ]
        return ARMPipelineClient(base_url=base_url, policies=pipeline_policies, **kwargs)

    def logs_kwargs(self) -> dict[str, Any]:
        out = self.kwargs(LOGS)
        out["endpoint"] = self.settings.logs_endpoint
        out["audience"] = self.settings.logs_audience
        return out


def subscription_of(resource_id: str) -> str:
    parts = resource_id.strip("/").split("/")
    if len(parts) < 2 or parts[0].lower() != "subscriptions":
        raise ValueError(f"{resource_id!r} is not under a subscription")
    return parts[1]


def host_of(url: str) -> str:
    return (urlsplit(url).hostname or "").lower()
