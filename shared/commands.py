"""`python -m shared` operational commands (scan, sources, incidents, verify, approve, revoke, revocations,
unrevoke, suppress, breaker):
an entry point like function_app.py, so it takes its runtime from the composition root (shared.bootstrap).

Each returns an exit status; output goes to the given stream. Settings come from the environment.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any, TextIO

from shared.core.resource_ids import short_name
from shared.settings import SettingsError, load_settings

log = logging.getLogger("triage")


def _runtime():
    from shared.bootstrap import build_runtime

    return build_runtime(load_settings())


def _table(rows: list[list[str]], headers: list[str], out: TextIO) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    out.write("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip() + "\n")
    out.write("  ".join("-" * w for w in widths) + "\n")
    for row in rows:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")


def cmd_scan(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    from shared.engine.scan import run_scan

    rt = _runtime()
    try:
        report = run_scan(rt)
        # Settings only the Functions host reads (the timer's schedule): the scan ran, but the timer will not.
        setting_problems = [{"key": k, "expected": why} for k, why in rt.settings.host_problems]
        status = 1 if report.failed else 0  # a source or an evidence look-up could not be read
        if args.json:
            body = report.to_json()
            if setting_problems:
                body["settings_problems"] = setting_problems
            out.write(json.dumps(body, indent=2) + "\n")
            return status
        out.write(f"scan {report.correlation_id}: {report.signals} failure group(s), {report.rejected} rejected "
                  f"row(s), {report.grants} grant(s)\n")
        for problem in setting_problems:
            out.write(f"  SETTING {problem['key']}: {problem['expected']}\n")
        for name, (start, end) in report.windows.items():
            read = report.sources.get(name, {})
            out.write(f"  {name}: {start} .. {end}{_read_state(read)}\n")
        for line in report.partial:
            out.write(f"  PARTIAL RESULT {line}\n")
        for line in report.evidence_errors:
            out.write(f"  EVIDENCE ERROR {line}\n")
        _print_incidents(rt, [rt.store.get_incident(i) for i in report.incidents], out)
        if report.verifications:
            out.write("verifications: " + ", ".join(f"{k}={v}" for k, v in report.verifications.items()) + "\n")
        return status
    finally:
        rt.close()


def _read_state(read: dict[str, Any]) -> str:
    state = read.get("state")
    if state == "failed":
        return f"  FAILED: {read.get('detail')}"
    if state == "no_data":
        return f"  NO DATA YET: {read.get('detail')}"
    return ""


def cmd_sources(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    """Each configured source's health as the last runs left it; exit 1 when a source's last read failed."""
    from shared.engine.sources import source_health

    rt = _runtime()
    try:
        health = source_health(rt)
    finally:
        rt.close()
    if args.json:
        out.write(json.dumps({"sources": health}, indent=2) + "\n")
    else:
        rows = [[h["name"], h["state"], h["since"] or "-", h["last_success"] or "-", h["last_error_at"] or "-",
                 _clipped(h["detail"] or h["last_error"] or "")] for h in health]
        _table(rows, ["source", "state", "since", "last success", "last error at", "detail"], out)
    return 1 if any(h["state"] == "failed" for h in health) else 0


def _clipped(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _print_incidents(rt: Any, incidents: list, out: TextIO) -> None:
    rows = [
        [i.id, i.status, i.cause, str(i.count), (i.principal_id or "key callers")[:36], short_name(i.resource_id),
         (i.diagnosis.role_name if i.diagnosis else None) or "-", ",".join(i.ticket_refs.values()) or "-"]
        for i in incidents if i is not None
    ]
    _table(rows, ["incident", "status", "cause", "count", "principal", "resource", "role", "tickets"], out)


def cmd_incidents(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    from shared.core.incidents import STATUSES
    from shared.engine import queries

    rt = _runtime()
    try:
        if args.id:
            body = queries.incident_detail(rt, args.id)
            out.write(json.dumps(body if body is not None else {"error": f"no incident {args.id}"}, indent=2,
                                 default=str) + "\n")
            return 0 if body is not None else 1
        if args.status is not None and args.status not in STATUSES:
            out.write(f"status must be one of: {', '.join(STATUSES)}\n")
            return 2
        revoked = queries.revocation_list(rt)
        if args.json:
            out.write(json.dumps({"incidents": queries.incident_summaries(rt, args.status),
                                  "revocations": revoked}, indent=2) + "\n")
        else:
            _print_incidents(rt, rt.store.list_incidents(args.status), out)
            if revoked:
                out.write(f"\n{len(revoked)} revocation(s) in force (python -m shared revocations; lift one with "
                          "python -m shared unrevoke <revocation> --by <you> --reason <why>)\n")
        return 0
    finally:
        rt.close()


def cmd_verify(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    from shared.engine.runtime import new_correlation_id
    from shared.engine.unit_of_work import RunState
    from shared.engine.verify import run_verifications

    rt = _runtime()
    try:
        counts = run_verifications(rt, RunState.begin(rt, new_correlation_id()))
        out.write(json.dumps(counts) + "\n" if args.json else
                  ("verifications: " + (", ".join(f"{k}={v}" for k, v in counts.items()) or "none due") + "\n"))
        return 0
    finally:
        rt.close()


def _incident_action(args: argparse.Namespace, out: TextIO, action: str) -> int:
    from shared.engine.approvals import ActionRefused, NotFound, approval_terms, approve, revoke

    rt = _runtime()
    try:
        if action == "approve":
            terms = approval_terms(rt, args.incident)  # shown first: the approval grants exactly this
            if not args.json:
                out.write(f"approving {args.incident} grants exactly {terms.describe()}\n")
            if args.show:
                if args.json:
                    out.write(json.dumps({"incident_id": args.incident, "grant": terms.to_json()}) + "\n")
                return 0
            result = approve(rt, args.incident, args.by, fingerprint=args.fingerprint)
        else:
            result = revoke(rt, args.incident, args.by)
    except (ActionRefused, NotFound) as exc:
        out.write(f"{action} refused: {exc}\n")
        return 1
    finally:
        rt.close()
    out.write(json.dumps(result.to_json()) + "\n" if args.json else
              f"{action}d {result.incident_id}: {result.status} ({result.detail})\n")
    return 0


def cmd_approve(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    return _incident_action(args, out, "approve")


def cmd_revocations(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    from shared.engine.approvals import ActionRefused, revocations

    rt = _runtime()
    try:
        found = revocations(rt)
    except ActionRefused as exc:
        out.write(f"revocations unreadable: {exc}\n")
        return 1
    finally:
        rt.close()
    if args.json:
        out.write(json.dumps({"revocations": [r.to_json() for r in found]}, indent=2) + "\n")
    else:
        _print_revocations(found, out)
    return 0


def _print_revocations(found: list, out: TextIO) -> None:
    rows = [[r.id, r.principal_id, r.role_name, short_name(r.scope), r.by, r.at.isoformat(), r.incident_id or "-"]
            for r in found]
    _table(rows, ["revocation", "principal", "role", "scope", "by", "at", "incident"], out)


def cmd_unrevoke(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    from shared.engine.approvals import ActionRefused, NotFound, unrevoke

    rt = _runtime()
    try:
        lifted = unrevoke(rt, args.revocation, args.by, args.reason)
    except (ActionRefused, NotFound) as exc:
        out.write(f"unrevoke refused: {exc}\n")
        return 1
    finally:
        rt.close()
    out.write(f"lifted {lifted.id}: the service may grant {lifted.role_name} at {lifted.scope} to "
              f"{lifted.principal_id} again\n")
    return 0


def cmd_revoke(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    return _incident_action(args, out, "revoke")


def cmd_suppress(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    from shared.engine.approvals import ActionRefused, suppress
    from shared.engine.inputs import BadInput, suppression_duration

    try:
        duration = suppression_duration(args.duration)
    except BadInput as exc:
        out.write(f"{exc}\n")
        return 2
    rt = _runtime()
    try:
        result = suppress(rt, args.target, duration, args.reason, args.by)
    except ActionRefused as exc:
        out.write(f"suppress refused: {exc}\n")
        return 1
    finally:
        rt.close()
    out.write(f"suppressed {result.target} until {result.until.isoformat()}\n")
    return 0


def cmd_breaker_reset(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    from shared.engine.approvals import reset_breaker

    rt = _runtime()
    try:
        state = reset_breaker(rt, args.by)
    finally:
        rt.close()
    out.write(f"circuit breaker reset: {json.dumps(state.to_dict(), default=str)}\n")
    return 0


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON")


def incidents_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("id", nargs="?", help="show this incident with its audit trail")
    p.add_argument("--status", help="only incidents in this lifecycle status")
    _json_flag(p)


def incident_action_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("incident")
    p.add_argument("--by", required=True, help="your identity, recorded in the audit log")
    _json_flag(p)


def approve_arguments(p: argparse.ArgumentParser) -> None:
    incident_action_arguments(p)
    p.add_argument("--fingerprint", help="the diagnosis fingerprint the ticket shows: refuse unless the "
                   "recommendation still offers exactly that")
    p.add_argument("--show", action="store_true", help="only show what approving would grant")


def unrevoke_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("revocation", help="the revocation id (python -m shared revocations)")
    p.add_argument("--by", required=True, help="your identity, recorded in the audit log")
    p.add_argument("--reason", required=True)


def suppress_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="object id or resource id")
    p.add_argument("--for", dest="duration", required=True, help="e.g. 7d, 12h, 30m")
    p.add_argument("--reason", required=True)
    p.add_argument("--by", required=True)


def by_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", required=True, help="your identity, recorded in the audit log")


EXIT_FAILED = 1  # the command could not complete: the store, Azure or a tracker failed (an outage)


def guarded(handler: Any) -> Any:
    """Invalid settings end the command with the one clear settings error, on one line, and exit status 2; anything
    else that stops it (the store, ARM or Log Analytics unreachable) with one line naming what failed and exit
    status 1, never a traceback (it goes to the debug log)."""

    def run(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
        try:
            return handler(args, stdin, out)
        except SettingsError as exc:
            sys.stderr.write(exc.one_line() + "\n")
            return 2
        except Exception as exc:  # noqa: BLE001 - an outage must read as one line, not a trace
            from shared.cli import error_line

            log.debug("command failed", exc_info=True)
            sys.stderr.write(error_line(exc, getattr(args, "command", None)) + "\n")
            return EXIT_FAILED

    return run


scan = guarded(cmd_scan)
sources = guarded(cmd_sources)
incidents = guarded(cmd_incidents)
verify = guarded(cmd_verify)
approve = guarded(cmd_approve)
revoke = guarded(cmd_revoke)
suppress = guarded(cmd_suppress)
revocations = guarded(cmd_revocations)
unrevoke = guarded(cmd_unrevoke)
breaker_reset = guarded(cmd_breaker_reset)


# ---- review (docs/reviews.md) ---------------------------------------------------------------------------------


def review_arguments(p: argparse.ArgumentParser) -> None:
    kinds = p.add_subparsers(dest="review", metavar="review")
    kinds.required = True
    for name, help_text in (("readiness", "may local authentication (API keys) be disabled, per account"),
                            ("access", "every role assignment covering an AI account, against the guide"),
                            ("upgrade", "before upgrading classic Azure OpenAI accounts to Foundry: what widens")):
        sub = kinds.add_parser(name, help=help_text, description=help_text)
        sub.add_argument("--account", help="one account's resource id (default: every account of the subscription)")
        sub.add_argument("--days", type=_review_days, default=14, help="how many days of logs to read (default 14)")
        if name == "access":
            sub.add_argument("--pre-upgrade", dest="pre_upgrade", action="store_true",
                             help="add the pre-upgrade audit for classic Azure OpenAI accounts")
        sub.add_argument("--ticket", action="store_true", help="open or update one ticket per account in the "
                         "configured sinks (closed when the review is clean)")
        form = sub.add_mutually_exclusive_group()
        form.add_argument("--json", action="store_true", help="print JSON")
        form.add_argument("--markdown", action="store_true", help="print Markdown for a change request")


def _review_days(text: str) -> int:
    from shared.engine.reviews import MAX_DAYS

    try:
        days = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of days: {text!r}") from None
    if not 1 <= days <= MAX_DAYS:
        raise argparse.ArgumentTypeError(f"--days must be 1 to {MAX_DAYS}")
    return days


def cmd_review(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    """A review's table, JSON or Markdown; exit 1 when the accounts could not be listed or any part of a review
    could not be checked (it then says what), else 0 whatever the verdicts."""
    from datetime import UTC, datetime

    from shared.bootstrap import build_review_reader
    from shared.core.reviews import render
    from shared.engine.reviews import known_names, review_access, review_readiness

    settings = load_settings()
    reader = build_review_reader(settings)
    now = datetime.now(UTC)
    names = known_names(settings)
    found: list[Any] = []
    found_access: list[Any] = []
    if args.review == "readiness":
        found, problem = review_readiness(reader, now=now, account=args.account, days=args.days, names=names)
        body: dict[str, Any] = {"readiness": [r.to_json() for r in found]}
        text = render.readiness_markdown(found) if args.markdown else render.readiness_text(found)
        unchecked = any(r.could_not_check for r in found)
    else:
        found_access, problem = review_access(reader, now=now, account=args.account, days=args.days,
                                              pre_upgrade=getattr(args, "pre_upgrade", False),
                                              upgrade_only=args.review == "upgrade", names=names)
        body = {"access_findings": [f.to_json() for r in found_access for f in r.findings],
                "accounts": [r.to_json() for r in found_access]}
        text = render.access_markdown(found_access) if args.markdown else render.access_text(found_access)
        unchecked = any(r.could_not_check for r in found_access)
    if problem:
        body["problem"] = problem
    tickets: list[dict[str, Any]] = []
    if args.ticket:
        from shared.bootstrap import build_review_sinks
        from shared.engine.review_tickets import ticket_reviews

        tickets = ticket_reviews(build_review_sinks(settings), at=now, mode=settings.mode,
                                 readiness=found if args.review == "readiness" else (),
                                 access=found_access if args.review != "readiness" else ())
        body["tickets"] = tickets
    if args.json:
        out.write(json.dumps(body, indent=2) + "\n")
    else:
        out.write(text + (f"\nCOULD NOT LIST THE ACCOUNTS: {problem}\n" if problem else ""))
        out.writelines(f"ticket {t['sink']} {t['result']} {t['ref']} {t.get('error', '')}".rstrip() + "\n"
                       for t in tickets)
    failed = any(t["result"] == "failed" for t in tickets)
    return 1 if problem or unchecked or failed else 0


review = guarded(cmd_review)
