"""One typed settings object, read from environment variables (= Function App application settings).

Every setting is declared once in `SPECS`; the sample file, the docs table and the validation all come from
it. `load_settings()` reports every bad key at once in a single `SettingsError`, except the settings only the
Functions host reads (the timer's schedule): their problems are kept in `Settings.host_problems`, so a bad schedule
never stops the HTTP functions.
"""

from __future__ import annotations

import difflib
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from shared.core.allowlist import Allowlist, AllowlistError, parse_allowlist
from shared.core.review_schedule import OFF, parse_review_schedule
from shared.core.schedule import schedule_problem

MODES = ("observe", "recommend", "enforce")
BACKENDS = ("sqlite", "table")
TICKET_SINKS = ("log", "webhook", "github", "azuredevops", "servicenow", "jira", "slack", "teams")
MANAGED_IDENTITY = "managedidentity"  # the AzureWebJobsStorage__credential value the Functions host knows
# Set by the platform on every Azure Functions / App Service instance: the service is running in Azure.
AZURE_INSTANCE_KEY = "WEBSITE_INSTANCE_ID"
AZURE_HOSTNAME_KEY = "WEBSITE_HOSTNAME"  # the app's default host name, set by the platform
# TRIAGE_* keys read outside the service's settings (the demo's tracker choice): known, so never "unknown".
OTHER_TRIAGE_KEYS = frozenset({"TRIAGE_DEMO_TICKETS"})


class SettingsError(ValueError):
    """All invalid settings, each with the key and the expected form."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = problems
        lines = [f"  {key}: {why}" for key, why in problems]
        super().__init__("invalid settings:\n" + "\n".join(lines))

    def one_line(self) -> str:
        """Every problem on one line (the command line's error message)."""
        return "invalid settings: " + "; ".join(f"{key}: {why}" for key, why in self.problems)


# ---- parsers: each returns the value or raises ValueError with the expected form ----


def _str(raw: str) -> str:
    return raw.strip()


def _int_range(lo: int, hi: int) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        try:
            value = int(raw.strip())
        except ValueError:
            raise ValueError(f"expected a whole number from {lo} to {hi}") from None
        if not lo <= value <= hi:
            raise ValueError(f"expected a whole number from {lo} to {hi}")
        return value

    return parse


def _float_range(lo: float, hi: float) -> Callable[[str], float]:
    def parse(raw: str) -> float:
        try:
            value = float(raw.strip())
        except ValueError:
            raise ValueError(f"expected a number from {lo} to {hi}") from None
        if not lo <= value <= hi:
            raise ValueError(f"expected a number from {lo} to {hi}")
        return value

    return parse


def _bool(raw: str) -> bool:
    folded = raw.strip().lower()
    if folded in ("true", "1", "yes"):
        return True
    if folded in ("false", "0", "no", ""):
        return False
    raise ValueError("expected true or false")


def _choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value not in options:
            raise ValueError("expected one of: " + ", ".join(options))
        return value

    return parse


def _csv_choices(options: tuple[str, ...]) -> Callable[[str], tuple[str, ...]]:
    def parse(raw: str) -> tuple[str, ...]:
        items = tuple(dict.fromkeys(p.strip().lower() for p in raw.split(",") if p.strip()))
        bad = [i for i in items if i not in options]
        if bad:
            raise ValueError(f"unknown {bad}; expected a comma-separated subset of: " + ", ".join(options))
        return items

    return parse


def _csv(raw: str) -> tuple[str, ...]:
    return tuple(p.strip() for p in raw.split(",") if p.strip())


def _https_url(raw: str) -> str:
    value = raw.strip().rstrip("/")
    if not re.match(r"^https://[^\s/]+", value):
        raise ValueError("expected an https:// URL")
    return value


def _optional_https_url(raw: str) -> str:
    return _https_url(raw) if raw.strip() else ""


_WORKSPACE_RESOURCE_ID = re.compile(
    r"/subscriptions/[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}/resourceGroups/[-\w.()]{1,90}"
    r"/providers/Microsoft\.OperationalInsights/workspaces/[A-Za-z0-9][A-Za-z0-9-]{2,61}[A-Za-z0-9]", re.IGNORECASE)


_SIGN_IN_NAME = re.compile(r"^[^\s@,]+@[^\s@,]+\.[^\s@,]+$")


def _chat_approvers(raw: str) -> tuple[str, ...]:
    """Object ids (folded to lower case) and sign-in names (user principal names, folded) of the people the chat
    links let act."""
    values = _csv(raw)
    bad = [v for v in values if not (_GUID.match(v) or _SIGN_IN_NAME.match(v))]
    if bad:
        raise ValueError(f"{', '.join(repr(b[:80]) for b in bad)}: expected comma-separated Entra object ids or "
                         "sign-in names (user@contoso.com)")
    return tuple(dict.fromkeys(v.casefold() for v in values))


def _workspace_resource_id(raw: str) -> str:
    """A Log Analytics workspace's ARM resource id, or "" (unset)."""
    value = raw.strip().rstrip("/")
    if value and not _WORKSPACE_RESOURCE_ID.fullmatch(value):
        raise ValueError("expected a workspace resource id: /subscriptions/<subscription id>/resourceGroups/<group>"
                         "/providers/Microsoft.OperationalInsights/workspaces/<name>, or empty")
    return value


def _guid_or_empty(raw: str) -> str:
    value = raw.strip()
    if value and not _GUID.match(value):
        raise ValueError("expected a GUID or empty")
    return value.lower()


_GUID = re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$")


def _csv_guids(raw: str) -> tuple[str, ...]:
    """Comma-separated GUIDs (workspace ids), kept as written: they name the sources' watermarks."""
    values = _csv(raw)
    bad = [v for v in values if not _GUID.match(v)]
    if bad:
        raise ValueError(f"{', '.join(repr(b) for b in bad)} is not a GUID; expected comma-separated workspace ids "
                         "(the workspace's Workspace ID, a GUID, not its name or resource id)")
    return values


def _storage_account_name(raw: str) -> str:
    value = raw.strip()
    if value and not re.fullmatch(r"[a-z0-9]{3,24}", value):
        raise ValueError("expected a storage account name (3 to 24 lower-case letters and digits) or empty")
    return value


def _storage_credential(raw: str) -> str:
    value = raw.strip().lower()
    if value not in ("", MANAGED_IDENTITY):
        raise ValueError(f"expected {MANAGED_IDENTITY} or empty")
    return value


def _allowlist(raw: str) -> Allowlist:
    try:
        return parse_allowlist(raw)
    except AllowlistError as exc:
        raise ValueError(f"{exc}; expected a JSON list like [{{\"object_id\": \"<guid>\"}}]") from None


def _json_object(raw: str) -> dict[str, Any]:
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError:
        raise ValueError("expected a JSON object") from None
    if not isinstance(value, dict):
        raise ValueError("expected a JSON object")
    return value


def _schedule(raw: str) -> str:
    """Judged on the raw value, as the Functions host will read it (a tab or a blank is its problem too)."""
    problem = schedule_problem(raw)
    if problem:
        raise ValueError(problem)
    return raw.strip()


def _review_schedule(raw: str) -> str:
    """`off`, or the weekly (or daily) slot written the one way (`mon 06:00`)."""
    slot = parse_review_schedule(raw)
    return OFF if slot is None else str(slot)


def _slack_bot_token(raw: str) -> str:
    """Empty, or a bot token: user (xoxp-) and app-level (xapp-) tokens are refused (the value is not echoed)."""
    value = raw.strip()
    if value and not value.startswith("xoxb-"):
        raise ValueError("expected a Slack bot token (xoxb-...), not a user or app-level token")
    return value


def _slack_channel(raw: str) -> str:
    """Empty, or a conversation id (names change; the Web API wants the id)."""
    value = raw.strip()
    if value and not re.fullmatch(r"[CGD][A-Z0-9]{6,}", value):
        raise ValueError("expected a Slack channel id such as C0123456789 (not a #name)")
    return value


# ---- tracker auth and routing (GitHub App, Azure DevOps Entra) ----

_GITHUB_APP_ID = re.compile(r"^(\d{1,12}|Iv[0-9A-Za-z.]{4,40})$")
_GITHUB_LOGIN = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9]|-(?=[A-Za-z0-9])){0,38}$")
_KEY_VAULT_OBJECT = re.compile(r"^[0-9A-Za-z-]{1,127}(/[0-9a-fA-F]{32})?$")
ADO_AUTH = ("pat", "entra")
GITHUB_APP_KEY_KINDS = ("key", "secret")


