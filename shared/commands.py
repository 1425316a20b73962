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

from shared.cli_output import QueryError, chosen_format, emit, main_list, table
from shared.core.resource_ids import short_name
from shared.settings import SettingsError, load_settings

log = logging.getLogger("triage")


def _runtime():
    from shared.bootstrap import build_runtime

    return build_runtime(load_settings())


EXIT_NOT_FOUND = 3  # the incident or revocation named does not exist
EXIT_USAGE = 2


def _error(message: str) -> None:
    sys.stderr.write(message + "\n")


def _refused(message: str, args: argparse.Namespace, out: TextIO) -> None:
    """A refusal is an error (stderr); the text form also keeps it on stdout, where it always was, unless both
    streams are the same terminal (then it would read twice)."""
    _error(message)
    if chosen_format(args, "text") == "text" and not _same_terminal(out):
        out.write(message + "\n")


def _same_terminal(out: TextIO) -> bool:
    import os

    try:
        return out.isatty() and sys.stderr.isatty() and os.path.samestat(os.fstat(out.fileno()),
                                                                           os.fstat(sys.stderr.fileno()))
    except (OSError, ValueError, AttributeError):
        return False


def _progress(args: argparse.Namespace, message: str) -> None:
    """Progress for a long run: on stderr (stdout stays the output), when asked or when a person watches."""
    if getattr(args, "verbose", False) or sys.stderr.isatty():
        sys.stderr.write(message + "\n")
        sys.stderr.flush()


def _wants_progress(args: argparse.Namespace) -> bool:
    return bool(getattr(args, "verbose", False)) or sys.stderr.isatty()


class _SourceProgress:
    """A failure source that says on stderr what each read found (the scan reads through it, unchanged)."""

    def __init__(self, inner: Any):
        self._inner = inner
        self.name = inner.name

    def read(self, start: Any, end: Any, resource_ids: Any = None, **options: Any) -> Any:
        try:
            batch = self._inner.read(start, end, resource_ids, **options)
        except Exception as exc:
            sys.stderr.write(f"source {self.name}: FAILED {type(exc).__name__}\n")
            raise
        found = f"no data yet ({batch.no_data})" if batch.no_data else f"{len(batch.signals)} failure group(s)"
        sys.stderr.write(f"source {self.name}: {found} from {start:%H:%M:%S} to {end:%H:%M:%S}\n")
        return batch

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


class _EvidenceProgress:
    """The evidence provider, saying on stderr how many (principal, resource) pairs each batch of reads covered."""

    def __init__(self, inner: Any):
        self._inner = inner

    def gather_evidence(self, pairs: Any) -> Any:
        found = self._inner.gather_evidence(pairs)
        failed = sum(1 for evidence in found.values() if getattr(evidence, "failed", None))
        sys.stderr.write(f"evidence: {len(pairs)} pair(s) read" + (f", {failed} with a failed look-up" if failed
                                                                   else "") + "\n")
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _with_progress(rt: Any) -> None:
    rt.sources = [_SourceProgress(source) for source in rt.sources]
    rt.evidence = _EvidenceProgress(rt.evidence)


def _clipped(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---- table views: what a table shows of a command's JSON (the JSON itself is unchanged) -----------------------


def _incident_rows(summaries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"incident": i["id"], "status": i["status"], "cause": i["cause"], "count": i["count"],
             "principal": (i["principal_id"] or "key callers")[:36], "resource": short_name(i["resource_id"]),
             "role": i["role"] or "-", "tickets": ",".join(i["tickets"].values()) or "-"} for i in summaries]


def _incidents_view(body: dict[str, Any]) -> list[dict[str, Any]]:
    return _incident_rows(body["incidents"])


def _sources_view(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"source": h["name"], "state": h["state"], "since": h["since"] or "-",
             "last success": h["last_success"] or "-", "last error at": h["last_error_at"] or "-",
             "detail": _clipped(h["detail"] or h["last_error"] or "")} for h in body["sources"]]


def _revocations_view(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"revocation": r["id"], "principal": r["principal_id"], "role": r["role_name"],
             "scope": short_name(r["scope"]), "by": r["by"], "at": r["at"], "incident": r["incident_id"] or "-"}
            for r in body["revocations"] if "error" not in r]


def _audit_view(detail: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"at": a["at"], "kind": a["kind"], "actor": a["actor"] or "-", "detail": _clipped(a["detail"] or "", 90)}
            for a in detail["audit"]]


