"""Which app sent the key calls (docs/reviews.md, "Apps behind the key callers"): a hint, never proof.

The RequestResponse rows of a key call name no app. Application Insights (`AppDependencies`) and API Management
(`ApiManagementGatewayLogs`) name the app and the host it called, but not how the call authenticated. So an app is
linked to a key caller only as "seen calling this account's hosts while those key calls were made": its host's
first label is the account's custom subdomain, and its first..last seen overlaps the key caller's.
"""

from __future__ import annotations

from datetime import datetime

from shared.core.endpoints import is_inference_host
from shared.core.reviews.model import AppActivity, AppSeen, CallerActivity


def _time(value: datetime | None) -> str:
    return value.isoformat() if value else ""


def account_apps(apps: tuple[AppActivity, ...], custom_subdomain: str | None) -> tuple[AppActivity, ...]:
    """The activity on the account's own hosts (`<subdomain>.openai.azure.com` and its siblings)."""
    label = (custom_subdomain or "").strip().lower()
    if not label:
        return ()
    return tuple(a for a in apps if is_inference_host(a.host.lower()) and a.host.lower().split(".", 1)[0] == label)


def _overlaps(app: AppActivity, key: CallerActivity) -> bool:
    if not (app.first_seen and app.last_seen and key.first_seen and key.last_seen):
        return False
    return app.first_seen <= key.last_seen and key.first_seen <= app.last_seen


def apps_beside(key: CallerActivity, apps: tuple[AppActivity, ...]) -> tuple[AppSeen, ...]:
    """The apps seen calling the account while this key caller's calls were made, most calls first."""
    merged: dict[tuple[str, str], list[AppActivity]] = {}
    for app in apps:
        if app.app and app.calls > 0 and _overlaps(app, key):
            merged.setdefault((app.app, app.source), []).append(app)
    found = [AppSeen(name, source, sum(a.calls for a in rows),
                     _time(min(a.first_seen for a in rows if a.first_seen)),
                     _time(max(a.last_seen for a in rows if a.last_seen)))
             for (name, source), rows in merged.items()]
    return tuple(sorted(found, key=lambda s: (-s.calls, s.name, s.source)))


def apps_unread(apps: tuple[AppActivity, ...] | None, error: str, custom_subdomain: str | None) -> str:
    """Why no app can be told for this account's key callers; "" when the sources were read."""
    if apps is None:
        return f"which app sent the key calls cannot be told: {error or 'no App Insights or gateway logs read'}"
    if not (custom_subdomain or "").strip():
        return "which app sent the key calls cannot be told: the account has no custom subdomain to match hosts by"
    return ""
