"""Live evidence for diagnosis, with per-run caches and bounded concurrency.

`gather_evidence(pairs)` does ONE account GET per distinct account and ONE assignments list per distinct
principal and subscription (at subscription scope the filter returns the principal's assignments at, above and
below it, i.e. for every account at once), concurrently in a pool of `evidence_concurrency` threads. So a scan
costs at most principals + accounts ARM reads. If the service's identity may not read role assignments at
subscription scope (403: Reader only on the accounts), it lists per (principal, account) instead for the rest
of the run. A look-up that fails is logged, left out (`Evidence.assignments is None` = not read) and named, with
its whole message, in the pair's `Evidence.failed` and in `failures()`; it never fails the run. `new_run()`
clears the caches, and the account settings `accept_accounts` handed over (a cut-off scan's checkpoint, which a
fresh instance continuing it reads instead of ARM). Each look-up runs in a copy of the caller's context, so the
invocation's trace (OpenTelemetry keeps it in contextvars) and the Functions worker's invocation id reach the
pool's threads and their logs.

A held role the built-in catalogue does not know (a custom role, or a built-in newer than the catalogue) is read
through ARM: the subscription's role definitions once per run, else the definition by its id; the pair's evidence
carries its permissions (`Evidence.role_definitions`) so the diagnosis judges it by its real data actions. A
definition that cannot be read is named in `Evidence.failed`: nothing is granted on that evidence.

With Resource Graph on (TRIAGE_RESOURCE_GRAPH, shared/adapters/resource_graph.py), a batch of `GRAPH_MIN_PAIRS` or
more pairs first asks Resource Graph for every account and every principal's own assignments in a few paged
queries, and seeds the caches with what it can answer for sure; whatever it cannot (an account it did not return,
an account a group assignment applies to, a failed query) is read from ARM as above, and `graph_fallbacks` says
why. Smaller batches (one event, an approval, a reconciliation after a grant) always read ARM: Resource Graph lags.
Every ARM call waits for the run's client-side limiter first (shared/adapters/arm_limiter.py); a 429 is retried by
the SDK after its Retry-After, and only a read that still fails becomes an evidence error.

Display names (`Evidence.principal_name`, shown in tickets and chat messages instead of the object id): with
Resource Graph on, every batch (a small one too: a name is only shown, so Resource Graph's lag costs nothing but a
name) asks for the managed identities among its principals not named yet (one query per chunk of them:
`ResourceGraphReader.principal_names`); a name found is kept for the provider's life (an object id never changes
owner), a principal found to have none (or whose query failed) is asked again next run (a new identity may not be
indexed yet). Other name sources (`add_name_source`, e.g. the AppRoleName an Application Insights caller was
resolved from) answer where Resource Graph did not. The names query reads the accounts' subscriptions and
TRIAGE_SUBSCRIPTION_ID: an identity whose resource lives in another subscription stays unnamed. Without Resource
Graph no ARM call is made for names (ARM has no batched look-up of a resource by its identity's principal id): only
the other sources name.
"""

from __future__ import annotations

import contextvars
import logging
import threading
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from typing import Any

from shared.adapters.clients import subscription_of
from shared.adapters.resource_graph import ResourceGraphReader, display_name
from shared.adapters.resources import Accounts, hosts_of, to_evidence
from shared.adapters.role_assignments import RoleAssignments, RoleDefinitionInfo
from shared.core import roles
from shared.core.allowlist import normalize_object_id
from shared.core.model import Evidence, ResourceEvidence, RoleAssignmentEvidence, RoleDefinitionEvidence
from shared.core.resource_ids import account_key, normalize_scope, scope_within

log = logging.getLogger("triage.adapters")

# A batch this small is one event's, an approval's or a reconciliation's: it reads ARM, which Resource Graph lags.
GRAPH_MIN_PAIRS = 2


class _OnceCache:
    """Computes each key at most once per run, even when threads ask for it at the same time."""

    def __init__(self) -> None:
        self._futures: dict[Any, Future] = {}
        self._lock = threading.Lock()

    def get(self, key: Any, compute: Callable[[], Any]) -> Any:
        with self._lock:
            future = self._futures.get(key)
            owner = future is None
            if future is None:
                future = self._futures[key] = Future()
        if owner:
            try:
                future.set_result(compute())
            except BaseException as exc:  # noqa: BLE001 - handed to every waiter, then re-raised below
                future.set_exception(exc)
        return future.result()

    def put(self, key: Any, value: Any) -> None:
        """Answer `key` with `value` unless it is already (being) computed."""
        with self._lock:
            if key not in self._futures:
                future: Future = Future()
                future.set_result(value)
                self._futures[key] = future

    def clear(self) -> None:
        with self._lock:
            self._futures.clear()


