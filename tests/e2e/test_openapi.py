"""docs/openapi.yaml: a valid OpenAPI 3.1 document, in step with function_app's HTTP routes both ways, and true of
the replies the real handlers give (each JSON body checked against the schema of its status code)."""

from __future__ import annotations

import functools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml
from openapi_spec_validator import validate

from localazure import FakeCredential
from shared.bootstrap import build_review_reader, set_runtime
from tests.support.functions_worker import (
    ACCOUNT_ID,
    call_http,
    deliver,
    failure_cloudevent,
    http_request,
    installed_world,
    log_alert,
    sample,
)

REPO_ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO_ROOT / "docs" / "openapi.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
PASTED = sample("failure_cloudevent.json")["data"]


INDEX_ROUTES = (
    "import json, function_app\n"
    "print(json.dumps([{'name': fn.get_function_name(), 'binding': b} for fn in function_app.app.get_functions()\n"
    "                  for b in fn.get_bindings_dict()['bindings'] if b['type'] == 'httpTrigger'], default=str))"
)


@functools.cache
def http_routes() -> dict[tuple[str, str], dict[str, Any]]:
    """(/api/<route>, method) -> {name, binding}, from the httpTrigger bindings as the worker indexes them: in a
    fresh interpreter, since `app.get_functions()` may run only once per process (tests/e2e/test_function_app.py)."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TRIAGE_")}
    result = subprocess.run([sys.executable, "-c", INDEX_ROUTES], cwd=REPO_ROOT, env=clean, capture_output=True,
                            text=True, timeout=60, check=True)
    return {(f"/api/{entry['binding']['route']}", str(method).lower()): entry
            for entry in json.loads(result.stdout) for method in entry["binding"]["methods"]}


def operation(path: str, method: str) -> dict[str, Any]:
    return SPEC["paths"][path][method]


def resolved(node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local $ref (#/components/...) to what it names."""
    while "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def validator(schema: dict[str, Any]) -> jsonschema.Draft202012Validator:
    # The components ride along so the schema's $refs resolve inside one JSON Schema 2020-12 document.
    return jsonschema.Draft202012Validator({**schema, "components": SPEC["components"]},
                                           format_checker=jsonschema.FormatChecker())


def check_request(path: str, method: str, body: Any) -> None:
    """A JSON request body the test sends is one the spec describes (so the spec's request schemas are true too)."""
    request = operation(path, method).get("requestBody")
    if isinstance(body, dict) and request:
        validator(request["content"]["application/json"]["schema"]).validate(body)


def check_reply(path: str, method: str, status: int, body: Any) -> None:
    """The reply's status is documented for the operation and its body matches that status's JSON schema."""
    responses = operation(path, method)["responses"]
    assert str(status) in responses, f"{method.upper()} {path} answered {status}, not in the spec: {body}"
    response = resolved(responses[str(status)])
    schema = response["content"]["application/json"]["schema"]
    validator(schema).validate(body)


# ---- the document -----------------------------------------------------------------------------------------------


def test_the_spec_is_a_valid_openapi_document():
    assert SPEC["openapi"].startswith("3.1")
    validate(SPEC)


def test_the_validator_refuses_a_broken_document():
    """The validation above can fail: a response without a description is not OpenAPI."""
    broken = json.loads(json.dumps(SPEC))
    del broken["paths"]["/api/diagnose"]["post"]["responses"]["200"]["description"]
    with pytest.raises(Exception, match="description"):
        validate(broken)


# ---- in step with function_app ---------------------------------------------------------------------------------


def test_every_route_is_in_the_spec_and_every_spec_path_is_a_route():
    indexed = set(http_routes())
    documented = {(path, method) for path, item in SPEC["paths"].items() for method in item
                  if method in ("get", "put", "post", "delete", "patch", "head", "options")}
    assert indexed, "function_app indexed no HTTP route"
    assert documented == indexed


def test_each_operation_is_named_after_its_function_and_keyed_as_the_host_keys_it():
    for (path, method), fn in http_routes().items():
        op = operation(path, method)
        assert op["operationId"] == fn["name"]
        anonymous = str(fn["binding"]["authLevel"]).lower().endswith("anonymous")
        security = op.get("security", SPEC["security"])
        assert (security == []) is anonymous, path


def test_every_path_parameter_is_declared():
    for path, item in SPEC["paths"].items():
        for method, op in item.items():
            declared = {resolved(p)["name"] for p in op.get("parameters", ()) if resolved(p)["in"] == "path"}
            in_path = {part[1:-1] for part in path.split("/") if part.startswith("{")}
            assert declared == in_path, (method, path)


def test_every_keyed_operation_documents_the_server_errors():
    for path, method in http_routes():
        if operation(path, method).get("security") == []:
            continue
        server_error = resolved(operation(path, method)["responses"]["500"])["content"]["application/json"]
        assert server_error["schema"]["oneOf"], path


# ---- the real replies match ------------------------------------------------------------------------------------


def call(name: str, method: str, path: str, *, body: Any = None, params: dict[str, str] | None = None,
         headers: dict[str, str] | None = None, route_params: dict[str, str] | None = None) -> tuple[int, Any]:
    check_request(path, method.lower(), body)
    route = path.removeprefix("/api/")
    for key, value in (route_params or {}).items():
        route = route.replace("{" + key + "}", value)
    status, reply = call_http(name, http_request(method, route, body=body, params=params, headers=headers,
                                                 route_params=route_params))
    check_reply(path, method.lower(), status, reply)
    return status, reply


