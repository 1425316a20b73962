"""Local stand-ins for the ticket trackers: GitHub Issues, Azure DevOps Boards, ServiceNow, Jira Cloud, and a
webhook receiver and Slack (Web API and incoming webhook), one module each (as in `shared/tickets/`). Each serves
only the calls the ticket sinks make, with the real paths, shapes and status codes, behind the stand-in's shared
front door: every request is kept in `calls`, and faults are injected with the same `Faults` the Azure stand-ins
use (see docs/localazure.md).

    standins = TrackerStandIns.start(ca)
    standins.github_url, .ado_url, .servicenow_url, .jira_url, .webhook_url
    standins.faults.add("github", status=403, times=2, retry_after=0.01)
    standins.received("github")  -> [Request(method, path, query, headers, body)]
    standins.tickets("jira")     -> [TicketView(...)]
    standins.keyvault, standins.keyvault_url   # Key Vault (localazure/keyvault.py): a GitHub App's key
    standins.app("github").register_app(public_key_pem)   # GitHub App JWTs and installation tokens
    standins.stop()
"""

from localazure.trackers.azuredevops import AzureDevOpsStandIn
from localazure.trackers.base import TRACKERS, TicketView, TrackerCredentials, TrackerService
from localazure.trackers.github import GitHubStandIn
from localazure.trackers.jira import JiraStandIn
from localazure.trackers.servicenow import ServiceNowStandIn
from localazure.trackers.slack import SlackStandIn
from localazure.trackers.standins import TrackerStandIns
from localazure.trackers.teams import TeamsStandIn
from localazure.trackers.webhook import WebhookStandIn

__all__ = [
    "TRACKERS",
    "AzureDevOpsStandIn",
    "GitHubStandIn",
    "JiraStandIn",
    "ServiceNowStandIn",
    "SlackStandIn",
    "TeamsStandIn",
    "TicketView",
    "TrackerCredentials",
    "TrackerService",
    "TrackerStandIns",
    "WebhookStandIn",
]
