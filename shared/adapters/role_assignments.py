"""Role assignments over azure-mgmt-authorization (api 2022-04-01): list what applies to a caller, create the
least-privilege assignment idempotently, and delete only what this service created.

Listing uses `$filter=assignedTo('{id}')` at a scope (the evidence provider passes the subscription, or the
account): one paged call returns the caller's own assignments and those it holds through groups, at, above and
below the scope. An assignment whose principalId differs from the caller's is therefore held through a group
(`via_group=True`). If a scope rejects `assignedTo` (400), the listing falls back to `principalId eq '{id}'`
(direct assignments only) for the rest of the run.

The two reads every evidence look-up makes (the listing and the subscription's role definitions) go through an ARM
pipeline built as the SDK client builds its own (shared.adapters.clients.arm_pipeline: same policies, credential,
retries, user agent, paging and error mapping) and read the JSON as the SDK's models read it (`ArmRecord`): a first
invocation does not import the SDK's models. Everything else uses the SDK client.
"""

from __future__ import annotations

import logging
import re
import threading
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, quote, urljoin, urlparse

from shared.adapters.clients import subscription_of
from shared.adapters.resources import ArmJson, json_key
from shared.core import roles
from shared.core.allowlist import normalize_object_id
from shared.core.model import RoleAssignmentEvidence, RoleDefinitionEvidence
from shared.core.ports import GrantOutcome
from shared.core.resource_ids import normalize_scope

log = logging.getLogger("triage.adapters")

# Fixed namespace of the deterministic assignment names (never change it: names of past grants derive from it).
ASSIGNMENT_NAMESPACE = uuid.UUID("6f1d3c1e-2b0a-5d8e-9a47-3c6e2f8b1a90")
DESCRIPTION_MARKER = "Created by aoai-auth-triage"
_EXISTING_ID = re.compile(r"existing role assignment is ([0-9a-fA-F]{32}|[0-9a-fA-F-]{36})")
_TRANSIENT = {408, 429, 500, 502, 503, 504}


def assignment_name(scope: str, principal_id: str, role_guid: str) -> str:
    """UUIDv5 of scope + principal + role, lower-cased: the same grant always gets the same name."""
    key = f"{normalize_scope(scope)}|{principal_id.strip().lower()}|{roles.guid_of(role_guid)}"
    return str(uuid.uuid5(ASSIGNMENT_NAMESPACE, key))


def is_own(name: str | None, description: str | None, our_name: str) -> bool:
    """An assignment this service made: it has the grant's deterministic name, or its description's marker."""
    return (name or "").lower() == our_name or (description or "").startswith(DESCRIPTION_MARKER)


def role_definition_id(scope: str, role_guid: str) -> str:
    return (
        f"/subscriptions/{subscription_of(scope)}/providers/Microsoft.Authorization/roleDefinitions/"
        f"{roles.guid_of(role_guid)}"
    )


def description_for(incident_id: str) -> str:
    return f"{DESCRIPTION_MARKER} for incident {incident_id}"


def to_evidence(assignment: Any, caller_id: str) -> RoleAssignmentEvidence:
    principal = normalize_object_id(assignment.principal_id) or assignment.principal_id
    return RoleAssignmentEvidence(
        role_definition_id=roles.guid_of(assignment.role_definition_id or ""),
        scope=assignment.scope or "",
        principal_id=principal,
        principal_type=assignment.principal_type,
        created_on=_utc(assignment.created_on),
        via_group=bool(principal) and principal != caller_id,
        assignment_id=assignment.id,
        description=assignment.description,
    )


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _error_parts(exc: Any) -> tuple[int | None, str, str]:
    error = getattr(exc, "error", None)
    code = getattr(error, "code", None) or ""
    message = getattr(error, "message", None) or getattr(exc, "message", None) or str(exc)
    return getattr(exc, "status_code", None), code, message.strip().splitlines()[0] if message.strip() else ""


def _describe(exc: Any) -> str:
    status, code, message = _error_parts(exc)
    return f"{status} {code}: {message}".strip()


@dataclass(frozen=True)
class RoleDefinitionInfo:
    id: str
    name: str
    data_actions: tuple[str, ...]
    not_data_actions: tuple[str, ...]
    actions: tuple[str, ...]
    custom: bool
    not_actions: tuple[str, ...] = ()

    def to_evidence(self) -> RoleDefinitionEvidence:
        return RoleDefinitionEvidence(id=self.id, name=self.name, actions=self.actions, not_actions=self.not_actions,
                                      data_actions=self.data_actions, not_data_actions=self.not_data_actions,
                                      custom=self.custom)


