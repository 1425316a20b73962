"""Helpers shared by the ticket tests: the tracker stand-ins, settings and sinks wired to them, realistic ticket
content, and what a reader sees of a rendered description. The `standins` fixture is in tests/tickets/conftest.py."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from html.parser import HTMLParser

from markdown_it import MarkdownIt

from localazure.https import CertificateAuthority
from localazure.trackers import TrackerCredentials, TrackerStandIns
from shared.settings import Settings, load_settings
from shared.tickets.base import TicketContent
from shared.tickets.factory import build_sinks
from shared.tickets.http import HttpOptions
from shared.tickets.marker import marker_for
from shared.tickets.sanitize import ZWSP

TRACKERS = ("github", "azuredevops", "servicenow", "jira")
# Cheap but real retries: three retries with a millisecond backoff; Retry-After above 2 s is not waited for.
FAST = HttpOptions(retry_total=3, retry_backoff_factor=0.001, retry_backoff_max=1, max_retry_after=2,
                   timeout=20, connection_timeout=5, read_timeout=10)
# Secrets chosen so any leak is unmistakable.
CREDENTIALS = TrackerCredentials(
    github_token="ghs_LEAKCANARYgithub7f3a9c",
    ado_pat="LEAKCANARYadopat51d0e2b7",
    servicenow_password="LEAKCANARYsnowpw9b8e1c",
    jira_token="LEAKCANARYjiratoken4c2d",
    webhook_secret="LEAKCANARYwebhook0a6f",
    slack_bot_token="xoxb-LEAKCANARY-slackbot-5e1d",
    slack_webhook_path="T0CANARY/B0CANARY/LEAKCANARYslackhook7c2e",
    teams_sig="LEAKCANARYteamssig3e9d",
    servicenow_client_secret="LEAKCANARYsnowclient3e7a",
    jira_pat="LEAKCANARYjirapat8b1f",
)
_counter = itertools.count(1)


def running_standins() -> Iterator[TrackerStandIns]:
    ca = CertificateAuthority()
    standins = TrackerStandIns.start(ca, CREDENTIALS)
    try:
        yield standins
    finally:
        standins.stop()


def settings_for(standins: TrackerStandIns, sinks: str, **overrides: str) -> Settings:
    env = standins.settings_env() | {"TRIAGE_TICKET_SINKS": sinks, "TRIAGE_CA_BUNDLE": standins.ca_path}
    env.update(overrides)
    return load_settings(env)


def new_sink(standins: TrackerStandIns, tracker: str, options: HttpOptions = FAST, **overrides: str):
    """A brand-new sink object (no memory of earlier calls), built the way the service builds it."""
    (sink,) = build_sinks(settings_for(standins, tracker, **overrides), http_options=options)
    return sink


def make_content(**changes: object) -> TicketContent:
    """Realistic content with a fingerprint unique to the calling test."""
    n = next(_counter)
    principal = f"3f2504e0-4f89-11d3-9a0c-0305e82c{n:04d}"
    resource = ("/subscriptions/00000000-0000-0000-0000-000000000001/resourceGroups/rg-ai/providers/"
                f"Microsoft.CognitiveServices/accounts/contoso-openai-{n}")
    content = TicketContent(
        incident_id=f"inc-{n:016x}",
        fingerprint=f"{principal}|{resource.lower()}|rbac",
        cause="missing_data_role",
        cause_title="Caller holds no data-plane role",
        summary="orders-api calls Azure OpenAI with Entra ID but holds no data-plane role on the account.",
        principal_id=principal,
        principal_type="ServicePrincipal",
        principal_name="orders-api",
        resource_id=resource,
        count=3,
        first_seen="2026-03-01T10:00:00+00:00",
        last_seen="2026-03-01T10:04:00+00:00",
        sample_error='{"error":{"code":"PermissionDenied","message":"Principal does not have access to '
                     'API/Operation."}}',
        evidence=("role assignments at the account: none", "disableLocalAuth: true"),
        fix_command=(f"az role assignment create --assignee-object-id {principal} --assignee-principal-type "
                     f"ServicePrincipal --role \"Cognitive Services OpenAI User\" --scope {resource}"),
        fix_steps=(("Assign Cognitive Services OpenAI User at the account.",
                    "https://learn.microsoft.com/azure/ai-foundry/openai/how-to/role-based-access-control"),),
        action="Recommending the fix; the service does not change Azure in recommend mode.",
        mode="recommend",
        approve_hint="An engineer can approve with POST /api/incidents/<id>/approve and the approval handle.",
        doc_links=("https://learn.microsoft.com/azure/ai-foundry/openai/how-to/role-based-access-control",),
    )
    return replace(content, **changes)


class _TextOnly(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_text(markup: str) -> str:
    parser = _TextOnly()
    parser.feed(markup)
    parser.close()
    return "".join(parser.parts)


def render_github_markdown(text: str) -> str:
    """CommonMark + GFM tables/strikethrough + scheme/e-mail autolinks, with raw HTML allowed (as GitHub parses
    it before sanitising). Bare domains are not autolinked on GitHub, so fuzzy links are off; `www.` links are
    checked separately by the tests."""
    md = MarkdownIt("gfm-like", {"html": True, "linkify": True})
    md.linkify.set({"fuzzy_link": False})
    return md.render(text)


def visible_text(tracker: str, body: str) -> str:
    """What a reader sees of a stored description, zero-width spaces removed."""
    if tracker == "github":
        body = html_text(render_github_markdown(body))
    elif tracker == "azuredevops":
        body = html_text(body)
    return body.replace(ZWSP, "")


def tickets_for(standins: TrackerStandIns, tracker: str, content: TicketContent) -> list:
    marker = marker_for(content.fingerprint)
    return [t for t in standins.tickets(tracker) if marker in t.markers]