def _github_app_id(raw: str) -> str:
    value = raw.strip()
    if value and not _GITHUB_APP_ID.match(value):
        raise ValueError("expected the GitHub App's Client ID (Iv...) or its numeric App ID, from the app's settings "
                         "page, or empty")
    return value


def _digits_or_empty(raw: str) -> str:
    value = raw.strip()
    if value and not value.isdigit():
        raise ValueError("expected a number (the installation id at the end of the installation's settings URL, "
                         ".../settings/installations/<id>) or empty")
    return value


def _key_vault_object(raw: str) -> str:
    value = raw.strip()
    if value and not _KEY_VAULT_OBJECT.match(value):
        raise ValueError("expected a Key Vault key or secret name (letters, digits, hyphens), optionally "
                         "/<32-hex version>, or empty")
    return value


def _github_logins(raw: str) -> tuple[str, ...]:
    values = _csv(raw)
    bad = [v for v in values if not _GITHUB_LOGIN.match(v)]
    if bad:
        raise ValueError(f"{', '.join(repr(b) for b in bad)} is not a GitHub login; expected comma-separated logins "
                         "(no @, no teams)")
    return tuple(dict.fromkeys(values))


def _github_labels(raw: str) -> tuple[str, ...]:
    values = _csv(raw)
    if any(len(v) > 50 for v in values):
        raise ValueError("expected comma-separated labels of at most 50 characters each")
    return tuple(dict.fromkeys(values))
# ---- tracker auth and routing (issue 17 item 4: ServiceNow, Jira, owner routing) ----

ROUTED_SINKS = ("servicenow", "jira", "github", "azuredevops")
# What an owner's route may set, per sink: field -> "str" (one value) or "list" (a JSON list of strings).
ROUTE_FIELDS: dict[str, dict[str, str]] = {
    "servicenow": {"assignment_group": "str", "category": "str"},
    "jira": {"components": "list", "labels": "list", "issue_type": "str"},
    "github": {"assignees": "list", "labels": "list"},
    "azuredevops": {"area_path": "str", "iteration_path": "str"},
}


def _optional_choice(options: tuple[str, ...]) -> Callable[[str], str]:
    def parse(raw: str) -> str:
        value = raw.strip().lower()
        if value and value not in options:
            raise ValueError("expected one of: " + ", ".join(options) + " (or empty)")
        return value

    return parse


def _jira_labels(raw: str) -> tuple[str, ...]:
    labels = _csv(raw)
    bad = [label for label in labels if any(c.isspace() for c in label)]
    if bad:
        raise ValueError(f"Jira labels cannot contain spaces: {', '.join(repr(b) for b in bad)}")
    return labels


def _route_value(owner: str, sink: str, name: str, kind: str, value: Any) -> Any:
    where = f"route {owner!r} -> {sink}.{name}"
    if kind == "str":
        if not isinstance(value, str) or not value.strip():
            raise ValueError(f"{where}: expected a non-empty string")
        return value.strip()
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list) or not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{where}: expected a list of non-empty strings")
    items = [v.strip() for v in value]
    if sink == "jira" and name == "labels" and any(any(c.isspace() for c in v) for v in items):
        raise ValueError(f"{where}: Jira labels cannot contain spaces")
    return tuple(dict.fromkeys(items))


def _ticket_routes(raw: str) -> dict[str, dict[str, dict[str, Any]]]:
    """{"<owner tag value>": {"<sink>": {"<field>": value}}}, each field checked against ROUTE_FIELDS."""
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc.msg} at character {exc.pos}); expected an object like "
                         '{"payments": {"servicenow": {"assignment_group": "Payments Ops"}}}') from None
    if not isinstance(value, dict):
        raise ValueError('expected a JSON object of owner tag value -> per-sink routing, e.g. '
                         '{"payments": {"jira": {"components": ["payments"]}}}')
    routes: dict[str, dict[str, dict[str, Any]]] = {}
    for owner, sinks in value.items():
        if not owner.strip():
            raise ValueError("an owner tag value (a key) is empty")
        if not isinstance(sinks, dict):
            raise ValueError(f"route {owner!r}: expected an object of sink name -> fields")
        routes[owner.strip()] = {}
        for sink, fields in sinks.items():
            if sink not in ROUTE_FIELDS:
                raise ValueError(f"route {owner!r}: unknown sink {sink!r}; expected one of: "
                                 + ", ".join(ROUTED_SINKS))
            if not isinstance(fields, dict):
                raise ValueError(f"route {owner!r} -> {sink}: expected an object of fields")
            allowed = ROUTE_FIELDS[sink]
            unknown = sorted(set(fields) - set(allowed))
            if unknown:
                raise ValueError(f"route {owner!r} -> {sink}: unknown field(s) {', '.join(unknown)}; expected: "
                                 + ", ".join(allowed))
            routes[owner.strip()][sink] = {name: _route_value(owner, sink, name, allowed[name], v)
                                           for name, v in fields.items()}
    return routes


@dataclass(frozen=True)
class Spec:
    env: str
    attr: str
    parse: Callable[[str], Any]
    default: str | None  # None = required
    sample: str
    doc: str
    secret: bool = False
    # Read by the Functions host itself (a binding expression): a bad value is the host's problem, not our code's,
    # so it is reported (Settings.host_problems) without stopping the service, and a blank is not the default.
    host_read: bool = False
    # The Functions host reads this key in any letter case (its configuration is case-insensitive), so we do too.
    any_case: bool = False


