"""The Teams sink through the real client over HTTPS against the Workflows webhook stand-in, built from settings as
the service builds it: one full card per incident, follow-ups only for comments, escalation and resolution, rate
limits, the webhook URL kept secret; and the card builder under hostile input in every field."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from localazure.trackers.teams import card_errors, message_errors
from shared.core.ticket_model import TicketRateLimited
from shared.settings import SettingsError, load_settings
from shared.tickets.base import TicketAuthError, TicketError
from shared.tickets.markup.adaptive_card import (
    MAX_MESSAGE_BYTES,
    body_bytes,
    card_texts,
    escape_card_markdown,
    follow_up_payload,
    incident_payload,
    message_size,
)
from shared.tickets.sanitize import ZWSP, defang_links, fold_line, is_safe_url
from shared.tickets.teams_samples import BEGIN, END, render_teams_sample
from tests.support.paths import REPO_ROOT
from tests.support.trackers import CREDENTIALS, FAST, html_text, make_content, new_sink, render_github_markdown
from tests.tickets.test_markup import HOSTILE

SAFE = "https://func-aoai-triage.azurewebsites.net/api/act/inc-1/approve"
LOGS = "https://portal.azure.com/#blade/Microsoft_OMS_Portal/LogsBlade/resourceId/x"
DOC = "https://learn.microsoft.com/x"


def _chat(content, **changes):
    """`content` with the chat fields set and, with `posted`, the teams reference a first post leaves."""
    fields = {"approve_url": SAFE, "approve_command": "az rest --method post --url https://h/api/x",
              "suppress_url": SAFE.replace("approve", "suppress"), "logs_url": LOGS,
              "rollback_command": "python -m shared revoke inc-1 --by '<you>'"}
    return replace(content, **(fields | changes))


def _posted(content):
    return replace(content, refs=(("teams", content.incident_id),))


def _runs(standins):
    return standins.app("teams").runs


def _card_of(run):
    assert run.succeeded, run.errors
    return run.card


def _shown(card) -> str:
    return " ".join(text for _, text in card_texts(card)).replace(ZWSP, "")


# ---- the sink against the stand-in ----


def test_the_first_open_posts_one_card_that_teams_accepts(standins):
    content = _chat(make_content())
    before = len(_runs(standins))
    ref = new_sink(standins, "teams").open_or_update(content)
    runs = _runs(standins)[before:]
    assert len(runs) == 1
    card = _card_of(runs[0])
    assert ref.sink == "teams" and ref.ref == content.incident_id and ref.created
    assert card["version"] == "1.4"
    shown = _shown(card)
    assert "orders-api" in shown and content.incident_id.replace("-", "\\-") not in shown
    assert [a["title"] for a in card["actions"]] == ["Approve", "Suppress 24 h", "Open in Log Analytics",
                                                      "Documentation"]
    assert "python -m shared revoke" in shown and "az rest --method post" in shown
    request = standins.received("teams")[-1]
    assert request.method == "POST" and request.headers["content-type"] == "application/json"
    assert json.loads(request.body)["type"] == "message"


def test_a_later_update_without_a_comment_posts_nothing(standins):
    content = _chat(make_content())
    sink = new_sink(standins, "teams")
    sink.open_or_update(content)
    before = len(standins.received("teams"))
    ref = sink.open_or_update(_posted(replace(content, count=9)))
    assert len(standins.received("teams")) == before  # not even a request
    assert ref.ref == content.incident_id and not ref.created


def test_a_comment_posts_a_short_follow_up_naming_the_incident(standins):
    content = _posted(_chat(make_content()))
    before = len(_runs(standins))
    new_sink(standins, "teams").open_or_update(content, comment="Recurred: 12 failures since the last update.")
    (run,) = _runs(standins)[before:]
    card = _card_of(run)
    shown = _shown(card)
    assert shown.startswith("Update: ") and "Recurred: 12 failures" in shown and "Incident" in shown
    assert "Evidence" not in shown
    assert "Approve" in [a["title"] for a in card["actions"]]


def test_an_escalation_posts_a_follow_up_even_without_a_comment(standins):
    content = _posted(_chat(make_content(), escalated=True, action="The grant did not hold: 3 failures since."))
    before = len(_runs(standins))
    new_sink(standins, "teams").open_or_update(content)
    (run,) = _runs(standins)[before:]
    shown = _shown(_card_of(run))
    assert shown.startswith("Escalated: ") and "did not hold" in shown


def test_resolve_posts_a_resolved_card_without_the_act_buttons(standins):
    content = _posted(_chat(make_content()))
    before = len(_runs(standins))
    ref = new_sink(standins, "teams").resolve(content, comment="Verified: 20 successful calls since the grant.")
    (run,) = _runs(standins)[before:]
    card = _card_of(run)
    assert ref is not None and ref.ref == content.incident_id
    assert _shown(card).startswith("Resolved: ") and "Verified: 20 successful calls" in _shown(card)
    assert [a["title"] for a in card["actions"]] == ["Open in Log Analytics"]


def test_a_rate_limit_is_retried_by_the_client_and_posts_one_card(standins):
    before = len(_runs(standins))
    requests_before = len(standins.received("teams"))
    standins.faults.add("teams", status=429, times=1, retry_after=0.01)
    new_sink(standins, "teams").open_or_update(_chat(make_content()))
    assert len(standins.received("teams")) - requests_before == 2  # refused once, then sent again
    assert len(_runs(standins)) - before == 1


def test_a_long_rate_limit_raises_with_the_wait_and_posts_nothing(standins):
    before = len(_runs(standins))
    standins.faults.add("teams", status=429, times=1, retry_after=120)
    with pytest.raises(TicketRateLimited) as info:
        new_sink(standins, "teams").open_or_update(_chat(make_content()))
    assert info.value.retry_after == pytest.approx(120)
    assert len(_runs(standins)) == before


def test_a_server_error_is_not_retried_within_the_call(standins):
    requests_before = len(standins.received("teams"))
    standins.faults.add("teams", status=503, times=1, retry_after=None)
    with pytest.raises(TicketError, match="tracker unavailable"):
        new_sink(standins, "teams").open_or_update(_chat(make_content()))
    assert len(standins.received("teams")) - requests_before == 1  # the flow may have run: no second card


def test_the_webhook_url_never_appears_in_errors_or_logs(standins, caplog):
    caplog.set_level(logging.DEBUG)
    sig = CREDENTIALS.teams_sig
    good_url = standins.teams_url
    wrong_url = good_url.replace(sig, "LEAKCANARYwrongsig77")
    errors: list[str] = []
    with pytest.raises(TicketAuthError) as refused:
        new_sink(standins, "teams", TRIAGE_TEAMS_WEBHOOK_URL=wrong_url).open_or_update(_chat(make_content()))
    errors.append(str(refused.value))
    assert "credentials rejected" in errors[0] and "TRIAGE_TEAMS_WEBHOOK_URL" in errors[0]
    for status in (429, 503, 400):
        standins.faults.add("teams", status=status, times=FAST.retry_total + 1, retry_after=0.01)
        with pytest.raises(TicketError) as failed:
            new_sink(standins, "teams").open_or_update(_chat(make_content()))
        errors.append(str(failed.value))
    standins.faults.clear()
    new_sink(standins, "teams").open_or_update(_chat(make_content()))  # a success is logged too
    shown = "\n".join([*errors, caplog.text])
    assert "LEAKCANARY" not in shown and sig not in shown and "sig=" not in shown.replace("sig=REDACTED", "")
    assert good_url not in shown
    assert "teams sink: posted the incident card" in caplog.text


def test_the_stand_in_refuses_a_missing_signature_and_an_invalid_card():
    assert card_errors({"type": "AdaptiveCard", "version": "1.4", "body": [{"type": "TextBlok", "text": "x"}]})
    assert card_errors({"type": "AdaptiveCard", "version": "1.5", "body": []})  # the flow bot's limit
    assert card_errors({"type": "AdaptiveCard", "version": "1.4", "body": [], "msteams": {"width": "Full"}})
    assert message_errors(b'{"type": "AdaptiveCard"}')[0]  # a bare card, not a message
    assert not card_errors(incident_payload(_chat(make_content()))["attachments"][0]["content"])


def test_an_invalid_card_fails_the_run_behind_a_202_unless_the_flow_validates(standins):
    app = standins.app("teams")
    sink = new_sink(standins, "teams")
    bad = {"type": "message", "attachments": [{"contentType": "application/vnd.microsoft.card.adaptive",
                                               "contentUrl": None, "content": {"type": "AdaptiveCard"}}]}
    sink._http.request("POST", sink._path, content=body_bytes(bad), idempotent=False)  # 202 all the same
    assert not app.runs[-1].succeeded
    app.reject_invalid = True
    try:
        with pytest.raises(TicketError, match="HTTP 400"):
            sink._http.request("POST", sink._path, content=body_bytes(bad), idempotent=False)
    finally:
        app.reject_invalid = False


def test_settings_require_the_webhook_url_and_keep_it_secret(standins):
    with pytest.raises(SettingsError, match="TRIAGE_TEAMS_WEBHOOK_URL"):
        load_settings({"TRIAGE_TICKET_SINKS": "teams"})
    loaded = load_settings({"TRIAGE_TICKET_SINKS": "teams", "TRIAGE_TEAMS_WEBHOOK_URL": standins.teams_url})
    assert loaded.redacted()["TRIAGE_TEAMS_WEBHOOK_URL"] == "<set>"
    with pytest.raises(SettingsError) as info:
        load_settings({"TRIAGE_TICKET_SINKS": "teams",
                       "TRIAGE_TEAMS_WEBHOOK_URL": "http://x.example/?sig=LEAKCANARYplain"})
    assert "LEAKCANARY" not in str(info.value)


# ---- the card under hostile input ----

FAST_CARDS = settings(max_examples=60, deadline=None)
DATE_FUNCTION = re.compile(r"\{\{\s*(DATE|TIME)\s*\(", re.IGNORECASE)
HOSTILE_URL = st.one_of(st.just(SAFE), HOSTILE, st.sampled_from([
    "javascript:alert(1)", "https://evil.example/)(<x>", "http://plain.example/x", "https://a b", "",
    "https://evil.example/\"onclick=\"x",
]))


def _hostile(raw: str, url: str):
    return make_content(
        incident_id="inc-" + raw, cause=raw, cause_title=raw, summary=raw, principal_id=raw, principal_type=raw,
        principal_name=raw, resource_id="/subscriptions/x/" + raw, first_seen=raw, last_seen=raw,
        sample_error=raw, evidence=(raw, raw), fix_command=raw, fix_steps=((raw, DOC), (raw, "javascript:x")),
        action=raw, mode=raw, approve_hint=raw, doc_links=(url, DOC), approve_url=url, approve_command=raw,
        suppress_url=url, suppress_command=raw, rollback_command=raw, logs_url=url, owner=raw,
        escalated=bool(len(raw) % 2),
    )


def _assert_inert(payload, allowed_urls):
    errors, card = message_errors(body_bytes(payload))
    assert not errors, errors  # the envelope, the 1.4.0 schema, the version and the size
    assert message_size(payload) <= MAX_MESSAGE_BYTES
    for kind, text in card_texts(card):
        assert not DATE_FUNCTION.search(text), text
        assert "<at" not in text.lower() and "</at" not in text.lower()
        if kind == "code":  # commands stay copyable: verbatim but for the two breaks above
            continue
        if kind == "run":  # no Markdown in a TextRun; what a client could still autolink is broken
            assert "://" not in text and "www." not in text.lower()
        else:
            rendered = render_github_markdown(text)
            assert set(re.findall(r"<(\w+)", rendered)) <= {"p"}, rendered  # no link, emphasis, code, list
            assert "://" not in html_text(rendered)
    urls = [a["url"] for a in card.get("actions", [])]
    assert set(urls) <= allowed_urls


@FAST_CARDS
@given(HOSTILE, HOSTILE_URL)
def test_hostile_text_in_every_field_makes_a_valid_bounded_inert_card(raw, url):
    content = _hostile(raw, url)
    allowed = {u for u in (url, DOC) if is_safe_url(u)}
    _assert_inert(incident_payload(content), allowed)
    _assert_inert(follow_up_payload(content, raw), allowed)
    _assert_inert(follow_up_payload(content, raw, resolved=True), allowed)


@FAST_CARDS
@given(HOSTILE)
def test_escaped_fact_markdown_renders_as_exactly_the_text(raw):
    rendered = render_github_markdown(escape_card_markdown(raw))
    assert set(re.findall(r"<(\w+)", rendered)) <= {"p"}
    assert " ".join(html_text(rendered).replace(ZWSP, "").split()) == " ".join(defang_links(fold_line(raw))
                                                                                .replace(ZWSP, "").split())


def test_a_huge_incident_still_fits_dropping_the_evidence_first():
    huge = "A" * 200_000
    content = _chat(make_content(summary=huge, sample_error=huge, evidence=("e" * 400,) * 500, fix_command=huge,
                                 principal_name="😀" * 5000, approve_command=huge, rollback_command=huge))
    payload = incident_payload(content)
    assert message_size(payload) <= MAX_MESSAGE_BYTES
    assert not message_errors(body_bytes(payload))[0]
    assert "Evidence" not in _shown(payload["attachments"][0]["content"])
    small = incident_payload(_chat(make_content()))
    assert "Evidence" in _shown(small["attachments"][0]["content"])


@pytest.mark.parametrize("piece", ['"', "\\", "😀", "\x00", "{{DATE(", "<at>", "a"])
def test_every_field_at_its_worst_still_fits_and_validates(piece):
    raw = piece * 50_000  # what JSON escapes, UTF-16 counts twice, or the sink breaks with zero-width spaces
    content = make_content(
        incident_id=raw, cause=raw, cause_title=raw, summary=raw, principal_id=raw, principal_type=raw,
        principal_name=raw, resource_id=raw, first_seen=raw, last_seen=raw, sample_error=raw, evidence=(raw,) * 100,
        fix_command=raw, fix_steps=((raw, raw),) * 30, action=raw, mode=raw, approve_hint=raw, approve_command=raw,
        suppress_command=raw, rollback_command=raw, owner=raw, escalated=True)
    for payload in (incident_payload(content), follow_up_payload(content, raw),
                    follow_up_payload(content, raw, resolved=True)):
        assert message_size(payload) <= MAX_MESSAGE_BYTES
        assert not message_errors(body_bytes(payload))[0]


def test_a_hostile_card_passes_the_stand_in_through_the_real_sink(standins):
    raw = "@org/team {{DATE(2017-02-14T06:00:00Z, SHORT)}} [x](https://evil.example) <at>Boss</at> **b** \u202e"
    before = len(_runs(standins))
    new_sink(standins, "teams").open_or_update(_hostile(raw, "https://evil.example/)(<x>"))
    (run,) = _runs(standins)[before:]
    assert [a["url"] for a in _card_of(run)["actions"]] == [DOC]


# ---- docs ----


def test_the_teams_sample_in_the_docs_is_current():
    text = (REPO_ROOT / "docs" / "tickets.md").read_text(encoding="utf-8")
    generated = text[text.index(BEGIN) + len(BEGIN): text.index(END)].strip()
    assert generated == render_teams_sample().strip(), "run: python -m shared.tickets.teams_samples docs/tickets.md"
