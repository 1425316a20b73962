"""`python -m shared <command>`: the command line of the service.

Commands live in COMMANDS (name -> Command). A handler is named as "module:function" and imported only when its
command runs, so `python -m shared classify` never pays for the Azure SDKs another command needs. A handler
takes (args, stdin, stdout) and returns the exit status; stdin is a binary stream, stdout a text stream.

The `classify` contract (other tools and on-call scripts depend on it):
  input: JSON Lines on stdin, one failure per line (see shared/core/signals.py for the fields);
  output: one JSON line per input line, in order: the Diagnosis's classify JSON, or {"error": "<why>"};
  exit status: 0 when every line was classified, 1 when any line was an error.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import IO, Any

EXIT_OK = 0
EXIT_SOME_ERRORS = 1
EXIT_USAGE = 2
EXIT_NOT_FOUND = 3  # the incident, revocation or account named does not exist


def _no_arguments(parser: argparse.ArgumentParser) -> None:
    return None


@dataclass(frozen=True)
class Command:
    help: str
    handler: str  # "module:function"
    arguments: Callable[[argparse.ArgumentParser], None] = field(default=_no_arguments)
    # The handler prints through shared.cli_output and reads -o/--query itself; otherwise the handler's --json
    # output is captured and rendered for them (doctor, demo: commands that own their human form).
    formats: bool = True


def _diagnose_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--status", type=int, help="HTTP status (without it, a JSON object is read from stdin)")
    parser.add_argument("--code", help="error code, e.g. PermissionDenied")
    parser.add_argument("--message", help="error message or the whole error text as reported")
    parser.add_argument("--endpoint", help="request URL or host")
    parser.add_argument("--auth", help="entra or key")
    parser.add_argument("--object-id", dest="object_id", help="caller's Entra object id")
    parser.add_argument("--resource-id", dest="resource_id", help="target account (or project) resource id")
    parser.add_argument("--principal-type", dest="principal_type", help="User, ServicePrincipal or Group")
    parser.add_argument("--route", help="URL path or log apiName")
    parser.add_argument("--operation", help="log OperationName, e.g. ChatCompletions_Create")
    parser.add_argument("--evidence", help="file with evidence JSON: {assignments: [...], resource: {...}}")
    parser.add_argument("--now", help="ISO-8601 time to judge role ages against (default: now)")
    parser.add_argument("--json", action="store_true", help="print the full diagnosis as JSON")


def _samples_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print each full diagnosis as a JSON line")


def _demo_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print the report as one JSON object")
    parser.add_argument("--provider", help="ticket provider: github (default), azuredevops, servicenow, jira, "
                        "webhook, slack, teams or log; also TRIAGE_DEMO_TICKETS")


def _json_flag(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--json", action="store_true", help="print JSON")


def _lazy_arguments(name: str) -> Callable[[argparse.ArgumentParser], None]:
    def add(parser: argparse.ArgumentParser) -> None:
        getattr(importlib.import_module("shared.commands"), name)(parser)

    return add


COMMANDS: dict[str, Command] = {
    "classify": Command("classify failures: JSON Lines in, one JSON line out per input line",
                        "shared.cli:run_classify"),
    "diagnose": Command("diagnose one failure (JSON object on stdin, or flags) and print the fix",
                        "shared.cli:run_diagnose", _diagnose_arguments),
    "samples": Command("diagnose the bundled sample failures and print a table", "shared.cli:run_samples",
                       _samples_arguments),
    "demo": Command("run the whole arc on the local stand-in (needs the dev checkout: localazure/)",
                    "localazure.demo:run", _demo_arguments, formats=False),
    "scan": Command("run one full cycle: read, diagnose, decide, act, persist, verify (exit 1 when a source or "
                    "an evidence look-up could not be read)", "shared.commands:scan", _json_flag),
    "sources": Command("each failure source's health: ok, no data yet or failed, last success, last error",
                       "shared.commands:sources", _json_flag),
    "incidents": Command("list incidents, or show one with its audit trail", "shared.commands:incidents",
                         _lazy_arguments("incidents_arguments")),
    "verify": Command("run the verifications that are due", "shared.commands:verify", _json_flag),
    "approve": Command("approve a recommended role assignment: shows exactly what it grants, and grants nothing "
                       "else (policy is checked again)", "shared.commands:approve",
                       _lazy_arguments("approve_arguments")),
    "revoke": Command("remove a role assignment this service created; it is not granted again until unrevoked",
                      "shared.commands:revoke", _lazy_arguments("incident_action_arguments")),
    "revocations": Command("list the revocations in force", "shared.commands:revocations", _json_flag),
    "unrevoke": Command("lift a revocation: the service may grant that role at that scope again",
                        "shared.commands:unrevoke", _lazy_arguments("unrevoke_arguments")),
    "suppress": Command("suppress a principal or resource for a while", "shared.commands:suppress",
                        _lazy_arguments("suppress_arguments")),
    "settings-files": Command("regenerate local.settings.sample.json and docs/settings.md from the code",
                              "shared.settings_reference:write_files", formats=False),
    "breaker-reset": Command("close the circuit breaker after a review", "shared.commands:breaker_reset",
                             _lazy_arguments("by_arguments")),
    "abac-condition": Command("print the ABAC condition for the service's Role Based Access Control Administrator "
                              "assignments: exactly the grantable roles and principal types of the policy",
                              "shared.cli:run_abac_condition", _json_flag),
    "doctor": Command("self-check: settings, store, tokens, identity, own role assignments and conditions, "
                      "workspaces, diagnostic settings, ticket sinks (exit 1 when a check fails)",
                      "shared.doctor:run", _json_flag, formats=False),
    "review": Command("access reviews from the RBAC guide: local-auth readiness, least privilege, the pre-upgrade "
                      "audit (reads only; exit 1 when something could not be checked)", "shared.commands:review",
                      _lazy_arguments("review_arguments")),
}


def common_options(parser: argparse.ArgumentParser, nested: bool = False) -> None:
    """The `az` options every command takes (after its name): -o, --query, --verbose. A nested subcommand (review
    readiness) takes them too, without defaults of its own that would hide the ones given before its name."""
    from shared.cli_output import FORMATS

    group = parser.add_argument_group("global arguments")
    unset = argparse.SUPPRESS if nested else None
    group.add_argument("-o", "--output", choices=FORMATS, default=unset,
                       help="output format (default: the command's own text or table; --json is -o json)")
    group.add_argument("--query", default=unset, help="JMESPath query applied to the JSON output, "
                       "e.g. \"incidents[?status=='open'].id\"")
    group.add_argument("--verbose", action="store_true", default=argparse.SUPPRESS if nested else False,
                       help="progress on stderr (also whenever stderr is a terminal)")


def add_command_parser(sub: Any, name: str, help_text: str, examples: Sequence[str] = ()) -> argparse.ArgumentParser:
    """A subcommand with the global arguments and its examples under --help."""
    epilog = "examples:\n" + "\n".join(f"  {line}" for line in examples) if examples else None
    parser = sub.add_parser(name, help=help_text, description=help_text, epilog=epilog,
                            formatter_class=argparse.RawDescriptionHelpFormatter)
    common_options(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    from shared.cli_examples import EXAMPLES

    parser = argparse.ArgumentParser(prog="python -m shared", description="Entra ID 401/403 triage for Azure "
                                     "OpenAI and Microsoft Foundry", epilog="exit status: 0 success, 1 failure, "
                                     "2 usage or settings error, 3 not found. Run `python -m shared <command> -h` "
                                     "for a command's examples.")
    sub = parser.add_subparsers(dest="command", metavar="command")
    sub.required = True
    for name, command in COMMANDS.items():
        command.arguments(add_command_parser(sub, name, command.help, EXAMPLES.get(name, ())))
    return parser


def main(argv: list[str] | None = None, stdin: IO[bytes] | None = None, stdout: IO[str] | None = None) -> int:
    """Run one command. Whatever goes wrong ends in one line on stderr and a non-zero exit, never a traceback:
    invalid settings or a bad --query exit 2, anything else 1 (the traceback is logged at DEBUG on the
    `triage.cli` logger)."""
    args = build_parser().parse_args(argv)
    command = COMMANDS[args.command]
    module_name, function_name = command.handler.split(":")
    _quiet_credential_chain()
    out = stdout or sys.stdout
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        if not command.formats and (getattr(args, "output", None) or getattr(args, "query", None)):
            return _rendered_from_json(handler, args, stdin if stdin is not None else sys.stdin.buffer, out)
        return handler(args, stdin if stdin is not None else sys.stdin.buffer, out)
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        return 130
    except Exception as exc:  # noqa: BLE001 - the one place a command's failure becomes its one-line message
        import logging

        from shared.cli_output import QueryError
        from shared.settings import SettingsError

        logging.getLogger("triage.cli").debug("command %s failed", args.command, exc_info=True)
        sys.stderr.write(error_line(exc, args.command) + "\n")
        return EXIT_USAGE if isinstance(exc, (SettingsError, QueryError)) else EXIT_SOME_ERRORS


def _rendered_from_json(handler: Callable[..., int], args: argparse.Namespace, stdin: IO[bytes], out: IO[str]) -> int:
    """-o/--query for a command that prints its own forms: its --json output, rendered."""
    import io

    from shared.cli_output import chosen_format, main_list, render

    if not hasattr(args, "json"):  # nothing to render (settings-files writes files)
        return int(handler(args, stdin, out))
    captured = io.StringIO()
    args.json = True
    status = int(handler(args, stdin, captured))
    text = captured.getvalue()
    try:
        body = json.loads(text)
    except ValueError:  # not one JSON value: pass it through untouched
        out.write(text)
        return status
    output = chosen_format(args)
    out.write(render(body, output, args.query, table_view=main_list if output == "table" else None))
    return status


def _quiet_credential_chain() -> None:
    """azure-identity warns once per credential it tried; the error (and its one line here) already says it all."""
    import logging

    if not logging.getLogger().handlers:  # a caller that configured logging sees everything
        logging.getLogger("azure.identity").setLevel(logging.ERROR)


def error_line(exc: BaseException, command: str | None = None) -> str:
    """One line for a failed command: the settings problems, or what failed (`<command> failed: <Type>: <first line>`)
    and, when no Azure credential worked, what to do about it."""
    from shared.core.doctor import credential_hint
    from shared.settings import SettingsError

    if isinstance(exc, SettingsError):
        return exc.one_line()
    from shared.cli_output import QueryError

    if isinstance(exc, QueryError):
        return f"error: {exc}"
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    first = lines[0] if lines else "no message"
    first = first if len(first) <= 300 else first[:299] + "…"
    message = f"{command or 'command'} failed: {type(exc).__name__}: {first}"
    if _is_credential_error(exc):
        message += f" (hint: {credential_hint(str(exc))})"
    return message


def _is_credential_error(exc: BaseException) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # StoreError and friends wrap the SDK's error
        seen.add(id(current))
        if any(cls.__name__ in ("ClientAuthenticationError", "CredentialUnavailableError")
               for cls in type(current).__mro__):
            return True
        current = current.__cause__ or current.__context__
    return False


# ---- classify -----------------------------------------------------------------------------------------------


def classify_line(raw: bytes | str) -> tuple[dict[str, Any], bool]:
    """One input line -> (output object, ok)."""
    from shared.core.diagnose import diagnose
    from shared.core.signals import SignalError, parse_failure

    try:
        text = raw.decode("utf-8") if isinstance(raw, bytes) else raw
    except UnicodeDecodeError:
        return {"error": "not valid UTF-8"}, False
    text = text.rstrip("\r\n")
    if not text.strip():
        return {"error": "empty line"}, False
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError) as exc:  # ValueError: also an integer longer than Python reads
        reason = (f"{exc.msg} at column {exc.colno}" if isinstance(exc, json.JSONDecodeError)
                  else "nested too deep" if isinstance(exc, RecursionError) else "a number too long to read")
        return {"error": f"not valid JSON: {reason}"}, False
    try:
        signal = parse_failure(obj)
    except SignalError as exc:
        return {"error": str(exc)}, False
    return diagnose(signal).to_classify_json(), True


def run_classify(args: argparse.Namespace, stdin: Iterable[bytes], stdout: IO[str]) -> int:
    """JSON Lines out, one per input line as they come (the contract); -o tsv/jsonc/none and --query work per line,
    -o table (one table needs every row) prints after the last line."""
    from shared.cli_output import colour_json, query, render

    output = getattr(args, "output", None) or "json"
    expression = getattr(args, "query", None)
    all_ok = True
    rows: list[Any] = []
    for raw in stdin:
        out, ok = classify_line(raw)
        all_ok = all_ok and ok
        picked = query(out, expression)
        if output == "table":
            rows.append(picked)
            continue
        stdout.write(json.dumps(picked) + "\n" if output == "json" else
                     colour_json(json.dumps(picked)) + "\n" if output == "jsonc" else render(picked, output))
        stdout.flush()  # each answer as soon as it exists: callers may stream
    if output == "table":
        stdout.write(render(rows, "table"))
    return EXIT_OK if all_ok else EXIT_SOME_ERRORS


# ---- diagnose -----------------------------------------------------------------------------------------------


def _read_case(args: argparse.Namespace, stdin: IO[bytes]) -> tuple[Any, Any, datetime | None]:
    """(signal, evidence, now) from flags or from a JSON object on stdin."""
    from shared.core.signals import SignalError, parse_evidence, parse_failure, parse_time

    if args.status is not None:
        fields = {k: getattr(args, k) for k in ("status", "code", "message", "endpoint", "auth", "object_id",
                                                "resource_id", "principal_type", "route", "operation")}
        obj: dict[str, Any] = {k: v for k, v in fields.items() if v is not None}
    else:
        try:
            obj = json.loads(stdin.read().decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise SignalError(f"stdin is not a JSON object: {exc}") from None
        if not isinstance(obj, dict):
            raise SignalError("stdin must hold one JSON object")
    signal = parse_failure(obj)
    evidence_obj = obj.get("evidence")
    if args.evidence:
        try:
            with open(args.evidence, encoding="utf-8") as handle:
                evidence_obj = json.load(handle)
        except (OSError, json.JSONDecodeError) as exc:
            raise SignalError(f"cannot read evidence file: {exc}") from None
    evidence = parse_evidence(evidence_obj) if evidence_obj is not None else None
    now_text = args.now or obj.get("now")
    now = parse_time(now_text, "now") if now_text else datetime.now(UTC)
    return signal, evidence, now


def run_diagnose(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    from shared.core.diagnose import diagnose
    from shared.core.signals import SignalError

    try:
        signal, evidence, now = _read_case(args, stdin)
    except SignalError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return EXIT_USAGE
    from shared.cli_output import emit

    diagnosis = diagnose(signal, evidence, now=now)
    emit(args, diagnosis.to_json(), stdout, text=lambda: render(diagnosis))
    return EXIT_OK


def render(diagnosis: Any) -> str:
    """A diagnosis for humans: cause, summary, evidence, the fix command and the steps with their links."""
    from shared.core.causes import CAUSES

    lines = [
        f"Cause:      {diagnosis.cause} ({CAUSES[diagnosis.cause].title})",
        f"Confidence: {diagnosis.confidence}",
        f"Summary:    {diagnosis.summary}",
    ]
    if diagnosis.role_name:
        lines.append(f"Role:       {diagnosis.role_name} ({diagnosis.role_id})")
        lines.append(f"Scope:      {diagnosis.scope or '<account-resource-id>'}")
    lines.append("Evidence:")
    lines += [f"  - {line}" for line in diagnosis.evidence]
    if diagnosis.fix_command:
        lines += ["Fix:", f"  {diagnosis.fix_command}"]
    if diagnosis.fix_steps:
        lines.append("Steps:")
        for number, step in enumerate(diagnosis.fix_steps, 1):
            lines.append(f"  {number}. {step.text}" + (f"\n     {step.doc_url}" if step.doc_url else ""))
    return "\n".join(lines) + "\n"


# ---- samples ------------------------------------------------------------------------------------------------

SAMPLES_RESOURCE = "samples/failures.jsonl"


def load_samples() -> list[tuple[Any, Any, datetime | None]]:
    """The bundled sample failures: (signal, evidence, now). A sample is judged at its last_seen time."""
    from importlib.resources import files

    from shared.core.signals import parse_evidence, parse_failure

    cases = []
    text = files("shared").joinpath(SAMPLES_RESOURCE).read_text(encoding="utf-8")
    for line in text.splitlines():
        if not line.strip():
            continue
        obj = json.loads(line)
        signal = parse_failure(obj)
        evidence = parse_evidence(obj["evidence"]) if obj.get("evidence") is not None else None
        cases.append((signal, evidence, signal.last_seen))
    return cases


def run_samples(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    from shared.cli_output import emit
    from shared.core.diagnose import diagnose

    body, rows = [], []
    for number, (signal, evidence, now) in enumerate(load_samples(), 1):
        diagnosis = diagnose(signal, evidence, now=now)
        body.append(diagnosis.to_json())
        rows.append({"#": number, "status": signal.status, "cause": diagnosis.cause,
                     "role": diagnosis.role_name or "-", "confidence": diagnosis.confidence,
                     "summary": diagnosis.summary})
    emit(args, body, stdout, table_view=lambda _: rows,
         legacy_json=lambda answers: "".join(json.dumps(answer) + "\n" for answer in answers))  # JSON Lines
    return EXIT_OK


# ---- abac-condition -----------------------------------------------------------------------------------------

# The only settings the condition depends on: the principal types the policy may grant to.
CONDITION_SETTINGS = ("TRIAGE_ALLOW_USER_GRANTS", "TRIAGE_ALLOW_GROUP_GRANTS")


def run_abac_condition(args: argparse.Namespace, stdin: IO[bytes], stdout: IO[str]) -> int:
    """The condition for the policy as the environment configures it. Only the settings it depends on are read, so
    an unrelated setting (a ticket sink without its token on a laptop) does not stand in the way."""
    import os

    from shared.core.abac import CONDITION_VERSION, allowed_principal_types, policy_condition
    from shared.core.roles import GRANTABLE
    from shared.settings import SettingsError, load_settings

    try:
        settings = load_settings({key: os.environ[key] for key in CONDITION_SETTINGS if key in os.environ})
    except SettingsError as exc:
        sys.stderr.write("error: " + "; ".join(f"{key}: {why}" for key, why in exc.problems) + "\n")
        return EXIT_USAGE
    grants = {"allow_user_grants": settings.allow_user_grants, "allow_group_grants": settings.allow_group_grants}
    from shared.cli_output import emit

    condition = policy_condition(**grants)
    emit(args, {"condition": condition, "conditionVersion": CONDITION_VERSION, "roleDefinitionIds": sorted(GRANTABLE),
                "principalTypes": list(allowed_principal_types(**grants))}, stdout, text=lambda: condition + "\n")
    return EXIT_OK
