"""The TRIAGE_* settings that point the service at a running stand-in (`python -m localazure --print-env`)."""

from __future__ import annotations

import shlex
from typing import Any


def settings_env(az: Any, scenario: Any = None) -> dict[str, str]:
    """Endpoints, CA bundle, subscription, the workspaces (the main one, then the scenario's others), the own
    identity's local token, and the Event Grid topic: what `python -m shared scan|doctor|...` needs to reach it."""
    from localazure import scenario as scenario_file

    listed = (scenario_file.read(scenario).get("workspaces") or []) if scenario else []
    others = [w["id"] for w in listed if isinstance(w, dict) and w.get("id")]
    workspaces = [az.workspace_id, *(w for w in others if w.lower() != az.workspace_id.lower())]
    return {
        "TRIAGE_ARM_ENDPOINT": az.arm_url,
        "TRIAGE_LOGS_ENDPOINT": az.logs_url,
        "TRIAGE_CA_BUNDLE": az.ca_path,
        "TRIAGE_SUBSCRIPTION_ID": az.subscription_id,
        "TRIAGE_WORKSPACE_IDS": ",".join(workspaces),
        "TRIAGE_LOCAL_TOKEN": az.own_token(),
        "TRIAGE_EVENTGRID_TOPIC_ENDPOINT": az.eventgrid_url,
        "TRIAGE_EVENTGRID_TOPIC_KEY": az.eventgrid_key,
    }


def env_lines(env: dict[str, str]) -> str:
    """`KEY=value` lines a POSIX shell can source (`set -a; . ./localazure.env; set +a`): values quoted if needed."""
    return "".join(f"{key}={shlex.quote(value)}\n" for key, value in env.items())
