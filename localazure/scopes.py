"""ARM scope strings: normalising, comparing (case-insensitive, segment-wise) and building resource ids."""

from __future__ import annotations

AUTHZ = "/providers/Microsoft.Authorization/"
CS_PROVIDER = "Microsoft.CognitiveServices"


def normalize(scope: str) -> str:
    """One leading slash, no trailing slash, no doubled slashes; `/` is the root (tenant) scope."""
    parts = [p for p in scope.strip().split("/") if p]
    return "/" + "/".join(parts)


def segments(scope: str) -> tuple[str, ...]:
    return tuple(p.lower() for p in scope.split("/") if p)


def same(a: str, b: str) -> bool:
    return segments(a) == segments(b)


def is_at_or_above(candidate: str, scope: str) -> bool:
    """True when `candidate` is `scope` or one of its ancestors (so an assignment there is inherited)."""
    c, s = segments(candidate), segments(scope)
    return len(c) <= len(s) and s[: len(c)] == c


def is_below(candidate: str, scope: str) -> bool:
    c, s = segments(candidate), segments(scope)
    return len(c) > len(s) and c[: len(s)] == s


def subscription_of(scope: str) -> str | None:
    segs = [p for p in scope.split("/") if p]
    if len(segs) >= 2 and segs[0].lower() == "subscriptions":
        return segs[1]
    return None


def account_id(subscription_id: str, resource_group: str, name: str) -> str:
    return f"/subscriptions/{subscription_id}/resourceGroups/{resource_group}/providers/{CS_PROVIDER}/accounts/{name}"


def project_id(subscription_id: str, resource_group: str, account: str, project: str) -> str:
    return f"{account_id(subscription_id, resource_group, account)}/projects/{project}"


def role_definition_id(subscription_id: str | None, guid: str) -> str:
    prefix = f"/subscriptions/{subscription_id}" if subscription_id else ""
    return f"{prefix}/providers/Microsoft.Authorization/roleDefinitions/{guid}"