SPECS: tuple[Spec, ...] = (
    # --- behaviour ---
    Spec("TRIAGE_MODE", "mode", _choice(MODES), "recommend", "recommend",
         "observe: diagnose only; recommend: tickets carry the exact fix, no Azure writes; "
         "enforce: assign roles where every policy rule allows, ticket the rest."),
    Spec("TRIAGE_ALLOWLIST", "allowlist", _allowlist, "", "[]",
         "JSON list of identities the service may grant to: "
         "[{\"object_id\": \"<guid>\", \"name\": \"...\", \"roles\": [\"Cognitive Services OpenAI User\"], "
         "\"scopes\": [\"/subscriptions/.../accounts/x\"]}]. roles and scopes narrow the entry."),
    Spec("TRIAGE_ALLOW_USER_GRANTS", "allow_user_grants", _bool, "false", "false",
         "Allow auto-assignment to principals of type User."),
    Spec("TRIAGE_ALLOW_GROUP_GRANTS", "allow_group_grants", _bool, "false", "false",
         "Allow auto-assignment to principals of type Group."),
    Spec("TRIAGE_MAX_GRANTS_PER_RUN", "max_grants_per_run", _int_range(0, 100), "5", "5",
         "Blast-radius cap: grants per run."),
    Spec("TRIAGE_MAX_GRANTS_PER_DAY", "max_grants_per_day", _int_range(0, 1000), "20", "20",
         "Blast-radius cap: grants per rolling 24 h, over every run, event, approval and instance (a slot is "
         "reserved in the store before each role-assignment write)."),
    Spec("TRIAGE_MAX_GRANTS_PER_HOUR", "max_grants_per_hour", _int_range(0, 1000), "10", "10",
         "Blast-radius cap: grants per rolling hour, over every run, event, approval and instance; bounds a burst "
         "of events."),
    Spec("TRIAGE_INCIDENT_COOLDOWN_MINUTES", "incident_cooldown_minutes", _int_range(0, 10080), "60", "60",
         "Minimum time between two grants for the same incident."),
    Spec("TRIAGE_BREAKER_THRESHOLD", "breaker_threshold", _int_range(1, 100), "3", "3",
         "Grants in a row that fail verification before the circuit breaker opens."),
    Spec("TRIAGE_APPROVAL_TTL_HOURS", "approval_ttl_hours", _int_range(1, 720), "24", "24",
         "How long an approval handle stays valid."),
    Spec("TRIAGE_PROPAGATION_WINDOW_SECONDS", "propagation_window_seconds", _int_range(1, 86400), "600", "600",
         "RBAC propagation window: a role younger than this is still propagating (Azure: up to 10 min)."),
    Spec("TRIAGE_INGESTION_LAG_SECONDS", "ingestion_lag_seconds", _int_range(0, 86400), "300", "300",
         "Log ingestion lag added before verification reads the logs."),
    Spec("TRIAGE_VERIFY_MAX_HOURS", "verify_max_hours", _float_range(0.001, 168), "24", "24",
         "Give up verifying (closed-unverified) when no traffic is seen for this long."),
    Spec("TRIAGE_TRUSTED_EVENT_TOPICS", "trusted_event_topics", _csv, "", "",
         "Comma-separated Event Grid topic resource ids whose AOAI.Triage.Failure events (Event Grid schema, matched "
         "on the `topic` field Event Grid sets) count as a witness for enforce-mode grants. Events from any other "
         "topic, and CloudEvents, open tickets and recommendations only."),
    # --- sources ---
    Spec("TRIAGE_WORKSPACE_IDS", "workspace_ids", _csv_guids, "", "00000000-0000-0000-0000-000000000000",
         "Comma-separated Log Analytics workspace ids holding AzureDiagnostics (Cognitive Services)."),
    Spec("TRIAGE_APPINSIGHTS_WORKSPACE_IDS", "appinsights_workspace_ids", _csv_guids, "", "",
         "Comma-separated workspace ids of workspace-based Application Insights (AppDependencies)."),
    Spec("TRIAGE_APP_IDENTITIES", "app_identities", _json_object, "", "{}",
         "JSON object mapping Application Insights AppRoleName (or app resource id) to the caller's object id."),
    Spec("TRIAGE_APIM_WORKSPACE_IDS", "apim_workspace_ids", _csv_guids, "", "",
         "Comma-separated workspace ids receiving API Management gateway logs in resource-specific mode "
         "(ApiManagementGatewayLogs): backend 401/403s are failures of the gateway's managed identity."),
    Spec("TRIAGE_LOOKBACK_OVERLAP_MINUTES", "lookback_overlap_minutes", _int_range(0, 1440), "10", "10",
         "Each scan re-reads this much before the watermark to catch late-ingested rows."),
    Spec("TRIAGE_INITIAL_LOOKBACK_MINUTES", "initial_lookback_minutes", _int_range(1, 10080), "60", "60",
         "How far back the first scan of a source reads."),
    Spec("TRIAGE_SCAN_SCHEDULE", "scan_schedule", _schedule, "0 */5 * * * *", "0 */5 * * * *",
         "Schedule of the scan timer, which the Functions host reads itself through the binding "
         "%TRIAGE_SCAN_SCHEDULE%: it must be set in the app settings (the host has no default). A 6-field NCRONTAB "
         "expression {second} {minute} {hour} {day} {month} {day-of-week} in UTC, or on App Service and Premium "
         "plans a TimeSpan hh:mm:ss. A bad value is reported by /api/health and the scan, a missing one by "
         "/api/health; the HTTP functions keep working.", host_read=True),
    # --- Azure endpoints and identity ---
    Spec("TRIAGE_ARM_ENDPOINT", "arm_endpoint", _https_url, "https://management.azure.com",
         "https://management.azure.com", "Azure Resource Manager base URL (sovereign clouds differ)."),
    Spec("TRIAGE_ARM_SCOPE", "arm_scope", _str, "https://management.azure.com/.default",
         "https://management.azure.com/.default", "Token scope for ARM."),
    Spec("TRIAGE_LOGS_ENDPOINT", "logs_endpoint", _https_url, "https://api.loganalytics.io",
         "https://api.loganalytics.io", "Log Analytics query endpoint."),
    Spec("TRIAGE_LOGS_AUDIENCE", "logs_audience", _str, "https://api.loganalytics.io",
         "https://api.loganalytics.io", "Token audience for Log Analytics."),
    Spec("TRIAGE_SUBSCRIPTION_ID", "subscription_id", _guid_or_empty, "", "",
         "Subscription for role-definition look-ups; empty = taken from each resource id."),
    Spec("TRIAGE_MANAGED_IDENTITY_CLIENT_ID", "managed_identity_client_id", _guid_or_empty, "", "",
         "Client id of a user-assigned managed identity; empty = DefaultAzureCredential."),
    Spec("TRIAGE_CA_BUNDLE", "ca_bundle", _str, "", "",
         "Path of a CA bundle to trust (only for the local stand-in; leave empty in Azure)."),
    Spec("TRIAGE_LOCAL_TOKEN", "local_token", _str, "", "",
         "Static bearer token for the local stand-in (localazure) instead of an Entra credential. Never set in Azure.",
         secret=True),
    Spec("TRIAGE_EVIDENCE_CONCURRENCY", "evidence_concurrency", _int_range(1, 64), "8", "8",
         "Concurrent ARM evidence look-ups per scan."),
    Spec("TRIAGE_RESOURCE_GRAPH", "resource_graph", _bool, "false", "false",
         "Read a scan's role assignments and account settings through Azure Resource Graph (a few paged queries for "
         "every principal and account) instead of one ARM read each; accounts Resource Graph does not return, "
         "roles that groups hold, and any batch whose query fails are read from ARM. Single look-ups (events, "
         "approvals, grant checks) always read ARM: Resource Graph lags it."),
    Spec("TRIAGE_ARM_READS_PER_SECOND", "arm_reads_per_second", _float_range(0, 1000), "25", "25",
         "Client-side limit of ARM reads per subscription, refilled per second (ARM's own refill rate); 0 = no "
         "limit."),
    Spec("TRIAGE_ARM_READ_BURST", "arm_read_burst", _int_range(1, 10000), "250", "250",
         "ARM reads the client-side limiter lets through at once before the refill rate applies (ARM's bucket)."),
    Spec("TRIAGE_ARM_WRITES_PER_SECOND", "arm_writes_per_second", _float_range(0, 1000), "10", "10",
         "Client-side limit of ARM writes and deletes per subscription, refilled per second; 0 = no limit."),
    Spec("TRIAGE_ARM_WRITE_BURST", "arm_write_burst", _int_range(1, 10000), "200", "200",
         "ARM writes the client-side limiter lets through at once before the refill rate applies."),
    # --- state ---
    Spec("TRIAGE_STATE_BACKEND", "state_backend", _choice(BACKENDS), "sqlite", "table",
         "sqlite (embedded, single machine) or table (Azure Table Storage in AzureWebJobsStorage). In Azure "
         "(WEBSITE_INSTANCE_ID set) the default is table and sqlite is refused: an instance's disk is neither kept "
         "nor shared."),
    Spec("TRIAGE_SQLITE_PATH", "sqlite_path", _str, ".state/triage.sqlite3", ".state/triage.sqlite3",
         "SQLite file for the sqlite backend."),
    Spec("AzureWebJobsStorage", "storage_connection", _str, "", "UseDevelopmentStorage=true",
         "Storage connection string; the table backend keeps state there. Leave it empty for identity-based "
         "access (the AzureWebJobsStorage__* settings below); set one or the other.", secret=True),
    Spec("AzureWebJobsStorage__tableServiceUri", "storage_table_service_uri", _optional_https_url, "", "",
         "Identity-based storage: the Table service URL, e.g. https://<account>.table.core.windows.net (needed in "
         "sovereign clouds); the table backend then connects with a token instead of a key.", any_case=True),
    Spec("AzureWebJobsStorage__accountName", "storage_account_name", _storage_account_name, "", "",
         "Identity-based storage: the storage account name, for https://<name>.table.core.windows.net "
         "(AzureWebJobsStorage__tableServiceUri wins when both are set).", any_case=True),
    Spec("AzureWebJobsStorage__credential", "storage_credential", _storage_credential, "", "",
         "managedidentity: the table backend gets its token from the app's managed identity "
         "(ManagedIdentityCredential); empty: DefaultAzureCredential (a developer's az login, locally).",
         any_case=True),
    Spec("AzureWebJobsStorage__clientId", "storage_client_id", _guid_or_empty, "", "",
         "Client id of the user-assigned managed identity for storage (with AzureWebJobsStorage__credential="
         "managedidentity); empty = AZURE_CLIENT_ID, else the system-assigned identity.", any_case=True),
    Spec("AZURE_CLIENT_ID", "azure_client_id", _guid_or_empty, "", "",
         "Client id of a user-assigned managed identity, read by azure-identity too; the storage identity "
         "when AzureWebJobsStorage__clientId is empty."),
    Spec("TRIAGE_TABLE_PREFIX", "table_prefix", _str, "triage", "triage",
         "Prefix of the Azure Tables the table backend creates."),
    # --- tickets ---
    Spec("TRIAGE_TICKET_SINKS", "ticket_sinks", _csv_choices(TICKET_SINKS), "log", "log",
         "Comma-separated ticket sinks: " + ", ".join(TICKET_SINKS) + "."),
    Spec("TRIAGE_TICKET_COMMENT_INTERVAL_MINUTES", "ticket_comment_interval_minutes", _int_range(0, 10080),
         "60", "60", "At most one recurrence comment per ticket per this interval."),
    Spec("TRIAGE_WEBHOOK_URL", "webhook_url", _optional_https_url, "", "",
         "Webhook sink URL (JSON POST, HMAC-SHA256 signed)."),
    Spec("TRIAGE_WEBHOOK_SECRET", "webhook_secret", _str, "", "", "HMAC secret of the webhook sink.",
         secret=True),
    Spec("TRIAGE_GITHUB_API_URL", "github_api_url", _https_url, "https://api.github.com",
         "https://api.github.com", "GitHub REST base URL (GitHub Enterprise differs)."),
    Spec("TRIAGE_GITHUB_REPO", "github_repo", _str, "", "", "owner/name of the repository for issues."),
    Spec("TRIAGE_GITHUB_TOKEN", "github_token", _str, "", "", "GitHub token or App installation token.",
         secret=True),
    Spec("TRIAGE_ADO_ORG_URL", "ado_org_url", _optional_https_url, "", "",
         "Azure DevOps organization URL, e.g. https://dev.azure.com/contoso."),
    Spec("TRIAGE_ADO_PROJECT", "ado_project", _str, "", "", "Azure DevOps project."),
    Spec("TRIAGE_ADO_PAT", "ado_pat", _str, "", "", "Azure DevOps personal access token.", secret=True),
    Spec("TRIAGE_SERVICENOW_URL", "servicenow_url", _optional_https_url, "", "",
         "ServiceNow instance URL."),
    Spec("TRIAGE_SERVICENOW_USER", "servicenow_user", _str, "", "", "ServiceNow user."),
    Spec("TRIAGE_SERVICENOW_PASSWORD", "servicenow_password", _str, "", "", "ServiceNow password.",
         secret=True),
    Spec("TRIAGE_JIRA_URL", "jira_url", _optional_https_url, "", "", "Jira base URL."),
    Spec("TRIAGE_JIRA_PROJECT", "jira_project", _str, "", "", "Jira project key."),
    Spec("TRIAGE_JIRA_USER", "jira_user", _str, "", "", "Jira user (email); Jira Cloud only."),
    Spec("TRIAGE_JIRA_TOKEN", "jira_token", _str, "", "",
         "Jira Cloud API token, or the personal access token on Jira Data Center.", secret=True),
    Spec("TRIAGE_MAX_TICKETS_PER_RUN", "max_tickets_per_run", _int_range(1, 1000), "25", "25",
         "New tickets per run and per sink (updates and comments of existing tickets are not counted); the rest "
         "wait on their incidents and open on later runs, by severity then failure count, grouped per cause and "
         "account when more wait than this. 25 at the 5-minute timer is 300 an hour, under GitHub's 500 "
         "content-creating requests an hour (and 80 a minute), with room for comments."),
    # Slack (shared/tickets/slack.py): a bot token and a channel, or an incoming webhook.
    Spec("TRIAGE_SLACK_BOT_TOKEN", "slack_bot_token", _slack_bot_token, "", "",
         "Slack bot token (xoxb-) of an app with the chat:write scope, invited to TRIAGE_SLACK_CHANNEL: one message "
         "per incident, updated in place, with comments, escalation and resolution as thread replies. Wins over "
         "TRIAGE_SLACK_WEBHOOK_URL.", secret=True),
    Spec("TRIAGE_SLACK_CHANNEL", "slack_channel", _slack_channel, "", "",
         "Id of the Slack channel the bot posts to (C…, G… or D…; Channel details in Slack shows it)."),
    Spec("TRIAGE_SLACK_WEBHOOK_URL", "slack_webhook_url", _optional_https_url, "", "",
         "Slack incoming webhook URL, when there is no bot token: it posts each incident once and then follow-ups "
         "only for comments, escalation and resolution (a webhook cannot update or thread). The URL is the "
         "credential.", secret=True),
    Spec("TRIAGE_SLACK_API_URL", "slack_api_url", _https_url, "https://slack.com/api", "https://slack.com/api",
         "Slack Web API base URL (the local stand-in differs)."),
    Spec("TRIAGE_TEAMS_WEBHOOK_URL", "teams_webhook_url", _optional_https_url, "", "",
         "Teams sink: the URL of a Teams Workflows flow \"Post to a channel when a webhook request is received\" "
         "(docs/tickets.md, Teams). A secret: its `sig` query parameter is the signature that lets anyone post; "
         "keep it in Key Vault (an app setting reference).", secret=True),
    # tracker auth and routing (ServiceNow OAuth, Jira Data Center, owner routing)
    Spec("TRIAGE_SERVICENOW_AUTH", "servicenow_auth", _optional_choice(("basic", "oauth")), "", "",
         "How the ServiceNow sink signs in: basic (TRIAGE_SERVICENOW_USER / _PASSWORD) or oauth (the OAuth client "
         "credentials grant with TRIAGE_SERVICENOW_CLIENT_ID / _SECRET; the instance needs it enabled, see "
         "docs/tickets.md). Empty: basic when a user or password is set, else oauth when a client id is set."),
    Spec("TRIAGE_SERVICENOW_CLIENT_ID", "servicenow_client_id", _str, "", "",
         "Client id of the ServiceNow OAuth application (Application Registry) for TRIAGE_SERVICENOW_AUTH=oauth."),
    Spec("TRIAGE_SERVICENOW_CLIENT_SECRET", "servicenow_client_secret", _str, "", "",
         "Client secret of that OAuth application.", secret=True),
    Spec("TRIAGE_SERVICENOW_ASSIGNMENT_GROUP", "servicenow_assignment_group", _str, "", "",
         "Assignment group of new incidents: the group's sys_id (recommended) or its name; empty = none. An owner "
         "route (TRIAGE_TICKET_ROUTES) overrides it."),
    Spec("TRIAGE_SERVICENOW_CATEGORY", "servicenow_category", _str, "", "",
         "Category of new incidents (a choice value of incident.category, e.g. software); empty = the default."),
    Spec("TRIAGE_JIRA_DEPLOYMENT", "jira_deployment", _choice(("cloud", "datacenter")), "cloud", "cloud",
         "cloud: Jira Cloud (REST v3, ADF, TRIAGE_JIRA_USER + API token); datacenter: Jira Data Center / Server "
         "(REST v2, wiki markup, TRIAGE_JIRA_TOKEN is a personal access token sent as a Bearer token, no user)."),
    Spec("TRIAGE_JIRA_ISSUE_TYPE", "jira_issue_type", _str, "Task", "Task",
         "Issue type of new Jira issues (its name in the project)."),
    Spec("TRIAGE_JIRA_COMPONENTS", "jira_components", _csv, "", "",
         "Comma-separated component names set on new Jira issues (each must exist in the project); empty = none."),
    Spec("TRIAGE_JIRA_LABELS", "jira_labels", _jira_labels, "", "",
         "Comma-separated extra labels on new Jira issues (no spaces), besides the service's own."),
    Spec("TRIAGE_ROUTING_TAG", "routing_tag", _str, "", "",
         "Name of the account tag that names the owning team (e.g. owner); its value picks the route in "
         "TRIAGE_TICKET_ROUTES. Azure tag names are case-insensitive, so is this. Empty = no owner routing."),
    Spec("TRIAGE_TICKET_ROUTES", "ticket_routes", _ticket_routes, "", "{}",
         "JSON: owner tag value -> per-sink routing of new tickets, over the sink's own settings, e.g. "
         '{"payments": {"servicenow": {"assignment_group": "Payments Ops"}, "jira": {"components": '
         '["payments"]}, "github": {"assignees": ["alice"]}, "azuredevops": {"area_path": "Proj\\\\Payments"}}}. '
         "Fields: servicenow assignment_group, category; jira components, labels, issue_type; github assignees, "
         "labels; azuredevops area_path, iteration_path."),
    # --- outcome events ---
    Spec("TRIAGE_EVENTGRID_TOPIC_ENDPOINT", "eventgrid_topic_endpoint", _optional_https_url, "", "",
         "Event Grid topic for outcome CloudEvents; empty = do not publish."),
    Spec("TRIAGE_EVENTGRID_TOPIC_KEY", "eventgrid_topic_key", _str, "", "",
         "Topic access key; empty = use the managed identity.", secret=True),
    # --- telemetry ---
    Spec("APPLICATIONINSIGHTS_CONNECTION_STRING", "appinsights_connection_string", _str, "", "",
         "Application Insights connection string (the platform's setting): when set, the Function App exports "
         "OpenTelemetry spans, metrics and logs there, set up on an instance's first invocation; empty = no "
         "telemetry, and nothing of OpenTelemetry is loaded. Not a secret: ingestion authenticates as the identity "
         "(APPLICATIONINSIGHTS_AUTHENTICATION_STRING)."),
    # --- long scans ---
    Spec("TRIAGE_SCAN_WINDOW_MINUTES", "scan_window_minutes", _int_range(5, 10080), "1440", "1440",
         "A scan that is further behind than this (a first scan with a longer look-back, a catch-up after an "
         "outage) reads in windows of this length, oldest first: each window's incidents are persisted and its "
         "watermark moves before the next is read, so a run cut off keeps what it finished."),
    Spec("TRIAGE_SCAN_TIME_BUDGET_SECONDS", "scan_time_budget_seconds", _int_range(0, 3600), "480", "480",
         "A timer scan stops between chunks of work once it has run this long and leaves the rest to the next "
         "cycle, which continues where it stopped (keep it under host.json functionTimeout, 10 minutes on "
         "Consumption); 0 = no budget."),
    # --- scheduled reviews ---
    Spec("TRIAGE_REVIEW_SCHEDULE", "review_schedule", _review_schedule, "off", "off",
         "The access reviews (docs/reviews.md) on a schedule: off, `<day> HH:MM` (weekly, e.g. `mon 06:00`) or "
         "`daily HH:MM`, UTC. The `reviews` timer ticks hourly and, when a slot has passed that no run took, runs "
         "the readiness and access reviews of every account and opens, updates or closes their tickets through "
         "TRIAGE_TICKET_SINKS, as `review ... --ticket` does. Reads only, on Azure."),
    # --- links ---
    Spec("TRIAGE_PUBLIC_BASE_URL", "public_base_url", _optional_https_url, "", "",
         "The https:// address people reach the Function App at, for the full approve URL in tickets and chat "
         "messages. Unset: on Azure the platform's default host name (`https://` + WEBSITE_HOSTNAME); set it when "
         "people come through a custom domain or a front door (Front Door, Application Gateway, API Management). "
         "Unset and not on Azure: tickets show the relative path."),
    Spec("TRIAGE_LOG_ANALYTICS_WORKSPACE_RESOURCE_ID", "log_analytics_workspace_resource_id", _workspace_resource_id,
         "", "",
         "The ARM resource id of the Log Analytics workspace the accounts' diagnostic settings send to "
         "(`/subscriptions/<id>/resourceGroups/<group>/providers/Microsoft.OperationalInsights/workspaces/<name>`), "
         "for the \"Open in Log Analytics\" link of tickets and chat messages: the portal opens that workspace with "
         "the KQL of the incident's failing requests. Unset: no link. Links only: nothing is read with it."),
    Spec("TRIAGE_CHAT_APPROVERS", "chat_approvers", _chat_approvers, "", "",
         "Who may act through the chat links (/api/act/...: approve, suppress 24 h): comma-separated Entra object "
         "ids or sign-in names of people App Service authentication signs in. Unset: chat messages carry no action "
         "links and the link routes refuse everyone (the function-key routes and the az commands still work). App "
         "Service authentication alone admits anyone of the tenant; this list is who may act."),
    # --- people's decisions on tickets ---
    Spec("TRIAGE_DECLINED_CLOSE_CODES", "declined_close_codes", _csv,
         "Duplicate,No resolution provided,Not Solved (Not Reproducible),Not Solved (Too Costly)",
         "Duplicate,No resolution provided,Not Solved (Not Reproducible),Not Solved (Too Costly)",
         "ServiceNow close codes that mean a person declined the incident (won't fix): a recurrence leaves such an "
         "incident closed and adds a work note at most once per TRIAGE_TICKET_COMMENT_INTERVAL_MINUTES. Canceled "
         "incidents count as declined whatever the code."),
    Spec("TRIAGE_DECLINED_RESOLUTIONS", "declined_resolutions", _csv, "Won't Do,Won't Fix,Declined,Duplicate",
         "Won't Do,Won't Fix,Declined,Duplicate",
         "Jira resolutions that mean a person declined the issue: a recurrence leaves it done and comments."),
    Spec("TRIAGE_DECLINED_REASONS", "declined_reasons", _csv,
         "Cut,Deferred,Duplicate,Obsolete,Abandoned,As Designed,Removed from the backlog",
         "Cut,Deferred,Duplicate,Obsolete,Abandoned,As Designed,Removed from the backlog",
         "Azure DevOps reasons (System.Reason) that mean a person declined the work item; the Removed state always "
         "does. GitHub needs no setting: an issue closed as not planned (or as a duplicate) is declined."),
    # --- the command line ---
    Spec("TRIAGE_ACTOR", "actor", _str, "", "",
         "Who runs `python -m shared approve|revoke|unrevoke|suppress|breaker-reset` when --by is not given: "
         "recorded in the audit log. Without it (and without --by) the signed-in Azure CLI user is used."),
    # --- tracker auth and routing: GitHub App, Azure DevOps Entra (docs/tickets.md) ---
    Spec("TRIAGE_GITHUB_APP_ID", "github_app_id", _github_app_id, "", "",
         "GitHub App auth instead of TRIAGE_GITHUB_TOKEN: the app's Client ID (Iv...) or App ID, the JWT's issuer. "
         "With it set TRIAGE_GITHUB_APP_INSTALLATION_ID, TRIAGE_GITHUB_APP_KEY_VAULT_URL and "
         "TRIAGE_GITHUB_APP_KEY_NAME; installation tokens are minted hourly and cached."),
    Spec("TRIAGE_GITHUB_APP_INSTALLATION_ID", "github_app_installation_id", _digits_or_empty, "", "",
         "The GitHub App installation on the repository's owner (the number in its settings URL)."),
    Spec("TRIAGE_GITHUB_APP_KEY_VAULT_URL", "github_app_key_vault_url", _optional_https_url, "", "",
         "Key Vault holding the GitHub App's private key, e.g. https://<vault>.vault.azure.net; reached with the "
         "service's identity (Key Vault Crypto User for a key, Key Vault Secrets User for a secret)."),
    Spec("TRIAGE_GITHUB_APP_KEY_NAME", "github_app_key_name", _key_vault_object, "", "",
         "Name of the Key Vault key (or secret, see TRIAGE_GITHUB_APP_KEY_KIND) holding the app's private key, "
         "optionally name/version; without a version the latest is used."),
    Spec("TRIAGE_GITHUB_APP_KEY_KIND", "github_app_key_kind", _choice(GITHUB_APP_KEY_KINDS), "key", "key",
         "key: the RSA key is a Key Vault key and Key Vault signs the JWT (the key never leaves the vault); "
         "secret: a Key Vault secret holds the PEM, read once and signed with in memory."),
    Spec("TRIAGE_GITHUB_ASSIGNEES", "github_assignees", _github_logins, "", "",
         "Comma-separated GitHub logins assigned to each new issue (on create only). Logins GitHub cannot assign "
         "(not collaborators) make it create the issue unassigned, with a warning."),
    Spec("TRIAGE_GITHUB_LABELS", "github_labels", _github_labels, "", "",
         "Comma-separated extra labels for each new issue (on create only), beside the service's own."),
    Spec("TRIAGE_ADO_AUTH", "ado_auth", _choice(ADO_AUTH), "pat", "pat",
         "pat: TRIAGE_ADO_PAT; entra: the service's own Entra identity (its managed identity, added to the Azure "
         "DevOps organization), no PAT."),
    Spec("TRIAGE_ADO_WORK_ITEM_TYPE", "ado_work_item_type", _str, "Issue", "Issue",
         "Work item type created (Issue in the Agile process; Task also has Active and Closed states)."),
    Spec("TRIAGE_ADO_AREA_PATH", "ado_area_path", _str, "", "",
         "Area path of each new work item, e.g. Project\\Team (on create only); empty = the project's root."),
    Spec("TRIAGE_ADO_ITERATION_PATH", "ado_iteration_path", _str, "", "",
         "Iteration path of each new work item (on create only); empty = the project's root."),
)


