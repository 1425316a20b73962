"""What chat messages (Teams, Slack) offer a person besides the ticket's text, and what the link routes behind
them check. Pure: text in, text out.

- The commands a person runs: approve (`az rest` on the function-level approve route), suppress 24 h (the CLI and
  the function-level suppress route), roll back (the service's own revoke, which records the revocation and the
  audit, before a bare `az role assignment delete`). Every value is shell-quoted; no key is ever in the text.
- The link routes (`/api/act/{incident_id}/approve|suppress`) a signed-in person opens from chat. Chat clients and
  link scanners fetch URLs (Slack unfurling, Safe Links), so a GET only shows a page; the page's form POSTs back.
  Both refuse unless App Service authentication is on and signed the person in (`easy_auth_problem`); a POST is
  refused unless its Origin (else Referer) is the app's own origin (`origin_problem`, OWASP's "verify origin with
  standard headers").
- What "suppress" suppresses (`suppress_target`) and the pages (`ActionPage`, `render_page`, HTML-escaped).
"""

from __future__ import annotations

import html
import json
import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from shared.core.allowlist import normalize_object_id
from shared.core.resource_ids import enclosing_account, normalize_scope

LINK_ACTIONS = ("approve", "suppress")
SUPPRESS_FOR = "24h"  # what a chat message's Suppress action suppresses for
# Where a command names the app while its address is unknown (TRIAGE_PUBLIC_BASE_URL unset, not on Azure).
PLACEHOLDER_BASE_URL = "https://<function-app-host>"
KEY_HEADER = '--headers "x-functions-key=<function key>"'  # a placeholder: the text never carries a key


def _segment(text: str) -> str:
    return quote(text, safe="")


def api_url(base_url: str, path: str) -> str:
    """`base_url` + /api/ + `path`, with the placeholder host when the address is unknown."""
    return f"{(base_url or PLACEHOLDER_BASE_URL).rstrip('/')}/api/{path}"


def act_url(base_url: str, incident_id: str, action: str) -> str | None:
    """The link route a person opens from chat; None when the app's address is unknown (a relative link is useless
    in a chat message)."""
    if not base_url or action not in LINK_ACTIONS:
        return None
    return api_url(base_url, f"act/{_segment(incident_id)}/{action}")


def _az_rest(url: str, body: dict[str, str]) -> str:
    return (f"az rest --method post --url {shlex.quote(url)} {KEY_HEADER} "
            f"--body {shlex.quote(json.dumps(body))}")


def approve_command(base_url: str, incident_id: str, fingerprint: str | None) -> str:
    """The function-level approve route as a full `az rest` command, bound to the diagnosis the message shows."""
    body = {"by": "<you>", **({"fingerprint": fingerprint} if fingerprint else {})}
    return (_az_rest(api_url(base_url, f"incidents/{_segment(incident_id)}/approve"), body)
            + "\n# behind App Service authentication, add: --resource <the app's application ID URI>")


def suppress_command(base_url: str, incident_id: str, target: str) -> str:
    """Suppress the incident's target for 24 h: the CLI, or the function-level suppress route."""
    return (f"python -m shared suppress {shlex.quote(target)} --for {SUPPRESS_FOR} --reason '<why>' --by '<you>'\n"
            "# or over HTTP: "
            + _az_rest(api_url(base_url, f"incidents/{_segment(incident_id)}/suppress"),
                       {"for": SUPPRESS_FOR, "reason": "<why>", "by": "<you>"}))


def rollback_command(base_url: str, incident_id: str, assignment_id: str) -> str:
    """Undo the role assignment this service created: its own revoke first (it records the revocation, so the
    service does not grant it again, and the audit), then the bare ARM delete for when the service is unreachable."""
    return (f"python -m shared revoke {shlex.quote(incident_id)} --by '<you>'\n"
            "# or over HTTP: " + _az_rest(api_url(base_url, f"incidents/{_segment(incident_id)}/revoke"),
                                         {"by": "<you>"})
            + "\n# without the service (no revocation recorded: a later failure may be granted again): "
            f"az role assignment delete --ids {shlex.quote(assignment_id)}")


