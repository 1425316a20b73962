"""The diagnosis engine: one failure signal (+ optional live evidence) in, one Diagnosis out. Pure and total.

Order of reasoning:
1. The text (messages.analyze, cached) says which family the failure belongs to.
2. Resource settings override the text when they are decisive: a key caller on a resource with key auth disabled
   is `local_auth_disabled`; a 403 on a resource that refuses public traffic is `network_denied` when the text
   does not point elsewhere.
3. Non-role families map straight to their cause. Role families (a PermissionDenied text, or a bare 401/403 from
   an Entra caller whose object id the service logged, i.e. whose token it accepted) go through the evidence:
   which roles the caller holds at the target scope, directly or through a group, and how old they are.
Only the three least-privilege data roles are ever named, and only for role-fixable causes.

Evidence first: real log rows carry no error text, so a role cause reaches high confidence from the evidence alone
when the caller's object id is logged, every evidence read succeeded (assignments and the account) and the surface
is known. A surface the row only suggests on a Foundry (AIServices) account, which serves every surface under the
same operation names, is ambiguous: the narrowest role is named at medium confidence. So is a project call whose
project is unknown (the account would be broader than needed). Text still refines the cause; where text and
evidence disagree, the confidence drops and an evidence line says why.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import cast

from shared.core import causes, endpoints, fixes, messages, resource_ids, roles, surfaces, text_ids
from shared.core.allowlist import normalize_object_id
from shared.core.model import (
    ENTRA,
    HIGH,
    KEY,
    LOW,
    MEDIUM,
    Diagnosis,
    Evidence,
    FailureSignal,
    FixStep,
    ResourceEvidence,
    RoleAssignmentEvidence,
)
from shared.core.roles import (
    ALL_SURFACES,
    BUILT_IN,
    GRANTABLE,
    OPENAI,
    PROJECT,
    Role,
    guid_of,
    least_privilege_for,
    role_of,
)

DEFAULT_WINDOW = timedelta(minutes=10)
_ROLE_BY_NAME = {r.name: r for r in BUILT_IN}
_object_id = lru_cache(maxsize=16384)(normalize_object_id)  # the same callers fail again and again
_wrong_service = lru_cache(maxsize=4096)(endpoints.wrong_service)  # and from the same few endpoints
_CANONICAL_GUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")  # as logged, mostly
DEFAULT_PRINCIPAL_TYPE = "ServicePrincipal"
_PRINCIPAL_TYPES = {
    "serviceprincipal": "ServicePrincipal",
    "managedidentity": "ServicePrincipal",
    "user": "User",
    "group": "Group",
}
_ROLE_STATUSES = (401, 403)
_AUTHS = (ENTRA, KEY)

# Text kinds that decide the cause on their own (high confidence when a specific phrase matched).
_TEXT_CAUSES = {
    messages.LOCAL_AUTH: "local_auth_disabled",
    messages.TENANT: "tenant_mismatch",
    messages.NETWORK: "network_denied",
    messages.AUDIENCE: "token_audience_invalid",
    messages.BAD_CREDENTIAL: "token_invalid_or_expired",
    messages.MISSING_KEY: "missing_api_key",
    messages.INVALID_KEY: "invalid_api_key",
    messages.NOT_FOUND: "endpoint_or_deployment_not_found",
    messages.BLOCKED: "blocked_or_other",
    messages.SIGN_IN: "token_acquisition_failed",
    messages.WRONG_ENDPOINT: "wrong_endpoint",
    messages.DEPENDENCY_ROLE: "other_principal_denied",
    messages.DEPENDENCY_NETWORK: "downstream_network_denied",
    messages.IDENTITY_OFF: "identity_not_enabled",
}
# Text kinds the endpoint's host may refine into `wrong_endpoint` (the text does not say where the call went).
_HOST_REFINED = frozenset({messages.EMPTY, messages.OTHER, messages.BAD_CREDENTIAL, messages.NOT_FOUND,
                           messages.INVALID_KEY})
# Text kinds about something else than the key, which a resource's disableLocalAuth does not override.
_NOT_ABOUT_THE_KEY = frozenset({messages.NETWORK, messages.NOT_FOUND, messages.WRONG_ENDPOINT, messages.SIGN_IN,
                                messages.DEPENDENCY_ROLE, messages.DEPENDENCY_NETWORK, messages.IDENTITY_OFF})
_UNKNOWN = causes.CAUSES["unknown"]


def diagnose(
    signal: FailureSignal,
    evidence: Evidence | None = None,
    *,
    now: datetime | None = None,
    propagation_window: timedelta = DEFAULT_WINDOW,
) -> Diagnosis:
    """Diagnose one failure. `now=None` means role ages cannot be judged. Never raises."""
    if _templates.enabled and type(signal.message) is str:
        try:
            found = _from_template(signal, evidence, now, propagation_window)
        except Exception:  # noqa: BLE001 - anything odd about the signal: the full path decides (and words the error)
            found = None
        if found is not None:
            return found
    try:
        return _diagnose(signal, evidence, now, propagation_window)
    except Exception as exc:  # noqa: BLE001 - one malformed signal must not stop a batch; it becomes `unknown`
        return Diagnosis(
            cause="unknown",
            role_fixable=False,
            confidence=LOW,
            summary=_UNKNOWN.summary_for(engine_error=True),
            evidence=(f"engine error: {type(exc).__name__}: {exc}"[:300],),
            fix_steps=_UNKNOWN.steps_for(),
        )


# ---- the decision -------------------------------------------------------------------------------------------


_STR_OR_NONE = (str, type(None))


class _Case:
    """Everything the rules read, computed once per call."""

    __slots__ = ("signal", "evidence", "resource", "status", "facts", "auth", "object_id", "surface", "project",
                 "surface_from", "lines", "kind", "ambiguous", "doubts", "scope_broader")

    def __init__(self, signal: FailureSignal, evidence: Evidence | None):
        self.signal = signal
        self.evidence = evidence
        self.resource: ResourceEvidence | None = evidence.resource if evidence is not None else None
        status = signal.status
        self.status = status if type(status) is int else _int_or_zero(status)
        code, message, endpoint, route, operation = (
            signal.code, signal.message, signal.endpoint, signal.route, signal.operation)
        # Inline fast path of _text(): this runs once per signal, and almost every field is already str or None.
        if not (type(code) in _STR_OR_NONE and type(message) in _STR_OR_NONE and type(endpoint) in _STR_OR_NONE
                and type(route) in _STR_OR_NONE and type(operation) in _STR_OR_NONE):
            code, message, endpoint, route, operation = (
                _text(code), _text(message), _text(endpoint), _text(route), _text(operation))
        self.facts, self.surface, self.project, self.surface_from, first_line, row_surface = _read_text(
            self.status, code, message, endpoint, route, operation)
        object_id = signal.object_id
        if type(object_id) is str and len(object_id) == 36 and _CANONICAL_GUID.fullmatch(object_id):
            self.object_id: str | None = object_id  # already what normalize_object_id makes of it
        else:
            self.object_id = _object_id(object_id if object_id is None or type(object_id) is str else str(object_id))
        auth = signal.auth
        # Inline fast path of _auth(): a signal's auth is almost always already one of the two.
        if auth is None:
            self.auth = ENTRA if self.object_id else None
        else:
            self.auth = auth if type(auth) is str and auth in _AUTHS else _auth(auth, self.object_id)
        self.lines: list[str] = [first_line]
        self.ambiguous = ""  # why the surface is only what the row suggests, when the row cannot tell
        self.doubts: list[str] = []  # text and evidence that disagree: each lowers the confidence
        self.scope_broader = False  # the narrowest known scope is wider than the call needs
        kind = self.resource.kind if self.resource is not None else None
        self.kind = kind.lower() if type(kind) is str else ""
        if self.kind:
            self._read_kind(cast(str, kind), route, operation)
        if row_surface is not None and row_surface != self.surface and self.surface is not None:
            self._compare_row(row_surface)

    def _read_kind(self, kind: str, route: str | None, operation: str | None) -> None:
        """What the account kind adds: a classic OpenAI account serves only /openai, a single-service account (Speech,
        FormRecognizer, ...) only its own surface; a multi-service kind serves every surface, so there the row's
        OpenAI-looking names decide nothing."""
        single = endpoints.KIND_SURFACES.get(self.kind)
        if single is not None:
            if self.surface is None:
                self.surface, self.surface_from = single, f"resource kind {kind}"
        elif self.surface == OPENAI and self.surface_from in endpoints.ROW_HINTS:
            from_api_name = self.surface_from == endpoints.ROW_API_NAME
            named = f"apiName {route!r}" if from_api_name else f"OperationName {operation!r}"
            self.ambiguous = (f"The log row does not say which surface was called: the account is of kind {kind}, "
                              f"which serves /openai, /models and /api/projects, and its {named} fits more than "
                              "one. The narrowest role is named; the request URL (e.g. Application Insights "
                              "AppDependencies) or the error text decides, and /models calls need Cognitive "
                              "Services User instead")

    def _compare_row(self, row_surface: str) -> None:
        """The surface was read from the call or the text, and the row's own names say another one: a
        disagreement, unless the row's names are the OpenAI ones on an account that serves every surface."""
        if row_surface != OPENAI or self.kind == "openai":
            self.doubts.append(f"Text and evidence disagree: the call points at {fixes.surface_text(self.surface)} "
                               f"({self.surface_from}) but the log row names {fixes.surface_text(row_surface)}")


