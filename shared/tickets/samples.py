"""Sample tickets for docs/tickets.md, rendered by the sinks' own renderers.

    python -m shared.tickets.samples docs/tickets.md   # rewrites the generated section in place
"""

from __future__ import annotations

import json
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

from shared.core.incidents import RECOMMENDED, Incident, fingerprint, incident_id
from shared.core.model import Diagnosis, FixStep
from shared.tickets.azuredevops import work_item_description
from shared.tickets.base import TicketContent
from shared.tickets.content import ticket_content
from shared.tickets.document import Paragraph, Text, ticket_title
from shared.tickets.github import issue_body
from shared.tickets.jira import issue_description, wiki_description
from shared.tickets.log_sink import log_line
from shared.tickets.marker import MANAGED_LABEL, marker_for
from shared.tickets.markup.adf import render_adf
from shared.tickets.markup.html import render_html
from shared.tickets.markup.markdown import render_markdown
from shared.tickets.markup.plain import render_plain
from shared.tickets.markup.wiki import render_wiki
from shared.tickets.servicenow import incident_description
from shared.tickets.webhook import webhook_body

BEGIN = "<!-- BEGIN GENERATED SAMPLES (python -m shared.tickets.samples docs/tickets.md) -->"
END = "<!-- END GENERATED SAMPLES -->"
_OID = "6c9a1f52-3d1e-4b7a-9a51-0b2f8e4d7c13"
_ACCOUNT = ("/subscriptions/8a1c2d3e-4f50-4a6b-9c7d-1e2f3a4b5c6d/resourceGroups/rg-ai-prod/providers/"
            "Microsoft.CognitiveServices/accounts/contoso-openai")
_DOC = "https://learn.microsoft.com/azure/ai-foundry/openai/how-to/role-based-access-control"
HOSTILE = "@org/team <img src=x onerror=alert(1)> [click](https://evil.example) **bold** [code]<b>x</b>[/code]"


def sample_content() -> TicketContent:
    diagnosis = Diagnosis(
        cause="missing_data_role", role_fixable=True, confidence="high",
        summary=("orders-api calls Azure OpenAI with a Microsoft Entra token but holds no data-plane role on "
                 "contoso-openai, so every request is denied with 401 PermissionDenied."),
        role_name="Cognitive Services OpenAI User", role_id="5e0bd9bd-7b93-4f28-af87-19fc36ad61bd",
        scope=_ACCOUNT, surface="openai",
        evidence=("Role assignments that apply at the account: Contributor (control plane only).",
                  "Account: kind OpenAI, disableLocalAuth true, publicNetworkAccess Enabled."),
        fix_command=(f"az role assignment create --assignee-object-id {_OID} --assignee-principal-type "
                     f"ServicePrincipal --role 5e0bd9bd-7b93-4f28-af87-19fc36ad61bd --scope {_ACCOUNT}"),
        fix_steps=(FixStep("Assign Cognitive Services OpenAI User to the caller at the account.", _DOC),
                   FixStep("Allow up to 10 minutes for the assignment to take effect, then get a new token.",
                           "https://learn.microsoft.com/azure/role-based-access-control/troubleshooting")),
    )
    fp = fingerprint(_OID, _ACCOUNT, "missing_data_role")
    incident = Incident(
        id=incident_id(fp), fingerprint=fp, principal_id=_OID, resource_id=_ACCOUNT, cause="missing_data_role",
        status=RECOMMENDED, first_seen=datetime(2026, 3, 2, 9, 14, 5, tzinfo=UTC),
        last_seen=datetime(2026, 3, 2, 9, 41, 52, tzinfo=UTC), count=37, principal_type="ServicePrincipal",
        principal_name="orders-api", diagnosis=diagnosis,
        sample_error='{"error":{"code":"PermissionDenied","message":"Principal does not have access to '
                     'API/Operation."}}',
    )
    return ticket_content(
        incident, mode="recommend",
        action="Recommended the role assignment above; in recommend mode the service does not change Azure.",
        approve_hint=f"POST /api/incidents/{incident.id}/approve with the approval handle from the audit log.",
    )


def fence(text: str, info: str) -> str:
    """A Markdown code block of `text`, its fence longer than any run of backticks inside."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{info}\n{text.rstrip()}\n{fence}"


def render_samples() -> str:
    content = sample_content()
    at = datetime(2026, 3, 2, 9, 45, tzinfo=UTC)
    hostile = (Paragraph((Text(HOSTILE),)),)
    parts = [
        "### GitHub Issues (Markdown)", f"Title: `{ticket_title(content, 256)}`  ",
        f"Labels: `{MANAGED_LABEL}`, `{marker_for(content.fingerprint)}`",
        fence(issue_body(content), "markdown"),
        "### Azure DevOps Boards (HTML, work item type Issue)", f"Title: `{ticket_title(content, 255)}`",
        fence(work_item_description(content), "html"),
        "### ServiceNow (plain text)", f"short_description: `{ticket_title(content, 160)}`",
        fence(incident_description(content), "text"),
        "### Jira Cloud (REST v3, Atlassian Document Format)", f"Summary: `{ticket_title(content, 255)}`",
        fence(json.dumps(issue_description(content), indent=1, ensure_ascii=False), "json"),
        "### Webhook (signed JSON body)",
        fence(json.dumps(json.loads(webhook_body("ticket.open_or_update", content, None,
                                                  delivery_id="5b0c7c1e-0d4f-4c55-9a57-2c8f0f3e6a10",
                                                  sent_at=at)), indent=1), "json"),
        "### Log (one line on the `triage.tickets.log` logger)",
        fence(log_line("ticket.open_or_update", content, None), "json"),
        "### One hostile string in every markup",
        f"Input: `{HOSTILE}`",
        "GitHub Markdown:", fence(render_markdown(hostile), "markdown"),
        "Azure DevOps HTML:", fence(render_html(hostile), "html"),
        "ServiceNow text:", fence(render_plain(hostile), "text"),
        "Jira ADF:", fence(json.dumps(render_adf(hostile), ensure_ascii=False), "json"),
        "Jira Data Center wiki markup:", fence(render_wiki(hostile), "text"),
        "### Jira Data Center (REST v2, wiki markup)", f"Summary: `{ticket_title(content, 255)}`",
        fence(wiki_description(content), "text"),
    ]
    return "\n\n".join(parts)


def update_docs(path: Path) -> bool:
    """Rewrite the generated section of `path`; True if it changed."""
    return replace_section(path, BEGIN, END, render_samples())


def replace_section(path: Path, begin: str, end: str, body: str) -> bool:
    """Put `body` between the markers `begin` and `end` of `path` (a generated part of a document); True if the
    file changed."""
    text = path.read_text(encoding="utf-8")
    start, stop = text.index(begin) + len(begin), text.index(end)
    updated = text[:start] + "\n\n" + body + "\n\n" + text[stop:]
    if updated != text:
        path.write_text(updated, encoding="utf-8")
    return updated != text


if __name__ == "__main__":
    update_docs(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/tickets.md"))
