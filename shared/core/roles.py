"""Azure role definitions as data, and what they grant.

The built-in catalogue is `shared/roles/built_in_roles.json`: Microsoft's published definitions (GUID, name,
actions, notActions, dataActions, notDataActions; the file cites its sources and their dates), read once when this
module is imported. Definitions read through ARM (custom roles, built-ins the file does not carry) become the same
`Role` with `from_definition`, so every role is judged the same way: it covers a data action when one of its
dataActions matches it (`*` spans path segments; case-insensitive, as in Azure) and none of its notDataActions does.

GUIDs, not names: the Foundry roles were renamed from "Azure AI *" during 2025-2026, and names drift (former names
are aliases).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files

from shared.core.model import RoleDefinitionEvidence
from shared.core.surfaces import ALL_SURFACES, MODELS, OPENAI, PROJECT, SURFACES

__all__ = ["ALL_SURFACES", "MODELS", "OPENAI", "PROJECT"]  # the surface ids, re-exported for older imports

CATALOGUE_RESOURCE = "roles/built_in_roles.json"  # under the `shared` package
ROLE_ASSIGNMENT_WRITE = "Microsoft.Authorization/roleAssignments/write"


@lru_cache(maxsize=2048)
def _pattern(permission: str) -> re.Pattern[str]:
    return re.compile("^" + ".*".join(re.escape(part) for part in permission.split("*")) + "$", re.IGNORECASE)


def _wildcard_match(parts: list[str], operation: str) -> bool:
    """`parts` (a permission split at `*`, lower-cased) matches the lower-cased operation: the first part is its
    prefix, the last its suffix, the others occur in order between them (what `^a.*b.*c$` matches)."""
    first, last = parts[0], parts[-1]
    if len(parts) == 1:
        return operation == first
    if len(operation) < len(first) + len(last) or not operation.startswith(first) or not operation.endswith(last):
        return False
    at, end = len(first), len(operation) - len(last)
    for part in parts[1:-1]:
        found = operation.find(part, at, end)
        if found < 0:
            return False
        at = found + len(part)
    return True


def permission_matches(permission: str, operation: str) -> bool:
    """Azure's permission matching: `*` is a wildcard that may span `/` segments; case-insensitive."""
    if permission.isascii() and operation.isascii() and "\n" not in operation:
        # ASCII on one line (every Azure permission): plain string tests, no regex compiled per permission.
        return _wildcard_match(permission.lower().split("*"), operation.lower())
    return _pattern(permission).match(operation) is not None


def _granted(operation: str, allowed: tuple[str, ...], denied: tuple[str, ...]) -> bool:
    return any(permission_matches(p, operation) for p in allowed) and not any(
        permission_matches(p, operation) for p in denied)


@dataclass(frozen=True)
class Role:
    guid: str
    name: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    built_in: bool = True
    # Derived from the permissions (never listed by hand):
    data_surfaces: frozenset[str] = field(init=False)  # the AI surfaces whose data action the role covers
    writes_role_assignments: bool = field(init=False)  # may write role assignments (conditionally or not)
    data_elsewhere: str | None = field(init=False)  # its data actions, when they cover no AI surface
    _covered: dict[str, bool] = field(init=False, default_factory=dict, repr=False, compare=False, hash=False)

    def __post_init__(self) -> None:
        surfaces = frozenset(s.id for s in SURFACES.values() if self.covers(s.data_action))
        object.__setattr__(self, "data_surfaces", surfaces)
        object.__setattr__(self, "writes_role_assignments", self.allows_action(ROLE_ASSIGNMENT_WRITE))
        elsewhere = ", ".join(self.data_actions) if self.data_actions and not surfaces else None
        object.__setattr__(self, "data_elsewhere", elsewhere)

    def covers(self, data_action: str) -> bool:
        """Whether the role grants `data_action` (remembered per role: the same few actions are asked about)."""
        covered = self._covered.get(data_action)
        if covered is None:
            covered = self._covered[data_action] = _granted(data_action, self.data_actions, self.not_data_actions)
        return covered

    def allows_action(self, action: str) -> bool:
        return _granted(action, self.actions, self.not_actions)

    @property
    def grants_data(self) -> bool:
        return bool(self.data_actions)


