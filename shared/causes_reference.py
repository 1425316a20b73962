"""Renders docs/causes.md from the cause catalogue (`shared.core.causes`), so the doc never drifts from the code.

`python -m shared settings-files` rewrites it along with the settings reference; a test fails when it is out of
date.
"""

from __future__ import annotations

import textwrap

from shared.core import fixes
from shared.core.causes import CAUSES, SIGN_IN_PROBLEMS, SUBCAUSES, WRONG_ENDPOINTS, Cause, sign_in_problem
from shared.core.roles import CATALOGUE_RESOURCE, GRANTABLE, LEAST_PRIVILEGE_FOR_SURFACE, PROJECT
from shared.core.surfaces import SURFACES

_WIDTH = 118

_INTRO = """\
# Causes

Every diagnosis names one cause from this catalogue. The ids are a public contract (`classify` output, tickets,
incident fingerprints): they never change. The engine is `shared/core/diagnose.py`; the text reading is
`shared/core/messages.py`, the surface detection `shared/core/endpoints.py`, the catalogue (titles, summaries, fix
steps and the prose below) `shared/core/causes.py`, the links and the role command `shared/core/fixes.py`.
This file is generated from the catalogue: `python -m shared settings-files`.

## How a cause is chosen

1. **The text.** The error text is unwrapped (openai-python `Error code: 401 - {...}`, azure-core
   `(Code) message` / `Code:` `Message:` lines, .NET `Status: 401 (PermissionDenied) ... Content: {...}`, JSON escaped
   inside strings, HTML pages) and sorted into a family by its code and phrases.
2. **Decisive settings.** With live resource evidence: a key caller on a resource with `disableLocalAuth=true` is
   `local_auth_disabled`; a 403 on a resource with `publicNetworkAccess=Disabled` or network `defaultAction=Deny` is
   `network_denied` when the text does not point elsewhere (no text, an unrecognised one, or a network one).
3. **Non-role families** map straight to their cause (below).
4. **Role families** — a PermissionDenied text, or a bare 401/403 from an Entra caller whose object id the service
   logged (its token was accepted, so authorization failed) — are judged with the caller's role assignments:
   only assignments whose scope equals the target scope or is an ancestor of it count (ARM ids compared
   case-insensitively; role definitions as full ids or bare GUIDs).
   `assignments = None` means "not looked up": the cause is `missing_data_role` at lower confidence.
   `assignments = ()` means "looked up, none".

A missing role on Azure OpenAI and Foundry comes back as **401** `PermissionDenied`, not 403.

## Surface → least-privilege role
"""


_SURFACE_NOTES = """\
The surface is read from the endpoint path (a client-side record's request URL included), then a route that is a
path, then the data action or `METHOD /path` in the error text, then what the log row says: its `apiName` (such as
"Azure OpenAI API version 2024-02-15-preview") and its `OperationName` (`ChatCompletions_Create`, ...); then the
host (`*.openai.azure.com` serves only `/openai`; Speech and Translator have hosts of their own) and the account
kind (a classic `OpenAI` account serves only `/openai`, a single-service account such as `SpeechServices` or
`FormRecognizer` only its own surface). The apiName words of the other services are a best effort (their log values
are not documented). When no surface can be told, no role is named (the diagnosis is not role-fixable). Owner,
Contributor, User Access Administrator, Role Based Access Control Administrator, Cognitive Services Contributor
and every other Owner/Contributor role are never recommended.
"""

_EVIDENCE_INTRO = """\
## Without error text: the decision table

Real Cognitive Services `RequestResponse` rows carry no error code, no error text and no request path (see
[localazure.md](localazure.md#rows-written) for the sources). From a row alone the diagnosis knows the status,
whether the service logged the caller's object id (it does once the caller's token is accepted; key callers and
rejected tokens log an empty one), and the surface its `OperationName`/`apiName` suggest. The rest comes from live
evidence: the caller's role assignments over the scope chain (direct and through groups, with their age) and the
account's `kind`, `disableLocalAuth`, `publicNetworkAccess`, network rules and private endpoints. Rows are read top
to bottom; the first that fits decides.
"""

