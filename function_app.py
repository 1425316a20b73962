"""Azure Functions entry points (Python v2 programming model). Thin: parse input, call `shared`, return.

Heavy Azure SDK modules are imported inside the handlers, never here: this module is on the cold-start path. So is
OpenTelemetry: the runtime sets it up on an instance's first invocation, and only when
APPLICATIONINSIGHTS_CONNECTION_STRING is set (shared.bootstrap.instance_telemetry).
"""

import json
import logging

import azure.functions as func

app = func.FunctionApp(http_auth_level=func.AuthLevel.FUNCTION)
log = logging.getLogger("triage")

# An app-setting binding expression: the Functions host resolves and parses the schedule itself (NCRONTAB or, on
# App Service and Premium plans, a TimeSpan), so TRIAGE_SCAN_SCHEDULE must be set. shared.settings judges the value
# as the host will and reports a bad one through /api/health and the scan, never by failing the HTTP functions.
SCAN_SCHEDULE = "%TRIAGE_SCAN_SCHEDULE%"


# The scheduled reviews' timer ticks hourly on a fixed schedule, not an app setting: TRIAGE_REVIEW_SCHEDULE (off by
# default) decides whether a tick runs them, so an unset setting never stops the host from indexing the app.
REVIEW_TICK = "0 15 * * * *"


def _json(body: dict, status: int = 200) -> func.HttpResponse:
    return func.HttpResponse(json.dumps(body, default=str), status_code=status, mimetype="application/json")


def _serve(name: str, handler) -> func.HttpResponse:
    """Run an HTTP handler with the shared runtime in a span called `name`; configuration and internal errors become
    JSON, never traces."""
    from shared.bootstrap import get_runtime
    from shared.settings import SettingsError

    try:
        # Inside the try: building the runtime can fail too (store unreachable), and must not escape as a trace.
        rt = get_runtime()
        with rt.telemetry.span(name):
            status, body = handler(rt)
    except SettingsError as exc:
        return _json({"error": "invalid settings", "problems": [{"key": k, "expected": w} for k, w in exc.problems]},
                     500)
    except Exception as exc:  # noqa: BLE001 - the caller gets a JSON error; details go to the log
        log.exception("request failed", extra={"route": name, "error": type(exc).__name__})
        return _json({"error": f"internal error ({type(exc).__name__}); see the function log"}, 500)
    return _json(body, status)


@app.function_name(name="scan")
@app.timer_trigger(schedule=SCAN_SCHEDULE, arg_name="timer", run_on_startup=False, use_monitor=True)
def scan(timer: func.TimerRequest) -> None:
    # A past-due run simply runs: every step is idempotent, so overlapping or late cycles are safe.
    from shared.bootstrap import get_runtime
    from shared.engine.scan import run_scan

    rt = get_runtime()
    for key, expected in rt.settings.host_problems:
        log.warning("setting %s: %s", key, expected, extra={"setting": key})
    report = run_scan(rt)
    log.info("scan %s: %s", report.correlation_id, json.dumps(report.to_json()["actions"]), extra={
        "correlation_id": report.correlation_id, "signals": report.signals, "rejected": report.rejected,
        "grants": report.grants, "partial": len(report.partial), "failed_sources": len(report.failed_sources),
        "evidence_errors": len(report.evidence_errors)})


@app.function_name(name="reviews")
@app.timer_trigger(schedule=REVIEW_TICK, arg_name="timer", run_on_startup=False, use_monitor=True)
def reviews(timer: func.TimerRequest) -> None:
    from shared.bootstrap import get_runtime
    from shared.core.review_schedule import parse_review_schedule

    rt = get_runtime()
    slot = parse_review_schedule(rt.settings.review_schedule)
    if slot is None:
        return  # off: nothing is built or read
    from shared.bootstrap import build_review_reader
    from shared.engine.review_schedule import run_scheduled_reviews
    from shared.engine.reviews import known_names

    outcome = run_scheduled_reviews(rt.store, build_review_reader(rt.settings), rt.sinks, slot=slot, now=rt.clock(),
                                    mode=rt.settings.mode, names=known_names(rt.settings))
    log.info("scheduled reviews: %s", outcome["reason"], extra={
        "ran": outcome["ran"], "tickets": len(outcome.get("tickets", ())),
        "could_not_check": outcome.get("could_not_check", 0)})


