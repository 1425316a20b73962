"""`python -m localazure` prints one JSON line, serves, and stops cleanly on SIGTERM (stopped by its PID)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest
import requests

from tests.support.paths import REPO_ROOT

pytestmark = pytest.mark.slow  # runs `python -m localazure` in a subprocess


def test_cli_prints_one_json_line_serves_and_stops_on_sigterm():
    process = subprocess.Popen(
        [sys.executable, "-m", "localazure", "--scenario", "basic"],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )
    try:
        line = process.stdout.readline()
        info = json.loads(line)
        assert set(info) >= {"arm", "logs", "ca", "workspace_id", "subscription_id", "eventgrid"}
        assert info["arm"].startswith("https://127.0.0.1:") and info["logs"].startswith("https://127.0.0.1:")
        assert info["subscription_id"] == "5b0c6a4e-1d2f-4c3b-9a8e-000000000001"  # from the basic scenario
        response = requests.get(
            f"{info['arm']}/subscriptions/{info['subscription_id']}/resourceGroups/rg-ai/providers/"
            "Microsoft.CognitiveServices/accounts/foundry-hub",
            params={"api-version": "2025-09-01"}, headers={"Authorization": "Bearer t"}, verify=info["ca"], timeout=10,
        )
        assert response.status_code == 200 and response.json()["kind"] == "AIServices"
    finally:
        os.kill(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    assert process.returncode == 0, err
    assert out == ""  # nothing after the one JSON line
