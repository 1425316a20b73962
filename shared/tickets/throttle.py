"""The recurrence-comment throttle. A pure rule, so it lives in the core; re-exported for the ticket package."""

from __future__ import annotations

from shared.core.triage import should_comment

__all__ = ["should_comment"]
