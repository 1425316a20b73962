"""Alerts and the workbook as code (infra/monitor): the JSON parses, each alert rule reads a line the service logs
today (the format string is still in the named file), and a signal that is not emitted yet is said so in
docs/deploy.md instead of being alerted on."""

from __future__ import annotations

import json
import logging

import pytest

from shared.tickets.log_sink import log_line
from tests.support.bicep import INFRA, parsed, resources
from tests.support.paths import REPO_ROOT
from tests.support.trackers import make_content

MONITOR = INFRA / "monitor"
ALERTS = json.loads((MONITOR / "alerts.json").read_text(encoding="utf-8"))
WORKBOOK = json.loads((MONITOR / "workbook.json").read_text(encoding="utf-8"))
RULE_NAMES = [rule["name"] for rule in ALERTS["service"]]


@pytest.mark.parametrize("rule", ALERTS["service"], ids=RULE_NAMES)
def test_each_service_rule_reads_a_line_the_service_logs(rule):
    signal = rule["signal"]
    source = (REPO_ROOT / signal["file"]).read_text(encoding="utf-8")
    assert f'"{signal["logged"]}"' in source, f"{signal['file']} no longer logs {signal['logged']!r}"
    assert signal["matches"] in signal["logged"]
    assert signal["matches"] in rule["query"]
    assert rule["query"].startswith("AppTraces\n| where AppRoleName =~ TriageApp")
    assert rule["operator"] in ("GreaterThan", "LessThan") and rule["timeAggregation"] in ("Count", "Total")
    assert ("windowMinutes" in rule) != ("windowScanPeriods" in rule)  # alerts.bicep adds the two


def test_the_rules_asked_for_are_there():
    assert RULE_NAMES == ["no-successful-scan", "ticket-sink-credentials", "partial-results", "grants-per-hour"]
    no_scan = ALERTS["service"][0]
    assert no_scan["windowScanPeriods"] == 3 and (no_scan["operator"], no_scan["threshold"]) == ("LessThan", 1)
    grants = ALERTS["service"][3]
    assert "threshold" not in grants and grants["metricMeasureColumn"] == "Grants"  # the deployment's threshold


def test_the_failure_alert_names_each_account_for_the_targeted_scan():
    failures = ALERTS["failures"]
    assert failures["query"].startswith("AzureDiagnostics")
    assert 'ResultSignature in ("401", "403")' in failures["query"]
    assert failures["dimension"] == "_ResourceId"  # becomes the alert's configurationItems (docs/events.md)
    (rule,) = [r for r in resources("Microsoft.Insights/scheduledQueryRules") if r.symbol == "failureRules"]
    assert rule.body["properties"]["actions"]["actionGroups"] == ["triageActionGroupId"]


def test_signals_not_emitted_yet_are_documented_and_not_alerted_on():
    deploy = (REPO_ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    for missing in ALERTS["not_emitted"]:
        assert missing["name"] not in RULE_NAMES
        assert f"`{missing['name']}`" in deploy


def test_the_alert_rules_deploy_from_the_json():
    variables = parsed("monitor/alerts.bicep")["variables"]
    assert variables["rules"]["value"]["function"]["type"] == "load_json_content"
    assert {r.symbol for r in resources("Microsoft.Insights/scheduledQueryRules")} == {"serviceRules", "failureRules"}


def test_the_workbook_has_the_four_views_and_its_placeholders():
    assert WORKBOOK["version"] == "Notebook/1.0"
    queries = {item["name"]: item["content"] for item in WORKBOOK["items"] if item["type"] == 3}
    assert {"failures-per-account", "decisions", "grants", "escalations"} <= set(queries)
    for name, content in queries.items():
        assert content["version"] == "KqlItem/1.0" and content["query"], name
        assert content["crossComponentResources"] in (["__SERVICE_WORKSPACE__"], ["__WATCHED_WORKSPACES__"]), name
    assert queries["failures-per-account"]["crossComponentResources"] == ["__WATCHED_WORKSPACES__"]
    assert "_ResourceId" in queries["failures-per-account"]["query"]
    assert "Record.ticket.escalated" in queries["escalations"]["query"]
    text = (MONITOR / "workbook.bicep").read_text(encoding="utf-8")
    for placeholder in ("__SERVICE_WORKSPACE__", "__FUNCTION_APP__", '"__WATCHED_WORKSPACES__"'):
        assert f"'{placeholder}'" in text, placeholder


def test_the_views_read_the_log_lines_as_the_service_writes_them():
    """The KQL takes the scan line's JSON after ': {' and reads the log sink's record as JSON: the same, in Python."""
    record = logging.LogRecord("triage", logging.INFO, "function_app.py", 0, "scan %s: %s",
                               ("c0ffee", json.dumps({"assign": 2, "ticket": 1})), None)
    scan_line = record.getMessage()  # as function_app.py logs it
    assert scan_line.startswith("scan ") and ": {" in scan_line
    assert json.loads(scan_line[scan_line.index(": {") + 2:])["assign"] == 2

    ticket_line = log_line("ticket.open_or_update", make_content(escalated=True), None)
    assert ticket_line.startswith("{") and '"event": "ticket.' in ticket_line
    ticket = json.loads(ticket_line)["ticket"]
    assert ticket["escalated"] is True
    assert {"incident_id", "resource_id", "cause", "action"} <= set(ticket)
