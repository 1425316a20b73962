"""`python -m shared doctor` and `GET /api/health/deep`: the self-check, an entry point like shared/commands.py.

In order: the settings (unknown TRIAGE_* keys too), the state store, a token for ARM, Log Analytics and Event Grid,
who the service is (the `oid` of its ARM token), each watched workspace's RequestResponse rows, the identity's own
role assignments, per account its role assigner and condition, its diagnostic settings and whether its rows arrive,
and one read-only call per ticket sink. Every call is a read. The judgements are in shared/core/doctor.py.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TextIO, TypeVar

from shared.core import doctor as checks
from shared.core import roles
from shared.core.abac import allowed_principal_types
from shared.core.doctor import FAIL, SKIP, Check, DoctorPorts, Report, Traffic
from shared.core.resource_ids import account_key, enclosing_account
from shared.core.sources import error_text
from shared.settings import Settings, SettingsError, load_settings, missing_host_settings

TRAFFIC_LOOKBACK = timedelta(days=30)  # how far back "has a 401/403 row ever been seen" looks

T = TypeVar("T")


def _attempt(call: Callable[[], T]) -> tuple[T | None, str | None]:
    """(result, None), or (None, the whole error) when the call raised."""
    try:
        return call(), None
    except Exception as exc:  # noqa: BLE001 - a check reports what failed, it never stops the others
        return None, f"{type(exc).__name__}: {error_text(exc)}"


def doctor_report(settings: Settings, ports: DoctorPorts, *, env: Mapping[str, str] | None = None,
                  now: datetime | None = None) -> Report:
    now = now or datetime.now(UTC)
    found: list[Check] = checks.settings_checks(settings.unknown_settings, settings.host_problems,
                                                missing_host_settings(env), running_in_azure=settings.running_in_azure)
    _, store_error = _attempt(ports.ping_store)
    found.append(Check("store", f"state store ({settings.state_backend})", FAIL if store_error else checks.OK,
                       checks.clipped(store_error) if store_error else "reachable"))
    azure = ports.azure
    arm_token, arm_error = _attempt(lambda: azure.token(settings.arm_scope))
    logs_scope = settings.logs_audience.rstrip("/") + "/.default"
    _, logs_error = _attempt(lambda: azure.token(logs_scope))
    _, eventgrid_error = _attempt(lambda: azure.token(checks.EVENTGRID_SCOPE))
    publishes_with_identity = bool(settings.eventgrid_topic_endpoint and not settings.eventgrid_topic_key)
    found += [checks.token_check("ARM", settings.arm_scope, arm_error),
              checks.token_check("Log Analytics", logs_scope, logs_error),
              checks.token_check("Event Grid", checks.EVENTGRID_SCOPE, eventgrid_error, needed=publishes_with_identity)]
    oid = None
    if arm_token is not None:
        identity, oid = checks.identity_check(arm_token)
        found.append(identity)
    else:
        found.append(Check("identity", "who am I", SKIP, "no ARM token"))

    traffic = _workspaces(settings, azure, found, skip=logs_error is not None, oid=oid, now=now)
    if arm_token is None or oid is None:
        found.append(Check("roles", "own role assignments", SKIP, "no ARM token naming the identity"))
    else:
        _accounts(settings, azure, found, oid=oid, traffic=traffic, now=now)
    for sink in ports.sinks:
        if sink.probe is None:
            found.append(checks.sink_check(sink.name, None, None, probed=False))
            continue
        result, error = _attempt(sink.probe)
        found.append(checks.sink_check(sink.name, result, error, probed=True))
    return Report(tuple(found))


def _workspaces(settings: Settings, azure: Any, found: list[Check], *, skip: bool, oid: str | None,
                now: datetime) -> dict[str, Traffic]:
    if not settings.workspace_ids:
        found.append(Check("workspace", "workspaces", checks.WARN, "TRIAGE_WORKSPACE_IDS is empty: no RequestResponse "
                           "rows are read", "set the Workspace IDs the accounts' diagnostic settings send to"))
        return {}
    read: dict[str, Traffic] = {}
    for workspace_id in settings.workspace_ids:
        if skip:
            found.append(Check("workspace", f"workspace {workspace_id}", SKIP, "no Log Analytics token"))
            continue
        result, error = _attempt(partial(azure.traffic, workspace_id, now - TRAFFIC_LOOKBACK, now))
        found.append(checks.workspace_check(workspace_id, result, error, oid, now))
        if result is not None:
            read[workspace_id] = result
    return read


def _accounts(settings: Settings, azure: Any, found: list[Check], *, oid: str, traffic: dict[str, Traffic],
              now: datetime) -> None:
    logged = {account_key(r.resource_id) for t in traffic.values() for r in t.rows}
    subscriptions = list(dict.fromkeys(
        s.lower() for s in [settings.subscription_id, *(_subscription(a) for a in sorted(logged))] if s))
    if not subscriptions:
        found.append(Check("roles", "own role assignments", SKIP, "no subscription known",
                           "set TRIAGE_SUBSCRIPTION_ID, or let RequestResponse rows arrive"))
        return
    accounts = {key: key for key in logged}
    held: dict[tuple[str, str, str], checks.HeldRole] = {}
    for subscription in subscriptions:
        listed, error = _attempt(partial(azure.accounts, subscription))
        if error is not None:
            found.append(Check("roles", f"accounts in {subscription}", FAIL, checks.clipped(error),
                               f"grant Reader on the subscription to {oid}"))
        for account_id in listed or ():
            accounts.setdefault(account_key(account_id), account_id)
        mine, error = _attempt(partial(azure.held_roles, oid, subscription))
        if error is not None:
            found.append(Check("roles", f"own role assignments in {subscription}", FAIL, checks.clipped(error),
                               f"grant Reader on the subscription to {oid}"))
        for role in mine or ():
            held.setdefault((role.role_guid, role.scope.lower(), role.condition or ""), role)
    roles_held = list(held.values())
    found.append(checks.assignments_check(oid, roles_held, subscriptions))
    ordered = [accounts[key] for key in sorted(accounts)]
    with ThreadPoolExecutor(max_workers=max(1, min(settings.evidence_concurrency, len(ordered) or 1))) as pool:
        diagnostics = list(pool.map(lambda a: _attempt(partial(azure.diagnostic_settings, a)), ordered))
    principal_types = allowed_principal_types(allow_user_grants=settings.allow_user_grants,
                                              allow_group_grants=settings.allow_group_grants)
    for account_id, (settings_found, error) in zip(ordered, diagnostics, strict=True):
        found.append(checks.assigner_check(account_id, roles_held, mode=settings.mode, grantable=roles.GRANTABLE,
                                           principal_types=principal_types))
        found.append(checks.diagnostics_check(account_id, settings_found, error))
        if traffic:
            found.append(checks.traffic_check(account_id, traffic, now))


def _subscription(account_id: str) -> str:
    parsed = enclosing_account(account_id)
    return parsed.subscription if parsed is not None else ""


# ---- presentation -------------------------------------------------------------------------------------------


def render(report: Report) -> str:
    width = max((len(c.name) for c in report.checks), default=5)
    lines = []
    for check in report.checks:
        lines.append(f"{check.status.upper():<4}  {check.name:<{width}}  {check.detail}")
        if check.hint and check.status != checks.OK:
            lines.append(f"{'':<4}  {'':<{width}}  hint: {check.hint}")
    counts = report.counts()
    lines.append("")
    lines.append("doctor: " + ", ".join(f"{counts[s]} {s}" for s in checks.STATUSES))
    failed = [c.name for c in report.checks if c.status == FAIL]
    if failed:
        lines.append("failed: " + "; ".join(failed))
    return "\n".join(lines) + "\n"


def settings_failure(exc: SettingsError) -> Report:
    return Report(tuple(Check("settings", key, FAIL, why) for key, why in exc.problems))


def run(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    """The CLI: a table (or --json); exit 1 when any check failed."""
    try:
        settings = load_settings()
    except SettingsError as exc:
        report = settings_failure(exc)
    else:
        from shared.bootstrap import build_doctor_ports

        report = doctor_report(settings, build_doctor_ports(settings))
    out.write(json.dumps(report.to_json(), indent=2) + "\n" if args.json else render(report))
    return 0 if report.ok else 1


def deep_health(rt: Any) -> tuple[int, dict[str, Any]]:
    """GET /api/health/deep (behind the function key): the doctor's report on the instance's own runtime."""
    from shared.bootstrap import build_doctor_ports

    report = doctor_report(rt.settings, build_doctor_ports(rt.settings, store=rt.store, sinks=rt.sinks))
    return (200 if report.ok else 503), report.to_json()