def applies_to(assignment: RoleAssignmentEvidence, resource_id: str) -> bool:
    """At, above or below the resource: an account-level look-up also shows project-level assignments, but not
    those of sibling projects when the resource is itself a project."""
    return _touches(assignment.scope, resource_id)


class AzureEvidenceProvider:
    def __init__(self, assignments: RoleAssignments, accounts: Accounts, *, concurrency: int = 8,
                 subscription_ids: Iterable[str] = (), graph: ResourceGraphReader | None = None):
        self._assignments = assignments
        self._graph = graph
        # Why a batch (or some of its accounts) was read from ARM instead of Resource Graph, this run. Not evidence
        # errors: ARM answered in its place.
        self.graph_fallbacks: list[str] = []
        self._accounts = accounts
        self._concurrency = max(1, concurrency)
        self._subscriptions = tuple(s for s in subscription_ids if s)
        self._assignment_cache = _OnceCache()
        self._account_cache = _OnceCache()
        self._host_index = _OnceCache()
        self._definition_cache = _OnceCache()
        self.errors: list[str] = []  # look-ups that failed in this run, for the run report
        self._errors_lock = threading.Lock()
        # What failed, by what it was about: (principal, account), the account, the subscription's definitions.
        self._assignment_errors: dict[tuple[str, str], str] = {}
        self._account_errors: dict[str, str] = {}
        self._definition_errors: dict[str, str] = {}
        self._definition_problems: dict[tuple[str, str], str] = {}  # (subscription, role GUID) -> why unreadable
        self._run_hooks: list[Callable[[], None]] = []
        self._account_level: set[str] = set()  # subscriptions where we may only list per account (403)
        self._pool: ThreadPoolExecutor | None = None
        self._pool_lock = threading.Lock()
        # Account settings another run read, handed over for this run's batches (accept_accounts): not read again.
        self._accepted: dict[str, ResourceEvidence] = {}
        # Display names: found ones for the provider's life, principals Resource Graph did not name for this run.
        self._names: dict[str, str] = {}
        self._unnamed: set[str] = set()
        self._name_sources: list[Callable[[str], str | None]] = []
        self._names_lock = threading.Lock()

    def _executor(self) -> ThreadPoolExecutor:
        """One pool for the provider's life: starting threads for every batch cost more than a one-pair batch's
        look-ups (each Event Grid failure event gathers its own evidence)."""
        with self._pool_lock:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(max_workers=self._concurrency, thread_name_prefix="evidence")
            return self._pool

    def on_new_run(self, hook: Callable[[], None]) -> None:
        """Also call `hook` when a run starts (other per-run caches, e.g. app identities)."""
        self._run_hooks.append(hook)

    def add_name_source(self, source: Callable[[str], str | None]) -> None:
        """Also ask `source(object_id)` for a principal's display name where Resource Graph did not name it."""
        self._name_sources.append(source)

    def new_run(self) -> None:
        for hook in self._run_hooks:
            hook()
        with self._names_lock:
            self._unnamed.clear()
        self._assignment_cache.clear()
        self._account_cache.clear()
        self._host_index.clear()
        self._definition_cache.clear()
        self._account_level.clear()
        self._accepted = {}
        self._assignments.new_run()
        with self._errors_lock:
            self.errors = []
            self.graph_fallbacks = []
            self._assignment_errors.clear()
            self._account_errors.clear()
            self._definition_errors.clear()
            self._definition_problems.clear()

    def failures(self) -> tuple[str, ...]:
        with self._errors_lock:
            return tuple(self.errors)

    def accept_accounts(self, settings: Mapping[str, ResourceEvidence]) -> None:
        """Account settings an earlier run read (a cut-off scan's checkpoint), by account id: this run's batches
        use them instead of reading those accounts again, until `new_run()`. The caller decides what they may
        back (a resumed scan: the diagnosis, never a grant)."""
        self._accepted = {account_key(account): found for account, found in settings.items()}

    # ---- single look-ups (cached) ------------------------------------------------------------------------

    def assignments_for(self, principal_id: str, resource_id: str) -> tuple[RoleAssignmentEvidence, ...]:
        oid = normalize_object_id(principal_id)
        if oid is None:
            return ()
        account = account_key(resource_id)
        listed = self._listed_in(oid, subscription_of(account), (account,), strict=True)[account]
        return tuple(a for a in listed or () if applies_to(a, resource_id))

    def _account(self, resource_id: str) -> Any | None:
        account = account_key(resource_id)
        return self._account_cache.get(account, lambda: self._accounts.get(account))

    def resource(self, resource_id: str) -> ResourceEvidence | None:
        model = self._account(resource_id)
        return to_evidence(model, account_key(resource_id)) if model is not None else None

    def role_definitions(self, subscription_id: str) -> dict[str, RoleDefinitionInfo]:
        """Every role definition of the subscription by GUID (fetched once per run)."""
        return self._assignments.definitions(subscription_id)

    def hosts_for(self, resource_id: str) -> tuple[str, ...]:
        model = self._account(resource_id)
        return hosts_of(model) if model is not None else ()

    def resource_for_host(self, host: str) -> str | None:
        """The account id behind an inference host, from one accounts list per configured subscription."""
        index = self._host_index.get("index", self._build_host_index)
        return index.get(host.lower())

    def _build_host_index(self) -> dict[str, str]:
        index: dict[str, str] = {}
        for subscription in self._subscriptions:
            try:
                for account in self._accounts.list_in(subscription):
                    for host in hosts_of(account):
                        index.setdefault(host, account_key(account.id))
            except Exception as exc:  # noqa: BLE001 - an unresolved host only leaves resource_id empty
                self._record(f"accounts list in subscription {subscription}: {type(exc).__name__}: {exc}")
        return index

    # ---- the batch ---------------------------------------------------------------------------------------

    def gather_evidence(self, pairs: set[tuple[str | None, str]]) -> dict[tuple[str | None, str], Evidence]:
        accounts_of: dict[tuple[str, str], set[str]] = {}
        for principal, resource_id in pairs:
            oid = normalize_object_id(principal)
            if oid:
                account = account_key(resource_id)
                accounts_of.setdefault((oid, subscription_of(account)), set()).add(account)
        accepted = self._accepted
        accounts = {account_key(r) for _, r in pairs}
        if self._graph is not None:
            readable = len(pairs) < GRAPH_MIN_PAIRS or self._prefill_from_graph(self._graph, accounts_of, accounts)
            if readable:  # names are only shown: a small batch asks too (a lagging index only leaves one unnamed)
                self._name_from_graph(self._graph, {oid for oid, _ in accounts_of},
                                      sorted({subscription_of(a) for a in accounts} | set(self._subscriptions)))
        pool = self._executor()
        listing = {key: _submit(pool, self._listed_in, *key, tuple(sorted(found)))
                   for key, found in accounts_of.items()}
        getting = {acct: _submit(pool, self._safe_account, acct) for acct in accounts if acct not in accepted}
        listed = {(oid, acct): found for (oid, _), f in listing.items() for acct, found in f.result().items()}
        got = {acct: f.result() for acct, f in getting.items()}
        settings = {acct: to_evidence(model, acct) for acct, model in got.items() if model is not None}
        settings.update((acct, accepted[acct]) for acct in accounts & accepted.keys())
        held = {a.role_definition_id for found in listed.values() for a in found or ()}
        if any(roles.guid_of(role) not in roles.BY_GUID for role in held):
            self._prefetch_definitions(accounts)
        out: dict[tuple[str | None, str], Evidence] = {}
        for principal, resource_id in pairs:
            oid = normalize_object_id(principal)
            account = account_key(resource_id)
            found = listed.get((oid, account)) if oid else None
            applicable = tuple(a for a in found if applies_to(a, resource_id)) if found is not None else None
            definitions, unreadable = self._definitions_for(applicable, account)
            out[(principal, resource_id)] = Evidence(
                assignments=applicable,
                resource=settings.get(account),
                principal_type=_principal_type(found, oid),
                principal_name=self.principal_name(oid) if oid else None,
                failed=self._failed_for(oid, account, found) + unreadable,
                role_definitions=definitions,
            )
        return out

    def principal_name(self, oid: str) -> str | None:
        """The display name known for `oid` (no look-up): Resource Graph's, else the first other source's."""
        with self._names_lock:
            name = self._names.get(oid)
        if name is not None:
            return name
        for source in self._name_sources:
            try:
                if found := display_name(source(oid)):
                    return found
            except Exception as exc:  # noqa: BLE001 - a name is decoration: never worth failing evidence over
                log.warning("evidence: display name of %s not read: %s: %s", oid, type(exc).__name__, exc)
        return None

    def _name_from_graph(self, graph: ResourceGraphReader, principals: set[str], subscriptions: list[str]) -> None:
        """One query per chunk of the principals not named yet (nor found unnamed this run)."""
        with self._names_lock:
            wanted = sorted(principals - self._names.keys() - self._unnamed)
        if not wanted:
            return
        try:
            found = graph.principal_names(wanted, subscriptions)
        except Exception as exc:  # noqa: BLE001 - names unknown: the object id is shown instead
            log.warning("evidence: Resource Graph names query failed, showing object ids: %s: %s",
                        type(exc).__name__, _whole(exc))
            found = {}  # not asked again this run
        with self._names_lock:
            self._names.update(found)
            self._unnamed.update(oid for oid in wanted if oid not in found)

    def _prefill_from_graph(self, graph: ResourceGraphReader, accounts_of: dict[tuple[str, str], set[str]],
                            accounts: set[str]) -> bool:
        """Answer from Resource Graph what it can answer for sure; the rest is read from ARM as before: a
        principal's subscription-level listing only when every account it is asked about came back from Resource
        Graph and no group assignment applies to any of them (group membership is not in Resource Graph)."""
        subscriptions = sorted({subscription_of(a) for a in accounts})
        try:
            models = graph.accounts(accounts, subscriptions)
            found = graph.assignments({oid for oid, _ in accounts_of}, subscriptions)
        except Exception as exc:  # noqa: BLE001 - Resource Graph unreadable (403/404/throttled/...): ARM answers
            self._graph_fallback(f"Resource Graph query failed, reading ARM for this batch: {type(exc).__name__}: "
                                 f"{_whole(exc)}")
            return False
        for account, model in models.items():
            self._account_cache.put(account, model)
        unseen = sorted(accounts - models.keys())
        if unseen:
            self._graph_fallback(f"Resource Graph did not return {len(unseen)} account(s), reading ARM for them "
                                 f"(first: {unseen[0]})")
        grouped = {a for a in accounts if any(_touches(scope, a) for scope in found.group_scopes)}
        for (oid, subscription), wanted in accounts_of.items():
            if oid not in found.direct or not wanted <= models.keys() or wanted & grouped:
                continue
            scope = f"/subscriptions/{subscription}"
            self._assignment_cache.put((oid, scope), tuple(a for a in found.direct[oid] if applies_to(a, scope)))
        return True

    def _graph_fallback(self, why: str) -> None:
        log.warning("evidence: %s", why)
        with self._errors_lock:
            self.graph_fallbacks.append(why)

    def _definitions_for(self, held: tuple[RoleAssignmentEvidence, ...] | None,
                         account: str) -> tuple[tuple[RoleDefinitionEvidence, ...], tuple[str, ...]]:
        """The definitions of the held roles the catalogue does not know, and why any of them could not be read
        (a failed list of the subscription's definitions is already in the pair's failures)."""
        unknown = sorted({roles.guid_of(a.role_definition_id) for a in held or ()} - roles.BY_GUID.keys())
        if not unknown:
            return (), ()
        subscription = subscription_of(account)
        with self._errors_lock:
            if subscription in self._definition_errors:
                return (), ()
        found: list[RoleDefinitionEvidence] = []
        problems: list[str] = []
        for guid in unknown:
            try:
                info = self._definition_cache.get((subscription, guid),
                                                  partial(self._assignments.definition, subscription, guid))
            except Exception as exc:  # noqa: BLE001 - an unreadable definition only makes the evidence incomplete
                problems.append(self._definition_problem(subscription, guid, f"{type(exc).__name__}: {_whole(exc)}"))
                continue
            if info is None:
                problems.append(self._definition_problem(subscription, guid, "not found (deleted, or defined where "
                                                                             "this subscription cannot see it)"))
            else:
                found.append(info.to_evidence())
        return tuple(found), tuple(problems)

    def _definition_problem(self, subscription: str, guid: str, why: str) -> str:
        problem = f"role definition {guid} in subscription {subscription}: {why}"
        with self._errors_lock:
            first = (subscription, guid) not in self._definition_problems
            self._definition_problems[(subscription, guid)] = problem
        if first:
            self._record(problem)
        return problem

    def _failed_for(self, oid: str | None, account: str,
                    found: tuple[RoleAssignmentEvidence, ...] | None) -> tuple[str, ...]:
        """The failed look-ups one pair's evidence depends on: its assignments, its account, and the role
        definitions when it holds a role that is not built in."""
        with self._errors_lock:
            failed = [self._assignment_errors.get((oid, account)) if oid else None, self._account_errors.get(account)]
            if any(roles.guid_of(a.role_definition_id) not in roles.BY_GUID for a in found or ()):
                failed.append(self._definition_errors.get(subscription_of(account)))
        return tuple(problem for problem in failed if problem)

    def _listed_in(
        self, oid: str, subscription: str, accounts: tuple[str, ...], strict: bool = False
    ) -> dict[str, tuple[RoleAssignmentEvidence, ...] | None]:
        """The principal's assignments for each account: from one subscription-level list, else per account.
        Failures give None (recorded), or raise when `strict`."""
        from azure.core.exceptions import HttpResponseError

        with self._errors_lock:
            account_level = subscription in self._account_level
        if not account_level:
            scope = f"/subscriptions/{subscription}"
            try:
                found = self._assignment_cache.get((oid, scope), lambda: self._assignments.list_for(oid, scope))
                return {account: found for account in accounts}
            except HttpResponseError as exc:
                if exc.status_code != 403:
                    return self._failed(oid, scope, accounts, exc, strict)
                with self._errors_lock:
                    if subscription not in self._account_level:
                        log.info("no role-assignment read at %s; listing per account this run", scope)
                    self._account_level.add(subscription)
            except Exception as exc:  # noqa: BLE001 - evidence is best effort; the diagnosis says what is unknown
                return self._failed(oid, scope, accounts, exc, strict)
        out: dict[str, tuple[RoleAssignmentEvidence, ...] | None] = {}
        for account in accounts:
            try:
                out[account] = self._assignment_cache.get((oid, account), partial(self._assignments.list_for, oid,
                                                                                    account))
            except Exception as exc:  # noqa: BLE001
                out.update(self._failed(oid, account, (account,), exc, strict))
        return out

    def _failed(self, oid: str, scope: str, accounts: tuple[str, ...], exc: Exception, strict: bool) -> dict:
        if strict:
            raise exc
        problem = f"role assignments of {oid} at {scope}: {type(exc).__name__}: {_whole(exc)}"
        self._record(problem)
        with self._errors_lock:
            self._assignment_errors.update({(oid, account): problem for account in accounts})
        return dict.fromkeys(accounts)

    def _safe_account(self, account: str) -> Any | None:
        try:
            return self._account_cache.get(account, lambda: self._accounts.get(account))
        except Exception as exc:  # noqa: BLE001
            problem = f"account {account}: {type(exc).__name__}: {_whole(exc)}"
            self._record(problem)
            with self._errors_lock:
                self._account_errors[account] = problem
            return None

    def _prefetch_definitions(self, accounts: set[str]) -> None:
        for subscription in {subscription_of(a) for a in accounts}:
            try:
                self._assignments.definitions(subscription)
            except Exception as exc:  # noqa: BLE001
                problem = f"role definitions of {subscription}: {type(exc).__name__}: {_whole(exc)}"
                self._record(problem)
                with self._errors_lock:
                    self._definition_errors[subscription] = problem

    def _record(self, problem: str) -> None:
        log.warning("evidence look-up failed: %s", problem)
        with self._errors_lock:
            self.errors.append(problem)


def _touches(scope: str, resource_id: str) -> bool:
    """An assignment at `scope` applies to (or below) the resource: the scope is at, above or below it."""
    scope, target = normalize_scope(scope), normalize_scope(resource_id)
    return scope == "/" or scope_within(target, scope) or scope_within(scope, target)


def _submit(pool: ThreadPoolExecutor, call: Callable[..., Any], *args: Any) -> Future:
    """`call(*args)` in the pool, inside a copy of this thread's context (one copy per task: a context runs in one
    thread at a time)."""
    return pool.submit(contextvars.copy_context().run, call, *args)


def _principal_type(found: tuple[RoleAssignmentEvidence, ...] | None, oid: str | None) -> str | None:
    for assignment in found or ():
        if not assignment.via_group and assignment.principal_id == oid and assignment.principal_type:
            return assignment.principal_type
    return None


def _whole(exc: Exception) -> str:
    """Every line of the message, joined: the first line of an SDK error is often only "(Code) Summary"."""
    return " ".join(line.strip() for line in str(exc).strip().splitlines() if line.strip())