def incident_text(detail: dict[str, Any]) -> str:
    """`incidents show <id>`: the incident's facts, then its audit trail and revocations as tables."""
    diagnosis = detail.get("diagnosis") or {}
    facts = [("incident", detail["id"]), ("status", detail["status"]), ("cause", detail["cause"]),
             ("principal", detail.get("principal_name") or detail["principal_id"] or "key callers"),
             ("principal id", detail["principal_id"] or "-"), ("resource", detail["resource_id"]),
             ("role", diagnosis.get("role") or "-"), ("scope", diagnosis.get("scope") or "-"),
             ("count", detail["count"]), ("first seen", detail["first_seen"]), ("last seen", detail["last_seen"]),
             ("summary", diagnosis.get("summary") or "-"),
             ("tickets", ", ".join(f"{k}: {v}" for k, v in detail["ticket_refs"].items()) or "-")]
    width = max(len(name) for name, _ in facts)
    lines = [f"{name.ljust(width)}  {value}" for name, value in facts]
    audit = _audit_view(detail)
    text = "\n".join(lines) + f"\n\nAudit trail ({len(audit)}):\n" + (table(audit) if audit else "  none\n")
    revocations = _revocations_view(detail)
    if revocations:
        text += f"\nRevocations in force for this principal ({len(revocations)}):\n" + table(revocations)
    return text


# ---- the commands ---------------------------------------------------------------------------------------------