@dataclass(frozen=True)
class Settings:
    mode: str = "recommend"
    allowlist: Allowlist = field(default_factory=Allowlist)
    allow_user_grants: bool = False
    allow_group_grants: bool = False
    max_grants_per_run: int = 5
    max_grants_per_day: int = 20
    max_grants_per_hour: int = 10
    trusted_event_topics: tuple[str, ...] = ()
    incident_cooldown_minutes: int = 60
    breaker_threshold: int = 3
    approval_ttl_hours: int = 24
    propagation_window_seconds: int = 600
    ingestion_lag_seconds: int = 300
    verify_max_hours: float = 24
    workspace_ids: tuple[str, ...] = ()
    appinsights_workspace_ids: tuple[str, ...] = ()
    app_identities: dict[str, Any] = field(default_factory=dict)
    apim_workspace_ids: tuple[str, ...] = ()
    lookback_overlap_minutes: int = 10
    initial_lookback_minutes: int = 60
    scan_schedule: str = "0 */5 * * * *"
    arm_endpoint: str = "https://management.azure.com"
    arm_scope: str = "https://management.azure.com/.default"
    logs_endpoint: str = "https://api.loganalytics.io"
    logs_audience: str = "https://api.loganalytics.io"
    subscription_id: str = ""
    managed_identity_client_id: str = ""
    ca_bundle: str = ""
    local_token: str = ""
    evidence_concurrency: int = 8
    resource_graph: bool = False
    arm_reads_per_second: float = 25.0
    arm_read_burst: int = 250
    arm_writes_per_second: float = 10.0
    arm_write_burst: int = 200
    state_backend: str = "sqlite"
    sqlite_path: str = ".state/triage.sqlite3"
    storage_connection: str = ""
    storage_table_service_uri: str = ""
    storage_account_name: str = ""
    storage_credential: str = ""
    storage_client_id: str = ""
    azure_client_id: str = ""
    table_prefix: str = "triage"
    ticket_sinks: tuple[str, ...] = ("log",)
    ticket_comment_interval_minutes: int = 60
    webhook_url: str = ""
    webhook_secret: str = ""
    github_api_url: str = "https://api.github.com"
    github_repo: str = ""
    github_token: str = ""
    ado_org_url: str = ""
    ado_project: str = ""
    ado_pat: str = ""
    servicenow_url: str = ""
    servicenow_user: str = ""
    servicenow_password: str = ""
    jira_url: str = ""
    jira_project: str = ""
    jira_user: str = ""
    jira_token: str = ""
    max_tickets_per_run: int = 25
    eventgrid_topic_endpoint: str = ""
    eventgrid_topic_key: str = ""
    appinsights_connection_string: str = ""
    # (key, expected) of settings only the Functions host reads (Spec.host_read) whose value it would refuse.
    host_problems: tuple[tuple[str, str], ...] = ()
    # WEBSITE_INSTANCE_ID was set: the service runs on an Azure Functions instance.
    running_in_azure: bool = False
    # (key, closest known key or "") of each TRIAGE_* key no setting reads: most likely a misspelling.
    unknown_settings: tuple[tuple[str, str], ...] = ()
    scan_window_minutes: int = 1440
    scan_time_budget_seconds: int = 480
    review_schedule: str = "off"
    public_base_url: str = ""  # TRIAGE_PUBLIC_BASE_URL, else https://WEBSITE_HOSTNAME on Azure, else ""
    declined_close_codes: tuple[str, ...] = (
        "Duplicate", "No resolution provided", "Not Solved (Not Reproducible)", "Not Solved (Too Costly)")
    declined_resolutions: tuple[str, ...] = ("Won't Do", "Won't Fix", "Declined", "Duplicate")
    declined_reasons: tuple[str, ...] = (
        "Cut", "Deferred", "Duplicate", "Obsolete", "Abandoned", "As Designed", "Removed from the backlog")
    actor: str = ""
    log_analytics_workspace_resource_id: str = ""  # TRIAGE_LOG_ANALYTICS_WORKSPACE_RESOURCE_ID (links only)
    chat_approvers: tuple[str, ...] = ()  # TRIAGE_CHAT_APPROVERS: who the chat links let act
    slack_bot_token: str = ""
    slack_channel: str = ""
    slack_webhook_url: str = ""
    slack_api_url: str = "https://slack.com/api"
    github_app_id: str = ""
    github_app_installation_id: str = ""
    github_app_key_vault_url: str = ""
    github_app_key_name: str = ""
    github_app_key_kind: str = "key"
    github_assignees: tuple[str, ...] = ()
    github_labels: tuple[str, ...] = ()
    ado_auth: str = "pat"
    ado_work_item_type: str = "Issue"
    ado_area_path: str = ""
    ado_iteration_path: str = ""
    teams_webhook_url: str = ""
    # tracker auth and routing (ServiceNow OAuth, Jira Data Center, owner routing)
    servicenow_auth: str = "basic"  # resolved by load_settings: basic | oauth
    servicenow_client_id: str = ""
    servicenow_client_secret: str = ""
    servicenow_assignment_group: str = ""
    servicenow_category: str = ""
    jira_deployment: str = "cloud"
    jira_issue_type: str = "Task"
    jira_components: tuple[str, ...] = ()
    jira_labels: tuple[str, ...] = ()
    routing_tag: str = ""
    ticket_routes: dict[str, Any] = field(default_factory=dict)

    @property
    def table_endpoint(self) -> str:
        """The Table service URL for identity-based state, or "" when none is configured."""
        if self.storage_table_service_uri:
            return self.storage_table_service_uri
        if self.storage_account_name:
            return f"https://{self.storage_account_name}.table.core.windows.net"
        return ""

    @property
    def storage_identity_client_id(self) -> str:
        """The user-assigned identity the table backend asks tokens for ("" = the system-assigned one)."""
        return self.storage_client_id or self.azure_client_id

    def redacted(self) -> dict[str, Any]:
        """Settings safe to show (health endpoint, logs): secrets replaced by whether they are set."""
        out: dict[str, Any] = {}
        for spec in SPECS:
            value = getattr(self, spec.attr)
            if spec.secret:
                out[spec.env] = "<set>" if value else "<empty>"
            elif isinstance(value, Allowlist):
                out[spec.env] = f"{len(value.entries)} entries"
            else:
                out[spec.env] = value
        return out


