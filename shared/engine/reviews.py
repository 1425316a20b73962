"""The access reviews (docs/reviews.md): gather each account's facts through `ports.ReviewReader`, then judge them
with the pure rules of `core/reviews`. Reads only: a review writes nothing to Azure, the store or a tracker.

Every read stands alone: one that fails leaves its part of the facts unread, with the whole error, and the rules
report it as "could not check" for that account; the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, TypeVar

from shared.core.ports import ReviewReader
from shared.core.resource_ids import account_key
from shared.core.reviews.access import access_review
from shared.core.reviews.model import AccessReview, AccountFacts, AppActivity, Readiness
from shared.core.reviews.readiness import readiness
from shared.core.sources import error_text
from shared.settings import Settings

DEFAULT_DAYS = 14
MAX_DAYS = 90  # RequestResponse rows are kept for the workspace's retention; 90 days is a common maximum

T = TypeVar("T")


def _attempt(call: Callable[[], T]) -> tuple[T | None, str]:
    try:
        return call(), ""
    except Exception as exc:  # noqa: BLE001 - a read that fails is reported as "could not check", never raised
        return None, f"{type(exc).__name__}: {error_text(exc)}"


@dataclass(frozen=True)
class Reviewed:
    """The accounts a review looked at, and why any could not be listed."""

    accounts: tuple[str, ...]
    problem: str = ""


def accounts_to_review(reader: ReviewReader, account: str | None) -> Reviewed:
    if account:
        return Reviewed((account,))
    listed, problem = _attempt(reader.account_ids)
    return Reviewed(tuple(listed or ()), problem)


def known_names(settings: Settings) -> dict[str, str]:
    """Principal names the service knows without Graph: the allowlist's."""
    return {entry.object_id: entry.name for entry in settings.allowlist.entries if entry.name}


def _apps(reader: ReviewReader, since: datetime, until: datetime) -> tuple[tuple[AppActivity, ...] | None, str]:
    """The optional app read: a reader without it (or whose default answers None) has no source to tell apps by."""
    read = getattr(reader, "app_activity", None)
    if read is None:
        return None, "this reader reads no App Insights or gateway logs"
    apps, problem = _attempt(lambda: read(since, until))
    if apps is None and not problem:
        return None, "this reader reads no App Insights or gateway logs"
    return apps, problem


def gather(reader: ReviewReader, account_ids: Sequence[str], *, days: int, now: datetime,
           with_policy: bool = True, names: Mapping[str, str] | None = None,
           with_apps: bool = True) -> list[AccountFacts]:
    """Each account's facts, reading the logs once for all of them; `names`: object id -> display name."""
    activity, activity_error = _attempt(lambda: reader.caller_activity(account_ids, now - timedelta(days=days), now))
    apps, apps_error = _apps(reader, now - timedelta(days=days), now) if with_apps else (None, "not read")
    facts = []
    for account_id in account_ids:
        resource, account_error = _attempt(partial(reader.account, account_id))
        if resource is None and not account_error:
            account_error = "ARM has no such account (404)"
        rows = activity.get(account_key(account_id), ()) if activity is not None else None
        callers = sorted({r.object_id for r in rows or () if r.object_id})
        held, held_error = _attempt(partial(reader.assignments, account_id, callers))
        definitions: Any = ()
        if held:
            definitions, _ = _attempt(partial(reader.role_definitions, account_id, {h.role_guid for h in held}))
        policies, exemptions, policy_error, policy_caveat = None, None, "", ""
        if with_policy:
            policies, policy_error = _attempt(partial(reader.policy_assignments, account_id))
            if policies is not None:
                exemptions, policy_error = _attempt(partial(reader.policy_exemptions, account_id))
            caveat = getattr(reader, "policy_caveat", None)  # optional: readers that say how they read policy
            policy_caveat = caveat(account_id) if caveat is not None and policies is not None else ""
        kinds = {h.principal_id.lower(): h.principal_type for h in held or () if not h.via_group_of}
        facts.append(AccountFacts(
            account_id, kind=resource.kind if resource else None,
            disable_local_auth=resource.disable_local_auth if resource else None, account_error=account_error,
            activity=rows, activity_error=activity_error, assignments=held, assignments_error=held_error,
            definitions=tuple(definitions or ()), policies=policies, exemptions=exemptions,
            policy_error=policy_error, principal_names=dict(names or {}), principal_kinds=kinds,
            custom_subdomain=resource.custom_subdomain if resource else None, apps=apps, apps_error=apps_error,
            policy_caveat=policy_caveat))
    return facts


def review_readiness(reader: ReviewReader, *, now: datetime, account: str | None = None,
                     days: int = DEFAULT_DAYS, names: Mapping[str, str] | None = None) -> tuple[list[Readiness], str]:
    """(a readiness per account, why the accounts could not be listed)."""
    reviewed = accounts_to_review(reader, account)
    found = gather(reader, reviewed.accounts, days=days, now=now, names=names)
    return [readiness(f, days=days, now=now) for f in found], reviewed.problem


def review_access(reader: ReviewReader, *, now: datetime, account: str | None = None, days: int = DEFAULT_DAYS,
                  pre_upgrade: bool = False, upgrade_only: bool = False,
                  names: Mapping[str, str] | None = None) -> tuple[list[AccessReview], str]:
    """(an access review per account, why the accounts could not be listed). `upgrade_only` (`review upgrade`):
    the pre-upgrade audit of the classic Azure OpenAI accounts only."""
    reviewed = accounts_to_review(reader, account)
    found = gather(reader, reviewed.accounts, days=days, now=now, with_policy=False, names=names,
                   with_apps=False)
    if upgrade_only:
        found = [f for f in found if (f.kind or "").lower() == "openai"]
    return [access_review(f, days=days, pre_upgrade=pre_upgrade or upgrade_only) for f in found], reviewed.problem


def review_both(reader: ReviewReader, *, now: datetime, days: int = DEFAULT_DAYS,
                names: Mapping[str, str] | None = None) -> tuple[list[Readiness], list[AccessReview], str]:
    """Both reviews of every account from one read of their facts (the scheduled run): (readiness, access, why the
    accounts could not be listed)."""
    reviewed = accounts_to_review(reader, None)
    found = gather(reader, reviewed.accounts, days=days, now=now, names=names)
    return ([readiness(f, days=days, now=now) for f in found], [access_review(f, days=days) for f in found],
            reviewed.problem)