@lru_cache(maxsize=4096)
def guid_of(role_definition_id: str) -> str:
    """The GUID at the end of a role definition id (full ARM id or bare GUID), lower-cased."""
    tail = role_definition_id.strip().rstrip("/").rsplit("/", 1)[-1]
    return tail.strip("{}").lower()


def _load() -> tuple[Role, ...]:
    raw = json.loads(files("shared").joinpath(CATALOGUE_RESOURCE).read_text(encoding="utf-8"))
    return tuple(
        Role(entry["id"].lower(), entry["name"], tuple(entry["actions"]), tuple(entry["notActions"]),
             tuple(entry["dataActions"]), tuple(entry["notDataActions"]), tuple(entry.get("aliases", ())))
        for entry in raw["roles"]
    )


BUILT_IN: tuple[Role, ...] = _load()
BY_GUID: dict[str, Role] = {r.guid: r for r in BUILT_IN}
_BY_NAME: dict[str, Role] = {n.casefold(): r for r in BUILT_IN for n in (r.name, *r.aliases)}

COGNITIVE_SERVICES_OPENAI_USER = BY_GUID["5e0bd9bd-7b93-4f28-af87-19fc36ad61bd"]
COGNITIVE_SERVICES_USER = BY_GUID["a97b65f3-24c7-4388-baec-2e87135dc908"]
FOUNDRY_USER = BY_GUID["53ca6127-db72-4b80-b1b0-d745d6d5456d"]

# The only roles the service may ever grant, whatever the configuration says.
GRANTABLE: frozenset[str] = frozenset(
    {COGNITIVE_SERVICES_OPENAI_USER.guid, COGNITIVE_SERVICES_USER.guid, FOUNDRY_USER.guid}
)

# Least-privilege built-in role for each surface (shared/core/surfaces.py names it; seed 002 and Learn).
LEAST_PRIVILEGE_FOR_SURFACE: dict[str, Role] = {s.id: BY_GUID[s.least_privilege] for s in SURFACES.values()}
# Broader grantable roles, narrowest first: what is named when a surface's own role lacks the exact data action.
_WIDER = (COGNITIVE_SERVICES_USER, FOUNDRY_USER)


def lookup(name_or_guid: str) -> Role | None:
    """Find a built-in role by GUID, full role definition id, display name or former name."""
    key = name_or_guid.strip()
    return BY_GUID.get(guid_of(key)) or _BY_NAME.get(key.casefold())


def display_name(role_definition_id: str) -> str:
    role = BY_GUID.get(guid_of(role_definition_id))
    return role.name if role else guid_of(role_definition_id)


def least_privilege_for(surface: str, data_action: str | None = None) -> Role:
    """The surface's least-privilege role; when an error names a data action that role does not grant, the
    narrowest grantable role that does (falling back to the surface's own)."""
    role = LEAST_PRIVILEGE_FOR_SURFACE[surface]
    if data_action is None or role.covers(data_action):
        return role
    return next((wider for wider in _WIDER if wider.covers(data_action)), role)


@lru_cache(maxsize=1024)
def from_definition(guid: str, name: str, actions: tuple[str, ...], not_actions: tuple[str, ...],
                    data_actions: tuple[str, ...], not_data_actions: tuple[str, ...]) -> Role:
    """A role read through ARM (a custom role, or a built-in this catalogue does not carry), judged like the rest."""
    return Role(guid_of(guid), name or guid_of(guid), actions, not_actions, data_actions, not_data_actions,
                built_in=False)


def role_of(role_ref: str, definitions: tuple[RoleDefinitionEvidence, ...] = ()) -> Role | None:
    """The role an assignment (or evidence given by hand) names, by GUID, id or name: a built-in from the
    catalogue, else a definition read through ARM; None when neither knows it."""
    found = BY_GUID.get(guid_of(role_ref)) or lookup(role_ref) if role_ref else None
    if found is not None or not definitions:
        return found
    guid = guid_of(role_ref)
    for d in definitions:
        if guid_of(d.id) == guid:
            return from_definition(d.id, d.name, tuple(d.actions), tuple(d.not_actions), tuple(d.data_actions),
                                   tuple(d.not_data_actions))
    return None