_TextRead = tuple[messages.TextFacts, str | None, str | None, str, str, str | None]


@lru_cache(maxsize=8192)
def _read_text(
    status: int, code: str | None, message: str | None, endpoint: str | None, route: str | None,
    operation: str | None,
) -> _TextRead:
    """The per-text part of a case (the same for every caller hitting the same error on the same route), with the
    surface the log row's own names suggest (to compare with the surface chosen). A text that names ids is read
    through its shape (the text with its ids masked, shared.core.text_ids), which texts naming other ids share."""
    if message:
        shape, ids = text_ids.mask(message)
        if ids:
            read = _read_shape(status, code, shape, endpoint, route, operation, tuple([p for p, _ in ids]))
            if read is not None:
                # A reading of 6 is the whole text read (no id reaches what the shape's reading copies).
                return read if len(read) == 6 else _with_ids(status, read, ids)
    return _read_exact(status, code, message, endpoint, route, operation)


def _read_exact(
    status: int, code: str | None, message: str | None, endpoint: str | None, route: str | None,
    operation: str | None,
) -> _TextRead:
    facts = messages.analyze(status, code, message)
    surface, project, surface_from, row_surface = _surface_of(facts, endpoint, route, operation)
    return facts, surface, project, surface_from, _describe_failure(status, facts), row_surface


def _surface_of(facts: messages.TextFacts, endpoint: str | None, route: str | None, operation: str | None
                ) -> tuple[str | None, str | None, str, str | None]:
    hint_route = facts.route.split(" ", 1)[1] if facts.route else None
    surface, project, surface_from = endpoints.detect(endpoint, route, operation, facts.data_action, hint_route)
    row_surface = endpoints.row_hint(route, operation)[0] if surface_from not in endpoints.ROW_HINTS else surface
    return surface, project, surface_from, row_surface


# What the analysis copies out of a text without deciding anything from it: ids masked there are put back.
_COPIED_FIELDS = ("code", "message", "principal", "audience", "token_tenant", "dependency_host")
# What the analysis decides from, or what decides the surface: a shape with a placeholder there is read exactly.
_DECIDING_FIELDS = ("phrase", "detail", "data_action", "route")
# The slots' own descriptors: they set a frozen dataclass's fields without its __setattr__, for a copy.
_FACT_SLOT = {name: vars(messages.TextFacts)[name] for name in messages.TextFacts.__slots__}
_FACT_SLOTS = tuple(_FACT_SLOT.values())
# A shape's reading: the shape's own text read when no id reaches what it copies (every text of the shape reads
# the same), else (facts, surface, project, surface_from, row_surface, the fields ids go back into, and the first
# evidence line's head and tail around the message when ids reach the message alone).
_ShapeRead = tuple[messages.TextFacts, str | None, str | None, str, str | None, tuple[str, ...],
                   tuple[str, str] | None]


@lru_cache(maxsize=4096)
def _read_shape(
    status: int, code: str | None, shape: str, endpoint: str | None, route: str | None, operation: str | None,
    placeholders: tuple[str, ...],
) -> _ShapeRead | _TextRead | None:
    """The per-text part of a case for every text of this shape, with the fields the ids go back into (or, when no
    id reaches any of them, the reading every text of the shape gets); None when an id's placeholder reached
    something the diagnosis decides from (the text is then read as it is)."""
    facts = messages.analyze_uncut(status, code, shape, messages.DISPLAY + text_ids.MAX_ID_LENGTH)
    ids = tuple([(p, p) for p in placeholders])
    for name in _DECIDING_FIELDS:
        if (value := getattr(facts, name)) and text_ids.has_placeholder(value, ids):
            return None
    copied = []
    for name in _COPIED_FIELDS:
        value = getattr(facts, name)
        if not value:
            continue
        if name != "message" and text_ids.has_piece_of_guid_placeholder(value, ids):
            return None  # a capture that cut an id in two: its halves cannot be put back
        if text_ids.has_placeholder(value, ids):
            copied.append(name)
    surface, project, surface_from, row_surface = _surface_of(facts, endpoint, route, operation)
    read = facts, surface, project, surface_from, row_surface, tuple(copied), None
    if not copied:
        return _with_ids(status, read, ())
    if copied == ["message"]:
        around = _describe(status, facts.code, "\0", facts.phrase).split("\0")
        if len(around) == 2:
            return facts, surface, project, surface_from, row_surface, ("message",), (around[0], around[1])
    return read


def _with_ids(status: int, read: _ShapeRead, ids: text_ids.Ids) -> _TextRead:
    """A shape's reading with this text's ids put back, and its message cut where analyze cuts it. The facts are
    copied only when an id went into a field the rules read: `code` and `message` are read for the first evidence
    line alone, which is written here from the text's own."""
    shape_facts, surface, project, surface_from, row_surface, copied, line = read
    message = shape_facts.message
    if line is not None:  # ids in the message alone: the line around it is the shape's
        message = text_ids.unmask(message, ids)  # type: ignore[arg-type]
        if len(message) > messages.DISPLAY:
            message = message[:messages.DISPLAY]
        return shape_facts, surface, project, surface_from, line[0] + message + line[1], row_surface
    code = shape_facts.code
    if "code" in copied:
        code = text_ids.unmask(code, ids)  # type: ignore[arg-type]
    if "message" in copied:
        message = text_ids.unmask(message, ids)  # type: ignore[arg-type]
    if message is not None and len(message) > messages.DISPLAY:
        message = message[:messages.DISPLAY]
    facts = shape_facts
    if copied and (len(copied) > 2 or copied[-1] not in _LINE_FIELDS):
        facts = object.__new__(messages.TextFacts)
        for slot in _FACT_SLOTS:
            slot.__set__(facts, slot.__get__(shape_facts))
        for name in copied:
            _FACT_SLOT[name].__set__(facts, text_ids.unmask(getattr(shape_facts, name), ids))
        _FACT_SLOT["message"].__set__(facts, message)
    first_line = _describe(status, code, message, shape_facts.phrase)
    return facts, surface, project, surface_from, first_line, row_surface


_LINE_FIELDS = frozenset({"code", "message"})  # what only the first evidence line reads (in _COPIED_FIELDS order)


