"""`TrackerStandIns`: every tracker stand-in on its own HTTPS port on 127.0.0.1, behind the stand-in's shared
front door, with one call log (each request kept) and one set of injected faults for all of them."""

from __future__ import annotations

import threading
from typing import Any

from localazure.calls import CallLog
from localazure.clock import Clock
from localazure.faults import Faults
from localazure.frontdoor import front
from localazure.https import CertificateAuthority, HttpsServer, Request
from localazure.keyvault import KeyVaultService
from localazure.trackers.azuredevops import AzureDevOpsStandIn
from localazure.trackers.base import TRACKERS, TicketView, TrackerCredentials, TrackerService
from localazure.trackers.github import GitHubStandIn
from localazure.trackers.jira import JiraStandIn
from localazure.trackers.servicenow import ServiceNowStandIn
from localazure.trackers.slack import API_PREFIX, SlackStandIn
from localazure.trackers.teams import TeamsStandIn
from localazure.trackers.webhook import WebhookStandIn


class TrackerStandIns:
    """All tracker stand-ins. `faults.add(tracker, ...)` injects faults as `LocalAzure.faults` does; `calls`
    counts every call per route; `received(tracker)` is what each tracker was sent."""

    def __init__(self, ca: CertificateAuthority, credentials: TrackerCredentials):
        self.credentials = credentials
        self.ca_path = ca.ca_path  # clients pass it as connection_verify / TRIAGE_CA_BUNDLE
        self.clock = Clock()
        self.calls = CallLog()
        self.faults = Faults(services=(*TRACKERS, KeyVaultService.name))
        github = GitHubStandIn(credentials)
        github.clock = self.clock  # its rate-limit windows run on the stand-ins' clock
        servicenow = ServiceNowStandIn(credentials)
        servicenow.clock = self.clock  # its OAuth tokens expire on the stand-ins' clock
        servicenow.register_oauth_client(credentials.servicenow_client_id, credentials.servicenow_client_secret)
        apps: list[TrackerService] = [github, AzureDevOpsStandIn(credentials), servicenow, JiraStandIn(credentials),
                                      WebhookStandIn(credentials), SlackStandIn(credentials),
                                      TeamsStandIn(credentials)]
        self._apps = {app.name: app for app in apps}
        self._servers: dict[str, HttpsServer] = {}
        for name, app in self._apps.items():
            server = HttpsServer(front(app, self.calls, self.faults, self.clock, record_requests=True), ca)
            app.base_url = server.url
            self._servers[name] = server
        # The Key Vault a GitHub App's private key lives in (localazure/keyvault.py), on the same CA and call log.
        self.keyvault = KeyVaultService(self.clock)
        vault_server = HttpsServer(front(self.keyvault, self.calls, self.faults, self.clock, record_requests=True), ca)
        self.keyvault.base_url = vault_server.url
        self._servers[KeyVaultService.name] = vault_server

    @classmethod
    def start(cls, ca: CertificateAuthority, credentials: TrackerCredentials | None = None) -> TrackerStandIns:
        standins = cls(ca, credentials or TrackerCredentials())
        for server in standins._servers.values():
            server.start()
        return standins

    @property
    def github_url(self) -> str:
        return self._servers["github"].url

    @property
    def ado_url(self) -> str:
        return f"{self._servers['azuredevops'].url}/{self.credentials.ado_org}"

    @property
    def keyvault_url(self) -> str:
        """The Key Vault stand-in's vault URL (TRIAGE_GITHUB_APP_KEY_VAULT_URL)."""
        return self._servers[KeyVaultService.name].url

    @property
    def servicenow_url(self) -> str:
        return self._servers["servicenow"].url

    @property
    def jira_url(self) -> str:
        return self._servers["jira"].url

    @property
    def webhook_url(self) -> str:
        return self._servers["webhook"].url + WebhookStandIn.PATH

    @property
    def slack_api_url(self) -> str:
        return self._servers["slack"].url + API_PREFIX.rstrip("/")

    @property
    def slack_webhook_url(self) -> str:
        return self._servers["slack"].url + self._apps["slack"].webhook_path

    @property
    def teams_url(self) -> str:
        """The Workflows webhook URL, signature included (it is the credential)."""
        teams = self._apps["teams"]
        return f"{self._servers['teams'].url}{TeamsStandIn.PATH}?{teams.query}"

    def app(self, tracker: str) -> Any:
        """The stand-in itself, for switches such as `app("github").push_access = False`."""
        return self._apps[tracker]

    def received(self, tracker: str) -> list[Request]:
        """Every request `tracker` was sent, in the order it answered them, faulted and refused ones included."""
        if tracker not in self._apps and tracker != KeyVaultService.name:
            raise KeyError(tracker)
        return [call.request for call in self.calls.records if call.service == tracker and call.request is not None]

    def tickets(self, tracker: str) -> list[TicketView]:
        app = self._apps[tracker]
        with app.lock:
            return app.views()

    def set_state(self, tracker: str, ref: str, state: str) -> None:
        """Change a ticket as a person would (tracker-native state: closed / Closed / 7 / Done ...)."""
        app = self._apps[tracker]
        with app.lock:
            app.set_state(ref, state)

    def close_by_person(self, tracker: str, ref: str, person: str, reason: str, state: str | None = None) -> None:
        """Close a ticket as a person would, with the reason the tracker records (GitHub `state_reason`, Azure
        DevOps `System.Reason`, a ServiceNow close code, a Jira resolution); `state` for a non-default one."""
        app = self._apps[tracker]
        with app.lock:
            app.close_by_person(ref, person, reason, state)

    def settings_env(self) -> dict[str, str]:
        """TRIAGE_* settings that point every sink at these stand-ins."""
        c = self.credentials
        return {
            "TRIAGE_GITHUB_API_URL": self.github_url, "TRIAGE_GITHUB_REPO": c.github_repo,
            "TRIAGE_GITHUB_TOKEN": c.github_token, "TRIAGE_ADO_ORG_URL": self.ado_url,
            "TRIAGE_ADO_PROJECT": c.ado_project, "TRIAGE_ADO_PAT": c.ado_pat,
            "TRIAGE_SERVICENOW_URL": self.servicenow_url, "TRIAGE_SERVICENOW_USER": c.servicenow_user,
            "TRIAGE_SERVICENOW_PASSWORD": c.servicenow_password, "TRIAGE_JIRA_URL": self.jira_url,
            "TRIAGE_JIRA_PROJECT": c.jira_project, "TRIAGE_JIRA_USER": c.jira_user,
            "TRIAGE_JIRA_TOKEN": c.jira_token, "TRIAGE_WEBHOOK_URL": self.webhook_url,
            "TRIAGE_WEBHOOK_SECRET": c.webhook_secret,
            "TRIAGE_SLACK_API_URL": self.slack_api_url, "TRIAGE_SLACK_BOT_TOKEN": c.slack_bot_token,
            "TRIAGE_SLACK_CHANNEL": c.slack_channel, "TRIAGE_SLACK_WEBHOOK_URL": self.slack_webhook_url,
            "TRIAGE_TEAMS_WEBHOOK_URL": self.teams_url,
        }

    def servicenow_oauth_env(self) -> dict[str, str]:
        """Settings for the ServiceNow sink with the OAuth client credentials grant instead of basic auth."""
        c = self.credentials
        return {"TRIAGE_SERVICENOW_AUTH": "oauth", "TRIAGE_SERVICENOW_USER": "", "TRIAGE_SERVICENOW_PASSWORD": "",
                "TRIAGE_SERVICENOW_CLIENT_ID": c.servicenow_client_id,
                "TRIAGE_SERVICENOW_CLIENT_SECRET": c.servicenow_client_secret}

    def jira_datacenter_env(self) -> dict[str, str]:
        """Settings for the Jira sink against the stand-in in Data Center mode (`app("jira").datacenter = True`)."""
        return {"TRIAGE_JIRA_DEPLOYMENT": "datacenter", "TRIAGE_JIRA_USER": "",
                "TRIAGE_JIRA_TOKEN": self.credentials.jira_pat}

    def stop(self) -> None:
        # In parallel: each server's shutdown waits out its poll interval.
        stoppers = [threading.Thread(target=server.stop) for server in self._servers.values()]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
