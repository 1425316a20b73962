"""Renders docs/causes.md from the cause catalogue (`shared.core.causes`), so the doc never drifts from the code.

`python -m shared settings-files` rewrites it along with the settings reference; a test fails when it is out of
date.
"""

from __future__ import annotations

import textwrap

from shared.core import fixes
from shared.core.causes import CAUSES, Cause
from shared.core.roles import LEAST_PRIVILEGE_FOR_SURFACE, MODELS, OPENAI, PROJECT

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

# (surface, the calls that reach it, the narrowest scope for its role)
_SURFACES = (
    (OPENAI, "`/openai/...` on an OpenAI or AIServices account", "the account"),
    (MODELS, "`/models...` (Foundry Models inference)", "the account"),
    (PROJECT, "`/api/projects/{p}/...` (including `/api/projects/{p}/openai/...`)", "`<account id>/projects/<p>`"),
)

_SURFACE_NOTES = """\
The surface is read from the endpoint path, then the route (a path or a log `apiName` such as "Azure OpenAI API
version 2024-02-15-preview"), the log `OperationName` (`ChatCompletions_Create`, ...), the data action or
`METHOD /path` in the error text, and last the host (`*.openai.azure.com` serves only `/openai`). When no surface
can be told, no role is named (the diagnosis is not role-fixable). Owner, Contributor, User Access
Administrator, Role Based Access Control Administrator, Cognitive Services Contributor and every other
Owner/Contributor role are never recommended.
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


def causes_markdown() -> str:
    lines = [_INTRO, "| Call | Surface | Role (GUID) | Narrowest scope | Role guidance |", "|---|---|---|---|---|"]
    for surface, calls, scope in _SURFACES:
        role = LEAST_PRIVILEGE_FOR_SURFACE[surface]
        lines.append(f"| {calls} | `{surface}` | {role.name} (`{role.guid}`) | {scope} | {fixes.role_doc(surface)} |")
    command = fixes.role_command("<oid>", "<ServicePrincipal|User|Group>", "<GUID>", "<narrowest scope>")
    lines += ["", _SURFACE_NOTES, "The fix command for a role cause is", f"`{command}`.", _COMMAND_NOTES,
              "## The catalogue", "", "| Cause | Family | Role-fixable | Title |", "|---|---|---|---|"]
    lines += [f"| `{c.id}` | {c.family} | {'yes' if c.role_fixable else 'no'} | {c.title} |" for c in CAUSES.values()]
    lines += ["", *_wrap("Fix steps are listed as a diagnosis gives them; a diagnosis fills in the command's ids and "
                         "links the role page of the surface called (Azure OpenAI here).")]
    for cause in CAUSES.values():
        lines += ["", *_cause_section(cause)]
    return "\n".join(lines) + "\n"


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
