"""The reviews for people: a table per account (the CLI's default) or Markdown for a change request. Every finding
and reason names the rule of docs/reviews.md it applies."""

from __future__ import annotations

from collections.abc import Sequence

from shared.core.resource_ids import short_name
from shared.core.reviews.model import GUIDE, AccessReview, Readiness


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(str(r[i])) for r in (header, *rows)) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in (header, ["-" * w for w in widths], *rows)]
    return ["  " + line for line in lines]


def readiness_text(reviews: Sequence[Readiness]) -> str:
    out: list[str] = []
    for r in reviews:
        out.append(f"{short_name(r.account_id)}: {r.verdict.upper()}  (disableLocalAuth={r.disable_local_auth}, "
                   f"last {r.days} day(s))")
        out += [f"  [{x.rule}] {'BLOCKING ' if x.blocking else ''}{x.text}" for x in r.reasons]
        if r.key_callers:
            out.append("  key callers:")
            out += _table(("operation", "calls", "first seen", "last seen", "caller ips", "apps seen meanwhile"),
                          [(k.operation, str(k.calls), k.first_seen, k.last_seen, ",".join(k.caller_ips) or "-",
                            ",".join(f"{a.name} ({a.source})" for a in k.apps) or "-")
                           for k in r.key_callers])
            if r.apps_unread:
                out.append(f"  ({r.apps_unread})")
        if r.entra_callers:
            out.append("  Entra callers:")
            out += _table(("object id", "surfaces", "calls", "covered", "roles", "assign"),
                          [(e.object_id, ",".join(e.surfaces), str(e.calls), "yes" if e.covered else "NO",
                            ",".join(e.roles) or "-", e.recommended_role or "-") for e in r.entra_callers])
        if r.policies:
            out.append("  policies on disableLocalAuth:")
            out += _table(("assignment", "effect", "enforced", "exempt", "on rollback"),
                          [(p.name, p.effect, str(p.enforced), str(p.exempt), p.rollback_effect) for p in r.policies])
        if r.verdict == "ready":
            out.append(f"  disable: {r.disable_command}")
        out.append("  rollback:")
        out += [f"    {n}. {step}" for n, step in enumerate(r.rollback, 1)]
        out.append("")
    return "\n".join(out) + ("\n" if not out else "")


def access_text(reviews: Sequence[AccessReview]) -> str:
    out: list[str] = []
    for review in reviews:
        out.append(f"{short_name(review.account_id)}: {len(review.findings)} finding(s)"
                   + (" (pre-upgrade audit)" if review.pre_upgrade else ""))
        out += [f"  COULD NOT CHECK {line}" for line in review.could_not_check]
        if review.findings:
            out += _table(("rule", "principal", "role", "scope", "calls", "recommendation"),
                          [(f.rule, f.principal_name or f.principal, f.role, short_name(f.scope),
                            {True: "yes", False: "no", None: "?"}[f.calls_account], f.recommendation)
                           for f in review.findings])
            commands = [(f, c) for f in review.findings for c in f.commands]
            if commands:
                out.append("  commands (for a person to run, after review):")
                out += [f"    [{f.rule}] {c}" for f, c in commands]
        out.append("")
    return "\n".join(out) + ("\n" if not out else "")


def readiness_markdown(reviews: Sequence[Readiness]) -> str:
    out = ["# Local authentication readiness", "", f"Rules: docs/reviews.md (from \"{GUIDE}\").", ""]
    for r in reviews:
        out += [f"## {short_name(r.account_id)}: `{r.verdict}`", "", f"- Account: `{r.account_id}`",
                f"- disableLocalAuth now: `{r.disable_local_auth}`; window: {r.days} day(s)", ""]
        out += [f"- **{x.rule}**{' (blocking)' if x.blocking else ''}: {x.text}" for x in r.reasons] + [""]
        if r.key_callers:
            out += ["| operation | calls | first seen | last seen | caller IPs | apps seen meanwhile |",
                    "|---|---|---|---|---|---|"]
            out += [f"| {k.operation} | {k.calls} | {k.first_seen} | {k.last_seen} | {', '.join(k.caller_ips)} | "
                    f"{', '.join(f'{a.name} ({a.source})' for a in k.apps) or '-'} |"
                    for k in r.key_callers] + [""]
            out += [f"_{r.apps_unread}_", ""] if r.apps_unread else []
        if r.entra_callers:
            out += ["| Entra caller | surfaces | covered | assign |", "|---|---|---|---|"]
            out += [f"| `{e.object_id}` | {', '.join(e.surfaces)} | {'yes' if e.covered else 'no'} | "
                    f"{e.recommended_role or '-'} |" for e in r.entra_callers] + [""]
        if r.policies:
            out += ["| policy assignment | effect | enforced | exempt | on rollback |", "|---|---|---|---|---|"]
            out += [f"| {p.name} | {p.effect} | {p.enforced} | {p.exempt} | {p.rollback_effect} |"
                    for p in r.policies] + [""]
        out += ["Disable:", "", "```", r.disable_command, "```", "", f"Bicep: `{r.bicep}`", "", "Rollback:", ""]
        out += [f"{n}. {step}" for n, step in enumerate(r.rollback, 1)] + [""]
    return "\n".join(out)


def access_markdown(reviews: Sequence[AccessReview]) -> str:
    out = ["# Access review", "", f"Rules: docs/reviews.md (from \"{GUIDE}\").", ""]
    for review in reviews:
        out += [f"## {short_name(review.account_id)}" + (" (pre-upgrade audit)" if review.pre_upgrade else ""), ""]
        out += [f"- Could not check {line}" for line in review.could_not_check]
        for f in review.findings:
            out += [f"### {f.rule}: {f.role} for `{f.principal_name or f.principal}`", "",
                    f"- Scope: `{f.scope}`", f"- Calls the account: {f.calls_account}", f"- {f.text}",
                    f"- Recommendation: {f.recommendation}", ""]
            if f.commands:
                out += ["```", *f.commands, "```", ""]
        if not review.findings:
            out += ["No findings.", ""]
    return "\n".join(out)
