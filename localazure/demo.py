"""`make demo` / `python -m shared demo`: the whole arc on the local stand-in, through the real entry points.

It starts `localazure` with the bundled demo scenario (real clock, RBAC propagation compressed to 10 s, the
default log shape: server-side rows carry only what Azure documents), points the service at it with SQLite state,
a tracker stand-in, the apps' client-side records (Application Insights in the same workspace, each app named
by the ARM resource whose managed identity calls), the API Management gateway logs, and a second workspace that has
received no diagnostics yet, then drives function_app exactly as Azure would:
timer cycles (`scan`), events delivered to the Event Grid function (`events`), and an on-call approval over HTTP
(`POST /api/incidents/{id}/approve`). Lives in localazure/ because it needs the stand-in; shared/ never imports it.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

SCENARIO = Path(__file__).parent / "scenarios" / "demo.json"
PROPAGATION_SECONDS = 10  # "10 minutes", compressed
# A check counts the traffic from the role's effective time on, and finds none (then waits 15 minutes) unless a
# cycle's traffic landed between that time and the check: the lag must outlast one scan on a loaded machine.
INGESTION_LAG_SECONDS = 5
ONCALL = "oncall@contoso.example"
PROVIDERS = ("github", "azuredevops", "servicenow", "jira", "webhook", "slack", "teams", "log")
TRACKERS = ("github", "azuredevops", "servicenow", "jira", "slack", "teams")


@dataclass(frozen=True)
class Case:
    id: str
    principal: str | None  # None: key callers of the resource
    account: str
    project: str | None = None
    allowlist: dict[str, Any] | None = None  # the allowlist entry for this case's principal, if any


def _entry(oid: str, **more: Any) -> dict[str, Any]:
    return {"object_id": oid, **more}


CASES = (
    Case("mi-missing-openai-user", "0de70000-0001-4000-8000-000000000001", "aoai-demo",
         allowlist=_entry("0de70000-0001-4000-8000-000000000001", name="orders-api")),
    Case("not-allowlisted", "0de70000-0002-4000-8000-000000000002", "aoai-demo"),
    Case("owner-only", "0de70000-0003-4000-8000-000000000003", "aoai-demo",
         allowlist=_entry("0de70000-0003-4000-8000-000000000003", name="billing-api")),
    Case("key-auth-disabled", None, "aoai-keyless"),
    # The firewall answers before the token is read, so the log row names no caller.
    Case("firewall", None, "aoai-locked"),
    Case("wrong-audience", "0de70000-0006-4000-8000-000000000006", "aoai-demo",
         allowlist=_entry("0de70000-0006-4000-8000-000000000006", name="search-indexer")),
    Case("recently-assigned", "0de70000-0007-4000-8000-000000000007", "aoai-demo",
         allowlist=_entry("0de70000-0007-4000-8000-000000000007", name="support-copilot")),
    Case("foundry-project", "0de70000-0008-4000-8000-000000000008", "foundry-demo", project="agents",
         allowlist=_entry("0de70000-0008-4000-8000-000000000008", name="agents-runner")),
    Case("models-with-openai-user", "0de70000-0009-4000-8000-000000000009", "foundry-demo",
         allowlist=_entry("0de70000-0009-4000-8000-000000000009", name="phi-summarizer")),
    Case("repeated-failures", None, "aoai-demo"),
    Case("allowlisted-user", "0de70000-0011-4000-8000-000000000011", "aoai-demo",
         allowlist=_entry("0de70000-0011-4000-8000-000000000011", name="dana", principal_type="User")),
    Case("approved-by-oncall", "0de70000-0012-4000-8000-000000000012", "aoai-demo",
         allowlist=_entry("0de70000-0012-4000-8000-000000000012", name="nightly-batch", require_approval=True)),
    # API Management calls the account with its own managed identity: that identity is the failing principal (and
    # the one the platform team allowlisted), never chat-frontend, the app calling the gateway.
    Case("ai-gateway", "0de70000-0013-4000-8000-000000000013", "aoai-demo",
         allowlist=_entry("0de70000-0013-4000-8000-000000000013", name="contoso-apim")),
)
GATEWAY_CALLER = "0de70000-0014-4000-8000-000000000014"  # chat-frontend, behind contoso-apim


def _scenario() -> dict[str, Any]:
    return json.loads(SCENARIO.read_text(encoding="utf-8"))


def _app_identities() -> dict[str, str]:
    """AppRoleName -> the ARM id of the app resource whose managed identity it runs as (the scenario's apps)."""
    apps = _scenario().get("app_resources", [])
    return {app["id"].rsplit("/", 1)[-1]: app["id"] for app in apps}


def _workspace_ids(az: Any) -> str:
    """The main workspace, then the scenario's others (a workspace that has received no diagnostics yet)."""
    return ",".join([az.workspace_id, *(w["id"] for w in _scenario().get("workspaces", []))])


def _settings_env(az: Any, trackers: Any, provider: str, state_dir: str) -> dict[str, str]:
    env = {
        "TRIAGE_MODE": "enforce",
        "TRIAGE_ALLOWLIST": json.dumps([c.allowlist for c in CASES if c.allowlist]),
        "TRIAGE_WORKSPACE_IDS": _workspace_ids(az),
        "TRIAGE_APPINSIGHTS_WORKSPACE_IDS": az.workspace_id,
        "TRIAGE_APIM_WORKSPACE_IDS": az.workspace_id,
        "TRIAGE_APP_IDENTITIES": json.dumps(_app_identities()),
        "TRIAGE_ARM_ENDPOINT": az.arm_url,
        "TRIAGE_LOGS_ENDPOINT": az.logs_url,
        "TRIAGE_SUBSCRIPTION_ID": az.subscription_id,
        "TRIAGE_CA_BUNDLE": az.ca_path,
        "TRIAGE_LOCAL_TOKEN": "demo-token",
        "TRIAGE_PROPAGATION_WINDOW_SECONDS": str(PROPAGATION_SECONDS),
        "TRIAGE_INGESTION_LAG_SECONDS": str(INGESTION_LAG_SECONDS),
        "TRIAGE_LOOKBACK_OVERLAP_MINUTES": "1",
        "TRIAGE_INCIDENT_COOLDOWN_MINUTES": "60",
        "TRIAGE_TICKET_COMMENT_INTERVAL_MINUTES": "0",
        "TRIAGE_STATE_BACKEND": "sqlite",
        "TRIAGE_SQLITE_PATH": os.path.join(state_dir, "demo.sqlite3"),
        "TRIAGE_TICKET_SINKS": provider,
        "TRIAGE_EVENTGRID_TOPIC_ENDPOINT": az.eventgrid_url,
        "TRIAGE_EVENTGRID_TOPIC_KEY": az.eventgrid_key,
    }
    env.update(trackers.settings_env())
    return env


class Demo:
    """Runs the scenario and collects the report."""

    def __init__(self, provider: str = "github", out: TextIO | None = None):
        self.provider = provider
        self.out = out
        self.events: list[dict[str, Any]] = []
        self.approval: dict[str, Any] = {}
        self.cause_at_decision: dict[str, str] = {}
        self.first_diagnosis: dict[str, dict[str, Any]] = {}
        self.counts_by_cycle: dict[str, list[int]] = {}
        self.failing_during_propagation: set[str] = set()
        self.source_notes: set[str] = set()

    def say(self, text: str) -> None:
        if self.out is not None:
            self.out.write(text + "\n")
            self.out.flush()

    def run(self) -> dict[str, Any]:
        import function_app
        from localazure import LocalAzure
        from localazure.trackers import TrackerStandIns
        from shared.bootstrap import build_runtime, set_runtime
        from shared.settings import load_settings

        with tempfile.TemporaryDirectory(prefix="triage-demo-") as state_dir:
            az = LocalAzure.start(SCENARIO)
            trackers = TrackerStandIns.start(az.ca)
            runtime = None
            try:
                settings = load_settings(_settings_env(az, trackers, self.provider, state_dir))
                runtime = build_runtime(settings)
                set_runtime(runtime)
                self.say(f"local Azure stand-in up (ARM {az.arm_url}, Log Analytics {az.logs_url}); mode enforce; "
                         f"propagation window {PROPAGATION_SECONDS} s; tickets -> {self.provider}")
                report = self._drive(az, runtime, function_app)
                report["tickets_detail"] = self._ticket_refs(runtime)
                report["readiness"], report["access_findings"] = _reviews(settings)
                report["ticket_views"] = [
                    {"ref": t.ref, "title": t.title, "open": t.is_open, "body": t.body, "comments": len(t.comments)}
                    for t in (trackers.tickets(self.provider) if self.provider in TRACKERS else [])
                ]
                return report
            finally:
                set_runtime(None)
                if runtime is not None:
                    runtime.close()
                trackers.stop()
                az.stop()

    # -----------------------------------------------------------------------------------------------------------

    def _cycle(self, az: Any, function_app: Any, label: str) -> None:
        from azure.functions.timer import TimerRequest

        az.simulate(ticks=1)
        time.sleep(0.2)  # rows land in the workspace before the query, like ingestion
        scan = function_app.scan.build().get_user_function()
        with _logged("source ") as seen:
            scan(TimerRequest(past_due=False))
        self.say(f"  timer cycle {label}: scanned")
        for line in seen:  # what a source said, the first time it says it (no data yet, a failure)
            if line not in self.source_notes:
                self.source_notes.add(line)
                self.say(f"    {line}")

    def _incident_for(self, runtime: Any, case: Case) -> Any:
        from shared.core.allowlist import normalize_object_id, normalize_scope

        resource = normalize_scope(self._account_id(runtime, case.account))
        oid = normalize_object_id(case.principal) if case.principal else None
        found = [i for i in runtime.store.list_incidents()
                 if normalize_scope(i.resource_id).startswith(resource)
                 and (normalize_object_id(i.principal_id) if i.principal_id else None) == oid]
        if case.project:  # decisions are per project: the case is about its project's incident
            found = [i for i in found if f"/projects/{case.project}|".lower() in i.fingerprint.lower()] or found
        return max(found, key=lambda i: i.first_seen) if found else None

    def _account_id(self, runtime: Any, account: str) -> str:
        return (f"/subscriptions/{runtime.settings.subscription_id}/resourceGroups/rg-demo/providers/"
                f"Microsoft.CognitiveServices/accounts/{account}")

    def _snapshot(self, runtime: Any) -> None:
        for case in CASES:
            incident = self._incident_for(runtime, case)
            if incident is None:
                continue
            self.cause_at_decision.setdefault(case.id, incident.cause)
            self.first_diagnosis.setdefault(case.id, _diagnosis_json(incident))
            self.counts_by_cycle.setdefault(case.id, []).append(incident.count)
            if incident.status in ("assigned", "verifying") and incident.cause == "propagation_pending" and any(
                    a.kind in ("grant-claimed",) for a in incident.actions):
                self.failing_during_propagation.add(case.id)

    def _deliver(self, function_app: Any, event: Any, label: str) -> None:
        """Call the Event Grid function as the host would; its log line says what became of the event."""
        with _logged("event ") as seen:
            function_app.events.build().get_user_function()(event)
        outcome = seen[-1] if seen else "event: (no outcome logged)"
        self.events.append({"event": label, "outcome": outcome})
        self.say(f"  {label}: {outcome}")

    def _drive(self, az: Any, runtime: Any, function_app: Any) -> dict[str, Any]:
        import azure.functions as func

        self.say("1. two timer cycles while every caller keeps failing")
        self._cycle(az, function_app, "1")
        self._snapshot(runtime)
        self._cycle(az, function_app, "2")
        self._snapshot(runtime)

        self.say("2. Event Grid: an Azure Monitor log alert, delivered twice, and one malformed event")
        alert = json.loads((Path(__file__).parent / "scenarios" / "demo-alert.json").read_text())
        now = datetime.now(UTC)
        alert["data"]["alertContext"]["condition"]["windowStartTime"] = (now - timedelta(minutes=5)).isoformat()
        alert["data"]["alertContext"]["condition"]["windowEndTime"] = now.isoformat()
        alert["data"]["essentials"]["alertTargetIDs"] = [self._account_id(runtime, "aoai-demo")]
        event_id = str(uuid.uuid4())
        alert_event = func.EventGridEvent(id=event_id, data=alert, topic="/subscriptions/demo/alerts",
                                          subject="aoai-401-403", event_type="Contoso.Monitoring.AlertFired",
                                          event_time=now, data_version="1.0")
        self._deliver(function_app, alert_event, "log alert (common alert schema)")
        self._deliver(function_app, alert_event, "the same alert again (Event Grid redelivery)")
        broken = func.EventGridEvent(id=str(uuid.uuid4()), data={"status": "teapot"}, topic="/apps/gateway",
                                     subject="gw", event_type="AOAI.Triage.Failure", event_time=now,
                                     data_version="1.0")
        self._deliver(function_app, broken, "malformed custom failure event")

        self.say("3. on-call approves the nightly-batch recommendation over HTTP")
        case = next(c for c in CASES if c.id == "approved-by-oncall")
        incident = self._incident_for(runtime, case)
        approve = function_app.approve.build().get_user_function()
        response = approve(func.HttpRequest(
            method="POST", url=f"/api/incidents/{incident.id}/approve", route_params={"incident_id": incident.id},
            headers={"x-ms-client-principal-name": ONCALL}, body=b""))
        self.approval = {"incident": incident.id, "status_code": response.status_code,
                         "body": json.loads(response.get_body())}
        self.say(f"  approve {incident.id}: HTTP {response.status_code}")

        self.say("4. callers retry during propagation; the service waits, then verifies")
        self._cycle(az, function_app, "3")
        self._snapshot(runtime)
        deadline = time.monotonic() + 45
        cycle = 4
        while time.monotonic() < deadline:
            time.sleep(1.5)
            self._cycle(az, function_app, str(cycle))
            self._snapshot(runtime)
            cycle += 1
            pending = [i for i in runtime.store.list_incidents() if i.status in ("verifying", "assigned")]
            if not pending:
                break
        return self._report(runtime)

    def _report(self, runtime: Any) -> dict[str, Any]:
        incidents = []
        total_tickets = 0
        grants = 0
        for case in CASES:
            incident = self._incident_for(runtime, case)
            if incident is None:
                incidents.append({"case": case.id, "principal_id": case.principal, "resource_id": None,
                                  "cause": None, "action": "none", "role": None, "scope": None,
                                  "verification": None, "tickets": 0})
                continue
            kinds = [a.kind for a in incident.actions]
            granted = any(k == "assigned" for k in kinds) or incident.assignment_id is not None or (
                "grant-claimed" in kinds and incident.last_grant_at is not None)
            if granted:
                action = "assigned"
                grants += 1
            elif "waiting" in kinds or (incident.cause == "propagation_pending"):
                action = "waiting"
            elif incident.status == "recommended":
                action = "recommended"
            elif incident.ticket_refs or incident.status == "ticketed":
                action = "ticketed"
            else:
                action = "none"
            verification = {"resolved": "resolved", "escalated": "escalated",
                            "verifying": "pending", "assigned": "pending",
                            "closed_unverified": "pending"}.get(incident.status)
            tickets = len(incident.ticket_refs)
            total_tickets += tickets
            first = self.first_diagnosis.get(case.id) or _diagnosis_json(incident)
            incidents.append({
                "case": case.id,
                "principal_id": incident.principal_id,
                "resource_id": incident.resource_id,
                "cause": self.cause_at_decision.get(case.id, incident.cause),
                "action": action,
                "role": first.get("role") if action in ("assigned", "recommended", "ticketed") else None,
                "scope": first.get("scope") if action in ("assigned", "recommended", "ticketed") else None,
                "verification": verification,
                "tickets": tickets,
                "count": incident.count,
                "counts_by_cycle": self.counts_by_cycle.get(case.id, []),
                "incident_id": incident.id,
                "summary": first.get("summary"),
                "fix_command": first.get("fix_command"),
                "status": incident.status,
                "refusals": _refusals(runtime, incident.id) if first.get("role_fixable") else [],
            })
        from shared.engine.sources import source_health

        return {"mode": runtime.settings.mode, "incidents": incidents, "grants": grants, "tickets": total_tickets,
                "events": self.events, "approval": self.approval, "provider": self.provider,
                "sources": source_health(runtime), "gateway_caller_incidents": self._caller_incidents(runtime)}

    @staticmethod
    def _caller_incidents(runtime: Any) -> int:
        """Incidents of the app behind the gateway: none, since the gateway's identity is the one that fails."""
        return sum(1 for i in runtime.store.list_incidents() if (i.principal_id or "").lower() == GATEWAY_CALLER)

    def _ticket_refs(self, runtime: Any) -> list[str]:
        refs = []
        for incident in runtime.store.list_incidents():
            refs.extend(f"{incident.id}: {sink} {ref}" for sink, ref in incident.ticket_refs.items())
        return refs


@contextmanager
def _logged(prefix: str) -> Iterator[list[str]]:
    """The service's INFO-and-above log lines that start with `prefix`, while the block runs."""
    seen: list[str] = []

    class Capture(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            message = record.getMessage()
            if message.startswith(prefix):
                seen.append(message)

    handler = Capture(level=logging.INFO)
    logger = logging.getLogger("triage")
    previous = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield seen
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def _refusals(runtime: Any, incident_id: str) -> list[str]:
    """The policy refusals of the last decision recorded for an incident (from its audit trail)."""
    found: list[str] = []
    for record in runtime.store.list_audit(incident_id):
        if record.kind == "refusal" and record.inputs.get("refusals"):
            found = record.detail.split("; ")[1:]
    return found


CONTRACT_KEYS = ("case", "principal_id", "resource_id", "cause", "action", "role", "scope", "verification",
                 "tickets")
SOURCE_KEYS = ("name", "state", "detail")
SOURCE_STATES = {"no_data": "no data yet"}  # how the report words a source state


READINESS_KEYS = ("account", "verdict", "key_callers", "entra_callers_without_role", "blocking_policies")
FINDING_KEYS = ("account", "principal", "role", "scope", "rule", "recommendation")


def _reviews(settings: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The access reviews of the demo's accounts after the arc (docs/reviews.md): reads only."""
    from datetime import UTC, datetime

    from shared.bootstrap import build_review_reader
    from shared.engine.reviews import known_names, review_access, review_readiness

    reader = build_review_reader(settings)
    now = datetime.now(UTC)
    names = known_names(settings)
    found, _ = review_readiness(reader, now=now, names=names)
    reviewed, _ = review_access(reader, now=now, names=names)
    readiness = [{k: r.to_json()[k] for k in READINESS_KEYS} for r in found]
    findings = [{k: f.to_json()[k] for k in FINDING_KEYS} for r in reviewed for f in r.findings]
    return readiness, findings


def contract_view(report: dict[str, Any]) -> dict[str, Any]:
    """The stable `demo --json` contract: exactly the documented keys."""
    return {
        "mode": report["mode"],
        "incidents": [{k: i[k] for k in CONTRACT_KEYS} for i in report["incidents"]],
        "grants": report["grants"],
        "tickets": report["tickets"],
        "sources": [{k: s[k] for k in SOURCE_KEYS} for s in report["sources"]],
        "readiness": report.get("readiness", []),
        "access_findings": report.get("access_findings", []),
    }


def print_report(report: dict[str, Any], out: TextIO) -> None:
    out.write(f"\nDemo report (mode {report['mode']}, tickets -> {report['provider']})\n")
    rows = []
    for i in report["incidents"]:
        scope = (i["scope"] or "-").rstrip("/").split("/")
        rows.append([i["case"], i["cause"] or "-", i["action"], i["role"] or "-",
                     "/".join(scope[-3:]) if "projects" in scope[-2:-1] else scope[-1],
                     i["verification"] or "-", str(i["tickets"]), "->".join(map(str, i["counts_by_cycle"][:4]))])
    headers = ["case", "cause", "action", "role", "scope", "verification", "tickets", "count/cycle"]
    widths = [max(len(h), *(len(r[n]) for r in rows)) for n, h in enumerate(headers)]
    for row in [headers, ["-" * w for w in widths], *rows]:
        out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
    out.write(f"\ngrants: {report['grants']}   tickets: {report['tickets']}\n")
    gateway = next((i for i in report["incidents"] if i["case"] == "ai-gateway"), None)
    if gateway is not None:
        out.write(f"ai-gateway: the failing principal is the gateway's managed identity {gateway['principal_id']}; "
                  f"incidents of its caller {GATEWAY_CALLER}: {report['gateway_caller_incidents']}\n")
    if report.get("sources"):
        out.write("sources after the last cycle:\n")
        width = max(len(s["name"]) for s in report["sources"])
        for source in report["sources"]:
            reason = "" if source["state"] == "ok" else f"  {source['detail'].rsplit('; ', 1)[-1]}"
            out.write(f"  {source['name'].ljust(width)}  {SOURCE_STATES.get(source['state'], source['state'])}"
                      f"{reason}\n")
    if report.get("approval"):
        a = report["approval"]
        out.write(f"approval: {a['incident']} -> HTTP {a['status_code']} {json.dumps(a['body'])}\n")
    for e in report.get("events", []):
        out.write(f"event grid: {e['event']} -> {e['outcome']}\n")
    for i in report["incidents"]:
        if i.get("refusals"):
            out.write(f"policy refused {i['case']}: {'; '.join(i['refusals'])}\n")
    if report.get("tickets_detail"):
        out.write("ticket references:\n" + "".join(f"  {line}\n" for line in report["tickets_detail"]))
    if report.get("readiness"):
        out.write("local-auth readiness (python -m shared review readiness):\n")
        for r in report["readiness"]:
            policies = ", ".join(p["name"] for p in r["blocking_policies"]) or "-"
            out.write(f"  {r['account'].rsplit('/', 1)[-1]}: {r['verdict']}  key callers: {len(r['key_callers'])}"
                      f"  Entra callers without a role: {len(r['entra_callers_without_role'])}"
                      f"  blocking policies: {policies}\n")
    if report.get("access_findings"):
        out.write("access review (python -m shared review access):\n")
        for f in report["access_findings"]:
            out.write(f"  {f['rule']}: {f['role']} for {f['principal']} at {f['scope'].rsplit('/', 1)[-1]}: "
                      f"{f['recommendation']}\n")


def run(args: argparse.Namespace, stdin: Any = None, stdout: TextIO | None = None) -> int:
    out = stdout or sys.stdout
    provider = getattr(args, "provider", None) or os.environ.get("TRIAGE_DEMO_TICKETS", "github")
    if provider not in PROVIDERS:
        out.write(f"unknown provider {provider!r}; one of: {', '.join(PROVIDERS)}\n")
        return 2
    as_json = bool(getattr(args, "json", False))
    demo = Demo(provider, out=None if as_json else out)
    report = demo.run()
    import gc

    gc.collect()  # release DuckDB objects before interpreter shutdown (nanobind reports them otherwise)
    if as_json:
        out.write(json.dumps(contract_view(report)) + "\n")
    else:
        print_report(report, out)
    return 0


def _diagnosis_json(incident: Any) -> dict[str, Any]:
    return incident.diagnosis.to_json() if incident.diagnosis is not None else {}