def test_the_handlers_replies_match_their_schemas(tmp_path, monkeypatch):
    statuses: set[tuple[str, int]] = set()

    def seen(name: str, result: tuple[int, Any]) -> Any:
        statuses.add((name, result[0]))
        return result[1]

    with installed_world(tmp_path, mode="recommend") as world:
        # the review routes read the stand-in's ARM and Log Analytics with a test credential
        monkeypatch.setattr("shared.bootstrap.build_review_reader", lambda settings: build_review_reader(
            settings, credential=FakeCredential(), client_options={"retry_total": 0}))
        pasted = {k: PASTED[k] for k in ("status", "code", "message", "auth", "object_id")}
        seen("diagnose", call("diagnose", "POST", "/api/diagnose", body={**pasted, "resource_id": ACCOUNT_ID}))
        seen("diagnose", call("diagnose", "POST", "/api/diagnose", body=b"{not json"))
        seen("diagnose", call("diagnose", "POST", "/api/diagnose", body={**pasted, "resource_id": "/not/an/account"}))

        deliver(failure_cloudevent("7a2b3c4d-0000-4000-8000-00000000e0a1"))
        (incident,) = world.rt.store.list_incidents()
        one = {"incident_id": incident.id}
        seen("incidents", call("incidents", "GET", "/api/incidents"))
        seen("incidents", call("incidents", "GET", "/api/incidents", params={"status": "recommended"}))
        seen("incidents", call("incidents", "GET", "/api/incidents", params={"status": "nope"}))
        detail = seen("incident", call("incident", "GET", "/api/incidents/{incident_id}", route_params=one))
        assert detail["approval_terms"] and detail["audit"]
        seen("incident", call("incident", "GET", "/api/incidents/{incident_id}", route_params={"incident_id": "x"}))

        approve = "/api/incidents/{incident_id}/approve"
        seen("approve", call("approve", "POST", approve, route_params=one))  # nobody named: 400
        seen("approve", call("approve", "POST", approve, body={"by": "alex", "fingerprint": "other"},
                             route_params=one))  # 409: the recommendation offers another diagnosis
        seen("approve", call("approve", "POST", approve, body={"by": "alex"}, route_params={"incident_id": "x"}))
        granted = seen("approve", call("approve", "POST", approve, route_params=one,
                                       headers={"X-MS-CLIENT-PRINCIPAL-NAME": "alex@contoso.com"}))
        assert granted["grant"]["role_name"]
        seen("revoke", call("revoke", "POST", "/api/incidents/{incident_id}/revoke", body={"by": "alex"},
                            route_params=one))
        seen("incident", call("incident", "GET", "/api/incidents/{incident_id}", route_params=one))  # revocations

        seen("alerts", call("alerts", "POST", "/api/alerts", body=log_alert()))
        seen("alerts", call("alerts", "POST", "/api/alerts", body={"schemaId": "something else"}))

        for name in ("review_readiness", "review_access", "review_upgrade"):
            path = "/api/" + name.replace("_", "/")
            reviewed = seen(name, call(name, "GET", path, params={"account": ACCOUNT_ID}))
            assert "problem" not in reviewed and reviewed.get("readiness", reviewed.get("accounts")), reviewed
            seen(name, call(name, "GET", path, params={"days": "0"}))

        seen("health", call("health", "GET", "/api/health", params={"deep": "1"}))
        monkeypatch.setenv("TRIAGE_SCAN_SCHEDULE", "0 */5 * * * *")  # health reads the process's own settings
        health = seen("health", call("health", "GET", "/api/health"))
        assert health["sources"], health
        seen("health_deep", call("health_deep", "GET", "/api/health/deep"))

    assert statuses >= {("diagnose", 200), ("diagnose", 400), ("incidents", 200), ("incidents", 400),
                        ("incident", 200), ("incident", 404), ("approve", 200), ("approve", 400),
                        ("approve", 404), ("approve", 409), ("revoke", 200), ("alerts", 200), ("alerts", 400),
                        ("review_readiness", 200), ("review_readiness", 400), ("review_access", 200),
                        ("review_upgrade", 400), ("health", 401), ("health", 200)}
    assert {status for name, status in statuses if name == "health_deep"} in ({200}, {503})


def test_the_settings_and_internal_error_bodies_match(monkeypatch, tmp_path):
    for key in [k for k in os.environ if k.startswith("TRIAGE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("TRIAGE_MODE", "yolo")
    set_runtime(None)  # built from the (invalid) settings on first use
    try:
        status, body = call("incidents", "GET", "/api/incidents")
        assert status == 500 and body["error"] == "invalid settings"
        monkeypatch.setenv("TRIAGE_MODE", "observe")
        monkeypatch.setenv("TRIAGE_LOCAL_TOKEN", "local-only-token")
        blocker = tmp_path / "not-a-directory"
        blocker.write_text("")
        monkeypatch.setenv("TRIAGE_SQLITE_PATH", str(blocker / "state.sqlite3"))  # the store cannot be opened
        status, body = call("incident", "GET", "/api/incidents/{incident_id}", route_params={"incident_id": "x"})
        assert status == 500 and body["error"].startswith("internal error")
        monkeypatch.setenv("TRIAGE_SCAN_SCHEDULE", "0 */5 * * * *")
        status, body = call("health", "GET", "/api/health")
        assert status == 503 and body["store"].startswith("unreachable")
    finally:
        set_runtime(None)


def test_a_reply_outside_the_spec_is_caught():
    """check_reply can fail: an undocumented status, and a body missing a required field."""
    with pytest.raises(AssertionError, match="not in the spec"):
        check_reply("/api/incidents", "get", 418, {"error": "teapot"})
    with pytest.raises(jsonschema.ValidationError):
        check_reply("/api/incidents/{incident_id}/approve", "post", 200, {"incident_id": "x", "status": "assigned"})
    with pytest.raises(jsonschema.ValidationError):
        check_reply("/api/diagnose", "post", 500, {"error": "invalid settings", "problems": [{"key": "K"}]})
