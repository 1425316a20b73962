"""The link routes a person opens from a chat message (`/api/act/{incident_id}/approve|suppress`), and the
function-level suppress route. (runtime, request data) -> (status, HTML page) or (status, JSON).

A GET only shows what acting would do, with a form that POSTs back: chat clients and link scanners fetch every
URL, so a GET never acts. A POST acts through the same engine functions as the approve route and the `suppress`
command (approvals go through the policy as ever, bound to the fingerprint the page showed). Both need App Service
authentication: the acting person is the principal it signed in, never a form field. A POST must come from the
app's own origin (core/chat_actions.py).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs

from shared.core import chat_actions as ca
from shared.core.chat_actions import ActionPage, render_page
from shared.core.suppression import parse_duration
from shared.engine.approvals import ActionRefused, NotFound, approval_terms, approve, suppress
from shared.engine.inputs import engineer_identity, parse_json_body
from shared.engine.runtime import Runtime

Page = tuple[int, str]
LINK_SUPPRESSION = timedelta(hours=24)
MAX_FORM_BYTES = 8192


def _page(status: int, title: str, note: str = "", facts: tuple[tuple[str, str], ...] = ()) -> Page:
    return status, render_page(ActionPage(title, facts=facts, note=note))


def _form(body: bytes) -> dict[str, str] | None:
    """The POSTed form's fields (the first value of each), or None when it is too large or not UTF-8."""
    if len(body) > MAX_FORM_BYTES:
        return None
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        return None
    try:
        fields = parse_qs(text, keep_blank_values=True, max_num_fields=20)
    except ValueError:
        return None
    return {name: values[0] for name, values in fields.items()}


def act_link(rt: Runtime, incident_id: str, action: str, *, method: str, headers: Mapping[str, str],
             body: bytes, request_url: str, auth_enabled: str | None) -> Page:
    """One link route. `headers`: lower-case names; `auth_enabled`: the platform's WEBSITE_AUTH_ENABLED."""
    refused = ca.easy_auth_problem(auth_enabled, headers)
    if refused:
        # Authentication on but nobody signed in (it lets unauthenticated requests through): offer the sign-in.
        link = ("Sign in", ca.sign_in_url(request_url)) if ca.auth_enabled_by_platform(auth_enabled) else None
        return 403, render_page(ActionPage("Not available without App Service authentication", note=refused,
                                           link=link))
    not_approver = ca.approver_problem(headers, rt.settings.chat_approvers)
    if not_approver:
        return _page(403, "Not allowed to act here", not_approver)
    if action not in ca.LINK_ACTIONS:
        return _page(404, "No such action")
    incident = rt.store.get_incident(incident_id)
    if incident is None:
        return _page(404, "No such incident", f"There is no incident {incident_id}.")
    if method.upper() != "POST":
        return _approve_page(rt, incident_id) if action == "approve" else _suppress_page(rt, incident)
    cross_site = ca.origin_problem(headers, ca.own_origin(rt.settings.public_base_url, request_url))
    if cross_site:
        return _page(403, "Refused: not sent from this app's own page", cross_site)
    form = _form(body)
    if form is None:
        return _page(400, "Refused: the form could not be read")
    actor = ca.signed_in(headers)
    if action == "approve":
        return _approve(rt, incident_id, actor, form)
    return _suppress(rt, incident, actor, form)


# ---- approve -------------------------------------------------------------------------------------------------


def _approve_page(rt: Runtime, incident_id: str) -> Page:
    try:
        terms = approval_terms(rt, incident_id)
    except ActionRefused as exc:
        return _page(409, "Nothing to approve", str(exc))
    incident = rt.store.get_incident(incident_id)
    who = (incident.principal_name if incident else None) or terms.principal_id
    page = ActionPage(
        f"Approve: {terms.role_name} for {who}",
        facts=(("Incident", incident_id), ("Account", incident.resource_id if incident else ""),
               ("Principal", f"{who} ({terms.principal_id})" if who != terms.principal_id else who),
               ("Role", terms.role_name), ("Role definition", terms.role_id), ("Scope", terms.scope),
               ("Diagnosis fingerprint", terms.fingerprint)),
        note=("Approving grants exactly this role at this scope to this principal, nothing else. Every policy rule "
              "but the mode is checked again first; if the diagnosis changed since this page was shown, the "
              "approval is refused."),
        hidden=(("fingerprint", terms.fingerprint),),
        button="Approve this role assignment",
    )
    return 200, render_page(page)


