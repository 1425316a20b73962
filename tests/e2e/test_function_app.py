"""function_app.py itself: the trigger configuration the host would read, cold-start imports, and /api/health.

The bindings are read from the app as the worker indexes it. `app.get_functions()` may run only once per
FunctionApp, so it runs once here (module fixture); other test modules call the functions without indexing.
Event Grid and HTTP behaviour: test_function_app_events.py and test_function_app_http.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

import azure.functions as func
import pytest

import function_app
from shared.bootstrap import set_runtime
from shared.state.sqlite import SqliteStore
from tests.support.functions_worker import call_http, http_request, installed_world
from tests.support.paths import REPO_ROOT

HTTP_ROUTES = {
    "diagnose": ("diagnose", "POST"),
    "alerts": ("alerts", "POST"),
    "incidents": ("incidents", "GET"),
    "incident": ("incidents/{incident_id}", "GET"),
    "approve": ("incidents/{incident_id}/approve", "POST"),
    "revoke": ("incidents/{incident_id}/revoke", "POST"),
    "health": ("health", "GET"),
    "health_deep": ("health/deep", "GET"),  # the self-check, behind the function key (issue 15)
    "review_readiness": ("review/readiness", "GET"),  # the access reviews, behind the function key (issue 16)
    "review_access": ("review/access", "GET"),
    "review_upgrade": ("review/upgrade", "GET"),
    "suppress": ("incidents/{incident_id}/suppress", "POST"),  # chat actions (issue 17)
    # links from chat: anonymous, behind Easy Auth; a GET shows the page, a POST acts
    "act_approve_page": ("act/{incident_id}/approve", "GET"),
    "act_approve": ("act/{incident_id}/approve", "POST"),
    "act_suppress_page": ("act/{incident_id}/suppress", "GET"),
    "act_suppress": ("act/{incident_id}/suppress", "POST"),
}
ANONYMOUS = ("health", "act_approve_page", "act_approve", "act_suppress_page", "act_suppress")
SDK_CLIENTS = ("azure.identity", "azure.mgmt.authorization", "azure.mgmt.cognitiveservices", "azure.monitor.query",
               "azure.eventgrid", "azure.data.tables", "azure.mgmt.resource")


@pytest.fixture(scope="module")
def indexed() -> dict[str, Any]:
    return {fn.get_function_name(): fn for fn in function_app.app.get_functions()}


def trigger(fn) -> dict:
    (binding,) = [b for b in fn.get_bindings_dict()["bindings"] if str(b["type"]).endswith("Trigger")]
    return binding


def run_python(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, env={**clean, **env}, capture_output=True,
                            text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


# ---- trigger configuration ----------------------------------------------------------------------------------


def test_every_entry_point_is_declared_once(indexed):
    assert set(indexed) == {"scan", "reviews", "events", *HTTP_ROUTES}


def test_timer_defaults(indexed):
    binding = trigger(indexed["scan"])
    assert binding["type"] == "timerTrigger"
    # The app-setting binding expression: the host resolves TRIAGE_SCAN_SCHEDULE and parses it itself.
    assert binding["schedule"] == function_app.SCAN_SCHEDULE == "%TRIAGE_SCAN_SCHEDULE%"
    assert binding["useMonitor"] is True
    assert binding["runOnStartup"] is False


def test_the_review_timer_ticks_hourly_on_a_fixed_schedule_whatever_the_setting(indexed):
    binding = trigger(indexed["reviews"])
    # Not an app setting: TRIAGE_REVIEW_SCHEDULE is off by default, and a timer bound to a missing one would stop
    # the host from indexing the app. The setting decides what a tick does (engine/review_schedule.py).
    assert binding["type"] == "timerTrigger" and binding["schedule"] == function_app.REVIEW_TICK == "0 15 * * * *"
    assert binding["runOnStartup"] is False


def test_event_grid_trigger(indexed):
    binding = trigger(indexed["events"])
    assert binding["type"] == "eventGridTrigger" and binding["name"] == "event"


@pytest.mark.parametrize("name", sorted(HTTP_ROUTES))
def test_http_routes_methods_and_auth_levels(indexed, name):
    binding = trigger(indexed[name])
    route, method = HTTP_ROUTES[name]
    assert binding["type"] == "httpTrigger"
    assert binding["route"] == route
    assert [str(m.value if hasattr(m, "value") else m) for m in binding["methods"]] == [method]
    expected = func.AuthLevel.ANONYMOUS if name in ANONYMOUS else func.AuthLevel.FUNCTION
    assert binding["authLevel"] == expected


def test_the_indexed_functions_are_the_plain_handlers(indexed):
    assert indexed["health"].get_user_function() is function_app.health.build().get_user_function()


@pytest.mark.parametrize("value", [None, "0 */1 * * * *", "0 60 * * * *"], ids=["unset", "custom", "invalid"])
def test_the_schedule_is_bound_to_the_app_setting_whatever_the_process_holds(value):
    # The binding is fixed at import (the host indexes once), so each value needs a fresh interpreter: the worker
    # must hand the host the expression, never a value (or a default) it read itself.
    out = run_python(
        "import json, function_app\n"
        "fn = next(f for f in function_app.app.get_functions() if f.get_function_name() == 'scan')\n"
        "print(json.dumps(fn.get_bindings_dict()['bindings'][0]['schedule']))",
        **({} if value is None else {"TRIAGE_SCAN_SCHEDULE": value}),
    )
    assert json.loads(out) == "%TRIAGE_SCAN_SCHEDULE%"


def test_importing_function_app_loads_no_azure_sdk_client():
    out = run_python(
        "import json, sys\n"
        "import function_app\n"
        "function_app.app.get_functions()\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('azure', 'shared')))))"
    )
    loaded = json.loads(out)
    assert "azure.functions" in loaded  # the check sees what it should see
    heavy = [m for m in loaded if m.startswith(SDK_CLIENTS) or m.startswith("shared.adapters")]
    assert heavy == []


# ---- GET /api/health --------------------------------------------------------------------------------------------


@pytest.fixture
def clean_env(monkeypatch):
    """Health reads the process's own settings: start each test from none of ours but the schedule, which every
    deployment must set (the host resolves the timer binding from it)."""
    for key in list(os.environ):
        if key.startswith("TRIAGE_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("TRIAGE_SCAN_SCHEDULE", "0 */5 * * * *")
    return monkeypatch


def health():
    return call_http("health", http_request("GET", "health"))


def test_health_ok_with_valid_settings_and_a_reachable_store(tmp_path, clean_env):
    clean_env.setenv("TRIAGE_MODE", "enforce")
    with installed_world(tmp_path) as world:
        status, body = health()
    assert status == 200
    # issue 11 added each source's health (`sources`, `sources_ok`) beside the keys this test pinned before.
    assert {k: v for k, v in body.items() if k not in ("sources", "sources_ok")} == {
        "ok": True, "settings": "valid", "mode": "enforce", "store": "reachable"}
    assert body["sources_ok"] is True
    assert [(s["name"], s["state"]) for s in body["sources"]] == [(f"logs:{world.az.workspace_id}", "unknown")]


def test_health_shows_a_failed_source_with_its_last_success_and_stays_200(tmp_path, clean_env):
    with installed_world(tmp_path) as world:
        world.run_traffic(1)
        world.scan()
        world.az.faults.add("logs", status=403, times=None)
        world.scan()
        status, body = health()
    assert status == 200 and body["ok"] is True  # the service itself is healthy; a platform recycle cures nothing
    assert body["sources_ok"] is False
    [source] = body["sources"]
    assert source["state"] == "failed" and source["last_success"] and source["last_error_at"]
    assert "HTTP 403 InsufficientAccessError" in source["last_error"]


def test_health_is_503_naming_the_invalid_settings_without_secret_values(tmp_path, clean_env):
    secret = "whsec-DoNotShow-8f7e6d5c"
    clean_env.setenv("TRIAGE_TICKET_SINKS", "webhook")
    clean_env.setenv("TRIAGE_WEBHOOK_SECRET", secret)  # set, but the URL it needs is missing
    clean_env.setenv("TRIAGE_MODE", "yolo")
    clean_env.setenv("TRIAGE_MAX_GRANTS_PER_RUN", "many")
    with installed_world(tmp_path):
        response = function_app.health.build().get_user_function()(http_request("GET", "health"))
    text = response.get_body().decode()
    assert secret not in text
    assert response.status_code == 503
    body = json.loads(text)
    assert body["ok"] is False and body["settings"] == "invalid"
    assert {p["key"] for p in body["problems"]} == {"TRIAGE_MODE", "TRIAGE_MAX_GRANTS_PER_RUN", "TRIAGE_WEBHOOK_URL"}
    assert all(p["expected"] for p in body["problems"])


def test_health_with_valid_settings_never_shows_secrets(tmp_path, clean_env):
    secret = "ghs_DoNotShow0000000000000000000000000"
    clean_env.setenv("TRIAGE_TICKET_SINKS", "webhook,github")
    clean_env.setenv("TRIAGE_WEBHOOK_URL", "https://hooks.contoso.example/triage")
    clean_env.setenv("TRIAGE_WEBHOOK_SECRET", "whsec-DoNotShow-8f7e6d5c")
    clean_env.setenv("TRIAGE_GITHUB_REPO", "contoso/ai-platform")
    clean_env.setenv("TRIAGE_GITHUB_TOKEN", secret)
    with installed_world(tmp_path):
        response = function_app.health.build().get_user_function()(http_request("GET", "health"))
    text = response.get_body().decode()
    assert response.status_code == 200
    assert secret not in text and "whsec-DoNotShow" not in text


def test_health_is_503_when_the_store_is_unreachable(tmp_path, clean_env):
    with installed_world(tmp_path) as world:
        world.rt.store.close()
        status, body = health()
        world.rt.store = SqliteStore(str(tmp_path / "state.sqlite3"))
    assert status == 503
    assert body["ok"] is False and body["settings"] == "valid"
    assert body["store"].startswith("unreachable")
    assert str(tmp_path) not in json.dumps(body)


# ---- settings errors on the other routes --------------------------------------------------------------------


def test_an_http_call_with_invalid_settings_gets_json_naming_the_keys(clean_env):
    clean_env.setenv("TRIAGE_MODE", "yolo")
    clean_env.setenv("TRIAGE_GITHUB_TOKEN", "ghs_DoNotShow0000")
    clean_env.setenv("TRIAGE_TICKET_SINKS", "github")
    set_runtime(None)  # the runtime is built from the (invalid) settings on first use
    try:
        response = function_app.incidents.build().get_user_function()(http_request("GET", "incidents"))
    finally:
        set_runtime(None)
    text = response.get_body().decode()
    assert "Traceback" not in text and "ghs_DoNotShow" not in text
    assert response.status_code == 500
    body = json.loads(text)
    assert body["error"] == "invalid settings"
    assert {p["key"] for p in body["problems"]} == {"TRIAGE_MODE", "TRIAGE_GITHUB_REPO"}


def test_an_http_call_whose_runtime_cannot_be_built_gets_json_not_a_trace(clean_env, tmp_path):
    blocker = tmp_path / "not-a-directory"
    blocker.write_text("")
    clean_env.setenv("TRIAGE_LOCAL_TOKEN", "local-only-token")  # no Entra credential needed to build the clients
    clean_env.setenv("TRIAGE_SQLITE_PATH", str(blocker / "state.sqlite3"))  # the store cannot be opened
    set_runtime(None)
    try:
        response = function_app.incidents.build().get_user_function()(http_request("GET", "incidents"))
        status, health_body = health()
    finally:
        set_runtime(None)
    text = response.get_body().decode()
    assert response.status_code == 500 and "Traceback" not in text
    assert json.loads(text)["error"].startswith("internal error (StoreError)")
    assert str(blocker) not in text and "local-only-token" not in text
    assert status == 503 and health_body["store"] == "unreachable: StoreError"


# ---- the schedule: judged as the host reads it, reported without failing the HTTP functions --------------------


def runtime_from_the_environment(clean_env, tmp_path, schedule: str | None) -> None:
    """A runtime the functions build from the process's settings (no stand-in needed to list incidents)."""
    clean_env.setenv("TRIAGE_LOCAL_TOKEN", "local-only-token")
    clean_env.setenv("TRIAGE_SQLITE_PATH", str(tmp_path / "state.sqlite3"))
    if schedule is None:
        clean_env.delenv("TRIAGE_SCAN_SCHEDULE")
    else:
        clean_env.setenv("TRIAGE_SCAN_SCHEDULE", schedule)
    set_runtime(None)


