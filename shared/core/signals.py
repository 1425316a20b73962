"""Parsing and validating a failure report (the `classify` input line, the Event Grid failure event, HTTP
/api/diagnose) into a FailureSignal, and optional evidence into Evidence. Pure; raises SignalError(reason).

Input contract (JSON object; unknown keys are ignored so producers can add fields):
  status (required, 100-599; an int or a numeric string), code, message, endpoint, auth ("entra" | "key"),
  object_id, and optionally resource_id, principal_type, route, operation, count, first_seen, last_seen, source.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from shared.core import roles
from shared.core.limits import TimeOutOfRange, checked_time
from shared.core.model import (
    ENTRA,
    KEY,
    Evidence,
    FailureSignal,
    ResourceEvidence,
    RoleAssignmentEvidence,
    RoleDefinitionEvidence,
)

MAX_FIELD = 20_000  # an error text longer than this is cut (stack traces); ids and URLs are far shorter
_TEXT_FIELDS = ("message", "endpoint", "object_id", "resource_id", "principal_type", "route", "operation", "source")
_AUTH_ALIASES = {
    "entra": ENTRA,
    "entra_id": ENTRA,
    "entraid": ENTRA,
    "aad": ENTRA,
    "azure_ad": ENTRA,
    "token": ENTRA,
    "bearer": ENTRA,
    "key": KEY,
    "api_key": KEY,
    "api-key": KEY,
    "apikey": KEY,
}


class SignalError(ValueError):
    """The input cannot be read as a failure; `str(exc)` says why, for the caller's error line."""


class TimeRangeError(SignalError):
    """A timestamp that reads but cannot be a real time (or overflows in UTC): refused, never taken as absent."""


def parse_failure(obj: Any) -> FailureSignal:
    if not isinstance(obj, dict):
        raise SignalError("expected a JSON object")
    fields: dict[str, Any] = {"status": _status(obj.get("status"))}
    code = obj.get("code")
    if code is not None:
        if isinstance(code, bool) or not isinstance(code, (str, int)):
            raise SignalError("code must be a string or null")
        fields["code"] = _text(str(code))
    for name in _TEXT_FIELDS:
        value = obj.get(name)
        if value is None:
            continue
        if not isinstance(value, str):
            raise SignalError(f"{name} must be a string or null")
        fields[name] = _text(value)
    fields["auth"] = _auth(obj.get("auth"))
    count = obj.get("count")
    if count is not None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise SignalError("count must be a positive integer")
        fields["count"] = count
    for name in ("first_seen", "last_seen"):
        if obj.get(name) is not None:
            fields[name] = parse_time(obj[name], name)
    return FailureSignal(**fields)


def _status(value: Any) -> int:
    if isinstance(value, bool):
        raise SignalError("status must be an HTTP status code")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int):
        raise SignalError("missing or unusable status (expected an HTTP status code such as 401)")
    if not 100 <= value <= 599:
        shown = value if -10**9 < value < 10**9 else "(a number far out of range)"
        raise SignalError(f"status {shown} is not an HTTP status code")
    return value


def _text(value: str) -> str | None:
    stripped = value.strip()
    return stripped[:MAX_FIELD] if stripped else None


def _auth(value: Any) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise SignalError('auth must be "entra", "key" or null')
    folded = value.strip().lower()
    if not folded:
        return None
    if folded not in _AUTH_ALIASES:
        raise SignalError('auth must be "entra", "key" or null')
    return _AUTH_ALIASES[folded]


def parse_time(value: Any, name: str = "time") -> datetime:
    """An ISO-8601 timestamp as an aware UTC datetime; a time without zone is taken as UTC. TimeRangeError when
    it lies outside core/limits.py's years or overflows in UTC."""
    if not isinstance(value, str):
        raise SignalError(f"{name} must be an ISO-8601 timestamp")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        raise SignalError(f"{name} must be an ISO-8601 timestamp") from None
    try:
        return checked_time(when, name)
    except TimeOutOfRange as exc:
        raise TimeRangeError(str(exc)) from None


# ---- evidence (used by the CLI, the samples and tests; the engine gets it from adapters in production) -------


def parse_evidence(obj: Any) -> Evidence:
    """{"assignments": [...] | null, "resource": {...} | null, "principal_type", "principal_name",
    "role_definitions": [...]}.

    `assignments` absent or null means "not looked up"; `[]` means "looked up, none". An assignment's role may be a
    GUID, a full role definition id or a built-in role's name (current or former): names resolve through the role
    catalogue. `role_definitions` gives the permissions of roles the catalogue does not know (custom roles):
    {"id", "name", "actions", "not_actions", "data_actions", "not_data_actions"} (ARM's camelCase keys work too).
    """
    if not isinstance(obj, dict):
        raise SignalError("evidence must be a JSON object")
    raw_assignments = obj.get("assignments")
    assignments = None
    if raw_assignments is not None:
        if not isinstance(raw_assignments, list):
            raise SignalError("evidence.assignments must be a list or null")
        assignments = tuple(_assignment(item, i) for i, item in enumerate(raw_assignments))
    resource = _resource(obj["resource"]) if obj.get("resource") is not None else None
    raw_definitions = obj.get("role_definitions") or []
    if not isinstance(raw_definitions, list):
        raise SignalError("evidence.role_definitions must be a list")
    return Evidence(
        assignments=assignments,
        resource=resource,
        principal_type=_optional_str(obj, "principal_type", "evidence"),
        principal_name=_optional_str(obj, "principal_name", "evidence"),
        role_definitions=tuple(_definition(item, i) for i, item in enumerate(raw_definitions)),
    )


