"""Revocations: what an engineer took away, keyed by what was revoked (principal, role, scope), so no later
incident, cause or project re-grants it until an engineer lifts it. Pure; one stored record holds them all
(`REVOCATIONS_KEY`, written with a conditional write by the engine).

A revocation blocks a grant to the same principal of a role that grants some of the same data access as the revoked
role (the three grantable roles all authorize the Azure OpenAI surface), at a scope that overlaps the revoked one:
the same scope, a project under a revoked account, or the account of a revoked project (which would cover it).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from shared.core import roles
from shared.core.allowlist import normalize_object_id
from shared.core.resource_ids import normalize_scope, scope_within

REVOCATIONS_KEY = "revocations"


@dataclass(frozen=True)
class Revocation:
    principal_id: str  # normalized object id
    role_id: str  # bare role definition GUID
    scope: str  # as revoked (compared normalized)
    by: str
    at: datetime
    incident_id: str = ""
    assignment_id: str = ""
    reason: str = ""

    @property
    def id(self) -> str:
        return revocation_id(self.principal_id, self.role_id, self.scope)

    @property
    def role_name(self) -> str:
        role = roles.BY_GUID.get(self.role_id)
        return role.name if role else self.role_id

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "principal_id": self.principal_id, "role_id": self.role_id,
                "role_name": self.role_name, "scope": self.scope, "by": self.by, "at": self.at.isoformat(),
                "incident_id": self.incident_id, "assignment_id": self.assignment_id, "reason": self.reason}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Revocation:
        at = datetime.fromisoformat(data["at"])
        if at.tzinfo is None:
            raise ValueError("revocation time without a time zone")
        return cls(str(data["principal_id"]), str(data["role_id"]), str(data["scope"]), str(data["by"]), at,
                   str(data.get("incident_id") or ""), str(data.get("assignment_id") or ""),
                   str(data.get("reason") or ""))


def revocation_id(principal_id: str, role_id: str, scope: str) -> str:
    key = f"{normalize_object_id(principal_id) or principal_id}|{roles.guid_of(role_id)}|{normalize_scope(scope)}"
    return "rev-" + hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


@dataclass(frozen=True)
class Revocations:
    entries: tuple[Revocation, ...] = ()
    # Not "": the stored record could not be read; every grant is then refused (fail closed).
    unreadable: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"revocations": [r.to_json() for r in self.entries]}

    @classmethod
    def from_dict(cls, value: dict[str, Any] | None) -> Revocations:
        if not value:
            return cls()
        try:
            raw = value["revocations"]
            if not isinstance(raw, list):
                raise TypeError("revocations is not a list")
            return cls(tuple(Revocation.from_json(item) for item in raw))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return cls(unreadable=f"stored revocations unreadable ({type(exc).__name__}); nothing is granted")

    def find(self, revocation_id_: str) -> Revocation | None:
        return next((r for r in self.entries if r.id == revocation_id_), None)

    def with_entry(self, revocation: Revocation) -> Revocations:
        """`revocation` added; one revoked of the same key is replaced (its id stays the same)."""
        kept = tuple(r for r in self.entries if r.id != revocation.id)
        return replace(self, entries=(*kept, revocation))

    def without(self, revocation_id_: str) -> Revocations:
        return replace(self, entries=tuple(r for r in self.entries if r.id != revocation_id_))

    def of_principal(self, principal_id: str | None) -> tuple[Revocation, ...]:
        oid = normalize_object_id(principal_id)
        return tuple(r for r in self.entries if oid is not None and r.principal_id == oid)


def _surfaces(role_id: str) -> frozenset[str]:
    role = roles.BY_GUID.get(roles.guid_of(role_id))
    return role.data_surfaces if role is not None else frozenset()


def scopes_overlap(a: str, b: str) -> bool:
    """One scope is the other or lies under it (on segment boundaries)."""
    left, right = normalize_scope(a), normalize_scope(b)
    return scope_within(left, right) or scope_within(right, left)


def blocking(revocations: Revocations, principal_id: str | None, role_id: str | None,
             scope: str | None) -> Revocation | None:
    """The revocation a grant of `role_id` at `scope` to `principal_id` would undo; None when there is none."""
    if not role_id or not scope:
        return None
    wanted = _surfaces(role_id)
    guid = roles.guid_of(role_id)
    for revoked in revocations.of_principal(principal_id):
        same_access = revoked.role_id == guid or bool(wanted & _surfaces(revoked.role_id))
        if same_access and scopes_overlap(revoked.scope, scope):
            return revoked
    return None
