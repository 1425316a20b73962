"""The HTTP API behind function_app's routes, as plain functions: (runtime, request data) -> (status, JSON).

Each handler translates the request (`inputs`), calls a service, and shapes the reply. Bad requests get 400 with a
JSON error naming the problem; nothing returns a stack trace.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from shared.core import incidents as inc
from shared.core.ports import ReviewReader
from shared.engine import queries
from shared.engine.alerts import receive_alert
from shared.engine.approvals import ActionRefused, ActionResult, NotFound, approve, revoke
from shared.engine.deliveries import DeliveryInFlight
from shared.engine.inputs import BadInput, diagnose_input, engineer_identity, parse_json_body
from shared.engine.rejections import reject
from shared.engine.reviews import known_names, review_access, review_readiness
from shared.engine.runtime import Runtime

Reply = tuple[int, dict[str, Any]]


def error(status: int, message: str) -> Reply:
    return status, {"error": message}


def diagnose_request(rt: Runtime, body: bytes) -> Reply:
    """Paste an error (classify fields + optional resource_id) or name principal_id + resource_id. Writes nothing."""
    data, problem = parse_json_body(body)
    if problem:
        return error(400, problem)
    try:
        signal = diagnose_input(data)
    except BadInput as exc:
        return error(400, str(exc))
    diagnosis, live = queries.explain(rt, signal)
    return 200, {"diagnosis": diagnosis.to_json(), "live_evidence": live}


def alerts_request(rt: Runtime, body: bytes) -> Reply:
    data, problem = parse_json_body(body)
    if problem:
        reject(rt, "", problem, body[:2000].decode("utf-8", "replace"))
        return error(400, problem)
    try:
        outcome = receive_alert(rt, data)
    except DeliveryInFlight as exc:  # another instance is handling this notification: the action group retries
        return error(503, str(exc))
    if outcome.result == "rejected":
        return error(400, outcome.detail)
    if outcome.result == "duplicate":
        return 200, {"result": "duplicate", "alert_id": outcome.alert_id}
    return 200, {"result": outcome.result, "alert_id": outcome.alert_id, "detail": outcome.detail}


def list_incidents(rt: Runtime, query: Mapping[str, str]) -> Reply:
    status = query.get("status")
    if status is not None and status not in inc.STATUSES:
        return error(400, f"status must be one of: {', '.join(inc.STATUSES)}")
    return 200, {"incidents": queries.incident_summaries(rt, status)}


def get_incident(rt: Runtime, incident_id: str) -> Reply:
    body = queries.incident_detail(rt, incident_id)
    return (200, body) if body is not None else error(404, f"no incident {incident_id}")


def incident_action(rt: Runtime, incident_id: str, action: str, headers: Mapping[str, str], body: bytes) -> Reply:
    data: Any = None
    if body:
        data, problem = parse_json_body(body)
        if problem:
            reject(rt, "", f"{action} request for {incident_id[:100]!r}: {problem}",
                   body[:2000].decode("utf-8", "replace"))
            return error(400, problem)
    actor = engineer_identity(headers, data)
    if not actor:
        return error(400, "the acting engineer is required: sign in (App Service auth) or send {\"by\": \"<you>\"}")
    fingerprint = data.get("fingerprint") if isinstance(data, dict) else None
    if fingerprint is not None and not isinstance(fingerprint, str):
        return error(400, "fingerprint must be a string: the diagnosis fingerprint the ticket shows")
    handler: Callable[[Runtime, str, str], ActionResult] = (
        (lambda rt_, iid, who: approve(rt_, iid, who, fingerprint=fingerprint)) if action == "approve" else revoke)
    try:
        result = handler(rt, incident_id, actor)
    except NotFound as exc:
        return error(404, str(exc))
    except ActionRefused as exc:
        return error(409, str(exc))
    return 200, result.to_json()


# ---- access reviews (docs/reviews.md): reads only --------------------------------------------------------------

_TRUE = ("1", "true", "yes")


def _review_query(query: Mapping[str, str]) -> tuple[str | None, int, str]:
    """(account or None, days, problem) from the query string."""
    from shared.engine.reviews import DEFAULT_DAYS, MAX_DAYS

    text = query.get("days") or str(DEFAULT_DAYS)
    if not text.isdigit() or not 1 <= int(text) <= MAX_DAYS:
        return None, 0, f"days must be a whole number from 1 to {MAX_DAYS}"
    return (query.get("account") or None), int(text), ""


def review_readiness_request(rt: Runtime, reader: ReviewReader, query: Mapping[str, str]) -> Reply:
    account, days, problem = _review_query(query)
    if problem:
        return error(400, problem)
    found, unlisted = review_readiness(reader, now=rt.clock(), account=account, days=days,
                                       names=known_names(rt.settings))
    body: dict[str, Any] = {"readiness": [r.to_json() for r in found]}
    return 200, ({**body, "problem": unlisted} if unlisted else body)


def review_access_request(rt: Runtime, reader: ReviewReader, query: Mapping[str, str], *,
                          upgrade_only: bool = False) -> Reply:
    account, days, problem = _review_query(query)
    if problem:
        return error(400, problem)
    found, unlisted = review_access(reader, now=rt.clock(), account=account, days=days,
                                    pre_upgrade=(query.get("pre_upgrade") or "").lower() in _TRUE,
                                    upgrade_only=upgrade_only, names=known_names(rt.settings))
    body: dict[str, Any] = {"access_findings": [f.to_json() for r in found for f in r.findings],
                            "accounts": [r.to_json() for r in found]}
    return 200, ({**body, "problem": unlisted} if unlisted else body)