@app.function_name(name="events")
@app.event_grid_trigger(arg_name="event")
def events(event: func.EventGridEvent) -> None:
    from shared.bootstrap import get_runtime
    from shared.engine.events import handle_event_safely

    rt = get_runtime()
    with rt.telemetry.span("event"):
        outcome = handle_event_safely(rt, event)
        rt.telemetry.annotate(event_id=outcome.event_id or "", result=outcome.result)
    log.info("event %s: %s %s", outcome.event_id, outcome.result, outcome.detail,
             extra={"event_id": outcome.event_id, "result": outcome.result})


@app.function_name(name="diagnose")
@app.route(route="diagnose", methods=["POST"])
def diagnose(req: func.HttpRequest) -> func.HttpResponse:
    from shared.engine.http_api import diagnose_request

    return _serve("diagnose", lambda rt: diagnose_request(rt, req.get_body()))


@app.function_name(name="alerts")
@app.route(route="alerts", methods=["POST"])
def alerts(req: func.HttpRequest) -> func.HttpResponse:
    from shared.engine.http_api import alerts_request

    return _serve("alerts", lambda rt: alerts_request(rt, req.get_body()))


@app.function_name(name="incidents")
@app.route(route="incidents", methods=["GET"])
def incidents(req: func.HttpRequest) -> func.HttpResponse:
    from shared.engine.http_api import list_incidents

    return _serve("incidents", lambda rt: list_incidents(rt, req.params))


@app.function_name(name="incident")
@app.route(route="incidents/{incident_id}", methods=["GET"])
def incident(req: func.HttpRequest) -> func.HttpResponse:
    from shared.engine.http_api import get_incident

    return _serve("incident", lambda rt: get_incident(rt, req.route_params.get("incident_id", "")))


def _incident_action(req: func.HttpRequest, action: str) -> func.HttpResponse:
    from shared.engine.http_api import incident_action

    headers = {k.lower(): v for k, v in req.headers.items()}
    return _serve(action, lambda rt: incident_action(rt, req.route_params.get("incident_id", ""), action, headers,
                                                     req.get_body()))


@app.function_name(name="approve")
@app.route(route="incidents/{incident_id}/approve", methods=["POST"])
def approve(req: func.HttpRequest) -> func.HttpResponse:
    return _incident_action(req, "approve")


@app.function_name(name="revoke")
@app.route(route="incidents/{incident_id}/revoke", methods=["POST"])
def revoke(req: func.HttpRequest) -> func.HttpResponse:
    return _incident_action(req, "revoke")


@app.function_name(name="suppress")
@app.route(route="incidents/{incident_id}/suppress", methods=["POST"])
def suppress(req: func.HttpRequest) -> func.HttpResponse:
    from shared.engine.act_links import suppress_request

    headers = {k.lower(): v for k, v in req.headers.items()}
    return _serve("suppress", lambda rt: suppress_request(rt, req.route_params.get("incident_id", ""), headers,
                                                          req.get_body()))


def _act_link(req: func.HttpRequest, action: str) -> func.HttpResponse:
    """A link route opened from a chat message: anonymous to the Functions host (a chat link never carries a
    function key), refused unless App Service authentication signed the person in; a GET never acts
    (shared/engine/act_links.py). Answers are small HTML pages."""
    import os

    from shared.bootstrap import get_runtime
    from shared.core.chat_actions import PAGE_HEADERS, ActionPage, render_page
    from shared.engine.act_links import act_link
    from shared.settings import SettingsError

    headers = {k.lower(): v for k, v in req.headers.items()}
    name = f"act_{action}" if req.method.upper() == "POST" else f"act_{action}_page"
    try:
        rt = get_runtime()
        with rt.telemetry.span(name):
            status, page = act_link(rt, req.route_params.get("incident_id", ""), action, method=req.method,
                                    headers=headers, body=req.get_body(), request_url=req.url,
                                    auth_enabled=os.environ.get("WEBSITE_AUTH_ENABLED"))
    except SettingsError:
        status, page = 500, render_page(ActionPage("The service's settings are invalid", note="See /api/health."))
    except Exception as exc:  # noqa: BLE001 - the person gets a page; details go to the log
        log.exception("request failed", extra={"route": name, "error": type(exc).__name__})
        status, page = 500, render_page(ActionPage("Internal error", note="See the function log."))
    return func.HttpResponse(page, status_code=status, headers=dict(PAGE_HEADERS), mimetype="text/html",
                             charset="utf-8")