def _definition_info(definition: Any) -> RoleDefinitionInfo:
    permissions = definition.permissions or []
    return RoleDefinitionInfo(
        id=definition.id or "",
        name=definition.role_name or "",
        data_actions=tuple(a for p in permissions for a in (p.data_actions or ())),
        not_data_actions=tuple(a for p in permissions for a in (p.not_data_actions or ())),
        actions=tuple(a for p in permissions for a in (p.actions or ())),
        custom=(definition.role_type or "").lower() == "customrole",
        not_actions=tuple(a for p in permissions for a in (p.not_actions or ())),
    )


# The API version and package of the SDK operations these reads are (azure-mgmt-authorization's v2022_04_01
# role_assignments.list_for_scope and role_definitions.list; a test holds them equal).
ROLES_API_VERSION = "2022-04-01"
ROLES_SDK_PACKAGE = "azure-mgmt-authorization"
# What those operations map before their generic HttpResponseError (ARM error format).
_LIST_ERROR_MAP = {401: "ClientAuthenticationError", 404: "ResourceNotFoundError", 409: "ResourceExistsError",
                   304: "ResourceNotModifiedError"}
_TOP_LEVEL = frozenset({"id", "name", "type"})
_DATES = frozenset({"created_on", "updated_on"})


class ArmRecord:
    """A role assignment's or role definition's JSON read as the SDK's v2022-04-01 models read it (they flatten
    `properties`): id, name and type at the top, every other attribute under `properties` in camelCase
    (`role_type` is `properties.type`); createdOn/updatedOn become datetimes by the SDK's own conversion;
    permissions are objects (ArmJson); an absent key is None."""

    __slots__ = ("_data",)

    def __init__(self, data: Mapping[str, Any]):
        self._data = data

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        if name in _TOP_LEVEL:
            value = self._data.get(name)
        else:
            props = self._data.get("properties")
            key = "type" if name == "role_type" else json_key(name)
            value = props.get(key) if isinstance(props, Mapping) else None
        if value is None:
            return None
        if name in _DATES:
            from azure.mgmt.authorization._serialization import Deserializer

            return Deserializer.deserialize_iso(value)
        if name == "permissions":
            return [ArmJson(p) for p in value]
        return value

    def __repr__(self) -> str:
        return f"ArmRecord({self._data!r})"


class RoleAssignmentError(RuntimeError):
    """ARM refused a rollback delete (e.g. 403: missing permission or the ABAC condition): the operator must act."""