# (status, caller's object id logged, surface, evidence, cause, confidence)
_EVIDENCE_TABLE = (
    ("401/403", "no", "any", "`disableLocalAuth=true`", "`local_auth_disabled`", "high"),
    ("403", "any", "any", "`publicNetworkAccess=Disabled` or network `defaultAction=Deny` (rules and private "
     "endpoints listed in the evidence)", "`network_denied`", "high"),
    ("401", "no", "any", "none decisive", "`invalid_api_key` (a key, or a token the service rejected: only text "
     "tells them apart)", "low"),
    ("403", "no", "any", "none decisive", "`unknown`", "low"),
    ("401/403", "yes", "known", "no assignment applies at the target scope", "`missing_data_role`", "high"),
    ("401/403", "yes", "known", "only control-plane roles (Owner, Contributor, ...)", "`control_plane_role_only`",
     "high"),
    ("401/403", "yes", "known", "data roles for other surfaces only", "`wrong_role_for_surface`", "high"),
    ("401/403", "yes", "known", "a role granting the surface, direct, younger than the propagation window",
     "`propagation_pending`", "high"),
    ("401/403", "yes", "known", "a role granting the surface, direct, older than the window",
     "`role_present_still_denied`", "high"),
    ("401/403", "yes", "known", "a granting role only through a group, the caller a service principal",
     "`group_membership_cache`", "high (medium when the principal type is assumed)"),
    ("401/403", "yes", "known", "custom roles whose data actions are unknown", "`missing_data_role`", "medium"),
    ("401/403", "yes", "ambiguous: an AIServices (or other non-`OpenAI`) account whose row names only OpenAI "
     "operations", "as above", "as above, for the `/openai` surface (the narrowest role)", "medium"),
    ("401/403", "yes", "`project`, project name unknown", "as above", "as above, at the account", "medium"),
    ("401/403", "yes", "known", "the account could not be read", "as above", "medium"),
    ("401/403", "yes", "any", "assignments not looked up", "`missing_data_role`", "low"),
    ("401/403", "yes", "unknown", "any", "as above, but no role is named (not role-fixable)", "low or medium"),
    ("400", "—", "—", "—", "not read from logs: only a text naming the tenant makes a 400 an auth failure", "—"),
)

_EVIDENCE_NOTES = """\
A role cause therefore reaches **high** confidence from the evidence alone when the caller's object id is logged,
every evidence read succeeded (assignments and account) and the surface is known. When the surface is ambiguous,
the diagnosis names nothing broader than needed (Cognitive Services OpenAI User for the `/openai` surface, at
medium confidence, so the policy tickets it) and its evidence says what would decide: the request URL, from the
calling app's Application Insights `AppDependencies` record, or the error text (a `/models` call needs Cognitive
Services User instead). A project call whose project the row does not name is medium too: the account scope
would be broader than the project.

**Client-side records** (workspace-based Application Insights `AppDependencies` with the `AppExceptions` text)
give what the row lacks. A client group joins the server group of the same caller (the app's managed identity,
through `TRIAGE_APP_IDENTITIES`), account and status whose times overlap: the server group keeps its logged
caller and takes the client's request URL and error text (`shared/core/correlation.py`). A server row without a
logged caller joins nothing. A caller that only client records name (no server row confirms it, e.g. when
rejected requests are not logged) is named by telemetry the app writes itself: its diagnosis stands, but the
policy's `mode` rule waits for an on-call engineer's approval before any grant ([policy.md](policy.md)).
API Management gateway logs join the same way: the caller is the gateway's managed identity, read from the API
Management resource the row names (so a gateway group alone needs no approval for being named), and the gateway
adds the backend URL and, when its diagnostic setting logs backend bodies, the error text.

**Text, when present, still refines the cause** (its data action beats the row's names), and where text and
evidence disagree the confidence drops to medium and an evidence line, which the ticket shows, says why: an error's
surface that contradicts a row naming its own surface; "key based authentication is disabled" on an account with
`disableLocalAuth=false`; a firewall denial on an account with `publicNetworkAccess=Enabled` and
`defaultAction=Allow`.

**The refused principal.** A role is recommended for (and can be granted to) the principal that was refused, and
only when that is the caller. A PermissionDenied that names another principal than the logged caller (a GUID other
than the caller's object id, or a user name the evidence does not give as the caller's) is
`other_principal_denied`: the diagnosis names the refused principal, the role it needs and the command for it, and
names no role (`classify` gives `"role": null`), so nothing is granted to the caller. A redacted principal
(`XXXXXXXX`, `***`) names nobody: the caller stays the refused one. `tests/core/test_safety_invariant.py` checks it
over generated texts.
"""

_COMMAND_NOTES = """\
The principal type comes from the evidence or the signal; when neither has it, ServicePrincipal is assumed and the
evidence lines say so. Unknown ids are left as `<caller-object-id>` / `<account-resource-id>` placeholders.
"""

# The facts the role and token steps are shown with: placeholders, and the Azure OpenAI surface's links.
_DOC_FACTS = {
    "command": fixes.role_command(None, "<principal-type>", "<role-guid>", None),
    "surface": None,
    "token_scope": fixes.STANDARD_SCOPE,
}