def _definition(item: Any, index: int) -> RoleDefinitionEvidence:
    where = f"evidence.role_definitions[{index}]"
    if not isinstance(item, dict):
        raise SignalError(f"{where} must be an object")
    role_id = item.get("id")
    if not isinstance(role_id, str) or not role_id.strip():
        raise SignalError(f"{where}.id must be a role GUID or id")
    lists: dict[str, tuple[str, ...]] = {}
    for name, camel in (("actions", "actions"), ("not_actions", "notActions"), ("data_actions", "dataActions"),
                        ("not_data_actions", "notDataActions")):
        value = item.get(name, item.get(camel)) or []
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise SignalError(f"{where}.{name} must be a list of strings")
        lists[name] = tuple(value)
    return RoleDefinitionEvidence(id=role_id.strip(), name=_optional_str(item, "name", where) or "",
                                  actions=lists["actions"], not_actions=lists["not_actions"],
                                  data_actions=lists["data_actions"], not_data_actions=lists["not_data_actions"])


def _role_ref(role: str) -> str:
    """A built-in role given by name becomes its GUID; anything else (a GUID, an id, an unknown name) stays."""
    known = roles.lookup(role)
    return known.guid if known is not None and known.guid != roles.guid_of(role) else role


def _assignment(item: Any, index: int) -> RoleAssignmentEvidence:
    where = f"evidence.assignments[{index}]"
    if not isinstance(item, dict):
        raise SignalError(f"{where} must be an object")
    role = item.get("role_definition_id") or item.get("role")
    scope = item.get("scope")
    if not isinstance(role, str) or not role.strip():
        raise SignalError(f"{where}.role_definition_id must be a role GUID or id")
    if not isinstance(scope, str) or not scope.strip():
        raise SignalError(f"{where}.scope must be an ARM resource id")
    created = item.get("created_on")
    via_group = item.get("via_group", False)
    if not isinstance(via_group, bool):
        raise SignalError(f"{where}.via_group must be true or false")
    return RoleAssignmentEvidence(
        role_definition_id=_role_ref(role.strip()),
        scope=scope.strip(),
        principal_id=_optional_str(item, "principal_id", where),
        principal_type=_optional_str(item, "principal_type", where),
        created_on=parse_time(created, f"{where}.created_on") if created is not None else None,
        via_group=via_group,
        assignment_id=_optional_str(item, "assignment_id", where),
    )


def _resource(item: Any) -> ResourceEvidence:
    if not isinstance(item, dict):
        raise SignalError("evidence.resource must be an object")
    resource_id = item.get("resource_id")
    if not isinstance(resource_id, str) or not resource_id.strip():
        raise SignalError("evidence.resource.resource_id must be an ARM resource id")
    disable_local_auth = item.get("disable_local_auth")
    if disable_local_auth is not None and not isinstance(disable_local_auth, bool):
        raise SignalError("evidence.resource.disable_local_auth must be true, false or null")
    private_endpoints = item.get("private_endpoints", 0)
    if isinstance(private_endpoints, bool) or not isinstance(private_endpoints, int) or private_endpoints < 0:
        raise SignalError("evidence.resource.private_endpoints must be a count")
    return ResourceEvidence(
        resource_id=resource_id.strip(),
        kind=_optional_str(item, "kind", "evidence.resource"),
        endpoint=_optional_str(item, "endpoint", "evidence.resource"),
        disable_local_auth=disable_local_auth,
        public_network_access=_optional_str(item, "public_network_access", "evidence.resource"),
        network_default_action=_optional_str(item, "network_default_action", "evidence.resource"),
        ip_rules=_str_list(item, "ip_rules"),
        virtual_network_rules=_str_list(item, "virtual_network_rules"),
        private_endpoints=private_endpoints,
        tenant_id=_optional_str(item, "tenant_id", "evidence.resource"),
        identity_type=_optional_str(item, "identity_type", "evidence.resource"),
        identity_principal_id=_optional_str(item, "identity_principal_id", "evidence.resource"),
    )


def _optional_str(obj: dict, name: str, where: str) -> str | None:
    value = obj.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise SignalError(f"{where}.{name} must be a string or null")
    return value.strip() or None


def _str_list(obj: dict, name: str) -> tuple[str, ...]:
    value = obj.get(name) or []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SignalError(f"evidence.resource.{name} must be a list of strings")
    return tuple(value)