class RoleAssignments:
    """Reads (list, role definitions) and writes (create, delete_own) on one AuthorizationManagementClient."""

    def __init__(self, client: Any, pipeline: Callable[[], Any] | None = None):
        self.client = client
        self._build_pipeline = pipeline
        self._pipeline: Any = None
        self._pipeline_lock = threading.Lock()
        self._assigned_to_supported = True
        self._definitions: dict[str, dict[str, RoleDefinitionInfo]] = {}
        self._read_by_id: dict[tuple[str, str], RoleDefinitionInfo | None] = {}
        self._lock = threading.Lock()

    def new_run(self) -> None:
        with self._lock:
            self._definitions.clear()
            self._read_by_id.clear()
            self._assigned_to_supported = True

    # ---- reads ------------------------------------------------------------------------------------------

    def list_for(self, principal_id: str, scope: str) -> tuple[RoleAssignmentEvidence, ...]:
        """Every assignment of the caller (directly or through groups) at, above or below `scope` (one paged call)."""
        from azure.core.exceptions import HttpResponseError

        caller = normalize_object_id(principal_id)
        if caller is None:
            raise ValueError(f"principal id {principal_id!r} is not an Entra object id")
        if self._assigned_to_supported:
            try:
                found = self._list_for_scope(scope, f"assignedTo('{caller}')")
                return tuple(to_evidence(a, caller) for a in found)
            except HttpResponseError as exc:
                if exc.status_code != 400:
                    raise
                log.warning("assignedTo() filter refused at %s (%s); listing direct assignments only",
                            scope, _error_parts(exc)[1])
                self._assigned_to_supported = False
        found = self._list_for_scope(scope, f"principalId eq '{caller}'")
        return tuple(to_evidence(a, caller) for a in found)

    def _list_for_scope(self, scope: str, filter_: str) -> list[Any]:
        if self._build_pipeline is None:
            return list(self.client.role_assignments.list_for_scope(scope, filter=filter_))
        return list(self._paged(f"/{scope}/providers/Microsoft.Authorization/roleAssignments", {"$filter": filter_}))

    def _role_definitions(self, scope: str) -> list[Any]:
        if self._build_pipeline is None:
            return list(self.client.role_definitions.list(scope))
        return list(self._paged(f"/{scope}/providers/Microsoft.Authorization/roleDefinitions", {}))

    def _paged(self, path: str, params: dict[str, str]) -> Iterator[ArmRecord]:
        """A list operation of the SDK: its first request, then each nextLink with the client's api-version, and
        the same error mapping on every page. Parameters are sent unquoted, as the SDK sends `$filter`."""
        from azure.core import exceptions
        from azure.core.rest import HttpRequest
        from azure.core.utils import case_insensitive_dict
        from azure.mgmt.core.exceptions import ARMErrorFormat

        with self._pipeline_lock:  # not self._lock: definitions() holds that one while it lists
            if self._pipeline is None:
                self._pipeline = self._build_pipeline()  # type: ignore[misc]
            pipeline = self._pipeline
        next_link = None
        while True:
            if next_link is None:
                request = HttpRequest("GET", pipeline.format_url(path), headers={"Accept": "application/json"},
                                      params={**params, "api-version": ROLES_API_VERSION})
            else:
                parsed = urlparse(next_link)
                next_params = case_insensitive_dict(
                    {key: [quote(v) for v in values] for key, values in parse_qs(parsed.query).items()})
                next_params["api-version"] = ROLES_API_VERSION
                request = HttpRequest("GET", urljoin(next_link, parsed.path), params=next_params)
                request.url = pipeline.format_url(request.url)
            response = pipeline.send_request(request)
            if response.status_code != 200:
                error_map = {status: getattr(exceptions, kind) for status, kind in _LIST_ERROR_MAP.items()}
                exceptions.map_error(status_code=response.status_code, response=response, error_map=error_map)
                raise exceptions.HttpResponseError(response=response, error_format=ARMErrorFormat)
            page = response.json()
            yield from (ArmRecord(item) for item in iter(page.get("value")))  # no `value`: TypeError, as the SDK
            next_link = page.get("nextLink") or None
            if next_link is None:
                return

    def get(self, assignment_id: str) -> RoleAssignmentEvidence | None:
        """One assignment by its full id (role-assignment events name it); None when it is gone."""
        from azure.core.exceptions import ResourceNotFoundError

        try:
            found = self.client.role_assignments.get_by_id(assignment_id)
        except ResourceNotFoundError:
            return None
        principal = normalize_object_id(found.principal_id) or found.principal_id or ""
        return to_evidence(found, principal)

    def find_own(self, *, scope: str, principal_id: str, role_guid: str | None,
                 incident_id: str) -> RoleAssignmentEvidence | None:
        """The assignment `create` made for this incident: by its deterministic name when the role is known,
        else by its description among the principal's assignments at or below `scope` (None when neither)."""
        from azure.core.exceptions import ResourceNotFoundError

        caller = normalize_object_id(principal_id) or principal_id
        if role_guid:
            try:
                found = self.client.role_assignments.get(scope, assignment_name(scope, principal_id, role_guid))
                return to_evidence(found, caller)
            except ResourceNotFoundError:
                pass
        marked = description_for(incident_id)
        for assignment in self.client.role_assignments.list_for_scope(scope, filter=f"principalId eq '{caller}'"):
            if (assignment.description or "") == marked:
                return to_evidence(assignment, caller)
        return None

    def definitions(self, subscription_id: str) -> dict[str, RoleDefinitionInfo]:
        """All role definitions visible in the subscription by GUID; fetched once per run, then cached."""
        with self._lock:
            cached = self._definitions.get(subscription_id)
            if cached is not None:
                return cached
            result: dict[str, RoleDefinitionInfo] = {}
            for definition in self._role_definitions(f"/subscriptions/{subscription_id}"):
                result[roles.guid_of(definition.id or definition.name or "")] = _definition_info(definition)
            self._definitions[subscription_id] = result
            return result

    def definition(self, subscription_id: str, role_guid: str) -> RoleDefinitionInfo | None:
        """One role definition: from the subscription's list (read once per run), else read by its id
        (`role_definitions.get_by_id`: a definition the list does not show); None when ARM has none."""
        from azure.core.exceptions import ResourceNotFoundError

        guid = roles.guid_of(role_guid)
        listed = self.definitions(subscription_id).get(guid)
        if listed is not None:
            return listed
        key = (subscription_id, guid)
        with self._lock:
            if key in self._read_by_id:
                return self._read_by_id[key]
        try:
            found: RoleDefinitionInfo | None = _definition_info(
                self.client.role_definitions.get_by_id(role_definition_id(f"/subscriptions/{subscription_id}", guid)))
        except ResourceNotFoundError:
            found = None
        with self._lock:
            self._read_by_id[key] = found
        return found

    # ---- writes -----------------------------------------------------------------------------------------

    def create(
        self, *, scope: str, principal_id: str, principal_type: str, role_guid: str, incident_id: str
    ) -> GrantOutcome:
        from azure.core.exceptions import AzureError, HttpResponseError, ResourceExistsError
        from azure.mgmt.authorization.models import RoleAssignmentCreateParameters

        role = roles.BY_GUID.get(roles.guid_of(role_guid))
        role_label = f"{role.name if role else 'role'} ({roles.guid_of(role_guid)})"
        name = assignment_name(scope, principal_id, role_guid)
        parameters = RoleAssignmentCreateParameters(  # type: ignore[call-arg]  # mypy picks the 2015 model
            role_definition_id=role_definition_id(scope, role_guid),
            principal_id=principal_id,
            principal_type=principal_type,  # explicit: the SDK default "User" fails for service principals
            description=description_for(incident_id),
        )
        try:
            created = self.client.role_assignments.create(scope, name, parameters)
        except ResourceExistsError as exc:
            return self._existing(scope, name, exc)
        except HttpResponseError as exc:
            status, code, message = _error_parts(exc)
            if code == "RoleAssignmentExists":
                return self._existing(scope, name, exc)
            if code == "PrincipalNotFound":
                return GrantOutcome("retry_later", message=f"PrincipalNotFound (directory replication): {message}")
            if status == 403 or code == "AuthorizationFailed":
                return GrantOutcome(
                    "forbidden",
                    message=(
                        f"The service's identity may not assign {role_label} at scope {scope}: it lacks "
                        "Microsoft.Authorization/roleAssignments/write there, or the ABAC condition on its role "
                        f"refused this role or principal type. ARM said: {code or status}: {message}"
                    ),
                )
            if status in _TRANSIENT:
                return GrantOutcome("retry_later", message=f"ARM kept failing after retries: {status} {code}: "
                                                           f"{message}")
            return GrantOutcome("failed", message=f"{code or status}: {message}")
        except AzureError as exc:  # connection failures after the retry policy gave up
            return GrantOutcome("retry_later", message=f"ARM unreachable: {type(exc).__name__}: {exc}")
        return GrantOutcome("created", assignment_id=created.id, created_on=_utc(created.created_on),
                            message=f"assigned {role_label} at {scope}")

    def _existing(self, scope: str, our_name: str, exc: Any) -> GrantOutcome:
        """409 RoleAssignmentExists counts as success: find the existing assignment to report it."""
        from azure.core.exceptions import AzureError

        _, _, message = _error_parts(exc)
        match = _EXISTING_ID.search(message)
        candidates = [str(uuid.UUID(match.group(1)))] if match else []
        candidates.append(our_name)
        for name in dict.fromkeys(candidates):
            try:
                found = self.client.role_assignments.get(scope, name)
            except AzureError:
                continue
            if is_own(found.name, found.description, our_name):
                # Made by this service (an earlier attempt whose result was never recorded): its own, revocable.
                return GrantOutcome("created", assignment_id=found.id, created_on=_utc(found.created_on),
                                    message="the role assignment this service made earlier already exists")
            return GrantOutcome("exists", assignment_id=found.id, created_on=_utc(found.created_on),
                                message="the role assignment already exists")
        return GrantOutcome("exists", message=f"the role assignment already exists: {message}")

    def delete_own(self, assignment_id: str) -> bool:
        """Delete only an assignment whose description carries this service's marker. True if deleted; False if
        it is gone or not ours. Raises RoleAssignmentError when ARM refuses or fails."""
        from azure.core.exceptions import HttpResponseError, ResourceNotFoundError

        try:
            found = self.client.role_assignments.get_by_id(assignment_id)
        except ResourceNotFoundError:
            log.info("role assignment %s is already gone", assignment_id)
            return False
        except HttpResponseError as exc:
            raise RoleAssignmentError(f"could not read role assignment {assignment_id}: {_describe(exc)}") from exc
        if not (found.description or "").startswith(DESCRIPTION_MARKER):
            log.warning("refusing to delete role assignment %s: not created by this service", assignment_id)
            return False
        try:
            self.client.role_assignments.delete_by_id(assignment_id)
        except ResourceNotFoundError:
            return False
        except HttpResponseError as exc:
            raise RoleAssignmentError(
                f"ARM refused to delete role assignment {assignment_id} (the service's identity needs "
                f"roleAssignments/delete there, allowed by its ABAC condition): {_describe(exc)}"
            ) from exc
        return True