@pytest.mark.parametrize("schedule", ["0 60 * * * *", "   ", None], ids=["minute-60", "blank", "unset"])
def test_a_schedule_the_host_would_refuse_is_reported_by_health_while_the_other_routes_work(clean_env, tmp_path,
                                                                                          schedule):
    runtime_from_the_environment(clean_env, tmp_path, schedule)
    try:
        listed = call_http("incidents", http_request("GET", "incidents"))
        status, body = health()
    finally:
        set_runtime(None)
    assert listed == (200, {"incidents": []})
    assert status == 503 and body["ok"] is False and body["store"] == "reachable"
    assert [p["key"] for p in body["problems"]] == ["TRIAGE_SCAN_SCHEDULE"]
    says = {"0 60 * * * *": "the minute field '60'", "   ": "empty", None: "required"}[schedule]
    assert says in body["problems"][0]["expected"]


@pytest.mark.parametrize("schedule", ["00:05:00", "0 30 9 * Jan Mon", "*/30 * * * *"])
def test_schedules_the_host_accepts_keep_health_ok(clean_env, tmp_path, schedule):
    runtime_from_the_environment(clean_env, tmp_path, schedule)
    try:
        status, body = health()
    finally:
        set_runtime(None)
    assert (status, body["ok"], body["settings"]) == (200, True, "valid")