def _approve(rt: Runtime, incident_id: str, actor: str, form: dict[str, str]) -> Page:
    fingerprint = form.get("fingerprint", "").strip()
    if not fingerprint:
        return _page(400, "Refused: the form names no diagnosis fingerprint",
                     "Open the approve link again and use its button.")
    try:
        result = approve(rt, incident_id, actor, fingerprint=fingerprint)
    except NotFound as exc:
        return _page(404, "No such incident", str(exc))
    except ActionRefused as exc:
        return _page(409, "Not approved", str(exc))
    facts = (("Incident", result.incident_id), ("Status", result.status), ("Approved by", actor),
             ("Granted", result.grant.describe() if result.grant else result.detail))
    return _page(200, "Approved", result.detail, facts)


# ---- suppress ------------------------------------------------------------------------------------------------


def _suppress_page(rt: Runtime, incident: Any) -> Page:
    target = ca.suppress_target(incident.principal_id, incident.resource_id)
    if target is None:
        return _page(409, "Nothing to suppress", "The incident names neither a principal nor a resource id.")
    until = rt.clock() + LINK_SUPPRESSION
    page = ActionPage(
        "Suppress for 24 hours",
        facts=(("Incident", incident.id), ("Suppresses", target.what), ("Target", target.target),
               ("Until (about)", until.isoformat())),
        note=("While suppressed, the service diagnoses nothing, grants nothing and opens no ticket for these "
              "failures. The suppression lapses by itself; it is audited with your name."),
        hidden=(("target", target.target),),
        inputs=(("reason", "Reason", ""),),
        button="Suppress for 24 hours",
    )
    return 200, render_page(page)


def _suppress(rt: Runtime, incident: Any, actor: str, form: dict[str, str]) -> Page:
    target = ca.suppress_target(incident.principal_id, incident.resource_id)
    if target is None:
        return _page(409, "Nothing to suppress", "The incident names neither a principal nor a resource id.")
    if form.get("target", "").strip() != target.target:
        return _page(409, "Not suppressed: the page showed another target",
                     f"This incident's suppression now targets {target.target}; open the link again.")
    reason = form.get("reason", "").strip()
    if not reason:
        return _page(400, "Not suppressed: a reason is required")
    try:
        done = suppress(rt, target.target, LINK_SUPPRESSION, reason[:500], actor, incident_id=incident.id)
    except ActionRefused as exc:
        return _page(409, "Not suppressed", str(exc))
    return _page(200, "Suppressed", f"Suppressed {target.what} until {done.until.isoformat()}.",
                 (("Target", done.target), ("Until", done.until.isoformat()), ("By", done.actor),
                  ("Reason", done.reason)))


# ---- the function-level JSON route -----------------------------------------------------------------------------


def suppress_request(rt: Runtime, incident_id: str, headers: Mapping[str, str], body: bytes) -> tuple[int, dict]:
    """POST /api/incidents/{id}/suppress: {"for": "24h" (default), "reason": ..., "by": ...}."""
    data, problem = parse_json_body(body) if body else (None, "the request body must be a JSON object")
    if problem:
        return 400, {"error": problem}
    if not isinstance(data, dict):
        return 400, {"error": "the request body must be a JSON object"}
    actor = engineer_identity(headers, data)
    if not actor:
        return 400, {"error": "the acting engineer is required: sign in (App Service auth) or send {\"by\": \"<you>\"}"}
    text = data.get("for", ca.SUPPRESS_FOR)
    reason = data.get("reason")
    if not isinstance(text, str):
        return 400, {"error": "for must be a duration such as 24h, 12h, 30m or 7d"}
    try:
        duration = parse_duration(text)
    except ValueError as exc:
        return 400, {"error": f"for: {exc}"}
    if not isinstance(reason, str) or not reason.strip():
        return 400, {"error": "reason is required: why these failures are suppressed"}
    incident = rt.store.get_incident(incident_id)
    if incident is None:
        return 404, {"error": f"no incident {incident_id}"}
    target = ca.suppress_target(incident.principal_id, incident.resource_id)
    if target is None:
        return 409, {"error": f"incident {incident_id} names neither a principal nor a resource id to suppress"}
    try:
        done = suppress(rt, target.target, duration, reason.strip(), actor, incident_id=incident_id)
    except ActionRefused as exc:
        return 409, {"error": str(exc)}
    return 200, {"incident_id": incident_id, **target.to_json(), "until": done.until.isoformat(),
                 "reason": done.reason, "actor": done.actor, "created_at": done.created_at.isoformat()}
