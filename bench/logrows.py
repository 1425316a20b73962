"""A synthetic failure flood in the stand-in's Log Analytics workspace, generated inside DuckDB (1 M rows in about
half a second), with the accounts and role assignments the service's evidence look-ups will find.

The rows are real-shaped: only the columns and `properties_s` keys Azure documents (docs/localazure.md, "Rows
written"), so no error code, no error text and no request path, as the service meets them in production. A
failure shows only its status and whether the service logged the caller: Entra callers whose token it accepted
(most of them: missing or insufficient roles, which the evidence decides) carry their object id; tokens it
rejected (expired, wrong audience) and the firewall's answers carry none, like key callers. One row in ten is a
success, which the service's query filters out.

Every failure group is one (caller, account, route). A route is told apart by its operation and its `apiName`
(the api-version called). Callers without a logged object id cannot be told apart in real rows; here each of their
groups calls its own preview api-version, so the flood still holds exactly the groups its shape states.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from localazure import LocalAzure

RESOURCE_GROUP = "rg-bench"
# Routes are told apart by the api-version they call (and chat vs embeddings): real versions, one per route.
API_VERSIONS = ("2024-10-21", "2024-06-01", "2025-01-01-preview", "2024-08-01-preview", "2024-02-01",
                "2024-12-01-preview", "2025-03-01-preview", "2024-04-01-preview")
_DOTNET_EPOCH_SECONDS = 62_135_596_800  # 0001-01-01 to 1970-01-01: requestTime is in .NET ticks

# (status, whether the row logs the caller's object id) per caller kind.
# Twenty buckets: eleven role failures (token accepted), four rejected tokens, one firewall; then three key kinds.
ENTRA_KINDS = (
    *[("401", True)] * 11,
    *[("401", False)] * 4,
    ("403", False),
)
KEY_KINDS = (
    ("401", False),
    ("403", False),
    ("401", False),
)


@dataclass(frozen=True)
class FloodShape:
    groups: int  # failure groups (caller x account x route)
    principals: int  # distinct callers; groups are spread evenly over them
    resources: int  # Cognitive Services accounts
    rows: int  # raw AzureDiagnostics rows (10% of them successes)
    key_callers: bool = True  # also key callers (no object id; one incident per account and family)
    routes: int = 1  # groups per (caller, account): api-versions and operations called; they share one incident
    assigned_every: int = 3  # every n-th caller already holds some role (diagnoses vary; ARM lists grow)

    def __post_init__(self) -> None:
        # Otherwise groups would coincide (and merge) and the world would not hold `groups` groups.
        if not 1 <= self.routes <= len(API_VERSIONS):
            raise ValueError(f"{self}: at most {len(API_VERSIONS)} routes per caller and account")
        if self.groups % self.principals or self.groups_per_principal % self.routes:
            raise ValueError(f"{self}: groups must split evenly over principals, then routes")
        if self.accounts_per_principal > self.resources:
            raise ValueError(f"{self}: each caller needs {self.accounts_per_principal} distinct accounts")

    @property
    def groups_per_principal(self) -> int:
        return max(1, self.groups // self.principals)

    @property
    def accounts_per_principal(self) -> int:
        return max(1, self.groups_per_principal // self.routes)


def object_id(principal: int) -> str:
    return f"00000b0c-0000-4000-8000-{principal:012x}"


def account_name(resource: int) -> str:
    return f"bench-{resource:03d}"


def kind_count(shape: FloodShape) -> int:
    return len(ENTRA_KINDS) + (len(KEY_KINDS) if shape.key_callers else 0)


def add_accounts(az: LocalAzure, shape: FloodShape) -> list[str]:
    return [az.add_account(account_name(r), resource_group=RESOURCE_GROUP) for r in range(shape.resources)]


def add_assignments(az: LocalAzure, shape: FloodShape) -> int:
    """Roles some callers already hold, so the role diagnoses vary: Contributor only (control plane), a role for
    another surface, a fresh role still propagating. Written straight into the stand-in (no ARM call)."""
    added = 0
    for p in range(0, shape.principals, shape.assigned_every):
        for pair in range(shape.accounts_per_principal):
            account = az.account_id(account_name(_resource_of(shape, p, pair)))
            if p % 9 == 0:
                az.add_assignment(object_id(p), "Contributor", account, created_ago_seconds=86400 * 30)
            elif p % 9 == 3:
                az.add_assignment(object_id(p), "Azure AI Developer", account, created_ago_seconds=86400 * 30)
            else:
                az.add_assignment(object_id(p), "Cognitive Services OpenAI User", account, created_ago_seconds=120)
            added += 1
    return added


def _resource_of(shape: FloodShape, principal: int, pair: int) -> int:
    return (principal * shape.accounts_per_principal + pair) % shape.resources


def rows_sql(az: LocalAzure, shape: FloodShape, end: datetime, spread: timedelta) -> str:
    """A DuckDB SELECT of `shape.rows` AzureDiagnostics rows in [end - spread, end), columns named as the table."""
    per, pairs, routes = shape.groups_per_principal, shape.accounts_per_principal, shape.routes
    kinds = ENTRA_KINDS + (KEY_KINDS if shape.key_callers else ())
    statuses = "CASE kind " + " ".join(f"WHEN {n} THEN '{k[0]}'" for n, k in enumerate(kinds)) + " END"
    logged = ", ".join(str(n) for n, k in enumerate(kinds) if k[1]) or "-1"
    versions = "[" + ", ".join(f"'{v}'" for v in API_VERSIONS) + "]"
    sub, rg = az.subscription_id, RESOURCE_GROUP
    account_id = (f"'/subscriptions/{sub}/resourcegroups/{rg.lower()}/providers/microsoft.cognitiveservices/"
                  f"accounts/bench-' || lpad(CAST(res AS VARCHAR), 3, '0')")
    seconds = max(1, int(spread.total_seconds()) - 2)
    end_sql = end.strftime("%Y-%m-%d %H:%M:%S")
    at = f"TIMESTAMP '{end_sql}' - to_seconds(1 + (i * 7919) % {seconds})"
    ticks = f"(CAST(epoch({at}) AS BIGINT) + {_DOTNET_EPOCH_SECONDS}) * 10000000"
    # Built from numbers and this module's own texts only: no outside input to inject.
    return f"""WITH base AS (
    SELECT i, i % {shape.groups} AS g, (i // {shape.groups}) % 10 = 9 AS ok
    FROM range({shape.rows}) t(i)
), grouped AS (
    SELECT i, ok, g // {per} AS p, (g % {per}) // {routes} AS pair, (g % {per}) % {routes} AS variant,
           g % {per} AS slot
    FROM base
), callers AS (
    SELECT i, ok, p, slot, variant, (p * {pairs} + pair) % {shape.resources} AS res,
           (p * 7919) % {len(kinds)} AS kind,
           printf('00000b0c-0000-4000-8000-%012x', p) AS oid,
           CASE WHEN variant % 2 = 0 THEN 'ChatCompletions_Create' ELSE 'Embeddings_Create' END AS operation,
           CASE WHEN variant % 2 = 0 THEN 'gpt-4o' ELSE 'text-embedding-3-small' END AS deployment
    FROM grouped
), shaped AS (
    SELECT *, kind IN ({logged}) AS caller_logged,
           CASE WHEN kind IN ({logged}) THEN {versions}[variant + 1]
                ELSE printf('2024-10-21-preview-%d', p * {per} + slot) END AS api_version,
           {account_id} AS account
    FROM callers
)
SELECT
    {at} AS TimeGenerated,
    upper(account) AS ResourceId,
    account AS _ResourceId,
    'RequestResponse' AS Category,
    '{rg.upper()}' AS ResourceGroup,
    '{sub}' AS SubscriptionId,
    'MICROSOFT.COGNITIVESERVICES' AS ResourceProvider,
    'BENCH-' || lpad(CAST(res AS VARCHAR), 3, '0') AS Resource,
    'ACCOUNTS' AS ResourceType,
    operation AS OperationName,
    CASE WHEN ok THEN 'Succeeded' ELSE 'Failed' END AS ResultType,
    printf('%08x-0000-4000-8000-%012x', i % 4294967295, i) AS CorrelationId,
    CASE WHEN ok THEN '200' ELSE {statuses} END AS ResultSignature,
    CAST(3 + i % 25 AS BIGINT) AS DurationMs,
    '10.0.' || CAST(p % 250 AS VARCHAR) || '.***' AS CallerIPAddress,
    json_object(
        'apiName', 'Azure OpenAI API version ' || api_version,
        'requestTime', {ticks},
        'responseTime', {ticks} + (3 + i % 25) * 10000,
        'requestLength', 210 + i % 400,
        'responseLength', 180,
        'objectId', CASE WHEN kind >= {len(ENTRA_KINDS)} THEN '' WHEN caller_logged OR ok THEN oid ELSE '' END,
        'streamType', 'Non-Streaming',
        'modelDeploymentName', deployment,
        'modelName', '',
        'modelVersion', ''
    )::VARCHAR AS properties_s,
    'Azure' AS SourceSystem,
    'AzureDiagnostics' AS Type
FROM shaped
"""  # noqa: S608


def load_flood(az: LocalAzure, shape: FloodShape, end: datetime, spread: timedelta) -> int:
    """Accounts, assignments and rows; returns the number of rows loaded."""
    add_accounts(az, shape)
    add_assignments(az, shape)
    return az.load_rows_sql("AzureDiagnostics", rows_sql(az, shape, end, spread))