# ---- what "suppress" suppresses ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class SuppressTarget:
    """A suppression's target (core/suppression.py: a principal, or a resource and everything under it)."""

    target: str  # normalized: an object id or a resource id
    kind: str  # principal | account | resource
    what: str  # in words, for the page and the docs

    def to_json(self) -> dict[str, str]:
        return {"target": self.target, "kind": self.kind, "suppresses": self.what}


def suppress_target(principal_id: str | None, resource_id: str) -> SuppressTarget | None:
    """What suppressing an incident suppresses. Suppressions name a principal or a resource, never the pair, so:
    an Entra caller's incident suppresses that principal (its failures on every account); a key callers' incident
    (no principal) suppresses its account (every caller's failures on it, and its projects'). None when neither
    is a valid target."""
    oid = normalize_object_id(principal_id)
    if oid is not None:
        return SuppressTarget(oid, "principal", f"every failure of principal {oid}, on every account")
    if not isinstance(resource_id, str) or not resource_id.strip().startswith("/"):
        return None
    account = enclosing_account(resource_id)
    if account is not None:
        return SuppressTarget(account.key, "account", f"every failure on account {account.key} and its projects, "
                              "from every caller (keys and Entra identities alike)")
    scope = normalize_scope(resource_id)
    if scope == "/":
        return None
    return SuppressTarget(scope, "resource", f"every failure on {scope} and everything under it, from every caller")


# ---- what the link routes check ----------------------------------------------------------------------------------

PRINCIPAL_ID_HEADER = "x-ms-client-principal-id"
PRINCIPAL_NAME_HEADER = "x-ms-client-principal-name"


def auth_enabled_by_platform(auth_enabled: str | None) -> bool:
    """WEBSITE_AUTH_ENABLED as App Service sets it ("True") on an app whose authentication is enabled."""
    return (auth_enabled or "").strip().lower() == "true"


def sign_in_url(request_url: str) -> str:
    """App Service authentication's sign-in endpoint for Microsoft Entra, back to this page afterwards (a relative
    path: the platform accepts no other host there without configuration)."""
    try:
        parts = urlsplit(request_url)
    except ValueError:
        return "/.auth/login/aad"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    return "/.auth/login/aad?post_login_redirect_uri=" + quote(path or "/", safe="")


def easy_auth_problem(auth_enabled: str | None, headers: Mapping[str, str]) -> str | None:
    """Why a link route must refuse; None when App Service authentication is on and signed the person in.

    App Service sets WEBSITE_AUTH_ENABLED=True on an app whose authentication is enabled; only then does its front
    end strip any X-MS-CLIENT-PRINCIPAL* header a client sent and inject its own for a signed-in caller
    (learn.microsoft.com/azure/app-service/configure-authentication-user-identities). Without it anyone could send
    the headers, so the links refuse. `headers`: lower-case names."""
    if not auth_enabled_by_platform(auth_enabled):
        return ("App Service authentication is not enabled on this app (WEBSITE_AUTH_ENABLED is not True): these "
                "links act only for a person it signed in. Enable it, or use the function-key routes "
                "(POST /api/incidents/{id}/approve or /suppress).")
    if not (headers.get(PRINCIPAL_ID_HEADER) or "").strip():
        return ("no signed-in person (App Service authentication sent no X-MS-CLIENT-PRINCIPAL-ID): set "
                "unauthenticated requests to redirect to sign-in or answer 401.")
    return None


def approver_problem(headers: Mapping[str, str], approvers: tuple[str, ...]) -> str | None:
    """Why the signed-in person may not act through a link; None when their object id or sign-in name is one of
    TRIAGE_CHAT_APPROVERS (folded). App Service authentication admits anyone its identity provider signs in (with
    Entra, anyone of the tenant unless the app requires assignment), so it says who someone is, not who may act."""
    if not approvers:
        return ("no one may act through these links: TRIAGE_CHAT_APPROVERS is not set. Use the function-key routes "
                "(POST /api/incidents/{id}/approve or /suppress) or the az commands in the message.")
    ids = {(headers.get(PRINCIPAL_ID_HEADER) or "").strip().casefold(),
           (headers.get(PRINCIPAL_NAME_HEADER) or "").strip().casefold()} - {""}
    if ids & set(approvers):
        return None
    return (f"{signed_in(headers)[:200]} is not one of TRIAGE_CHAT_APPROVERS: ask an approver, or use the "
            "function-key routes.")


