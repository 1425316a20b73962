"""Health report: settings valid, the state store reachable, and each failure source's last read. Never includes
secret values (source messages are shown redacted)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shared.settings import Settings, SettingsError, load_settings, missing_host_settings

# The answer to GET /api/health?deep=1: the route is anonymous, so the deep checks have their own, keyed one.
DEEP_NEEDS_KEY = "deep checks need the function key: GET /api/health/deep?code=<function key>"


def wants_deep(value: str | None) -> bool:
    return (value or "").strip().lower() not in ("", "0", "false", "no")


def check_health(
    env: Mapping[str, str] | None = None,
    store_probe: Callable[[Settings], None] | None = None,
    sources_probe: Callable[[Settings], list[dict[str, Any]]] | None = None,
) -> dict[str, Any]:
    """`ok` is the service's own health (settings, store): a Log Analytics workspace that failed or has no data
    yet does not make it unhealthy (a platform health check would recycle instances that cannot cure it); it shows
    in `sources` (each source's state, since, last success, last error and when) and `sources_ok`."""
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        return {
            "ok": False,
            "settings": "invalid",
            "problems": [{"key": k, "expected": why} for k, why in exc.problems],
        }
    report: dict[str, Any] = {"ok": True, "settings": "valid", "mode": settings.mode}
    if settings.unknown_settings:  # most likely misspelled; they change nothing, so health stays ok
        report["unknown_settings"] = [{"key": k, "closest": c or None} for k, c in settings.unknown_settings]
    # A schedule the host refuses (or cannot resolve) stops only the timer: the service runs, health says so.
    host_problems = [*settings.host_problems, *missing_host_settings(env)]
    if host_problems:
        report.update(ok=False, settings="invalid",
                      problems=[{"key": k, "expected": why} for k, why in host_problems])
    if store_probe is not None:
        try:
            store_probe(settings)
            report["store"] = "reachable"
        except Exception as exc:  # noqa: BLE001 - health must report, not raise
            report["ok"] = False
            report["store"] = f"unreachable: {type(exc).__name__}"
    if sources_probe is not None and report["ok"]:  # the health is kept in the store
        try:
            report["sources"] = sources_probe(settings)
            report["sources_ok"] = not any(s.get("state") == "failed" for s in report["sources"])
        except Exception as exc:  # noqa: BLE001 - health must report, not raise
            report["sources"] = f"unreadable: {type(exc).__name__}"
            report["sources_ok"] = False
    return report
