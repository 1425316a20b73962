"""The webhook sink (signed JSON POST, checked by the stand-in receiver and here) and the log sink."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import replace

import pytest

from shared.tickets.base import TicketAuthError, TicketError
from shared.tickets.log_sink import LOGGER, LogSink
from shared.tickets.webhook import SIGNATURE_HEADER, verify
from tests.support.trackers import CREDENTIALS, FAST, make_content, new_sink


def test_webhook_signature_is_hmac_sha256_over_the_exact_body(standins):
    before = len(standins.received("webhook"))
    content = make_content()
    ref = new_sink(standins, "webhook").open_or_update(content, comment="still failing")
    (delivery,) = standins.received("webhook")[before:]
    expected = hmac.new(CREDENTIALS.webhook_secret.encode(), delivery.body, hashlib.sha256).hexdigest()
    assert delivery.headers[SIGNATURE_HEADER.lower()] == f"sha256={expected}"
    assert verify(CREDENTIALS.webhook_secret, delivery.body, delivery.headers[SIGNATURE_HEADER.lower()])
    assert not verify("another-secret", delivery.body, delivery.headers[SIGNATURE_HEADER.lower()])
    tampered = delivery.body.replace(b"orders-api", b"orders-apx")
    assert not verify(CREDENTIALS.webhook_secret, tampered, delivery.headers[SIGNATURE_HEADER.lower()])
    payload = delivery.json()
    assert payload["event"] == "ticket.open_or_update" and payload["comment"] == "still failing"
    assert payload["ticket"]["incident_id"] == content.incident_id == ref.ref
    assert payload["ticket"]["fingerprint"] == content.fingerprint
    assert payload["delivery_id"] == delivery.headers["x-triage-delivery"]
    assert CREDENTIALS.webhook_secret not in delivery.text


def test_webhook_receiver_rejecting_the_signature_is_an_auth_error_naming_the_setting(standins):
    sink = new_sink(standins, "webhook", TRIAGE_WEBHOOK_SECRET="not-the-receivers-secret")
    with pytest.raises(TicketAuthError) as info:
        sink.open_or_update(make_content())
    assert "webhook sink: credentials rejected (HTTP 401" in str(info.value)
    assert "TRIAGE_WEBHOOK_SECRET" in str(info.value) and "not-the-receivers-secret" not in str(info.value)


def test_webhook_retries_a_5xx_with_the_same_delivery_id_and_gives_up_with_ticket_error(standins):
    before = len(standins.received("webhook"))
    standins.faults.add("webhook", status=502, times=1, retry_after=None)
    new_sink(standins, "webhook").resolve(make_content(), comment="Resolved.")
    first, second = standins.received("webhook")[before:]
    assert first.body == second.body and first.headers["x-triage-delivery"] == second.headers["x-triage-delivery"]
    standins.faults.add("webhook", status=503, times=FAST.retry_total + 1, retry_after=None)
    with pytest.raises(TicketError, match="webhook sink: tracker unavailable"):
        new_sink(standins, "webhook").open_or_update(make_content())


def test_webhook_events_cover_open_and_resolve(standins):
    content = make_content()
    sink = new_sink(standins, "webhook")
    sink.open_or_update(content)
    sink.resolve(content, comment="Resolved: role assigned.")
    (view,) = [t for t in standins.tickets("webhook") if t.ref == content.incident_id]
    assert not view.is_open and view.comments == ("Resolved: role assigned.",)


def test_log_sink_writes_one_json_object_per_line_even_for_hostile_text(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER)
    hostile = "line one\nline two\r\n\u2028{\"event\": \"forged\"}\x1b[31m\ud800"
    content = replace(make_content(), sample_error=hostile, principal_name=hostile)
    sink = LogSink()
    ref = sink.open_or_update(content, comment=hostile)
    sink.resolve(content, comment="Resolved.")
    records = [r for r in caplog.records if r.name == LOGGER]
    assert len(records) == 2 and ref.ref == content.incident_id
    for record in records:
        message = record.getMessage()
        assert "\n" not in message and "\r" not in message and "\u2028" not in message
        json.loads(message)
    first = json.loads(records[0].getMessage())
    assert first["event"] == "ticket.open_or_update"
    assert first["ticket"]["sample_error"].startswith("line one\nline two\n")
    assert "\ud800" not in first["ticket"]["sample_error"] and "\x1b" not in first["ticket"]["sample_error"]
    assert json.loads(records[1].getMessage())["event"] == "ticket.resolve"
