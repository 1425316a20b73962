"""The pure rules of source health (shared/core/sources.py): the state and its `since`, what is remembered of a
success and of a failure, which reads move a watermark, and what an anonymous reader may see."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from shared.core.sources import (
    SourceCheck,
    SourceHealth,
    SourceState,
    advances_watermark,
    checked,
    error_text,
    health_key,
    redact,
)

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
NAME = "logs:ws-1"
OK = SourceCheck(SourceState.OK)
NO_DATA = SourceCheck(SourceState.NO_DATA, "SEM0100: 'where' operator: Failed to resolve table or column expression "
                      "named 'AzureDiagnostics'")
DENIED = SourceCheck(SourceState.FAILED, "HTTP 403 InsufficientAccessError: insufficient access")


def test_only_a_complete_read_moves_the_watermark():
    assert advances_watermark(OK)
    assert not advances_watermark(SourceCheck(SourceState.OK, "PartialError: shards", partial=True))
    assert not advances_watermark(NO_DATA)
    assert not advances_watermark(DENIED)


def test_health_remembers_the_last_success_and_the_last_error_and_when_the_state_began():
    first = checked(None, NAME, OK, T0)
    assert (first.state, first.since, first.last_success, first.last_error) == (SourceState.OK, T0, T0, None)
    again = checked(first, NAME, OK, T0 + timedelta(minutes=5))
    assert again.since == T0 and again.last_success == T0 + timedelta(minutes=5)

    failed = checked(again, NAME, DENIED, T0 + timedelta(minutes=10))
    assert failed.state == SourceState.FAILED and failed.since == T0 + timedelta(minutes=10)
    assert failed.last_success == T0 + timedelta(minutes=5)
    assert (failed.last_error, failed.last_error_at) == (DENIED.detail, T0 + timedelta(minutes=10))

    recovered = checked(failed, NAME, OK, T0 + timedelta(minutes=15))
    assert recovered.state == SourceState.OK and recovered.detail == ""
    assert recovered.last_error == DENIED.detail  # kept, with its time, after the recovery

    no_data = checked(None, NAME, NO_DATA, T0)
    assert no_data.last_success is None and no_data.last_error is None and no_data.detail == NO_DATA.detail


def test_health_survives_the_store_round_trip():
    health = checked(checked(None, NAME, OK, T0), NAME, SourceCheck(SourceState.FAILED, "503", transient=True),
                     T0 + timedelta(minutes=1))
    assert SourceHealth.from_dict(health.to_dict()) == health
    assert health.to_dict()["state"] == "failed" and health.transient
    assert health_key(NAME) == "source-health:logs:ws-1"


def test_what_an_anonymous_reader_sees_is_redacted():
    text = ("GET https://h.example/x?sig=abc123&sv=1 failed; Authorization: Bearer eyJhbGciOiJSUzI1.eyJzdWIiOiIxMjM0"
            ".c2lnbmF0dXJl; password=hunter2")
    health = checked(None, NAME, SourceCheck(SourceState.FAILED, text), T0)
    shown = health.public()
    assert "abc123" not in str(shown) and "eyJhbGci" not in str(shown) and "hunter2" not in str(shown)
    assert "sig=[redacted]&sv=1" in shown["last_error"] and "Bearer [redacted]" in shown["detail"]
    assert redact("HTTP 403 InsufficientAccessError") == "HTTP 403 InsufficientAccessError"


def test_an_exception_without_a_message_is_named_by_its_type():
    assert error_text(TimeoutError()) == "TimeoutError"
    assert error_text(RuntimeError("line one\nline two")) == "line one\nline two"