def _diagnose(
    signal: FailureSignal, evidence: Evidence | None, now: datetime | None, window: timedelta
) -> Diagnosis:
    case = _Case(signal, evidence)
    facts = case.facts
    if case.resource is not None and (cause := _settings_override(case)):
        return _plain(case, cause, HIGH)
    endpoint = case.signal.endpoint
    if facts.kind in _HOST_REFINED and (where := _wrong_service(endpoint, case.auth) if type(endpoint) is str
                                        else endpoints.wrong_service(endpoint, case.auth)):
        case.lines.append(f"The endpoint {endpoints.host_and_path(case.signal.endpoint or '')[0]} is not the "
                          "resource's own: " + causes.WRONG_ENDPOINTS[where])
        return _plain(case, "wrong_endpoint", MEDIUM if facts.kind == messages.EMPTY else HIGH, where=where)
    if facts.kind == messages.DEPENDENCY_ROLE and not facts.strong and case.resource is not None and (
            _refuses_public(case.resource)):
        case.lines.append("The account itself refuses public traffic: " + _network_settings(case.resource)
                          + "; its dependencies are most likely locked down too, and their firewalls refuse it")
        return _plain(case, "downstream_network_denied", MEDIUM)
    if facts.kind == messages.PERMISSION and facts.detail == "hosted_agent":
        return _plain(case, "other_principal_denied", HIGH, **_hosted_agent_facts(case))
    if facts.kind in _TEXT_CAUSES:
        cause = _TEXT_CAUSES[facts.kind]
        confidence = HIGH if facts.strong else MEDIUM
        if cause == "network_denied" and not facts.strong and _refuses_public(case.resource):
            confidence = HIGH
        if cause == "token_invalid_or_expired" and facts.phrase == messages.GENERIC_401_PHRASE:
            confidence = MEDIUM  # the generic message also covers a wrong audience
        if case.resource is not None and (doubt := _settings_disagree(cause, case.resource)):
            case.lines.append(doubt)
            confidence = MEDIUM
        return _plain(case, cause, confidence)
    if facts.kind == messages.PERMISSION or (
        facts.kind == messages.EMPTY and case.status in _ROLE_STATUSES and case.auth == ENTRA and case.object_id
    ):
        return _role_path(case, now, window)
    return _fallback(case)


def _settings_override(case: _Case) -> str | None:
    resource, kind = case.resource, case.facts.kind
    if resource is None or case.status not in _ROLE_STATUSES:
        return None
    if case.auth == KEY and resource.disable_local_auth and kind not in _NOT_ABOUT_THE_KEY:
        case.lines.append("The resource has disableLocalAuth=true and the caller sent a key")
        return "local_auth_disabled"
    if case.status == 403 and _refuses_public(resource) and kind in (messages.EMPTY, messages.OTHER,
                                                                      messages.NETWORK):
        case.lines.append("The resource refuses public traffic: " + _network_settings(resource))
        return "network_denied"
    return None


def _settings_disagree(cause: str, resource: ResourceEvidence) -> str | None:
    """Why the account's settings contradict what the text says, when they do (settings unknown: no claim)."""
    if cause == "local_auth_disabled" and resource.disable_local_auth is False:
        return ("Text and evidence disagree: the error says key authentication is disabled, but the account has "
                "disableLocalAuth=false (changed since, or the call reached another resource)")
    if cause == "network_denied" and (resource.public_network_access or "").lower() == "enabled" and (
            (resource.network_default_action or "").lower() == "allow"):
        return ("Text and evidence disagree: the error says network rules denied the call, but the account allows "
                "public traffic (publicNetworkAccess=Enabled, defaultAction=Allow; changed since, or the call "
                "reached another resource)")
    return None


def _fallback(case: _Case) -> Diagnosis:
    status, kind = case.status, case.facts.kind
    if kind == messages.CONTROL_PLANE:
        case.lines.append("This is an Azure Resource Manager (control-plane) authorization failure, not an "
                          "inference data-plane one; a data role would not fix it")
        return _plain(case, "unknown", MEDIUM, control_plane=True)
    if status == 404:
        return _plain(case, "endpoint_or_deployment_not_found", MEDIUM)
    if status == 429 or status >= 500:
        subcause = "throttled" if status == 429 else "service_error"
        case.lines.append(f"Sub-cause: {subcause}")
        return _plain(case, "blocked_or_other", MEDIUM, service_status=status, subcause=subcause)
    if kind == messages.EMPTY and status == 401 and case.auth == KEY:
        case.lines.append("No Entra object id: a key (or anonymous) caller; without the body the key cannot be "
                          "told apart from a missing one")
        return _plain(case, "invalid_api_key", LOW)
    if kind == messages.EMPTY and case.auth == ENTRA and not case.object_id and status in _ROLE_STATUSES:
        case.lines.append("Entra caller without an object id: the token may not have been accepted")
    return _plain(case, "unknown", LOW)


# ---- role causes --------------------------------------------------------------------------------------------


class _Held:
    """The caller's assignments that apply at the target, sorted by what they grant for the call's surface."""

    __slots__ = ("granting", "other_data", "control", "custom")

    def __init__(self) -> None:
        self.granting: list[tuple[RoleAssignmentEvidence, Role]] = []
        self.other_data: list[tuple[RoleAssignmentEvidence, Role]] = []
        self.control: list[tuple[RoleAssignmentEvidence, Role]] = []
        self.custom: list[RoleAssignmentEvidence] = []


def _needed_action(surface: str | None, named: str | None) -> str | None:
    """The data action the call needed: the one the error names when it belongs to the call's surface, else the
    surface's typical one; None when the surface is unknown."""
    if surface is None:
        return None
    if named and surfaces.of_data_action(named) == surface:
        return named
    return surfaces.SURFACES[surface].data_action


@lru_cache(maxsize=1024)
def _role_for(surface: str | None, named: str | None) -> tuple[str | None, Role | None]:
    """The data action the call needed and the least-privilege role that grants it (per surface and named action)."""
    needed = _needed_action(surface, named)
    return needed, least_privilege_for(surface, needed) if surface else None


def _role_path(case: _Case, now: datetime | None, window: timedelta) -> Diagnosis:
    surface = case.surface
    needed, role = _role_for(surface, case.facts.data_action)
    scope = _target_scope(case)
    assignments = case.evidence.assignments if case.evidence is not None else None
    strong_text = case.facts.kind == messages.PERMISSION
    if not strong_text:
        case.lines.append("No error text: the service logged the caller's object id, so it accepted the token and "
                          "the request failed authorization")
    elif case.auth == KEY:
        case.lines.append("The signal says key auth, but the service evaluated an Entra principal: the client is "
                          "sending a token")
    if surface:
        case.lines.append(f"Surface: {fixes.surface_text(surface)}, from the {case.surface_from}")
    else:
        case.lines.append("Surface unknown: no endpoint route, operation or data action to tell it")
    if case.ambiguous:
        case.lines.append(case.ambiguous)
    if strong_text and (refused := _refused_other(case)) is not None:
        return _other_principal(case, refused, role, scope)

    if assignments is None:
        case.lines.append("Role assignments were not looked up: diagnosed from the failure alone")
        case.lines.extend(case.doubts)
        return _role_fix(case, "missing_data_role", MEDIUM if strong_text else LOW, role, scope, looked_up=False)

    held = _sort_assignments(case, assignments, scope, needed)
    confidence = _role_confidence(case, strong_text)
    if held.granting:
        return _granting(case, held, role, scope, now, window, confidence)
    if held.other_data and surface is None:
        case.lines.append("Holds data roles for some surfaces only (" + ", ".join(_names(held.other_data))
                          + "); without the surface it is unknown whether they cover this call")
        return _role_fix(case, "missing_data_role", LOW, role, scope, looked_up=True)
    if held.other_data:
        names = _names(held.other_data)
        for assignment, found in held.other_data:
            case.lines.append(f"{found.name} at {assignment.scope} grants data access to {_data_text(found)} only, "
                              f"not {needed}")
        return _role_fix(case, "wrong_role_for_surface", confidence, role, scope, held_names=names)
    if held.control and not held.custom:
        case.lines.append("Held roles grant no data actions: " + ", ".join(_names(held.control)))
        return _role_fix(case, "control_plane_role_only", confidence, role, scope, held_names=_names(held.control))
    if held.custom:
        case.lines.append("Holds roles whose definitions could not be read (custom, or unknown to the catalogue): "
                          + ", ".join(guid_of(a.role_definition_id) for a in held.custom)
                          + "; their data actions are unknown, so nothing is concluded from them")
        return _role_fix(case, "missing_data_role", MEDIUM, role, scope, looked_up=True)
    case.lines.append("No role assignment applies to the caller at this scope")
    return _role_fix(case, "missing_data_role", confidence, role, scope, looked_up=True)


