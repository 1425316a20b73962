"""Health report: settings valid and the state store reachable. Never includes secret values."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shared.settings import Settings, SettingsError, load_settings, missing_host_settings


def check_health(
    env: Mapping[str, str] | None = None,
    store_probe: Callable[[Settings], None] | None = None,
) -> dict[str, Any]:
    try:
        settings = load_settings(env)
    except SettingsError as exc:
        return {
            "ok": False,
            "settings": "invalid",
            "problems": [{"key": k, "expected": why} for k, why in exc.problems],
        }
    report: dict[str, Any] = {"ok": True, "settings": "valid", "mode": settings.mode}
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
    return report
