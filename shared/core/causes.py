"""The cause catalogue: stable ids, their family (for incident fingerprints) and whether a role fixes them.

Ids are a public contract (`classify` output, tickets, docs/causes.md): never rename one.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Cause:
    id: str
    family: str  # incidents are keyed by family, so a cause that evolves (missing -> pending) stays one incident
    role_fixable: bool  # a role assignment is the fix
    title: str


_CAUSES = (
    Cause("missing_data_role", "rbac", True, "Caller holds no data-plane role"),
    Cause("control_plane_role_only", "rbac", True, "Caller holds only control-plane roles"),
    Cause("wrong_role_for_surface", "rbac", True, "Caller's data role covers another endpoint surface"),
    Cause("propagation_pending", "rbac", False, "Role assigned recently; RBAC still propagating"),
    Cause("group_membership_cache", "rbac", True, "Managed identity holds the role only through a group"),
    Cause("role_present_still_denied", "rbac", False, "Right role in place, still denied"),
    Cause("token_audience_invalid", "token", False, "Token requested for the wrong audience"),
    Cause("token_invalid_or_expired", "token", False, "Token missing, invalid or expired"),
    Cause("tenant_mismatch", "token", False, "Token issued by another tenant"),
    Cause("invalid_api_key", "key", False, "Invalid API key (or wrong endpoint)"),
    Cause("missing_api_key", "key", False, "No API key or token sent"),
    Cause("local_auth_disabled", "key", False, "Key sent to a resource with key auth disabled"),
    Cause("network_denied", "network", False, "Blocked by firewall, VNet or private endpoint rules"),
    Cause("endpoint_or_deployment_not_found", "endpoint", False, "Wrong endpoint or missing deployment"),
    Cause("blocked_or_other", "other", False, "Not an access problem (abuse block, API version, ...)"),
    Cause("unknown", "unknown", False, "Unrecognised failure"),
)

CAUSES: dict[str, Cause] = {c.id: c for c in _CAUSES}
CAUSE_IDS: tuple[str, ...] = tuple(c.id for c in _CAUSES)
ROLE_FIXABLE: frozenset[str] = frozenset(c.id for c in _CAUSES if c.role_fixable)
RBAC_CAUSES: frozenset[str] = frozenset(c.id for c in _CAUSES if c.family == "rbac")


def family_of(cause_id: str) -> str:
    cause = CAUSES.get(cause_id)
    return cause.family if cause else "unknown"