def _refused_other(case: _Case) -> str | None:
    """The principal the error names when it is not the logged caller (the safety invariant: a role is recommended
    only to the principal that was refused, and only when that is the caller). A GUID is compared with the caller's
    object id; a user name with the caller's name from the evidence (an app's identity has none, so an app logged
    as the caller of a call refused for a user is another principal). A redaction names nobody."""
    named, caller = case.facts.principal, case.object_id
    if not named or not caller:
        return None
    if messages.is_guid(named):
        return named.lower() if named.lower() != caller else None
    if messages.is_user_name(named):
        name = case.evidence.principal_name if case.evidence is not None else None
        return None if isinstance(name, str) and name.strip().casefold() == named.casefold() else named
    return None


def _other_principal(case: _Case, refused: str, role: Role | None, scope: str | None) -> Diagnosis:
    """The error names another principal than the caller: say so, name what that principal needs, never a role
    for the caller."""
    user = messages.is_user_name(refused)
    case.lines.append(f"The error names {'user' if user else 'principal'} {refused}, but the logged caller is "
                      f"{case.object_id}: the refused identity is not the caller, so nothing is recommended for the "
                      "caller")
    record = causes.CAUSES["other_principal_denied"]
    needs = role.name if role is not None else f"a role with the data action {case.facts.data_action or 'it lacks'}"
    commands: tuple[str, ...] = ()
    if role is not None:
        if user:
            assignee, principal_type = f'"$(az ad user show --id {refused} --query id -o tsv)"', "User"
        else:
            assignee, principal_type = refused, DEFAULT_PRINCIPAL_TYPE
            case.lines.append(f"Principal type of {refused} not known: the command assumes {DEFAULT_PRINCIPAL_TYPE}")
        commands = (fixes.other_role_command(assignee, role.guid, scope or "<account-resource-id>", principal_type),)
    on = fixes.where(scope, case.surface).removeprefix("on ").removeprefix("at scope ")
    facts = {"who": f"{'user' if user else 'principal'} {refused}", "needs": needs, "on": on,
             "commands": commands, "doc": fixes.role_doc(case.surface)}
    confidence = HIGH if not user or _principal_type(case) == ("ServicePrincipal", False) else MEDIUM
    return _finish(case, record, confidence, _summarize(record)(**facts), steps=_build_steps(record)(**facts))


def _role_confidence(case: _Case, strong_text: bool) -> str:
    """High on a PermissionDenied text, or from the evidence alone (object id logged, every evidence read done,
    surface known); medium when the surface is ambiguous or text and evidence disagree."""
    if strong_text:
        confidence = HIGH
    elif case.resource is None:
        case.lines.append("The account's settings were not read: without every evidence read, a failure without "
                          "text is not diagnosed with high confidence")
        confidence = MEDIUM
    else:
        confidence = HIGH if case.object_id and case.surface else MEDIUM
    if case.doubts:
        case.lines.extend(case.doubts)
        confidence = MEDIUM
    if case.ambiguous or case.scope_broader:
        confidence = MEDIUM  # nothing broader than needed is granted without an engineer
    if confidence == HIGH and not strong_text:
        case.lines.append("Every evidence read succeeded and the surface is known: the evidence decides")
    return confidence


def _granting(
    case: _Case,
    held: _Held,
    role: Role | None,
    scope: str | None,
    now: datetime | None,
    window: timedelta,
    confidence: str,
) -> Diagnosis:
    direct = [(a, r) for a, r in held.granting if not a.via_group]
    if direct:
        return _age_verdict(case, direct, now, window, confidence, "direct")
    group_role = held.granting[0][1]
    principal_type, assumed = _principal_type(case)
    for assignment, found in held.granting:
        case.lines.append(f"{found.name} is held only through a group (assignment at {assignment.scope})")
    if principal_type == "ServicePrincipal":
        if assumed:
            case.lines.append("Principal type unknown; assumed a managed identity (ServicePrincipal)")
        fix_role = role or (group_role if group_role.guid in GRANTABLE else None)
        return _role_fix(case, "group_membership_cache", MEDIUM if assumed else confidence, fix_role, scope,
                         held_names=[group_role.name])
    return _age_verdict(case, held.granting, now, window, confidence, "through a group")


def _age_verdict(
    case: _Case,
    granting: list[tuple[RoleAssignmentEvidence, Role]],
    now: datetime | None,
    window: timedelta,
    confidence: str,
    how: str,
) -> Diagnosis:
    young: list[tuple[RoleAssignmentEvidence, Role, timedelta]] = []
    settled = []
    for assignment, found in granting:
        age = _age(assignment.created_on, now)
        if age is not None and age < window:
            young.append((assignment, found, age))
        else:
            settled.append((assignment, found, age))
        case.lines.append(f"Holds {found.name} at {assignment.scope} ({how}, {_age_text(age, assignment)})")
    if young and not settled:
        assignment, found, age = min(young, key=lambda item: item[2])
        pending = causes.CAUSES["propagation_pending"]
        return _finish(case, pending, confidence,
                       _summarize(pending)(held_role=found.name, age=max(age, timedelta(0)), window=window),
                       steps=_STEPS_OF[pending.id])
    if now is None and any(a.created_on is not None for a, _, _ in settled):
        case.lines.append("No current time given: assignment ages were not judged")
        confidence = MEDIUM
    present = causes.CAUSES["role_present_still_denied"]
    return _finish(case, present, confidence, _summarize(present)(held_role=settled[0][1].name),
                   steps=_STEPS_OF[present.id])


def _role_fix(
    case: _Case,
    cause: str,
    confidence: str,
    role: Role | None,
    scope: str | None,
    *,
    looked_up: bool = True,
    held_names: list[str] | None = None,
) -> Diagnosis:
    record = causes.CAUSES[cause]
    summary = _role_summary(cause, role, case.surface, scope, tuple(held_names) if held_names else (), looked_up)
    if role is None:  # no role to name: the steps are those of an unrecognised failure
        return _finish(case, record, LOW, summary, steps=_STEPS_OF[_UNKNOWN.id])
    principal_type, assumed = _principal_type(case)
    if assumed:
        case.lines.append(f"Principal type not known: the command assumes {DEFAULT_PRINCIPAL_TYPE}")
    object_id = case.object_id or messages.guid_in(case.facts.principal)
    if object_id and not case.object_id:
        case.lines.append("Caller object id taken from the error text")
    elif not object_id:
        case.lines.append("Caller object id unknown: fill in <caller-object-id>")
    if scope is None:
        case.lines.append("Resource id unknown: fill in <account-resource-id>")
    command = fixes.role_command(object_id, principal_type, role.guid, scope)
    return _finish(case, record, confidence, summary, steps=_role_steps(cause, role, case.surface, command),
                   role=role, scope=scope, command=command)


# The role causes' wording, remembered per what it is built from: the role is a key through its identity (a
# catalogue role, or an evidence definition the entry keeps alive, so no other object takes its id), as hashing
# a role hashes every action it lists.
_role_wordings: dict[tuple, tuple[object, str]] = {}
_ROLE_STEPS_MAX = _ROLE_SUMMARIES_MAX = 4096
_COMMAND = "\0command\0"  # stands for the command in steps built once per cause, role and surface