_SINK_REQUIREMENTS = {
    "webhook": ("TRIAGE_WEBHOOK_URL", "TRIAGE_WEBHOOK_SECRET"),
    "github": ("TRIAGE_GITHUB_REPO",),  # and a token or the GitHub App settings: _tracker_auth_problems
    "azuredevops": ("TRIAGE_ADO_ORG_URL", "TRIAGE_ADO_PROJECT"),  # and TRIAGE_ADO_PAT unless entra: likewise
    "servicenow": ("TRIAGE_SERVICENOW_URL",),  # + the credentials of its auth kind (_servicenow_jira_auth_problems)
    "jira": ("TRIAGE_JIRA_URL", "TRIAGE_JIRA_PROJECT", "TRIAGE_JIRA_TOKEN"),  # + the user on Jira Cloud
    "teams": ("TRIAGE_TEAMS_WEBHOOK_URL",),
}


def _slack_problems(values: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The Slack sink needs a bot token and a channel, or an incoming webhook URL."""
    if "slack" not in values.get("ticket_sinks", ()):
        return []
    if values.get("slack_bot_token"):
        if values.get("slack_channel"):
            return []
        return [("TRIAGE_SLACK_CHANNEL",
                 "required with TRIAGE_SLACK_BOT_TOKEN when TRIAGE_TICKET_SINKS includes slack")]
    if values.get("slack_webhook_url"):
        return []
    return [("TRIAGE_SLACK_BOT_TOKEN", "required when TRIAGE_TICKET_SINKS includes slack: a bot token with "
             "TRIAGE_SLACK_CHANNEL, or TRIAGE_SLACK_WEBHOOK_URL for an incoming webhook")]


def _servicenow_jira_auth_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Resolve TRIAGE_SERVICENOW_AUTH (empty: basic when a user or password is set, else oauth when a client id
    is) and require the credentials of each configured tracker's auth kind; check that routes have a tag."""
    problems: list[tuple[str, str]] = []
    sinks = values.get("ticket_sinks", ())
    auth = values.get("servicenow_auth") or ""
    if not auth:
        basic_set = values.get("servicenow_user") or values.get("servicenow_password")
        auth = "oauth" if values.get("servicenow_client_id") and not basic_set else "basic"
    values["servicenow_auth"] = auth
    if "servicenow" in sinks:
        needed = (("TRIAGE_SERVICENOW_CLIENT_ID", "servicenow_client_id"),
                  ("TRIAGE_SERVICENOW_CLIENT_SECRET", "servicenow_client_secret")) if auth == "oauth" else (
                  ("TRIAGE_SERVICENOW_USER", "servicenow_user"), ("TRIAGE_SERVICENOW_PASSWORD", "servicenow_password"))
        problems += [(key, f"required when TRIAGE_TICKET_SINKS includes servicenow with "
                           f"TRIAGE_SERVICENOW_AUTH={auth}") for key, attr in needed if not values.get(attr)]
    if "jira" in sinks and values.get("jira_deployment") == "cloud" and not values.get("jira_user"):
        problems.append(("TRIAGE_JIRA_USER", "required when TRIAGE_TICKET_SINKS includes jira with "
                         "TRIAGE_JIRA_DEPLOYMENT=cloud (the Atlassian account e-mail of the API token)"))
    if values.get("ticket_routes") and not values.get("routing_tag"):
        problems.append(("TRIAGE_TICKET_ROUTES", "set TRIAGE_ROUTING_TAG too: the tag whose value picks a route"))
    return problems


def _lookup(source: Mapping[str, str], spec: Spec, folded: Mapping[str, str]) -> str | None:
    raw = source.get(spec.env)
    if raw is None and spec.any_case:
        raw = folded.get(spec.env.lower())
    return raw


def load_settings(env: Mapping[str, str] | None = None) -> Settings:
    """Read and validate every setting. Raises one SettingsError naming every bad key."""
    source = os.environ if env is None else env
    folded = {key.lower(): value for key, value in source.items()}
    values: dict[str, Any] = {}
    problems: list[tuple[str, str]] = []
    host_problems: list[tuple[str, str]] = []
    for spec in SPECS:
        raw = _lookup(source, spec, folded)
        if raw is None or (raw.strip() == "" and spec.default is not None and not spec.host_read):
            raw = spec.default
        if raw is None:
            problems.append((spec.env, "required"))
            continue
        try:
            values[spec.attr] = spec.parse(raw)
        except ValueError as exc:
            if spec.host_read:
                host_problems.append((spec.env, str(exc)))
                values[spec.attr] = raw.strip()
            else:
                problems.append((spec.env, str(exc)))
    by_attr = {s.attr: s.env for s in SPECS}
    env_to_attr = {v: k for k, v in by_attr.items()}
    for sink in values.get("ticket_sinks", ()):
        for key in _SINK_REQUIREMENTS.get(sink, ()):
            if not values.get(env_to_attr[key]):
                problems.append((key, f"required when TRIAGE_TICKET_SINKS includes {sink}"))
    problems += _slack_problems(values)
    problems += _tracker_auth_problems(values)
    problems += _servicenow_jira_auth_problems(values)
    in_azure = bool((source.get(AZURE_INSTANCE_KEY) or "").strip())
    if in_azure:
        problems += _azure_backend(values, (source.get("TRIAGE_STATE_BACKEND") or "").strip())
    storage_named = any(key.startswith("AzureWebJobsStorage") for key, _ in problems)
    if values.get("state_backend") == "table" and not storage_named:  # a bad storage key is problem enough
        problems += _table_storage_problems(values)
    if problems:
        raise SettingsError(problems)
    if in_azure and not values.get("public_base_url"):
        values["public_base_url"] = _platform_base_url(source)
    return Settings(**values, host_problems=tuple(host_problems), running_in_azure=in_azure,
                    unknown_settings=unknown_settings(source))


_GITHUB_APP_KEYS = {"TRIAGE_GITHUB_APP_ID": "github_app_id",
                    "TRIAGE_GITHUB_APP_INSTALLATION_ID": "github_app_installation_id",
                    "TRIAGE_GITHUB_APP_KEY_VAULT_URL": "github_app_key_vault_url",
                    "TRIAGE_GITHUB_APP_KEY_NAME": "github_app_key_name"}


def _tracker_auth_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    """GitHub: a token or a GitHub App, not both, the app's settings all or none; Azure DevOps: a PAT under
    TRIAGE_ADO_AUTH=pat, none under entra."""
    sinks = values.get("ticket_sinks", ())
    problems: list[tuple[str, str]] = []
    app_set = [key for key, attr in _GITHUB_APP_KEYS.items() if values.get(attr)]
    if app_set and values.get("github_token"):
        problems.append(("TRIAGE_GITHUB_TOKEN", "set either TRIAGE_GITHUB_TOKEN (a token) or the "
                         "TRIAGE_GITHUB_APP_* settings (a GitHub App), not both"))
    elif app_set:
        problems += [(key, f"required with {app_set[0]} (GitHub App auth: TRIAGE_GITHUB_APP_ID, "
                      "TRIAGE_GITHUB_APP_INSTALLATION_ID, TRIAGE_GITHUB_APP_KEY_VAULT_URL, TRIAGE_GITHUB_APP_KEY_NAME)")
                     for key in _GITHUB_APP_KEYS if key not in app_set]
    elif "github" in sinks and not values.get("github_token"):
        problems.append(("TRIAGE_GITHUB_TOKEN", "required when TRIAGE_TICKET_SINKS includes github, unless the "
                         "GitHub App settings (TRIAGE_GITHUB_APP_ID, ...) are set instead"))
    if values.get("ado_auth") == "entra" and values.get("ado_pat"):
        problems.append(("TRIAGE_ADO_PAT", "not used with TRIAGE_ADO_AUTH=entra (the service's own identity); "
                         "remove it, or set TRIAGE_ADO_AUTH=pat"))
    elif "azuredevops" in sinks and values.get("ado_auth", "pat") == "pat" and not values.get("ado_pat"):
        problems.append(("TRIAGE_ADO_PAT", "required when TRIAGE_TICKET_SINKS includes azuredevops and "
                         "TRIAGE_ADO_AUTH is pat (the default); or set TRIAGE_ADO_AUTH=entra to use the service's "
                         "own identity"))
    return problems


def _platform_base_url(source: Mapping[str, str]) -> str:
    """https:// + the default host name the Functions platform sets, or "" when it is missing or not a host name."""
    host = (source.get(AZURE_HOSTNAME_KEY) or "").strip().lower()
    return f"https://{host}" if re.fullmatch(r"[a-z0-9](?:[a-z0-9.-]*[a-z0-9])?(?::\d{1,5})?", host) else ""


def _azure_backend(values: dict[str, Any], given: str) -> list[tuple[str, str]]:
    """In Azure the state must outlive and be shared by instances: table by default, sqlite refused."""
    if not given:
        values["state_backend"] = "table"
        return []
    if values.get("state_backend") == "sqlite":
        return [("TRIAGE_STATE_BACKEND", f"sqlite is refused in Azure ({AZURE_INSTANCE_KEY} is set): an instance's "
                 "disk is neither kept nor shared by the other instances; use table (the default in Azure)")]
    return []


def _table_storage_problems(values: dict[str, Any]) -> list[tuple[str, str]]:
    connection = values.get("storage_connection")
    identity = values.get("storage_table_service_uri") or values.get("storage_account_name")
    if not connection and not identity:
        return [("AzureWebJobsStorage", "required when TRIAGE_STATE_BACKEND is table: a connection string, or "
                 "AzureWebJobsStorage__tableServiceUri (or __accountName) for identity-based access")]
    problems = []
    if connection and identity:
        problems.append(("AzureWebJobsStorage", "set either the connection string or the identity-based "
                         "AzureWebJobsStorage__tableServiceUri / __accountName, not both"))
    if values.get("storage_credential") and not identity:
        problems.append(("AzureWebJobsStorage__credential", "only used with AzureWebJobsStorage__tableServiceUri "
                         "or AzureWebJobsStorage__accountName"))
    if values.get("storage_client_id") and values.get("storage_credential") != MANAGED_IDENTITY:
        problems.append(("AzureWebJobsStorage__clientId", f"only used with AzureWebJobsStorage__credential="
                         f"{MANAGED_IDENTITY}"))
    return problems


def unknown_settings(env: Mapping[str, str] | None = None) -> tuple[tuple[str, str], ...]:
    """Each TRIAGE_* key (any case) that no setting reads, with the closest known key ("" when none is close)."""
    source = os.environ if env is None else env
    known = {spec.env for spec in SPECS if spec.env.startswith("TRIAGE_")} | OTHER_TRIAGE_KEYS
    by_upper = {k.upper(): k for k in known}
    found = []
    for key in sorted(source):
        if not key.upper().startswith("TRIAGE_") or key in known:
            continue
        close = difflib.get_close_matches(key.upper(), list(by_upper), n=1, cutoff=0.6)
        found.append((key, by_upper[close[0]] if close else ""))
    return tuple(found)


def unknown_settings_warning(key: str, closest: str) -> str:
    """One line about a TRIAGE_* key no setting reads."""
    hint = f"; did you mean {closest}?" if closest else ""
    return f"unknown setting {key} is ignored{hint}"


def missing_host_settings(env: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The settings the Functions host reads itself that are not set at all: our defaults never reach the host, so
    the timer does not start without them. Health reports these (the CLI, which the host never runs, does not)."""
    source = os.environ if env is None else env
    return [(spec.env, f"required: the Functions host resolves %{spec.env}% itself and has no default; set it, "
                       f"e.g. to {spec.sample!r}")
            for spec in SPECS if spec.host_read and spec.env not in source]


def sample_values() -> dict[str, str]:
    """Every setting with a safe sample value (local.settings.sample.json is generated from this)."""
    return {spec.env: spec.sample for spec in SPECS}
