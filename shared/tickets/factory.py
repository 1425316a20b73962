"""Build the configured ticket sinks from settings (TRIAGE_TICKET_SINKS and the per-sink settings)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from shared.settings import Settings
from shared.tickets.base import TicketSink
from shared.tickets.http import HttpOptions


def build_sinks(
    settings: Settings,
    *,
    http_options: HttpOptions | None = None,
    ado_credential: Any = None,
    github_token: Callable[[], str] | None = None,
    token_clock: Callable[[], float] | None = None,
) -> list[TicketSink]:
    """One sink per name in settings.ticket_sinks, in that order.

    `http_options` carries transport/retry settings (tests make retries cheap); TRIAGE_CA_BUNDLE is trusted when
    no explicit `connection_verify` is given. `ado_credential` (a TokenCredential) replaces the PAT with an Entra
    token; `github_token` (a callable) supplies refreshed GitHub App installation tokens. `token_clock`: the
    monotonic clock OAuth token caches (ServiceNow) judge expiry by; default time.monotonic (tests move it).
    """
    options = http_options or HttpOptions()
    if options.connection_verify is True and settings.ca_bundle:
        options = replace(options, connection_verify=settings.ca_bundle)
    sinks: list[TicketSink] = []
    for name in settings.ticket_sinks:
        sink = _build(name, settings, options, ado_credential, github_token)
        if token_clock is not None and name == "servicenow":
            sink.use_token_clock(token_clock)  # type: ignore[attr-defined]
        sinks.append(sink)
    return sinks


def _build(name: str, s: Settings, options: HttpOptions, ado_credential: Any,
           github_token: Callable[[], str] | None) -> TicketSink:
    if name == "log":
        from shared.tickets.log_sink import LogSink

        return LogSink()
    if name == "webhook":
        from shared.tickets.webhook import WebhookSink

        return WebhookSink(url=s.webhook_url, secret=s.webhook_secret, options=options)
    if name == "github":
        from shared.tickets.github import GitHubIssuesSink

        return GitHubIssuesSink(api_url=s.github_api_url, repo=s.github_repo, token=github_token or s.github_token,
                                options=options)
    if name == "azuredevops":
        from shared.tickets.azuredevops import AzureDevOpsSink

        return AzureDevOpsSink(org_url=s.ado_org_url, project=s.ado_project, pat=s.ado_pat or None,
                               credential=ado_credential, options=options, declined_reasons=s.declined_reasons)
    if name == "servicenow":
        from shared.tickets.routing import sink_routing
        from shared.tickets.servicenow import ServiceNowSink

        # Basic or OAuth client credentials (TRIAGE_SERVICENOW_AUTH); routing: settings and owner routes.
        return ServiceNowSink(instance_url=s.servicenow_url, user=s.servicenow_user,
                              password=s.servicenow_password, options=options,
                              declined_close_codes=s.declined_close_codes, auth=s.servicenow_auth,
                              client_id=s.servicenow_client_id, client_secret=s.servicenow_client_secret,
                              routing=sink_routing("servicenow", s))
    if name == "jira":
        from shared.tickets.jira import JiraSink
        from shared.tickets.routing import sink_routing

        # Cloud or Data Center (TRIAGE_JIRA_DEPLOYMENT); routing: settings and owner routes.
        return JiraSink(base_url=s.jira_url, project=s.jira_project, user=s.jira_user, token=s.jira_token,
                        options=options, declined_resolutions=s.declined_resolutions,
                        deployment=s.jira_deployment, routing=sink_routing("jira", s))
    raise ValueError(f"unknown ticket sink {name!r}")