def _role_summary(cause: str, role: Role | None, surface: str | None, scope: str | None,
                  held: tuple[str, ...], looked_up: bool) -> str:
    key = (cause, id(role), surface, scope, held, looked_up)
    found = _role_wordings.get(key)
    if found is not None and found[0] is role:
        return found[1]
    summary = _summarize(causes.CAUSES[cause])(role=role, surface=surface, scope=scope, held_roles=list(held),
                                               looked_up=looked_up)
    if len(_role_wordings) >= _ROLE_SUMMARIES_MAX:
        _role_wordings.clear()
    _role_wordings[key] = (role, summary)
    return summary


_role_step_templates: dict[tuple, tuple[object, causes.Steps]] = {}


def _role_steps(cause: str, role: Role, surface: str | None, command: str) -> causes.Steps:
    """A role cause's steps for this command: built once per cause, role and surface with a stand-in for the
    command, which goes into the steps that quote it (the builders only quote it)."""
    key = (cause, id(role), surface)
    found = _role_step_templates.get(key)
    if found is None or found[0] is not role:
        if len(_role_step_templates) >= _ROLE_STEPS_MAX:
            _role_step_templates.clear()
        found = _role_step_templates[key] = (role, _build_steps(causes.CAUSES[cause])(
            command=_COMMAND, surface=surface, role=role))
    return tuple([FixStep(step.text.replace(_COMMAND, command), step.doc_url) if _COMMAND in step.text else step
                  for step in found[1]])


# Built once: subscripting Callable makes a new alias object on every call, on the hot path.
_SummaryBuilder = Callable[..., str]
_StepsBuilder = Callable[..., causes.Steps]


def _summarize(record: causes.Cause) -> Callable[..., str]:
    """The summary builder of a cause whose summary depends on what was found (the role causes)."""
    return cast(_SummaryBuilder, record.summary)


def _build_steps(record: causes.Cause) -> Callable[..., causes.Steps]:
    return cast(_StepsBuilder, record.steps)


# Fixed steps by cause id, for the causes whose steps depend on nothing found.
_STEPS_OF = {c.id: c.steps_for() for c in causes.CAUSES.values() if isinstance(c.steps, tuple)}


# ---- building the Diagnosis ---------------------------------------------------------------------------------


def _plain(case: _Case, cause: str, confidence: str, **found: object) -> Diagnosis:
    """A cause without a role: its own evidence lines, then the catalogue wording filled with the case's facts."""
    record = causes.CAUSES[cause]
    facts_of = _PLAIN_FACTS.get(cause)
    if facts_of is not None:
        found = {**facts_of(case), **found}  # what the rule passed wins over what the text says
    summary, steps = record.summary, record.steps
    if type(summary) is not str or type(steps) is not tuple:
        try:
            summary, steps = _plain_wording(cause, tuple(found.items()))
        except TypeError:  # a fact that cannot be a key (none is, today): worded without the cache
            summary, steps = _plain_wording.__wrapped__(cause, tuple(found.items()))
    return _finish(case, record, confidence, summary, steps=steps)


@lru_cache(maxsize=4096)
def _plain_wording(cause: str, found: tuple[tuple[str, object], ...]) -> tuple[str, causes.Steps]:
    """A cause's summary and steps filled with what was found (pure: the same facts give the same wording, and
    many signals share them), remembered per cause and facts."""
    record = causes.CAUSES[cause]
    facts = dict(found)
    summary, steps = record.summary, record.steps
    return (summary if type(summary) is str else summary(**facts),  # type: ignore[operator]
            steps if type(steps) is tuple else steps(**facts))  # type: ignore[operator]


# What each cause without a role reads from the case for its wording, and the evidence lines it adds.


def _audience_facts(case: _Case) -> dict:
    return {"audience": case.facts.audience, "token_scope": _token_scope(case)}


def _token_facts(case: _Case) -> dict:
    key_as_bearer = case.auth == KEY
    if key_as_bearer:
        case.lines.append("The caller uses a key, but the service read a bearer token: the key went into the "
                          "Authorization header")
    return {"key_as_bearer": key_as_bearer, "token_scope": _token_scope(case)}


def _tenant_facts(case: _Case) -> dict:
    if case.resource is not None and case.resource.tenant_id:
        case.lines.append(f"The resource's tenant is {case.resource.tenant_id}")
    return {"token_tenant": case.facts.token_tenant}


def _invalid_key_facts(case: _Case) -> dict:
    if case.facts.wrong_endpoint_possible:
        case.lines.append("The same message is returned for a wrong endpoint (another resource or region)")
    return _NO_FACTS


def _network_facts(case: _Case) -> dict:
    if case.resource is not None and _refuses_public(case.resource):
        line = "The resource refuses public traffic: " + _network_settings(case.resource)
        if line not in case.lines:
            case.lines.append(line)
    return _NO_FACTS


def _blocked_facts(case: _Case) -> dict:
    subcause = case.facts.detail
    if subcause:
        case.lines.append(f"Sub-cause: {subcause}")
        return {"phrase": case.facts.phrase, "subcause": subcause}
    return {"phrase": case.facts.phrase}


_NAMED_RESOURCE = re.compile(r"resource principal named\s+(\S+?)\s+was not found", re.IGNORECASE)


def _sign_in_facts(case: _Case) -> dict:
    problem = case.facts.detail
    scope = _token_scope(case)
    case.lines.append(f"No token was issued ({problem}): the failure happened before the request reached the service")
    named = _NAMED_RESOURCE.search(case.signal.message or "") if problem == "AADSTS500011" else None
    if named and "cognitiveservices" not in named.group(1).lower() and "ai.azure.com" not in named.group(1).lower():
        case.lines.append(f"The token was asked for {named.group(1)}, not an Azure AI audience: calls to the service "
                          f"need {scope}; an app's own API (api://...) must be registered in the tenant it signs in to")
    return {"problem": problem, "token_scope": scope}


def _wrong_endpoint_facts(case: _Case) -> dict:
    return {"where": case.facts.detail}


def _account_facts(case: _Case) -> dict:
    written = _text(case.signal.resource_id) or (case.resource.resource_id if case.resource else None)
    target = resource_ids.parse(written)
    return {"account": target.account_name if target else None,
            "resource_group": target.resource_group if target else None}


def _dependency_facts(case: _Case) -> dict:
    """On your data and the like: the account's own identity was refused by a dependency; the roles it needs there."""
    facts = case.facts
    found = _account_facts(case)
    service, host = facts.detail, facts.dependency_host
    label = causes.DEPENDENCY_LABELS.get(service or "", "a dependency")
    case.lines.append(f"{label} refused the account's own managed identity"
                      + (f" ({host})" if host else "") + ": the call to it is made by the account, not the caller")
    if not facts.strong:
        case.lines.append("The same message is returned when the dependency's network rules block the account; "
                          "check its firewall if the roles are in place")
    assignee = (case.resource.identity_principal_id if case.resource is not None and
                case.resource.identity_principal_id else fixes.account_identity(found["account"],
                                                                                found["resource_group"]))
    needs, scope = _dependency_roles(service, host)
    commands = tuple(fixes.other_role_command(assignee, role.guid, scope) for role in needs)
    return {"who": f"the managed identity of account {found['account'] or '<account>'}",
            "needs": " and ".join(role.name for role in needs), "on": f"the {label} resource",
            "commands": commands, "doc": fixes.DOC_ON_YOUR_DATA, "service": service, **found}


def _dependency_roles(service: str | None, host: str | None) -> tuple[tuple[Role, ...], str]:
    name = host.split(".", 1)[0] if host else None
    if service == "storage":
        scope = f'"$(az storage account show --name {name or "<storage-account>"} --query id -o tsv)"'
        return (_ROLE_BY_NAME["Storage Blob Data Contributor"],), scope
    scope = (f'"$(az search service show --name {name or "<search-service>"} --resource-group '
             '<search-resource-group> --query id -o tsv)"')
    return (_ROLE_BY_NAME["Search Index Data Reader"], _ROLE_BY_NAME["Search Service Contributor"]), scope