_ROLES_NOTES = f"""\
A role covers a surface when its data actions (wildcards included, minus its notDataActions) cover the surface's
data action, or the exact one the error names. The roles are Microsoft's published built-in definitions,
shipped as data (`shared/{CATALOGUE_RESOURCE}`, which cites its sources and their dates) and served by the
stand-in; a role the catalogue does not know (a custom role) is read through ARM and judged the same way, and when
it cannot be read the confidence drops and nothing is granted. Only the three grantable roles (marked ✓) are ever
granted by the service; Cognitive Services User is named where no narrower built-in exists, and the fix says how
broad it is. The data actions of Content Understanding and Translator are not published: their namespace stands
for them.
"""


def causes_markdown() -> str:
    lines = [_INTRO, "| Call | Surface | Data action | Role (GUID) | Narrowest scope | Role guidance |",
             "|---|---|---|---|---|---|"]
    for surface in SURFACES.values():
        role = LEAST_PRIVILEGE_FOR_SURFACE[surface.id]
        scope = "`<account id>/projects/<p>`" if surface.id == PROJECT else "the account"
        granted = " ✓" if role.guid in GRANTABLE else ""
        lines.append(f"| {surface.routes} | `{surface.id}` | `{surface.data_action}` | {role.name}{granted} "
                     f"(`{role.guid}`) | {scope} | {fixes.role_doc(surface.id)} |")
    lines += ["", _ROLES_NOTES]
    command = fixes.role_command("<oid>", "<ServicePrincipal|User|Group>", "<GUID>", "<narrowest scope>")
    lines += [_SURFACE_NOTES, "The fix command for a role cause is", f"`{command}`.", _COMMAND_NOTES,
              *_evidence_section(),
              "## The catalogue", "", "| Cause | Family | Role-fixable | Title |", "|---|---|---|---|"]
    lines += [f"| `{c.id}` | {c.family} | {'yes' if c.role_fixable else 'no'} | {c.title} |" for c in CAUSES.values()]
    lines += ["", *_wrap("Fix steps are listed as a diagnosis gives them; a diagnosis fills in the command's ids and "
                         "links the role page of the surface called (Azure OpenAI here).")]
    for cause in CAUSES.values():
        lines += ["", *_cause_section(cause)]
    lines += ["", *_tables()]
    return "\n".join(lines) + "\n"


def _tables() -> list[str]:
    """The lookup tables some causes' wording is built from."""
    lines = ["## Sign-in failures (`token_acquisition_failed`)", "",
             *_wrap("An AADSTS code (Entra ID's error code, as SDKs surface it) or an azure-identity credential-chain "
                    "message, what it means and its fix. An unlisted code links Entra's error page."),
             "", "| Code or message | What is wrong | Fix |", "|---|---|---|"]
    for key in SIGN_IN_PROBLEMS:
        what, fix = sign_in_problem(key, fixes.STANDARD_SCOPE)
        lines.append(f"| `{key}` | {what} | {fix.replace('<', chr(92) + '<')} |")
    lines += ["", "## Wrong endpoints (`wrong_endpoint`)", "", "| Kind | What happened |", "|---|---|"]
    lines += [f"| `{key}` | {what.replace('<', chr(92) + '<')} |" for key, what in WRONG_ENDPOINTS.items()]
    lines += ["", "## Sub-causes of `blocked_or_other`", "", "| Sub-cause | What the service said | First fix |",
              "|---|---|---|"]
    lines += [f"| `{key}` | {what} | {steps[0].text} |" for key, (what, steps) in SUBCAUSES.items()]
    return lines


def _evidence_section() -> list[str]:
    lines = [_EVIDENCE_INTRO, "| Status | Caller logged | Surface | Evidence | Cause | Confidence |",
             "|---|---|---|---|---|---|"]
    lines += ["| " + " | ".join(row) + " |" for row in _EVIDENCE_TABLE]
    return [*lines, "", _EVIDENCE_NOTES]


def _cause_section(cause: Cause) -> list[str]:
    fixable = "role-fixable" if cause.role_fixable else "not role-fixable"
    about = f"**{cause.title}** (family `{cause.family}`, {fixable}). {cause.doc}"
    lines = [f"### `{cause.id}`", "", *_wrap(about), "", "**Fix steps:**", ""]
    steps = cause.steps_for(**_DOC_FACTS)
    for number, step in enumerate(steps, 1):
        text = step.text.replace("<", "\\<")  # plain text: a placeholder such as <name> is not an HTML tag
        lines += _wrap(f"{number}. {text}" + (f" — <{step.doc_url}>" if step.doc_url else ""), indent="   ")
    return lines


def _wrap(text: str, indent: str = "") -> list[str]:
    return textwrap.wrap(text, _WIDTH, subsequent_indent=indent, break_long_words=False, break_on_hyphens=False)
