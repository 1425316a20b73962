"""What an approval approves: the principal, the role, the scope and the fingerprint of the diagnosis the ticket
showed. Pure.

A recommendation records its terms; the ticket and the approve endpoint show them; an approval lifts the mode gate
only for exactly those terms (the policy's `approval_binding` rule). When a later failure changes the diagnosis so
that any of them would differ, the recommendation's approval lapses and a new one is needed.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from shared.core import roles
from shared.core.allowlist import normalize_object_id
from shared.core.model import Diagnosis
from shared.core.resource_ids import normalize_scope


@dataclass(frozen=True)
class ApprovalTerms:
    principal_id: str
    role_id: str  # bare role definition GUID
    role_name: str
    scope: str
    fingerprint: str  # of the diagnosis (diagnosis_fingerprint)

    def to_json(self) -> dict[str, Any]:
        return {"principal_id": self.principal_id, "role_id": self.role_id, "role_name": self.role_name,
                "scope": self.scope, "fingerprint": self.fingerprint}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ApprovalTerms:
        return cls(str(data["principal_id"]), str(data["role_id"]), str(data["role_name"]), str(data["scope"]),
                   str(data["fingerprint"]))

    def describe(self) -> str:
        return f"{self.role_name} at {self.scope} to {self.principal_id} (diagnosis {self.fingerprint})"


def diagnosis_fingerprint(diagnosis: Diagnosis, principal_id: str | None) -> str:
    """A short stable hash of what a grant would be made on: the caller, the cause, the role, the scope and the
    surface. Evidence lines, counts and ages are left out: they change with every failure, the grant does not."""
    role = roles.guid_of(diagnosis.role_id) if isinstance(diagnosis.role_id, str) else None
    scope = normalize_scope(diagnosis.scope) if isinstance(diagnosis.scope, str) else None
    key = json.dumps([normalize_object_id(principal_id), diagnosis.cause, role, scope, diagnosis.surface])
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def terms_for(diagnosis: Diagnosis | None, principal_id: str | None) -> ApprovalTerms | None:
    """The terms a recommendation made on `diagnosis` offers; None when it names no principal, role or scope."""
    oid = normalize_object_id(principal_id)
    if diagnosis is None or oid is None or not isinstance(diagnosis.role_id, str) or not diagnosis.scope:
        return None
    role = roles.BY_GUID.get(roles.guid_of(diagnosis.role_id))
    if role is None:
        return None
    return ApprovalTerms(oid, role.guid, role.name, diagnosis.scope, diagnosis_fingerprint(diagnosis, oid))


def binding_mismatch(terms: ApprovalTerms, diagnosis: Diagnosis, principal_id: str | None) -> str | None:
    """Why a grant on `diagnosis` to `principal_id` is not what `terms` approved; None when it is exactly that."""
    offered = terms_for(diagnosis, principal_id)
    if offered is None:
        return "the diagnosis no longer names a principal, a role and a scope"
    differences = []
    if terms.principal_id != offered.principal_id:
        differences.append(f"principal {terms.principal_id} -> {offered.principal_id}")
    if terms.role_id != offered.role_id:
        differences.append(f"role {terms.role_name} -> {offered.role_name}")
    if normalize_scope(terms.scope) != normalize_scope(offered.scope):
        differences.append(f"scope {terms.scope} -> {offered.scope}")
    if terms.fingerprint != offered.fingerprint:
        differences.append(f"diagnosis {terms.fingerprint} -> {offered.fingerprint}")
    return "; ".join(differences) or None