def test_the_scan_reports_a_bad_schedule(tmp_path, monkeypatch):
    import argparse
    import io

    from shared import commands
    from tests.support.engine import build_runtime

    with installed_world(tmp_path) as world:
        env = {**world.env, "TRIAGE_SCAN_SCHEDULE": "0 60 * * * *"}
        monkeypatch.setattr(commands, "_runtime", lambda: build_runtime(env, world.clock))
        out = io.StringIO()
        assert commands.scan(argparse.Namespace(json=True), None, out) == 0
        (problem,) = json.loads(out.getvalue())["settings_problems"]
        assert problem["key"] == "TRIAGE_SCAN_SCHEDULE" and "the minute field '60'" in problem["expected"]

        out = io.StringIO()
        commands.scan(argparse.Namespace(json=False), None, out)
        assert "SETTING TRIAGE_SCAN_SCHEDULE: the minute field '60'" in out.getvalue()


# ---- the review timer ---------------------------------------------------------------------------------------------


def test_the_review_timer_does_nothing_while_the_schedule_is_off(clean_env, tmp_path, monkeypatch):
    from azure.functions.timer import TimerRequest

    from shared import bootstrap

    runtime_from_the_environment(clean_env, tmp_path, "0 */5 * * * *")

    def no_reader(*args, **kwargs):
        raise AssertionError("the reviews were read with TRIAGE_REVIEW_SCHEDULE off")

    monkeypatch.setattr(bootstrap, "build_review_reader", no_reader)
    try:
        function_app.reviews.build().get_user_function()(TimerRequest(past_due=False))
        store = bootstrap.get_runtime().store
        assert store.get_value("review-schedule") == (None, None)
    finally:
        set_runtime(None)
