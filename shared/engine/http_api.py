"""The HTTP API behind function_app's routes, as plain functions: (runtime, request data) -> (status, JSON).

Bad requests get 400 with a JSON error naming the problem; nothing returns a stack trace.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from typing import Any

from shared.core import incidents as inc
from shared.core.allowlist import normalize_object_id
from shared.core.diagnose import diagnose
from shared.core.events import is_account_or_project_id, parse_alert
from shared.core.model import ENTRA, FailureSignal
from shared.core.signals import SignalError, parse_failure
from shared.engine.approvals import ActionRefused, NotFound, approve, revoke
from shared.engine.events import handle_alert, reject
from shared.engine.runtime import Runtime, new_correlation_id

log = logging.getLogger("triage")

Reply = tuple[int, dict[str, Any]]


def error(status: int, message: str) -> Reply:
    return status, {"error": message}


def parse_json_body(body: bytes) -> tuple[Any, str | None]:
    if not body:
        return None, "the request body must be a JSON object"
    try:
        return json.loads(body.decode("utf-8")), None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        return None, f"the request body is not valid JSON ({type(exc).__name__})"


def diagnose_request(rt: Runtime, body: bytes) -> Reply:
    """Paste an error (classify fields + optional resource_id) or name principal_id + resource_id. Writes nothing."""
    data, problem = parse_json_body(body)
    if problem:
        return error(400, problem)
    if not isinstance(data, dict):
        return error(400, "the request body must be a JSON object")
    resource_id = data.get("resource_id")
    if resource_id is not None and not isinstance(resource_id, str):
        return error(400, "resource_id must be a string")
    # Checked here, not left to the evidence look-up: a non-ARM id used to end as a 500 (ValueError).
    if resource_id and not is_account_or_project_id(resource_id):
        return error(400, "resource_id must be a Microsoft.CognitiveServices account (or project) resource id: "
                          "/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{a}")
    for name in ("endpoint", "route"):
        if data.get(name) is not None and not isinstance(data.get(name), str):
            return error(400, f"{name} must be a string")
    if "status" in data:
        try:
            signal = parse_failure(data)
        except SignalError as exc:
            return error(400, str(exc))
        if resource_id:
            from dataclasses import replace

            signal = replace(signal, resource_id=resource_id)
    else:
        principal = normalize_object_id(data.get("principal_id") if isinstance(data.get("principal_id"), str)
                                        else None)
        if principal is None or not resource_id:
            return error(400, "give either the failure fields (status, code, message, endpoint, auth, object_id) "
                              "or principal_id (a GUID) and resource_id")
        signal = FailureSignal(status=401, code="PermissionDenied", object_id=principal, auth=ENTRA,
                               resource_id=resource_id, endpoint=data.get("endpoint"), route=data.get("route"))
    evidence = None
    if signal.resource_id and signal.object_id:
        pair = (normalize_object_id(signal.object_id), signal.resource_id)
        rt.refresh_evidence()
        evidence = rt.evidence.gather_evidence({pair}).get(pair)
    diagnosis = diagnose(signal, evidence, now=rt.clock(), propagation_window=rt.window)
    return 200, {"diagnosis": diagnosis.to_json(), "live_evidence": evidence is not None}


def alerts_request(rt: Runtime, body: bytes) -> Reply:
    data, problem = parse_json_body(body)
    if problem:
        reject(rt, "", problem, body[:2000].decode("utf-8", "replace"))
        return error(400, problem)
    parsed = parse_alert(data, now=rt.clock())
    if not hasattr(parsed, "alert_id"):
        reject(rt, "", parsed.reason, data)
        return error(400, parsed.reason)
    key = f"alert:{parsed.alert_id}:{parsed.start.isoformat()}:{parsed.end.isoformat()}" if parsed.alert_id else ""
    if key and not rt.store.mark_event_processed(key, rt.clock()):
        return 200, {"result": "duplicate", "alert_id": parsed.alert_id}
    try:
        detail = handle_alert(rt, parsed, new_correlation_id())
    except Exception:
        if key:
            rt.store.forget_event(key)
        raise
    return 200, {"result": "processed", "alert_id": parsed.alert_id, "detail": detail}


def list_incidents(rt: Runtime, query: Mapping[str, str]) -> Reply:
    status = query.get("status")
    if status is not None and status not in inc.STATUSES:
        return error(400, f"status must be one of: {', '.join(inc.STATUSES)}")
    incidents = rt.store.list_incidents(status)
    return 200, {"incidents": [summary(i) for i in incidents]}


def get_incident(rt: Runtime, incident_id: str) -> Reply:
    incident = rt.store.get_incident(incident_id)
    if incident is None:
        return error(404, f"no incident {incident_id}")
    audit = rt.store.list_audit(incident_id)
    body = incident.to_record()
    body["audit"] = [
        {"at": a.at.isoformat(), "kind": a.kind, "actor": a.actor, "correlation_id": a.correlation_id,
         "detail": a.detail, "inputs": a.inputs}
        for a in audit
    ]
    return 200, body


def summary(incident: inc.Incident) -> dict[str, Any]:
    return {
        "id": incident.id,
        "status": incident.status,
        "cause": incident.cause,
        "principal_id": incident.principal_id,
        "resource_id": incident.resource_id,
        "count": incident.count,
        "first_seen": incident.first_seen.isoformat(),
        "last_seen": incident.last_seen.isoformat(),
        "role": incident.diagnosis.role_name if incident.diagnosis else None,
        "scope": incident.diagnosis.scope if incident.diagnosis else None,
        "tickets": incident.ticket_refs,
    }


def engineer_identity(headers: Mapping[str, str], data: Any) -> str | None:
    """Who is acting: App Service authentication's principal header wins over a name in the body."""
    for name in ("x-ms-client-principal-name", "x-ms-client-principal-id"):
        value = headers.get(name)
        if value:
            return value.strip()
    if isinstance(data, dict) and isinstance(data.get("by"), str) and data["by"].strip():
        return data["by"].strip()
    return None


def incident_action(rt: Runtime, incident_id: str, action: str, headers: Mapping[str, str], body: bytes) -> Reply:
    data: Any = None
    if body:
        data, problem = parse_json_body(body)
        if problem:
            return error(400, problem)
    actor = engineer_identity(headers, data)
    if not actor:
        return error(400, "the acting engineer is required: sign in (App Service auth) or send {\"by\": \"<you>\"}")
    handler: Callable[[Runtime, str, str], Any] = approve if action == "approve" else revoke
    try:
        result = handler(rt, incident_id, actor)
    except NotFound as exc:
        return error(404, str(exc))
    except ActionRefused as exc:
        return error(409, str(exc))
    return 200, result.to_json()
