"""Reviews become tickets on request: one per account and review, found again by its fingerprint and updated on the
next run, closed when the review is clean; a failing tracker is reported and the others go on."""

from __future__ import annotations

from dataclasses import replace

from shared.core.reviews import access, readiness
from shared.engine.review_tickets import ticket_reviews
from shared.tickets.content import review_fingerprint
from tests.support.fakes import RecordingSink
from tests.support.reviews import ACCOUNT, APP, NOW, OWNER, SUB, facts, held, row


def test_one_ticket_per_account_and_review_updated_then_closed():
    sink, other = RecordingSink("a"), RecordingSink("b")
    not_ready = readiness.readiness(facts(activity=(row(APP), row(""))), days=14, now=NOW)
    findings = access.access_review(facts(assignments=(held(APP, OWNER, SUB),)), days=14)
    first = ticket_reviews([sink, other], at=NOW, mode="recommend", readiness=[not_ready], access=[findings])
    assert [(t["sink"], t["result"]) for t in first] == [("a", "opened"), ("b", "opened")] * 2
    assert set(sink.tickets) == {review_fingerprint("readiness", ACCOUNT), review_fingerprint("access", ACCOUNT)}
    ticket = sink.tickets[review_fingerprint("readiness", ACCOUNT)]
    assert any(readiness.KEY_CALLERS in line for line in ticket.content.evidence)
    again = ticket_reviews([sink], at=NOW, mode="recommend", readiness=[not_ready])
    assert [t["result"] for t in again] == ["updated"] and len(sink.tickets) == 2
    ready = readiness.readiness(facts(), days=14, now=NOW)
    clean = access.access_review(facts(), days=14)
    closed = ticket_reviews([sink], at=NOW, mode="recommend", readiness=[ready], access=[clean])
    assert [t["result"] for t in closed] == ["closed", "closed"]
    assert not any(t.is_open for t in sink.tickets.values())


def test_the_upgrade_audit_has_its_own_ticket_and_a_failing_tracker_is_reported():
    sink, broken = RecordingSink("ok"), RecordingSink("down")
    broken.fail_always(RuntimeError("503 Service Unavailable"))
    audit = replace(access.access_review(facts(assignments=(held(APP, OWNER, SUB),)), days=14), pre_upgrade=True)
    outcomes = ticket_reviews([broken, sink], at=NOW, mode="enforce", access=[audit])
    assert [(t["sink"], t["result"]) for t in outcomes] == [("down", "failed"), ("ok", "opened")]
    assert "503" in outcomes[0]["error"] and set(sink.tickets) == {review_fingerprint("upgrade", ACCOUNT)}


def test_chat_sinks_take_no_review_tickets():
    """Slack and Teams cannot find a review's message again: each run would post every review anew, and every clean
    one a "resolved" message. Reviews go to the trackers only."""
    from shared.tickets.slack import SlackBotSink, SlackWebhookSink
    from shared.tickets.teams import TeamsSink

    assert not any(getattr(kind, "takes_reviews", True) for kind in (SlackBotSink, SlackWebhookSink, TeamsSink))
    tracker, chat = RecordingSink("tracker"), RecordingSink("slack")
    chat.takes_reviews = False  # type: ignore[attr-defined]
    findings = access.access_review(facts(assignments=(held(APP, OWNER, SUB),)), days=14)
    clean = access.access_review(facts(), days=14)
    outcomes = ticket_reviews([tracker, chat], at=NOW, mode="recommend", access=[findings, clean])
    assert [(t["sink"], t["result"]) for t in outcomes] == [("tracker", "opened"), ("tracker", "closed")]
    assert chat.calls == []
