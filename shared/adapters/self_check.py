"""The self-check's Azure calls (`core.doctor.SelfCheckProbe`), all read-only, on the clients the service itself
uses (same credential, endpoints, CA bundle and retries): a token per scope, the identity's own role assignments
(`assignedTo`), the Cognitive Services accounts of a subscription, an account's diagnostic settings (ARM
`Microsoft.Insights/diagnosticSettings`) and a workspace's RequestResponse rows per account (kql.py)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.adapters import kql
from shared.adapters.app_identity import arm_get_json
from shared.adapters.azure import AzureClients
from shared.adapters.logs import NoDataYet
from shared.core import roles
from shared.core.doctor import DiagnosticSetting, HeldRole, Traffic, TrafficRow

DIAGNOSTIC_SETTINGS_API = "2021-05-01-preview"


class AzureSelfCheck:
    def __init__(self, clients: AzureClients):
        self._clients = clients
        self._get_json = arm_get_json(clients.accounts.client)

    def token(self, scope: str) -> str:
        return str(self._clients.config.credential.get_token(scope).token)

    def held_roles(self, principal_id: str, subscription_id: str) -> list[HeldRole]:
        """Every assignment that applies to the principal (its groups' too) at, above or below the subscription."""
        found = self._clients.roles.client.role_assignments.list_for_scope(
            f"/subscriptions/{subscription_id}", filter=f"assignedTo('{principal_id}')")
        return [HeldRole(role_guid=roles.guid_of(a.role_definition_id or ""), scope=a.scope or "",
                         principal_id=(a.principal_id or "").lower(), condition=a.condition,
                         condition_version=a.condition_version) for a in found]

    def accounts(self, subscription_id: str) -> list[str]:
        return [str(a.id) for a in self._clients.accounts.list_in(subscription_id) if a.id]

    def diagnostic_settings(self, account_id: str) -> list[DiagnosticSetting]:
        body = self._get_json(f"{account_id}/providers/Microsoft.Insights/diagnosticSettings",
                              DIAGNOSTIC_SETTINGS_API) or {}
        return [_setting(item) for item in body.get("value") or []]

    def traffic(self, workspace_id: str, since: datetime, until: datetime) -> Traffic:
        query = self._clients.workspace_query(workspace_id)
        try:
            rows, _partial = query.run(kql.request_traffic_query(since=since, until=until), since, until)
        except NoDataYet as exc:
            return Traffic(no_data=str(exc))
        return Traffic(tuple(TrafficRow(str(r.get("ResourceId") or ""), str(r.get("Status") or ""),
                                        int(r.get("Rows") or 0), _time(r.get("LastSeen"))) for r in rows))


def _setting(item: dict[str, Any]) -> DiagnosticSetting:
    props = item.get("properties") or {}
    logs = tuple((str(entry.get("category") or entry.get("categoryGroup") or ""), bool(entry.get("enabled")))
                 for entry in props.get("logs") or [])
    return DiagnosticSetting(str(item.get("name") or ""), str(props.get("workspaceId") or ""), logs)


def _time(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
