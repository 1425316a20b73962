"""A synthetic failure flood in the stand-in's Log Analytics workspace, generated inside DuckDB (1 M rows in about
half a second), with the accounts and role assignments the service's evidence look-ups will find.

Every failure group is one (caller, account, route) with one cause. Callers get a realistic mix of the texts the
stand-in's data plane really writes (localazure/dataplane.py): missing data roles (with the caller's own object id
in the message), expired tokens, wrong audiences, foreign tenants, firewalls, bad/missing keys, keys sent to a
key-disabled account. One row in ten is a success, which the service's query filters out.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from localazure import LocalAzure
from localazure.dataplane import FIREWALL, KEY_DISABLED, KEY_INVALID, KEY_MISSING, TENANT_CODE, TOKEN_INVALID

RESOURCE_GROUP = "rg-bench"
OTHER_TENANT = "99999999-0000-4000-8000-000000000001"
WRONG_AUDIENCE = "https://management.azure.com"

# (status, code, message SQL, auth) per caller kind; `oid` is the caller's object id column in the SQL.
_PERMISSION_SQL = (
    "'The principal `' || oid || '` lacks the required data action "
    "`Microsoft.CognitiveServices/accounts/OpenAI/' || action || '` to perform `POST /openai/deployments/"
    "{deployment-id}/' || op_path || '` operation.'"
)
_AUDIENCE_TEXT = (
    f"The access token has been obtained for wrong audience or resource '{WRONG_AUDIENCE}'. It should exactly "
    "match with one of the allowed audiences 'https://cognitiveservices.azure.com'."
)


def _sql_text(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


# Twenty buckets: eleven missing/insufficient roles, three expired tokens, one each of the rest.
ENTRA_KINDS = (
    *[("401", "'PermissionDenied'", _PERMISSION_SQL)] * 11,
    *[("401", "'401'", _sql_text(TOKEN_INVALID))] * 3,
    ("401", "'InvalidAuthenticationTokenAudience'", _sql_text(_AUDIENCE_TEXT)),
    ("400", _sql_text(TENANT_CODE), f"'Token tenant {OTHER_TENANT} does not match resource tenant.'"),
    ("403", "'403'", _sql_text(FIREWALL)),
)
KEY_KINDS = (
    ("401", "'401'", _sql_text(KEY_INVALID)),
    ("403", "'AuthenticationTypeDisabled'", _sql_text(KEY_DISABLED)),
    ("401", "'401'", _sql_text(KEY_MISSING)),
)


@dataclass(frozen=True)
class FloodShape:
    groups: int  # failure groups (caller x account x route)
    principals: int  # distinct callers; groups are spread evenly over them
    resources: int  # Cognitive Services accounts
    rows: int  # raw AzureDiagnostics rows (10% of them successes)
    key_callers: bool = True  # also key callers (no object id; one incident per account and family)
    routes: int = 1  # groups per (caller, account): deployments called; they share one incident
    assigned_every: int = 3  # every n-th caller already holds some role (diagnoses vary; ARM lists grow)

    def __post_init__(self) -> None:
        # Otherwise groups would coincide (and merge) and the world would not hold `groups` groups.
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
    cases = lambda column: "CASE kind " + " ".join(  # noqa: E731
        f"WHEN {n} THEN {k[column]}" for n, k in enumerate(kinds)) + " END"
    sub, rg = az.subscription_id, RESOURCE_GROUP
    account_id = (f"'/subscriptions/{sub}/resourcegroups/{rg.lower()}/providers/microsoft.cognitiveservices/"
                  f"accounts/bench-' || lpad(CAST(res AS VARCHAR), 3, '0')")
    seconds = max(1, int(spread.total_seconds()) - 2)
    end_sql = end.strftime("%Y-%m-%d %H:%M:%S")
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
           CASE WHEN variant % 2 = 0 THEN 'chat/completions' ELSE 'embeddings' END AS op_path,
           CASE WHEN variant % 2 = 0 THEN 'deployments/chat/completions/action'
                ELSE 'deployments/embeddings/action' END AS action,
           CASE WHEN variant % 2 = 0 THEN 'ChatCompletions_Create' ELSE 'Embeddings_Create' END AS operation
    FROM grouped
), shaped AS (
    SELECT *, kind >= {len(ENTRA_KINDS)} AS keyed,
           CASE WHEN kind >= {len(ENTRA_KINDS)} THEN 'app-' || CAST(p AS VARCHAR) || '-' || CAST(slot AS VARCHAR)
                ELSE (CASE WHEN variant % 2 = 0 THEN 'gpt-4o' ELSE 'text-embedding-3-small' END)
                     || (CASE WHEN variant >= 2 THEN '-' || CAST(variant AS VARCHAR) ELSE '' END)
           END AS deployment,
           {account_id} AS account
    FROM callers
)
SELECT
    TIMESTAMP '{end_sql}' - to_seconds(1 + (i * 7919) % {seconds}) AS TimeGenerated,
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
    CASE WHEN ok THEN '200' ELSE {cases(0)} END AS ResultSignature,
    CAST(3 + i % 25 AS BIGINT) AS DurationMs,
    '10.0.' || CAST(p % 250 AS VARCHAR) || '.***' AS CallerIPAddress,
    json_object(
        'apiName', 'Azure OpenAI API version 2024-10-21',
        'requestTime', strftime(TIMESTAMP '{end_sql}' - to_seconds(1 + (i * 7919) % {seconds}),
                                '%Y-%m-%dT%H:%M:%S.%fZ'),
        'requestLength', 210 + i % 400,
        'responseLength', 180,
        'objectId', CASE WHEN keyed THEN '' ELSE oid END,
        'streamType', 'Non-Streaming',
        'modelDeploymentName', deployment,
        'requestPath', '/openai/deployments/' || deployment || '/' || op_path,
        'errorCode', CASE WHEN ok THEN '' ELSE {cases(1)} END,
        'errorMessage', CASE WHEN ok THEN '' ELSE {cases(2)} END
    )::VARCHAR AS properties_s,
    'Azure' AS SourceSystem
FROM shaped
"""  # noqa: S608


def load_flood(az: LocalAzure, shape: FloodShape, end: datetime, spread: timedelta) -> int:
    """Accounts, assignments and rows; returns the number of rows loaded."""
    add_accounts(az, shape)
    add_assignments(az, shape)
    return az.load_rows_sql("AzureDiagnostics", rows_sql(az, shape, end, spread))