def cmd_scan(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    from shared.engine import queries
    from shared.engine.scan import run_scan

    rt = _runtime()
    try:
        if _wants_progress(args):
            _with_progress(rt)
        _progress(args, f"scan: {len(rt.sources)} source(s)")
        report = run_scan(rt)
        # Settings only the Functions host reads (the timer's schedule): the scan ran, but the timer will not.
        setting_problems = [{"key": k, "expected": why} for k, why in rt.settings.host_problems]
        status = 1 if report.failed else 0  # a source or an evidence look-up could not be read
        body = report.to_json()
        if setting_problems:
            body["settings_problems"] = setting_problems
        _progress(args, f"scan: {len(report.incidents)} incident(s) handled, {report.grants} grant(s), "
                  f"{len(report.evidence_errors)} evidence look-up(s) failed")
        incidents = [i for i in (rt.store.get_incident(x) for x in report.incidents) if i is not None]
        rows = _incident_rows([queries.summary(i) for i in incidents])

        def text() -> str:
            lines = [f"scan {report.correlation_id}: {report.signals} failure group(s), {report.rejected} rejected "
                     f"row(s), {report.grants} grant(s)"]
            lines += [f"  SETTING {problem['key']}: {problem['expected']}" for problem in setting_problems]
            for name, (start, end) in report.windows.items():
                lines.append(f"  {name}: {start} .. {end}{_read_state(report.sources.get(name, {}))}")
            lines += [f"  PARTIAL RESULT {line}" for line in report.partial]
            lines += [f"  EVIDENCE ERROR {line}" for line in report.evidence_errors]
            result = "\n".join(lines) + "\n" + table(rows, headers=INCIDENT_COLUMNS)
            if report.verifications:
                result += "verifications: " + ", ".join(f"{k}={v}" for k, v in report.verifications.items()) + "\n"
            return result

        emit(args, body, out, text=text, table_view=lambda _: rows)
        return status
    finally:
        rt.close()


INCIDENT_COLUMNS = ("incident", "status", "cause", "count", "principal", "resource", "role", "tickets")
SOURCE_COLUMNS = ("source", "state", "since", "last success", "last error at", "detail")
REVOCATION_COLUMNS = ("revocation", "principal", "role", "scope", "by", "at", "incident")


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
    emit(args, {"sources": health}, out, table_view=_sources_view, columns=SOURCE_COLUMNS)
    return 1 if any(h["state"] == "failed" for h in health) else 0


def cmd_incidents(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    """`incidents [list]`, `incidents show <id>` (facts and audit trail), and the older `incidents <id>` (JSON)."""
    from shared.core.incidents import STATUSES
    from shared.engine import queries

    words = list(args.words)
    verb = words.pop(0) if words and words[0] in ("show", "list") else ("show" if words else "list")
    if len(words) != (1 if verb == "show" else 0):
        _error("usage: python -m shared incidents [list] | incidents show <id>")
        return EXIT_USAGE
    if verb == "list" and args.status is not None and args.status not in STATUSES:
        _error(f"error: --status must be one of: {', '.join(STATUSES)}")
        return EXIT_USAGE
    legacy_show = verb == "show" and args.words[0] != "show"  # `incidents <id>` printed JSON, and still does
    rt = _runtime()
    try:
        if verb == "show":
            incident_id = words[0]
            body = queries.incident_detail(rt, incident_id)
            if body is None:
                _error(f"error: no incident {incident_id}")
                if legacy_show and chosen_format(args, "json") == "json" and not args.query:
                    out.write(json.dumps({"error": f"no incident {incident_id}"}, indent=2) + "\n")
                return EXIT_NOT_FOUND
            detail: dict[str, Any] = body
            if legacy_show and not args.output and not args.query:
                out.write(json.dumps(detail, indent=2, default=str) + "\n")
            else:
                emit(args, detail, out, text=lambda: incident_text(detail), table_view=_audit_view)
            return 0
        summaries = queries.incident_summaries(rt, args.status)
        revoked = queries.revocation_list(rt)
        body = {"incidents": summaries, "revocations": revoked}

        def text() -> str:
            result = table(_incident_rows(summaries), headers=INCIDENT_COLUMNS)
            if revoked:
                result += (f"\n{len(revoked)} revocation(s) in force (python -m shared revocations; lift one with "
                           "python -m shared unrevoke <revocation> --reason <why>)\n")
            return result

        emit(args, body, out, text=text, table_view=_incidents_view, columns=INCIDENT_COLUMNS)
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
    finally:
        rt.close()
    emit(args, counts, out, legacy_json=lambda body: json.dumps(body) + "\n",
         text=lambda: "verifications: " + (", ".join(f"{k}={v}" for k, v in counts.items()) or "none due") + "\n")
    return 0


def _incident_action(args: argparse.Namespace, out: TextIO, action: str) -> int:
    from shared.engine.approvals import ActionRefused, NotFound, approval_terms, approve, revoke

    actor = resolve_actor(args) if not getattr(args, "show", False) else (args.by or "")
    rt = _runtime()
    try:
        if action == "approve":
            terms = approval_terms(rt, args.incident)  # shown first: the approval grants exactly this
            if chosen_format(args, "text") == "text":
                out.write(f"approving {args.incident} grants exactly {terms.describe()}\n")
            if args.show:
                body = {"incident_id": args.incident, "grant": terms.to_json()}
                if chosen_format(args, "text") != "text":
                    emit(args, body, out, legacy_json=lambda b: json.dumps(b) + "\n")
                return 0
            result = approve(rt, args.incident, actor, fingerprint=args.fingerprint)
        else:
            result = revoke(rt, args.incident, actor)
    except NotFound as exc:
        _error(f"error: {exc}")
        return EXIT_NOT_FOUND
    except ActionRefused as exc:
        _refused(f"{action} refused: {exc}", args, out)
        return 1
    finally:
        rt.close()
    emit(args, result.to_json(), out, legacy_json=lambda b: json.dumps(b) + "\n",
         text=lambda: f"{action}d {result.incident_id}: {result.status} ({result.detail})\n")
    return 0


def cmd_approve(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    return _incident_action(args, out, "approve")


def cmd_revocations(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    from shared.engine.approvals import ActionRefused, revocations

    rt = _runtime()
    try:
        found = revocations(rt)
    except ActionRefused as exc:
        _error(f"revocations unreadable: {exc}")
        return 1
    finally:
        rt.close()
    emit(args, {"revocations": [r.to_json() for r in found]}, out, table_view=_revocations_view,
         columns=REVOCATION_COLUMNS)
    return 0


def cmd_unrevoke(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    from shared.engine.approvals import ActionRefused, NotFound, unrevoke

    actor = resolve_actor(args)
    rt = _runtime()
    try:
        lifted = unrevoke(rt, args.revocation, actor, args.reason)
    except NotFound as exc:
        _error(f"error: {exc}")
        return EXIT_NOT_FOUND
    except ActionRefused as exc:
        _refused(f"unrevoke refused: {exc}", args, out)
        return 1
    finally:
        rt.close()
    emit(args, lifted.to_json(), out, text=lambda: f"lifted {lifted.id}: the service may grant {lifted.role_name} "
         f"at {lifted.scope} to {lifted.principal_id} again\n")
    return 0


def cmd_revoke(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    return _incident_action(args, out, "revoke")


def cmd_suppress(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    from shared.engine.approvals import ActionRefused, suppress
    from shared.engine.inputs import BadInput, suppression_duration

    try:
        duration = suppression_duration(args.duration)
    except BadInput as exc:
        _error(f"error: {exc}")
        return EXIT_USAGE
    actor = resolve_actor(args)
    rt = _runtime()
    try:
        result = suppress(rt, args.target, duration, args.reason, actor)
    except ActionRefused as exc:
        _refused(f"suppress refused: {exc}", args, out)
        return 1
    finally:
        rt.close()
    body = {"target": result.target, "until": result.until.isoformat(), "reason": result.reason,
            "actor": result.actor, "created_at": result.created_at.isoformat()}
    emit(args, body, out, text=lambda: f"suppressed {result.target} until {result.until.isoformat()}\n")
    return 0


def cmd_breaker_reset(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
    from shared.engine.approvals import reset_breaker

    actor = resolve_actor(args)
    rt = _runtime()
    try:
        state = reset_breaker(rt, actor)
    finally:
        rt.close()
    body = json.loads(json.dumps(state.to_dict(), default=str))
    emit(args, body, out, text=lambda: f"circuit breaker reset: {json.dumps(state.to_dict(), default=str)}\n")
    return 0


# ---- --by: who acts ---------------------------------------------------------------------------------------------


class ActorMissing(SettingsError):
    """No --by, no TRIAGE_ACTOR, no signed-in Azure CLI user: a usage error."""

    def one_line(self) -> str:
        return "error: " + "; ".join(f"{key} is {why}" for key, why in self.problems)


def resolve_actor(args: argparse.Namespace) -> str:
    """--by, else TRIAGE_ACTOR, else the user the Azure CLI is signed in as (read from its profile file: no network)."""
    if args.by and args.by.strip():
        return str(args.by)
    actor = load_settings().actor or signed_in_user()
    if not actor:
        raise ActorMissing([("--by", "required: pass --by <you>, set TRIAGE_ACTOR, or sign in with az login")])
    return actor


def signed_in_user(config_dir: str | None = None) -> str:
    """The user name of the Azure CLI's default subscription in azureProfile.json, or ""."""
    import os
    from pathlib import Path

    base = Path(config_dir or os.environ.get("AZURE_CONFIG_DIR") or Path.home() / ".azure")
    try:
        profile = json.loads((base / "azureProfile.json").read_text(encoding="utf-8-sig"))
        default = next(s for s in profile.get("subscriptions", []) if s.get("isDefault"))
        return str(default.get("user", {}).get("name") or "")
    except (OSError, ValueError, StopIteration, AttributeError, TypeError):
        return ""


# ---- arguments --------------------------------------------------------------------------------------------------


def _json_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="print JSON (the same as -o json)")


def _by_flag(p: argparse.ArgumentParser) -> None:
    p.add_argument("--by", help="your identity, recorded in the audit log (default: TRIAGE_ACTOR, else the "
                   "signed-in Azure CLI user)")


def incidents_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("words", nargs="*", metavar="[list | show <id> | <id>]",
                   help="list the incidents (the default), or show one with its audit trail (`<id>` alone prints "
                   "its JSON, as it always did)")
    p.add_argument("--status", help="only incidents in this lifecycle status")
    _json_flag(p)


def incident_action_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("incident")
    _by_flag(p)
    _json_flag(p)


def approve_arguments(p: argparse.ArgumentParser) -> None:
    incident_action_arguments(p)
    p.add_argument("--fingerprint", help="the diagnosis fingerprint the ticket shows: refuse unless the "
                   "recommendation still offers exactly that")
    p.add_argument("--show", action="store_true", help="only show what approving would grant")


def unrevoke_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("revocation", help="the revocation id (python -m shared revocations)")
    _by_flag(p)
    p.add_argument("--reason", required=True)


def suppress_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("target", help="object id or resource id")
    p.add_argument("--for", dest="duration", required=True, help="e.g. 7d, 12h, 30m")
    p.add_argument("--reason", required=True)
    _by_flag(p)


def by_arguments(p: argparse.ArgumentParser) -> None:
    _by_flag(p)


EXIT_FAILED = 1  # the command could not complete: the store, Azure or a tracker failed (an outage)


def guarded(handler: Any) -> Any:
    """Invalid settings (or a bad --query) end the command with the one clear error, on one line, and exit status
    2; anything else that stops it (the store, ARM or Log Analytics unreachable) with one line naming what failed
    and exit status 1, never a traceback (it goes to the debug log)."""

    def run(args: argparse.Namespace, stdin: Any, out: TextIO) -> int:
        try:
            return handler(args, stdin, out)
        except SettingsError as exc:
            sys.stderr.write(exc.one_line() + "\n")
            return 2
        except QueryError as exc:
            sys.stderr.write(f"error: {exc}\n")
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
        from shared.cli import common_options
        from shared.cli_examples import EXAMPLES

        sub = kinds.add_parser(name, help=help_text, description=help_text,
                               formatter_class=argparse.RawDescriptionHelpFormatter,
                               epilog="examples:\n" + "\n".join(f"  {line}" for line in EXAMPLES["review"]
                                                                 if f"review {name} " in f"{line} "))
        common_options(sub, nested=True)
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
    def human() -> str:
        return text + (f"\nCOULD NOT LIST THE ACCOUNTS: {problem}\n" if problem else "") + "".join(
            f"ticket {t['sink']} {t['result']} {t['ref']} {t.get('error', '')}".rstrip() + "\n" for t in tickets)

    if args.markdown:
        out.write(human())
    else:
        emit(args, body, out, text=human, table_view=main_list)
    failed = any(t["result"] == "failed" for t in tickets)
    return 1 if problem or unchecked or failed else 0


review = guarded(cmd_review)