def _hosted_agent_facts(case: _Case) -> dict:
    """A hosted agent's runtime calls the account as the project's managed identity, whoever deployed or called it."""
    found = _account_facts(case)
    project = case.project or resource_ids.project_name(_text(case.signal.resource_id) or "")
    case.lines.append("The error comes from a hosted agent's runtime, which calls the account with the project's "
                      "managed identity: that identity was refused, not the caller")
    written = _text(case.signal.resource_id)
    parsed = resource_ids.parse(written) if written else None
    scope = parsed.account().text if parsed is not None else "<account-resource-id>"
    assignee = fixes.project_identity(found["account"], found["resource_group"], project)
    return {"who": "the project's managed identity", "needs": roles.FOUNDRY_USER.name,
            "on": f"account {parsed.account_name}" if parsed is not None else "the account",
            "commands": (fixes.other_role_command(assignee, roles.FOUNDRY_USER.guid, scope),),
            "doc": fixes.DOC_FOUNDRY_RBAC}


def _downstream_facts(case: _Case) -> dict:
    found = _account_facts(case)
    case.lines.append(f"{causes.DEPENDENCY_LABELS.get(case.facts.detail or '', 'A dependency')} refused the "
                      "account's own call on network grounds")
    return {"service": case.facts.detail, **found}


_NO_FACTS: dict = {}
_PLAIN_FACTS = {
    "token_audience_invalid": _audience_facts,
    "token_invalid_or_expired": _token_facts,
    "tenant_mismatch": _tenant_facts,
    "invalid_api_key": _invalid_key_facts,
    "network_denied": _network_facts,
    "blocked_or_other": _blocked_facts,
    "token_acquisition_failed": _sign_in_facts,
    "wrong_endpoint": _wrong_endpoint_facts,
    "other_principal_denied": _dependency_facts,
    "identity_not_enabled": _account_facts,
    "downstream_network_denied": _downstream_facts,
}


def _finish(
    case: _Case,
    cause: causes.Cause,
    confidence: str,
    summary: str,
    *,
    steps: tuple = (),
    role: Role | None = None,
    scope: str | None = None,
    command: str | None = None,
) -> Diagnosis:
    # A role is named only when it is one of the three grantable data roles and the cause is one a role fixes.
    if role is None or role.guid not in GRANTABLE or not cause.role_fixable:
        role, command = None, None
    if role is None:  # positional: keywords cost more on this path, which every diagnosis takes
        return Diagnosis.fast(cause.id, False, confidence, summary, None, None, None, case.surface, tuple(case.lines),
                              None, steps)
    return Diagnosis.fast(cause.id, True, confidence, summary, role.name, role.guid, scope, case.surface,
                          tuple(case.lines), command, steps)


# ---- per-shape templates --------------------------------------------------------------------------------------
# A text naming ids is diagnosed once per shape (its ids masked) and everything else the rules read, with
# placeholders for the text's ids and the caller; a signal of the same key gets that diagnosis with its own ids
# filled in instead of the rules run again. The rules only copy ids into what they write (the one comparison,
# the caller with the principal the text names, is in the key), so a filled template is the diagnosis itself.
# Each template is checked against the full path of the signal that built it; a key whose template differs, or
# whose text is read exactly rather than through its shape, is never templated.

# Callers the text does not name, digits only or with letters (no placeholder of text_ids holds an 8 or an e).
_NEW_CALLERS = ("88888888-8888-8888-8888-888888888888", "eeeeeeee-eeee-eeee-eeee-eeeeeeeeeeee")
_TEMPLATES_MAX = 4096
_NOT_TEMPLATED = object()  # a key whose signals take the full path


class _Templates:
    """The templates by key; `cache_clear` is the instance's own (the bench and the tests clear every module-level
    object that has one, and the class must not look like one)."""

    def __init__(self) -> None:
        self.enabled = True
        self.entries: dict[tuple, object] = {}
        self.cache_clear = self.entries.clear


_templates = _Templates()


def use_templates(enabled: bool) -> None:
    """Turn the per-shape templates on or off (off: every signal takes the full path; the tests compare both)."""
    _templates.enabled = enabled
    _templates.cache_clear()


class _Untemplated(Exception):
    """Something about the signal or its evidence the key cannot hold: the full path decides."""


def _from_template(signal: FailureSignal, evidence: Evidence | None, now: datetime | None, window: timedelta
                   ) -> Diagnosis | None:
    # Not remembered per text: in a flood of distinct callers and request ids no text comes again, and a cache
    # missed on every signal costs more than masking saves where one does.
    shape, ids = text_ids.mask(signal.message)  # type: ignore[arg-type]  # diagnose() checked it is a str
    if not ids:
        return None
    status, code, endpoint, route, operation = (
        signal.status, signal.code, signal.endpoint, signal.route, signal.operation)
    auth, resource_id, principal_type, object_id = (
        signal.auth, signal.resource_id, signal.principal_type, signal.object_id)
    if not (type(status) is int and type(code) in _STR_OR_NONE and type(endpoint) in _STR_OR_NONE
            and type(route) in _STR_OR_NONE and type(operation) in _STR_OR_NONE and type(auth) in _STR_OR_NONE
            and type(resource_id) in _STR_OR_NONE and type(principal_type) in _STR_OR_NONE
            and (now is None or type(now) is datetime) and type(window) is timedelta):
        return None
    placeholders, originals = zip(*ids, strict=True)  # one C call where two comprehensions were
    values = list(originals)
    caller: str | None = None
    if object_id is not None:
        if not (type(object_id) is str and len(object_id) == 36 and _CANONICAL_GUID.fullmatch(object_id)):
            return None
        named = values.count(object_id)
        if named > 1:
            return None
        if named:
            caller = placeholders[values.index(object_id)]
        else:
            caller = _NEW_CALLERS[object_id != object_id.upper()]
            values.append(object_id)
    if evidence is not None and (name := evidence.principal_name):
        folded = name.casefold() if type(name) is str else ""
        if not folded or any(value.casefold() in folded for value in values):
            return None  # the text's user may be the caller by name: a comparison the key does not hold
    if evidence is None:
        evidence_key = 0
    else:  # the same evidence object again (a batch's signals share theirs): its serial without the call
        seen = _evidence_seen.get(id(evidence))
        evidence_key = seen[1] if seen is not None and seen[0] is evidence else _evidence_key(evidence)
    key = (status, code, shape, endpoint, route, operation, auth, resource_id, principal_type, caller, placeholders,
           evidence_key, now, window)
    entries = _templates.entries
    template = entries.get(key)
    if template is None:
        if len(entries) >= _TEMPLATES_MAX:
            entries.clear()
        real = _diagnose(signal, evidence, now, window)
        entries[key] = _build_template(real, signal, evidence, now, window, shape, placeholders, caller, values)
        return real
    if template is _NOT_TEMPLATED:
        return None
    made: _Template = template  # type: ignore[assignment]
    if made.fold_check and len({value.lower() for value in values[:len(ids)]}) != made.fold_check:
        return None  # two ids alike but for their case: a comparison of folded ids the template cannot tell
    return made.fill(values)


# Evidence and resources are keyed by a serial number given to what the rules read from them: the same object
# again is found by its id (each held here, so no other object takes its id), an equal one by what it holds.
_serials = itertools.count(1)
_evidence_seen: dict[int, tuple[Evidence, int]] = {}
_evidence_serials: dict[tuple, int] = {}
_resources_seen: dict[int, tuple[ResourceEvidence, int]] = {}
_resource_serials: dict[ResourceEvidence, int] = {}