# One function per method: a GET shows the page, a POST acts (and each has its own name in the OpenAPI document).
@app.function_name(name="act_approve_page")
@app.route(route="act/{incident_id}/approve", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def act_approve_page(req: func.HttpRequest) -> func.HttpResponse:
    return _act_link(req, "approve")


@app.function_name(name="act_approve")
@app.route(route="act/{incident_id}/approve", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def act_approve(req: func.HttpRequest) -> func.HttpResponse:
    return _act_link(req, "approve")


@app.function_name(name="act_suppress_page")
@app.route(route="act/{incident_id}/suppress", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def act_suppress_page(req: func.HttpRequest) -> func.HttpResponse:
    return _act_link(req, "suppress")


@app.function_name(name="act_suppress")
@app.route(route="act/{incident_id}/suppress", methods=["POST"], auth_level=func.AuthLevel.ANONYMOUS)
def act_suppress(req: func.HttpRequest) -> func.HttpResponse:
    return _act_link(req, "suppress")


@app.function_name(name="health")
@app.route(route="health", methods=["GET"], auth_level=func.AuthLevel.ANONYMOUS)
def health(req: func.HttpRequest) -> func.HttpResponse:
    from shared.health import DEEP_NEEDS_KEY, check_health, wants_deep

    if wants_deep(req.params.get("deep")):  # anonymous: the deep checks live behind the function key
        return _json({"error": DEEP_NEEDS_KEY}, 401)
    report = check_health(store_probe=_probe_store, sources_probe=_source_health)
    return _json(report, 200 if report["ok"] else 503)


@app.function_name(name="health_deep")
@app.route(route="health/deep", methods=["GET"])
def health_deep(req: func.HttpRequest) -> func.HttpResponse:
    """The self-check of `python -m shared doctor` on this instance: 200 when no check failed, else 503."""
    from shared.doctor import deep_health

    return _serve("health_deep", deep_health)


def _probe_store(settings) -> None:
    from shared.bootstrap import get_runtime

    get_runtime().store.ping()


def _source_health(settings) -> list:
    from shared.bootstrap import get_runtime
    from shared.engine.sources import source_health

    return source_health(get_runtime(), public=True)


def _review(req: func.HttpRequest, name: str) -> func.HttpResponse:
    """The access reviews (docs/reviews.md), behind the function key like the other routes: reads only."""
    from shared.bootstrap import build_review_reader
    from shared.engine import http_api

    query = dict(req.params)
    if name == "review_readiness":
        return _serve(name, lambda rt: http_api.review_readiness_request(rt, build_review_reader(rt.settings), query))
    return _serve(name, lambda rt: http_api.review_access_request(rt, build_review_reader(rt.settings), query,
                                                                  upgrade_only=name == "review_upgrade"))


@app.function_name(name="review_readiness")
@app.route(route="review/readiness", methods=["GET"])
def review_readiness(req: func.HttpRequest) -> func.HttpResponse:
    return _review(req, "review_readiness")


@app.function_name(name="review_access")
@app.route(route="review/access", methods=["GET"])
def review_access(req: func.HttpRequest) -> func.HttpResponse:
    return _review(req, "review_access")


@app.function_name(name="review_upgrade")
@app.route(route="review/upgrade", methods=["GET"])
def review_upgrade(req: func.HttpRequest) -> func.HttpResponse:
    return _review(req, "review_upgrade")
