"""Build the configured ticket sinks from settings (TRIAGE_TICKET_SINKS and the per-sink settings)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from shared.settings import Settings
from shared.tickets.base import TicketSink
from shared.tickets.http import HttpOptions
from shared.tickets.routing import sink_routing


def build_sinks(
    settings: Settings,
    *,
    http_options: HttpOptions | None = None,
    ado_credential: Any = None,
    github_token: Callable[[], str] | None = None,
    credential: Any = None,
    clock: Callable[[], float] | None = None,
    credential_factory: Callable[[], Any] | None = None,
    token_clock: Callable[[], float] | None = None,
) -> list[TicketSink]:
    """One sink per name in settings.ticket_sinks, in that order.

    `http_options` carries transport/retry settings (tests make retries cheap); TRIAGE_CA_BUNDLE is trusted when
    no explicit `connection_verify` is given. `ado_credential` (a TokenCredential) replaces the PAT with an Entra
    token; `github_token` (a callable) supplies refreshed GitHub App installation tokens.

    From settings alone: TRIAGE_GITHUB_APP_* mint GitHub App installation tokens (the private key in Key Vault) and
    TRIAGE_ADO_AUTH=entra uses an Entra token; both through `credential`, the service's Azure credential, or when it
    is None the one `credential_factory` builds (the composition root passes the settings' own choice, built only
    when one of them needs it). `clock` (epoch seconds) is what installation token lifetimes are judged by.
    `token_clock`: the monotonic clock OAuth token caches (ServiceNow) judge expiry by; default time.monotonic
    (tests move it).
    """
    options = http_options or HttpOptions()
    if options.connection_verify is True and settings.ca_bundle:
        options = replace(options, connection_verify=settings.ca_bundle)
    azure = _AzureCredential(credential, credential_factory)
    if github_token is None and "github" in settings.ticket_sinks and settings.github_app_id:
        github_token = _github_app_tokens(settings, options, azure, clock)
    if ado_credential is None and settings.ado_auth == "entra" and "azuredevops" in settings.ticket_sinks:
        ado_credential = azure.get()
    sinks: list[TicketSink] = []
    for name in settings.ticket_sinks:
        sink = _build(name, settings, options, ado_credential, github_token)
        if token_clock is not None and name == "servicenow":
            sink.use_token_clock(token_clock)  # type: ignore[attr-defined]
        sinks.append(sink)
    return sinks


# ---- tracker auth from settings: GitHub App, Azure DevOps Entra ----


class _AzureCredential:
    """The service's Azure credential, built on first need (cold start: no azure-identity import for sinks that do
    not use it)."""

    def __init__(self, credential: Any, factory: Callable[[], Any] | None):
        self._credential, self._factory = credential, factory

    def get(self) -> Any:
        if self._credential is None:
            if self._factory is None:
                raise ValueError("TRIAGE_GITHUB_APP_* and TRIAGE_ADO_AUTH=entra need the service's Azure credential: "
                                 "pass credential= (or build the sinks through shared.bootstrap)")
            self._credential = self._factory()
        return self._credential


def _github_app_tokens(s: Settings, options: HttpOptions, azure: _AzureCredential,
                       clock: Callable[[], float] | None) -> Callable[[], str]:
    import time

    from shared.tickets.github_app import installation_tokens

    return installation_tokens(api_url=s.github_api_url, app_id=s.github_app_id,
                               installation_id=s.github_app_installation_id, vault_url=s.github_app_key_vault_url,
                               key_name=s.github_app_key_name, key_kind=s.github_app_key_kind,
                               credential=azure.get(), options=options, clock=clock or time.time)


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
                                options=options, assignees=s.github_assignees, labels=s.github_labels,
                                credential_hint="TRIAGE_GITHUB_APP_ID" if s.github_app_id and github_token
                                else "TRIAGE_GITHUB_TOKEN", routes=sink_routing("github", s).by_owner)
    if name == "azuredevops":
        from shared.tickets.azuredevops import AzureDevOpsSink

        return AzureDevOpsSink(org_url=s.ado_org_url, project=s.ado_project,
                               pat=(s.ado_pat or None) if s.ado_auth == "pat" else None,
                               credential=ado_credential, options=options, declined_reasons=s.declined_reasons,
                               work_item_type=s.ado_work_item_type, area_path=s.ado_area_path,
                               iteration_path=s.ado_iteration_path, routes=sink_routing("azuredevops", s).by_owner)
    if name == "servicenow":
        from shared.tickets.servicenow import ServiceNowSink

        # Basic or OAuth client credentials (TRIAGE_SERVICENOW_AUTH); routing: settings and owner routes.
        return ServiceNowSink(instance_url=s.servicenow_url, user=s.servicenow_user,
                              password=s.servicenow_password, options=options,
                              declined_close_codes=s.declined_close_codes, auth=s.servicenow_auth,
                              client_id=s.servicenow_client_id, client_secret=s.servicenow_client_secret,
                              routing=sink_routing("servicenow", s))
    if name == "jira":
        from shared.tickets.jira import JiraSink

        # Cloud or Data Center (TRIAGE_JIRA_DEPLOYMENT); routing: settings and owner routes.
        return JiraSink(base_url=s.jira_url, project=s.jira_project, user=s.jira_user, token=s.jira_token,
                        options=options, declined_resolutions=s.declined_resolutions,
                        deployment=s.jira_deployment, routing=sink_routing("jira", s))
    if name == "slack":
        from shared.tickets.slack import slack_sink

        return slack_sink(api_url=s.slack_api_url, bot_token=s.slack_bot_token, channel=s.slack_channel,
                          webhook_url=s.slack_webhook_url, options=options)
    if name == "teams":
        from shared.tickets.teams import TeamsSink

        return TeamsSink(url=s.teams_webhook_url, options=options)
    raise ValueError(f"unknown ticket sink {name!r}")
