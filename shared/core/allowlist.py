"""The allowlist of identities the service may grant roles to. Parsing is strict: a bad entry fails the load."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass

from shared.core import roles
from shared.core.resource_ids import normalize_scope, scope_within

_GUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


PRINCIPAL_TYPES = ("ServicePrincipal", "User", "Group")


class AllowlistError(ValueError):
    pass


def normalize_object_id(value: str | None) -> str | None:
    """Lower-case, strip whitespace and braces. Returns None when the result is not a GUID."""
    if value is None:
        return None
    candidate = value.strip().strip("{}").strip().lower()
    return candidate if _GUID.match(candidate) else None


@dataclass(frozen=True)
class AllowlistEntry:
    object_id: str  # normalized GUID
    name: str = ""
    role_ids: frozenset[str] = roles.GRANTABLE  # narrowed per entry; always a subset of GRANTABLE
    scopes: tuple[str, ...] = ()  # normalized; empty = any account or project
    # Declared type. ServicePrincipal by default (managed identities are the main case); ARM rejects a wrong
    # declaration with UnmatchedPrincipalType, so a wrong default fails safe.
    principal_type: str = "ServicePrincipal"
    # Even in enforce mode, grants to this identity wait for an on-call engineer's approval.
    require_approval: bool = False

    def allows_scope(self, scope: str) -> bool:
        if not self.scopes:
            return True
        target = normalize_scope(scope)
        return any(scope_within(target, s) for s in self.scopes)


@dataclass(frozen=True)
class Allowlist:
    entries: tuple[AllowlistEntry, ...] = ()

    def find(self, object_id: str | None) -> AllowlistEntry | None:
        oid = normalize_object_id(object_id)
        if oid is None:
            return None
        for entry in self.entries:
            if entry.object_id == oid:
                return entry
        return None


def parse_allowlist(text: str | None) -> Allowlist:
    """Parse the JSON allowlist: a list of {"object_id", "name"?, "roles"?, "scopes"?, "principal_type"?,
    "require_approval"?}.

    Any role outside the three least-privilege data roles is an error, whatever else is configured.
    """
    if text is None or not text.strip():
        return Allowlist()
    try:
        raw = json.loads(text)
    except json.JSONDecodeError as exc:
        raise AllowlistError(f"not valid JSON ({exc.msg} at position {exc.pos})") from None
    if not isinstance(raw, list):
        raise AllowlistError("must be a JSON list of entries")
    problems: list[str] = []
    entries: list[AllowlistEntry] = []
    for index, item in enumerate(raw):
        where = f"entry {index}"
        if not isinstance(item, dict):
            problems.append(f"{where}: must be an object")
            continue
        unknown = set(item) - {"object_id", "name", "roles", "scopes", "principal_type", "require_approval"}
        if unknown:
            problems.append(f"{where}: unknown keys {sorted(unknown)}")
        oid = normalize_object_id(item.get("object_id") if isinstance(item.get("object_id"), str) else None)
        if oid is None:
            problems.append(f"{where}: object_id must be an Entra object id (GUID)")
            continue
        role_ids = set()
        for role_ref in item.get("roles") or []:
            role = roles.lookup(role_ref) if isinstance(role_ref, str) else None
            if role is None or role.guid not in roles.GRANTABLE:
                problems.append(
                    f"{where}: role {role_ref!r} is not grantable; only "
                    + ", ".join(roles.BY_GUID[g].name for g in sorted(roles.GRANTABLE))
                )
            else:
                role_ids.add(role.guid)
        scopes = item.get("scopes") or []
        if not isinstance(scopes, list) or not all(isinstance(s, str) and s.strip() for s in scopes):
            problems.append(f"{where}: scopes must be a list of ARM resource ids")
            scopes = []
        name = item.get("name") or ""
        require_approval = item.get("require_approval", False)
        if not isinstance(require_approval, bool):
            problems.append(f"{where}: require_approval must be true or false")
            continue
        principal_type = item.get("principal_type") or "ServicePrincipal"
        if principal_type not in PRINCIPAL_TYPES:
            problems.append(f"{where}: principal_type must be one of {', '.join(PRINCIPAL_TYPES)}")
            continue
        entries.append(
            AllowlistEntry(
                object_id=oid,
                name=str(name),
                role_ids=frozenset(role_ids) if role_ids else roles.GRANTABLE,
                scopes=tuple(normalize_scope(s) for s in scopes),
                principal_type=principal_type,
                require_approval=require_approval,
            )
        )
    if problems:
        raise AllowlistError("; ".join(problems))
    return Allowlist(tuple(entries))