def _evidence_key(evidence: Evidence | None) -> int:
    """What the rules read from the evidence (not whose assignments they are: the caller is in the key)."""
    if evidence is None:
        return 0
    seen = _evidence_seen.get(id(evidence))
    if seen is not None and seen[0] is evidence:
        return seen[1]
    if type(evidence) is not Evidence or evidence.role_definitions:
        raise _Untemplated
    assignments = evidence.assignments
    rows: tuple | None = None
    if assignments is not None:
        if type(assignments) is not tuple:
            raise _Untemplated
        found = []
        for a in assignments:
            created = a.created_on if type(a) is RoleAssignmentEvidence else a
            if not (type(a) is RoleAssignmentEvidence and type(a.role_definition_id) in _STR_OR_NONE
                    and type(a.scope) in _STR_OR_NONE and type(a.principal_type) in _STR_OR_NONE
                    and type(a.via_group) is bool and (created is None or type(created) is datetime)):
                raise _Untemplated
            # The offset too: equal instants in other zones are written differently.
            found.append((a.role_definition_id, a.scope, a.principal_type, a.via_group, created,
                          created.utcoffset() if created is not None else None))
        rows = tuple(found)
    principal_type, principal_name, failed = evidence.principal_type, evidence.principal_name, evidence.failed
    if type(principal_type) not in _STR_OR_NONE or type(principal_name) not in _STR_OR_NONE or (
            type(failed) is not tuple):
        raise _Untemplated
    digest = (rows, _resource_key(evidence.resource), principal_type, principal_name, failed)
    serial = _evidence_serials.get(digest)
    if serial is None:
        if len(_evidence_serials) >= _TEMPLATES_MAX:
            _evidence_serials.clear()  # equal evidence seen later gets a new serial: new keys, never a wrong one
        serial = _evidence_serials[digest] = next(_serials)
    if len(_evidence_seen) >= _TEMPLATES_MAX:
        _evidence_seen.clear()
    _evidence_seen[id(evidence)] = (evidence, serial)
    return serial


_RESOURCE_TEXTS = ("resource_id", "kind", "endpoint", "custom_subdomain", "public_network_access",
                   "network_default_action", "tenant_id", "identity_type", "identity_principal_id")
_RESOURCE_LISTS = ("ip_rules", "virtual_network_rules", "projects")


def _resource_key(resource: ResourceEvidence | None) -> int:
    """The resource's serial, once its fields are known to be plain (equal only where the rules read alike)."""
    if resource is None:
        return 0
    seen = _resources_seen.get(id(resource))
    if seen is not None and seen[0] is resource:
        return seen[1]
    if type(resource) is not ResourceEvidence or not (
            all(type(getattr(resource, name)) in _STR_OR_NONE for name in _RESOURCE_TEXTS)
            and all(type(items := getattr(resource, name)) is tuple and all(type(item) is str for item in items)
                    for name in _RESOURCE_LISTS)
            and type(resource.disable_local_auth) in (bool, type(None)) and type(resource.private_endpoints) is int):
        raise _Untemplated
    serial = _resource_serials.get(resource)
    if serial is None:
        if len(_resource_serials) >= _TEMPLATES_MAX:
            _resource_serials.clear()
        serial = _resource_serials[resource] = next(_serials)
    if len(_resources_seen) >= _TEMPLATES_MAX:
        _resources_seen.clear()
    _resources_seen[id(resource)] = (resource, serial)
    return serial


_Pieces = tuple  # literal text, variables' indexes and cut ids' heads: ("at ", 0, " and ", 1, "... ", (2, 19), "")


class _Template:
    """A diagnosis with placeholders, and where they are: each text with placeholders cut into pieces (literal
    text, a variable's index, or (index, length) for the head of a cut id). A template with no placeholder anywhere
    is the diagnosis itself (a Diagnosis is immutable)."""

    __slots__ = ("made", "summary", "scope", "command", "lines", "steps", "fold_check", "constant")

    def __init__(self, made: Diagnosis, cut: Callable[[str], _Pieces | None], fold_check: int):
        self.made = made
        self.summary = cut(made.summary)
        self.scope = cut(made.scope) if made.scope is not None else None
        self.command = cut(made.fix_command) if made.fix_command is not None else None
        lines = tuple([(n, pieces) for n, line in enumerate(made.evidence) if (pieces := cut(line)) is not None])
        self.lines = lines or None  # (where, pieces) of the lines that hold a placeholder
        steps = tuple([(cut(step.text), cut(step.doc_url) if step.doc_url is not None else None)
                       for step in made.fix_steps])
        self.steps = steps if any(text is not None or doc is not None for text, doc in steps) else None
        self.fold_check = fold_check
        self.constant = (self.summary is None and self.scope is None and self.command is None and self.lines is None
                         and self.steps is None)

    def fill(self, values: list[str]) -> Diagnosis:
        made = self.made
        if self.constant:
            return made
        lines = made.evidence
        if self.lines is not None:
            filled = list(lines)
            for n, pieces in self.lines:
                filled[n] = _put(pieces, values)
            lines = tuple(filled)
        steps = made.fix_steps
        if self.steps is not None:
            steps = tuple([step if text is None and doc is None else FixStep(
                step.text if text is None else _put(text, values), step.doc_url if doc is None else _put(doc, values))
                for step, (text, doc) in zip(steps, self.steps, strict=True)])
        summary, scope, command = self.summary, self.scope, self.command
        return Diagnosis.fast(
            made.cause, made.role_fixable, made.confidence,
            made.summary if summary is None else _put(summary, values), made.role_name, made.role_id,
            made.scope if scope is None else _put(scope, values), made.surface, lines,
            made.fix_command if command is None else _put(command, values), steps)


def _put(pieces: _Pieces, values: list[str]) -> str:
    if len(pieces) == 3 and type(middle := pieces[1]) is int:  # one id: most texts name one
        return pieces[0] + values[middle] + pieces[2]
    return "".join([piece if type(piece) is str else values[piece] if type(piece) is int
                    else values[piece[0]][:piece[1]] for piece in pieces])


_CUT_ID_MIN = 8  # the shortest head of a cut id taken for one
_MESSAGE_END = " [matched: "  # what follows the message in the first evidence line (when a phrase matched)


def _split_cut_id(piece: str, variables: tuple[str | None, ...]) -> tuple:
    """The literal piece with the head of one variable, cut where the message ends, as (index, length); a head
    that two variables share is left as it is (the template then differs from the full path: not templated)."""
    for at in (piece.find(_MESSAGE_END), len(piece)):
        if at < _CUT_ID_MIN:
            continue
        heads = []
        for n, variable in enumerate(variables):
            if not variable:
                continue
            start = piece.find(variable[:_CUT_ID_MIN], max(0, at - len(variable) + 1), at)
            while 0 <= start:
                if variable.startswith(piece[start:at]):
                    heads.append((start, n))
                    break
                start = piece.find(variable[:_CUT_ID_MIN], start + 1, at)
        if len(heads) == 1:
            start, n = heads[0]
            return (piece[:start], (n, at - start), piece[at:])
    return (piece,)