def signed_in(headers: Mapping[str, str]) -> str:
    """Who App Service authentication signed in: the name it gives, else the principal id."""
    return ((headers.get(PRINCIPAL_NAME_HEADER) or "").strip()
            or (headers.get(PRINCIPAL_ID_HEADER) or "").strip())


def origin_of(url: str) -> str | None:
    """scheme://host[:port], lower-case, the default port left out; None when `url` names no http(s) origin."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    default = {"http": 80, "https": 443}[parts.scheme.lower()]
    netloc = parts.hostname.lower() + (f":{port}" if port is not None and port != default else "")
    return f"{parts.scheme.lower()}://{netloc}"


def own_origin(base_url: str, request_url: str) -> str | None:
    """The app's own origin: TRIAGE_PUBLIC_BASE_URL's (or the platform host's), else the request URL's."""
    return origin_of(base_url) if base_url else origin_of(request_url)


def origin_problem(headers: Mapping[str, str], expected: str | None) -> str | None:
    """Why a POST is refused as cross-site; None when its Origin (else its Referer) is the app's own origin.
    `headers`: lower-case names. A POST without either, or with Origin `null`, is refused."""
    if expected is None:
        return "the app's own address is unknown (set TRIAGE_PUBLIC_BASE_URL): the request's origin cannot be checked"
    origin = (headers.get("origin") or "").strip()
    if origin:
        given = origin_of(origin)
        return None if given == expected else f"the request came from another site (Origin {origin[:200]!r})"
    referer = (headers.get("referer") or "").strip()
    if referer:
        given = origin_of(referer)
        return None if given == expected else f"the request came from another site (Referer origin {given!r})"
    return "the request names neither its Origin nor its Referer: it cannot be told from a cross-site request"


# ---- the pages ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ActionPage:
    """One small page of a link route: facts, then a form that POSTs back (none when there is nothing to do)."""

    title: str
    facts: tuple[tuple[str, str], ...] = ()  # (label, value)
    note: str = ""
    hidden: tuple[tuple[str, str], ...] = ()  # form fields the POST is bound to
    inputs: tuple[tuple[str, str, str], ...] = ()  # (name, label, default) text fields
    button: str | None = None
    link: tuple[str, str] | None = None  # (label, a path on this app), e.g. the sign-in endpoint


def render_page(page: ActionPage) -> str:
    """The page as HTML: every value escaped; no script, no external resource."""
    e = html.escape
    rows = "".join(f"<tr><th>{e(label)}</th><td><code>{e(value)}</code></td></tr>" for label, value in page.facts)
    parts = [f"<h1>{e(page.title)}</h1>"]
    if rows:
        parts.append(f"<table>{rows}</table>")
    if page.note:
        parts.append(f"<p>{e(page.note)}</p>")
    if page.link and page.link[1].startswith("/") and not page.link[1].startswith("//"):  # this app's paths only
        parts.append(f'<p><a href="{e(page.link[1])}">{e(page.link[0])}</a></p>')
    if page.button:
        fields = "".join(f'<input type="hidden" name="{e(name)}" value="{e(value)}">' for name, value in page.hidden)
        fields += "".join(f'<p><label>{e(label)} <input type="text" name="{e(name)}" value="{e(default)}" required '
                          f'maxlength="500" size="60"></label></p>' for name, label, default in page.inputs)
        parts.append(f'<form method="post">{fields}<p><button type="submit">{e(page.button)}</button></p></form>')
    return ('<!doctype html><html lang="en"><head><meta charset="utf-8"><title>' + e(page.title)
            + '</title><style>body{font-family:sans-serif;max-width:52em;margin:2em auto}th{text-align:left;'
            'padding-right:1em;vertical-align:top}code{word-break:break-all}</style></head><body>'
            + "".join(parts) + "</body></html>")


# Sent with every page: no framing (clickjacking), no script, forms only to this app, not cached, and the Referer
# only to this app's own pages.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
                               "frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}
