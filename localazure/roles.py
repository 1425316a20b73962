"""Built-in Azure role definitions as the stand-in serves them, with their real GUIDs and permissions.

The definitions are Microsoft's published ones, from the one data file the service ships
(`shared/roles/built_in_roles.json`, which cites its sources): one source of truth for what a built-in role grants.
The stand-in reads the file, never the service's code that evaluates it, so its authorization stays its own.
Custom roles are added per stand-in (`LocalAzure.add_custom_role`) and live in its state.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files

CATALOGUE_RESOURCE = "roles/built_in_roles.json"  # under the `shared` package
ROLE_ASSIGNMENT_WRITE = "Microsoft.Authorization/roleAssignments/write"
ROLE_ASSIGNMENT_DELETE = "Microsoft.Authorization/roleAssignments/delete"


@dataclass(frozen=True)
class RoleDefinition:
    guid: str
    name: str
    description: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()
    aliases: tuple[str, ...] = field(default=(), compare=False)
    custom: bool = False

    def allows_action(self, action: str) -> bool:
        return _granted(action, self.actions, self.not_actions)

    def allows_data_action(self, data_action: str) -> bool:
        return _granted(data_action, self.data_actions, self.not_data_actions)


@lru_cache(maxsize=512)
def _pattern(permission: str) -> re.Pattern[str]:
    # Azure permission strings use `*` as a wildcard that may span "/" segments; matching is case-insensitive.
    return re.compile("^" + ".*".join(re.escape(p) for p in permission.split("*")) + "$", re.IGNORECASE)


def permission_matches(permission: str, operation: str) -> bool:
    return bool(_pattern(permission).match(operation))


def _granted(operation: str, allowed: tuple[str, ...], denied: tuple[str, ...]) -> bool:
    return any(permission_matches(p, operation) for p in allowed) and not any(
        permission_matches(p, operation) for p in denied
    )


def _load() -> tuple[RoleDefinition, ...]:
    raw = json.loads(files("shared").joinpath(CATALOGUE_RESOURCE).read_text(encoding="utf-8"))
    return tuple(
        RoleDefinition(entry["id"].lower(), entry["name"], entry.get("description", ""), tuple(entry["actions"]),
                       tuple(entry["notActions"]), tuple(entry["dataActions"]), tuple(entry["notDataActions"]),
                       tuple(entry.get("aliases", ())))
        for entry in raw["roles"]
    )


BUILT_IN: tuple[RoleDefinition, ...] = _load()
BY_GUID: dict[str, RoleDefinition] = {r.guid: r for r in BUILT_IN}


def guid_of(role_definition_id: str) -> str:
    return role_definition_id.strip().rstrip("/").rsplit("/", 1)[-1].strip("{}").lower()


def resolve(name_or_id: str) -> RoleDefinition | None:
    """A built-in role by GUID, full role definition id, name or former name (case-insensitive)."""
    role = BY_GUID.get(guid_of(name_or_id))
    if role is not None:
        return role
    folded = name_or_id.strip().casefold()
    for r in BUILT_IN:
        if r.name.casefold() == folded or any(a.casefold() == folded for a in r.aliases):
            return r
    return None


def require(name_or_id: str) -> RoleDefinition:
    role = resolve(name_or_id)
    if role is None:
        raise ValueError(f"unknown built-in role {name_or_id!r}")
    return role