def _build_template(real: Diagnosis, signal: FailureSignal, evidence: Evidence | None, now: datetime | None,
                    window: timedelta, shape: str, placeholders: tuple[str, ...], caller: str | None,
                    values: list[str]) -> object:
    """The key's template, or _NOT_TEMPLATED: when the text is read exactly (an id reaches what decides), when the
    shape does not mask to itself, when a placeholder lands where the template does not fill, or when the template
    filled with this signal's ids is not what the full path gave."""
    status, code, endpoint, route, operation = (
        signal.status, signal.code, signal.endpoint, signal.route, signal.operation)
    if _read_shape(status, code, shape, endpoint, route, operation, placeholders) is None:
        return _NOT_TEMPLATED
    again, again_ids = text_ids.mask(shape)
    variables = placeholders + ((caller,) if caller in _NEW_CALLERS else ())
    if again != shape or tuple([p for p, _ in again_ids]) != placeholders or (caller in _NEW_CALLERS
                                                                              and caller in shape):
        return _NOT_TEMPLATED
    masked = FailureSignal(status, code, shape, caller, signal.auth, endpoint, route, operation, signal.resource_id,
                           signal.principal_type)
    try:
        made = _diagnose(masked, evidence, now, window)
    except Exception:  # noqa: BLE001 - the full path words the error
        return _NOT_TEMPLATED
    # An id the message's cut (at messages.DISPLAY) goes through leaves the head of its placeholder at the end of
    # the message: a variable's head, where every id's own head differs from its placeholder's (so the check of
    # the filled template against the full path tells a head that stands for the id from text that is the same).
    cut_ids = all(value[:_CUT_ID_MIN] != variable[:_CUT_ID_MIN] for value, variable in zip(values, variables,
                                                                                            strict=False))

    def cut(text: str) -> _Pieces | None:
        """The text cut at each placeholder (none is a piece of another), None when it holds none."""
        pieces: list[str | int] = []
        done = 0
        while True:
            at, which = min(((found, n) for n, variable in enumerate(variables)
                             if (found := text.find(variable, done)) >= 0), default=(-1, -1))
            if at < 0:
                break
            pieces += [text[done:at], which]
            done = at + len(variables[which])
        pieces.append(text[done:])
        if cut_ids:
            pieces = [part for piece in pieces for part in (
                _split_cut_id(piece, variables) if type(piece) is str else (piece,))]
        return tuple(pieces) if len(pieces) > 1 else None

    for constant in (made.cause, made.confidence, made.role_name, made.role_id, made.surface):
        if constant is not None and cut(constant) is not None:
            return _NOT_TEMPLATED
    folded = {p.lower() for p in placeholders}
    template = _Template(made, cut, len(folded) if len(folded) != len(placeholders) or any(
        p != p.lower() for p in placeholders) else 0)
    if template.fill(values) != real:
        return _NOT_TEMPLATED
    return template


# ---- helpers ------------------------------------------------------------------------------------------------


def _int_or_zero(value: object) -> int:
    try:
        return int(value)  # type: ignore[call-overload]
    except (TypeError, ValueError, OverflowError):
        return 0


def _text(value: object) -> str | None:
    if value is None or type(value) is str:
        return value
    return str(value)


def _auth(auth: object, object_id: str | None) -> str | None:
    folded = auth.strip().lower() if isinstance(auth, str) else ""
    if folded in (ENTRA, KEY):
        return folded
    return ENTRA if object_id else None


def _describe_failure(status: int, facts: messages.TextFacts) -> str:
    return _describe(status, facts.code, facts.message, facts.phrase)


def _describe(status: int, code: str | None, message: str | None, phrase: str) -> str:
    head = f"HTTP {status}" + (f", code {code}" if code else "")
    if message:
        head += f": {message}"
    if phrase:
        head += f" [matched: {phrase}]"
    return head


def _refuses_public(resource: ResourceEvidence | None) -> bool:
    if resource is None:
        return False
    return (resource.public_network_access or "").lower() == "disabled" or (
        (resource.network_default_action or "").lower() == "deny"
    )


def _network_settings(resource: ResourceEvidence) -> str:
    parts = []
    if resource.public_network_access:
        parts.append(f"publicNetworkAccess={resource.public_network_access}")
    if resource.network_default_action:
        parts.append(f"defaultAction={resource.network_default_action}")
    parts.append(f"{len(resource.ip_rules)} IP rule(s), {len(resource.virtual_network_rules)} VNet rule(s), "
                 f"{resource.private_endpoints} private endpoint(s)")
    return ", ".join(parts)


def _token_scope(case: _Case) -> str:
    audience = (case.facts.audience or "").lower()
    if case.surface == PROJECT or ("ai.azure.com" in audience and "cognitiveservices" not in audience):
        return fixes.FOUNDRY_PROJECT_SCOPE
    return fixes.STANDARD_SCOPE


def _target_scope(case: _Case) -> str | None:
    resource_id = _text(case.signal.resource_id) or (case.resource.resource_id if case.resource else None)
    if not resource_id or not resource_id.strip():
        return None
    scope, note = _scope_for(resource_id, case.surface, case.project)
    if note:
        case.lines.append(note)
        case.scope_broader = scope is not None
    return scope


_WHITESPACE = re.compile(r"\s")


@lru_cache(maxsize=8192)
def _scope_for(resource_id: str, surface: str | None, project: str | None) -> tuple[str | None, str | None]:
    """The narrowest scope for the call, as the caller wrote the id, and an evidence line when it is not exact."""
    target = resource_ids.parse(resource_id)
    if target is None or _WHITESPACE.search(target.text):  # a command cannot carry a name with a blank in it
        return None, "The resource id is not a Cognitive Services account or project id: scope unknown"
    project = target.project_name or project
    if surface != PROJECT:
        return target.account().text, None
    if project:
        return target.project(project).text, None
    return target.account().text, ("Project name unknown: the narrowest known scope is the account, broader than "
                                    "the call needs; the request URL names the project")


def _sort_assignments(case: _Case, assignments: tuple, scope: str | None, needed: str | None) -> _Held:
    """Each applicable assignment by what its role's data actions grant: the needed data action (or, with the
    surface unknown, every surface), other data only, none. A role neither the catalogue nor the evidence's
    definitions know is unknown."""
    held = _Held()
    definitions = case.evidence.role_definitions if case.evidence is not None else ()
    for assignment in assignments:
        if not isinstance(assignment, RoleAssignmentEvidence):
            continue
        found = role_of(assignment.role_definition_id or "", definitions)
        if scope and not endpoints.covers(assignment.scope or "", scope):
            label = found.name if found else guid_of(assignment.role_definition_id or "")
            case.lines.append(f"Ignored {label} at {assignment.scope}: it does not cover {scope}")
            continue
        if found is None:
            held.custom.append(assignment)
        elif found.covers(needed) if needed is not None else found.data_surfaces == ALL_SURFACES:
            held.granting.append((assignment, found))
        elif found.data_actions:
            held.other_data.append((assignment, found))
        else:
            held.control.append((assignment, found))
    return held


def _data_text(role: Role) -> str:
    """What a role's data actions reach, for an evidence line."""
    if role.data_surfaces:
        return ", ".join(sorted(fixes.surface_text(s) for s in role.data_surfaces))
    shown = role.data_actions[:2]
    return ", ".join(shown) + (", ..." if len(role.data_actions) > len(shown) else "")


def _names(pairs: list[tuple[RoleAssignmentEvidence, Role]]) -> list[str]:
    return list(dict.fromkeys(found.name for _, found in pairs))


def _principal_type(case: _Case) -> tuple[str, bool]:
    """The caller's principal type for the command, and whether it was assumed."""
    candidates = [case.evidence.principal_type if case.evidence is not None else None, case.signal.principal_type]
    if case.evidence is not None and case.evidence.assignments:
        candidates += [a.principal_type for a in case.evidence.assignments
                       if isinstance(a, RoleAssignmentEvidence) and not a.via_group]
    for candidate in candidates:
        if isinstance(candidate, str) and (known := _PRINCIPAL_TYPES.get(candidate.strip().lower())):
            return known, False
    return DEFAULT_PRINCIPAL_TYPE, True


def _age(created_on: datetime | None, now: datetime | None) -> timedelta | None:
    if created_on is None or now is None:
        return None
    if (created_on.tzinfo is None) != (now.tzinfo is None):  # treat a naive time as UTC
        created_on = created_on.replace(tzinfo=UTC) if created_on.tzinfo is None else created_on
        now = now.replace(tzinfo=UTC) if now.tzinfo is None else now
    return now - created_on


def _age_text(age: timedelta | None, assignment: RoleAssignmentEvidence) -> str:
    if age is None:
        return "created " + (assignment.created_on.isoformat() if assignment.created_on else "at an unknown time")
    if age < timedelta(0):
        return "created in the future by the clock given"
    return f"assigned {fixes.minutes(age)} ago"
