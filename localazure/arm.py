"""The Azure Resource Manager stand-in: role assignments and role definitions (api 2022-04-01) and
Cognitive Services accounts and projects, with ARM's error codes and bodies."""

from __future__ import annotations

import re
import uuid
from urllib.parse import urlencode

from localazure import armjson, rbac, scopes
from localazure.calls import READ, WRITE
from localazure.faults import Fault
from localazure.frontdoor import CallContext, RouteFn, bearer_token, error, fault_headers
from localazure.https import Request, Response
from localazure.policy import PolicyRoutes
from localazure.resourcegraph import ResourceGraph
from localazure.roles import ROLE_ASSIGNMENT_DELETE, ROLE_ASSIGNMENT_WRITE, guid_of
from localazure.state import Assignment, State
from localazure.throttle import DELETES, READS, WRITES, ArmThrottle, GraphQuota, ThrottleLimits, hhmmss

_RA = "/providers/microsoft.authorization/roleassignments"
_RD = "/providers/microsoft.authorization/roledefinitions"
_CS = re.compile(
    r"^/subscriptions/(?P<sub>[^/]+)(?:/resourceGroups/(?P<rg>[^/]+))?/providers/Microsoft\.CognitiveServices/"
    r"accounts(?:/(?P<account>[^/]+)(?:/projects(?:/(?P<project>[^/]+))?)?)?$",
    re.IGNORECASE,
)
_GUID = re.compile(r"^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$")
_DIAGNOSTIC_SETTINGS = "/providers/microsoft.insights/diagnosticsettings"


def _not_found_resource(kind: str, rg: str) -> Response:
    return error(404, "ResourceNotFound", f"The Resource '{kind}' under resource group '{rg}' was not found. "
                 "For more details please go to https://aka.ms/ARMResourceNotFoundFix")


def _authorization_target(path: str) -> tuple[str | None, str, str]:
    """(roleAssignments | roleDefinitions | None, scope, name) for a Microsoft.Authorization path."""
    lower = path.lower()
    for marker, family in ((_RA, "roleAssignments"), (_RD, "roleDefinitions")):
        at = lower.find(marker)
        if at >= 0:
            return family, path[:at] or "/", path[at + len(marker):].strip("/")
    return None, "", ""


class ArmService:
    name = "arm"

    def __init__(self, state: State):
        self.state = state
        self.throttle = ArmThrottle()
        self.graph_quota = GraphQuota()
        self.resource_graph = ResourceGraph(state)
        self.policy = PolicyRoutes(lambda: self.state.policies, state.clock.now)

    def set_throttle_limits(self, limits: ThrottleLimits) -> None:
        """Start every bucket afresh at these sizes (used only while `settings.arm_throttling` is on)."""
        self.throttle = ArmThrottle(limits)
        self.graph_quota = GraphQuota(limits)

    # ------------------------------------------------------------ front door hooks
    def authenticate(self, request: Request) -> Response | None:
        if not request.headers.get("authorization"):
            return error(401, "AuthenticationFailed", "Authentication failed. The 'Authorization' header is missing.")
        if bearer_token(request) is None:
            return error(401, "AuthenticationFailed",
                         "Authentication failed. The 'Authorization' header is provided in an invalid format.")
        if not request.param("api-version"):
            return error(400, "MissingApiVersionParameter",
                         "The api-version query parameter (?api-version=) is required for all requests.")
        return None

    def fault_response(self, fault: Fault) -> Response:
        status = fault.status or 500
        code, message = {
            429: ("TooManyRequests", "Number of requests exceeded the limit. Retry after the Retry-After interval."),
            500: ("InternalServerError", "Encountered internal server error (injected by the local stand-in)."),
            503: ("ServiceUnavailable", "The service is temporarily unavailable. Please try again later."),
        }.get(status, ("InjectedFault", f"Injected fault with status {status}."))
        return error(status, code, message, fault_headers(fault))

    def route(self, request: Request) -> tuple[str, str, RouteFn]:
        name, kind, fn = self._route(request)
        if not self.state.settings.arm_throttling:
            return name, kind, fn
        if name == "resourceGraph.resources":
            return name, kind, lambda r, c: self._graph_throttled(r, c, fn)
        return name, kind, lambda r, c: self._throttled(r, c, fn)

    # ------------------------------------------------------------ throttling (localazure/throttle.py)
    def _throttled(self, request: Request, ctx: CallContext, fn: RouteFn) -> Response:
        method = request.method.upper()
        operation = READS if method in ("GET", "HEAD") else DELETES if method == "DELETE" else WRITES
        segs = [p for p in request.path.split("/") if p]
        subscription = segs[1] if len(segs) >= 2 and segs[0].lower() == "subscriptions" else None
        level = "subscription" if subscription else "tenant"
        admission = self.throttle.admit(subscription or "tenant", self._caller(request), operation)
        header = f"x-ms-ratelimit-remaining-{level}-{operation}"
        if not admission.allowed:
            return error(429, "TooManyRequests", "Number of requests exceeded the limit. Retry after the "
                         "Retry-After interval.", {"Retry-After": str(admission.retry_after_seconds), header: "0"})
        response = fn(request, ctx)
        response.headers[header] = str(admission.remaining)
        return response

    def _graph_throttled(self, request: Request, ctx: CallContext, fn: RouteFn) -> Response:
        admission, resets_after = self.graph_quota.admit(self._caller(request))
        headers = {"x-ms-user-quota-remaining": str(admission.remaining),
                   "x-ms-user-quota-resets-after": hhmmss(resets_after)}
        if not admission.allowed:
            return error(429, "RateLimiting", "Please provide below info when asking for support: the user "
                         "quota of Resource Graph queries is used up; retry after the quota resets.",
                         {"Retry-After": str(admission.retry_after_seconds), **headers})
        response = fn(request, ctx)
        response.headers.update(headers)
        return response

    def _route(self, request: Request) -> tuple[str, str, RouteFn]:
        path = scopes.normalize(request.path)
        lower = path.lower()
        method = request.method.upper()
        kind = READ if method in ("GET", "HEAD") else WRITE
        if lower == "/providers/microsoft.resourcegraph/resources" and method == "POST":
            return "resourceGraph.resources", READ, lambda r, c: self.resource_graph.serve(r, self._caller(r))
        policy_route = self.policy.route(request, path)
        if policy_route is not None:
            return policy_route[0], READ, policy_route[1]
        family, scope, name = _authorization_target(path)
        if family == "roleAssignments":
            if not name:
                return "roleAssignments.list", kind, lambda r, c: self.list_assignments(r, c, scope)
            op = {"PUT": self.put_assignment, "DELETE": self.delete_assignment}.get(method, self.get_assignment)
            return f"roleAssignments.{method.lower()}", kind, lambda r, c: op(r, scope, name)
        if family == "roleDefinitions":
            if not name:
                return "roleDefinitions.list", kind, lambda r, c: self.list_definitions(r, scope)
            return "roleDefinitions.get", kind, lambda r, c: self.get_definition(scope, name)
        if lower.endswith(_DIAGNOSTIC_SETTINGS) and method == "GET":
            target = path[: -len(_DIAGNOSTIC_SETTINGS)]
            return "diagnosticSettings.list", kind, lambda r, c: self.list_diagnostic_settings(target)
        m = _CS.match(path)
        if m and method == "GET":
            if m.group("project"):
                return "projects.get", kind, lambda r, c: self.get_project(m)
            if m.group("account") and lower.endswith("/projects"):
                return "projects.list", kind, lambda r, c: self.list_projects(m)
            if m.group("account"):
                return "accounts.get", kind, lambda r, c: self.get_account(m)
            return "accounts.list", kind, lambda r, c: self.list_accounts(m)
        app = self.state.app_resources.get(lower)
        if app is not None and method == "GET":
            return "resources.get", kind, lambda r, c: Response.json(app)
        return "unknown", kind, lambda r, c: error(404, "NotFound", f"The local stand-in does not serve {path}.")

    # ------------------------------------------------------------ helpers
    def _caller(self, request: Request) -> str:
        token = bearer_token(request) or ""
        if self.state.principal(token) is not None:
            return token
        return self.state.settings.own_identity.principal_id

    def _missing_scope(self, scope: str) -> Response | None:
        segs = [p for p in scope.split("/") if p]
        lowered = [p.lower() for p in segs]
        if not segs or lowered[:3] == ["providers", "microsoft.management", "managementgroups"]:
            return None
        if lowered[0] != "subscriptions" or len(segs) < 2:
            return error(400, "InvalidScope", f"The scope '{scope}' is not valid.")
        if lowered[1] != self.state.subscription_id.lower():
            return error(404, "SubscriptionNotFound", f"The subscription '{segs[1]}' could not be found.")
        if len(segs) < 4 or lowered[2] != "resourcegroups":
            return None
        rg = segs[3]
        if rg.lower() not in self.state.resource_groups():
            return error(404, "ResourceGroupNotFound", f"Resource group '{rg}' could not be found.")
        if lowered[4:7] == ["providers", "microsoft.cognitiveservices", "accounts"] and len(segs) >= 8:
            account = self.state.account(segs[7])
            if account is None or account.resource_group.lower() != rg.lower():
                return _not_found_resource(f"Microsoft.CognitiveServices/accounts/{segs[7]}", rg)
            if len(segs) >= 10 and lowered[8] == "projects" and lowered[9] not in account.projects:
                return _not_found_resource(f"Microsoft.CognitiveServices/accounts/{segs[7]}/projects/{segs[9]}", rg)
        return None

    def _json(self, a: Assignment) -> dict:
        return armjson.assignment(a, self.state.subscription_id)

    def _in_scope(self, a: Assignment | None, scope: str) -> Assignment | None:
        return a if a is not None and scopes.same(a.scope, scope) else None

    def _forbidden(self, caller: str, action: str, scope: str, name: str) -> Response:
        return error(
            403,
            "AuthorizationFailed",
            f"The client '{caller}' with object id '{caller}' does not have authorization or an ABAC condition "
            f"not fulfilled to perform action '{action}' over scope "
            f"'{scope}/providers/Microsoft.Authorization/roleAssignments/{name}' or the scope is invalid. "
            "If access was recently granted, please refresh your credentials.",
        )

    # ------------------------------------------------------------ role assignments
    def get_assignment(self, request: Request, scope: str, name: str) -> Response:
        found = self._in_scope(self.state.assignment(name), scope)
        if found is None:
            return self._missing_scope(scope) or error(
                404, "RoleAssignmentNotFound", f"The role assignment '{name}' is not found.")
        return Response.json(self._json(found))

    def put_assignment(self, request: Request, scope: str, name: str) -> Response:
        state = self.state
        if not _GUID.match(name):
            return error(400, "InvalidRoleAssignmentId",
                         f"The role assignment ID '{name}' is not valid. The role assignment ID must be a GUID.")
        try:
            props = (request.json() or {}).get("properties") or {}
        except ValueError:
            return error(400, "InvalidRequestContent", "The request content was invalid and could not be deserialized.")
        role_definition_id, principal_id = props.get("roleDefinitionId"), props.get("principalId")
        if not role_definition_id or not principal_id:
            return error(400, "InvalidRequestContent",
                         "The request content must contain properties.roleDefinitionId and properties.principalId.")
        missing = self._missing_scope(scope)
        if missing is not None:
            return missing
        role = state.role(role_definition_id)
        if role is None:
            return error(400, "RoleDefinitionDoesNotExist",
                         f"The specified role definition with ID '{guid_of(role_definition_id)}' does not exist.")
        declared_type = props.get("principalType")
        caller = self._caller(request)
        with state.lock:
            attrs = rbac.assignment_attrs(role.guid, principal_id, declared_type or "")
            if not rbac.authorize(state, caller, ROLE_ASSIGNMENT_WRITE, scope, attrs, {}):
                return self._forbidden(caller, ROLE_ASSIGNMENT_WRITE, scope, name)
            principal = state.principal(principal_id)
            if principal is None or state.is_replicating(principal):
                return error(
                    400,
                    "PrincipalNotFound",
                    f"Principal {principal_id.replace('-', '')} does not exist in the directory {state.tenant_id}. "
                    "Check that you have the correct principal ID. If you are creating this principal and then "
                    "immediately assigning a role, this error might be related to a replication delay. In this "
                    "case, set the role assignment principalType property to a value, such as ServicePrincipal, "
                    "User, or Group.  See https://aka.ms/docs-principaltype",
                )
            if declared_type and declared_type.lower() != principal.type.lower():
                return error(
                    400,
                    "UnmatchedPrincipalType",
                    f"Principal {principal_id.replace('-', '')} has type '{principal.type}', which is different "
                    f"from specified PrinciaplType '{declared_type}'.",
                )
            existing = state.assignment(name)
            if existing is not None:
                unchanged = (
                    scopes.same(existing.scope, scope)
                    and existing.role_guid == role.guid
                    and existing.principal_id.lower() == principal_id.lower()
                )
                if not unchanged:
                    return error(400, "RoleAssignmentUpdateNotPermitted",
                                 "Tenant ID, application ID, principal ID, and scope are not allowed to be updated.")
                return Response.json(self._json(existing), 201)
            for other in state.all_assignments():
                if (
                    scopes.same(other.scope, scope)
                    and other.role_guid == role.guid
                    and other.principal_id.lower() == principal_id.lower()
                ):
                    return error(
                        409,
                        "RoleAssignmentExists",
                        "The role assignment already exists. The ID of the existing role assignment is "
                        f"{other.name.replace('-', '')}.",
                    )
            now = state.clock.now()
            created = state.put_assignment(
                Assignment(
                    name=str(uuid.UUID(name)),
                    scope=scopes.normalize(scope),
                    role_guid=role.guid,
                    principal_id=principal_id,
                    principal_type=declared_type or principal.type,
                    created_on=now,
                    updated_on=now,
                    created_by=caller,
                    description=props.get("description"),
                    condition=props.get("condition"),
                    condition_version=props.get("conditionVersion"),
                )
            )
        return Response.json(self._json(created), 201)

    def delete_assignment(self, request: Request, scope: str, name: str) -> Response:
        state = self.state
        with state.lock:
            existing = self._in_scope(state.assignment(name), scope)
            if existing is None:
                return self._missing_scope(scope) or Response(204)
            caller = self._caller(request)
            attrs = rbac.assignment_attrs(existing.role_guid, existing.principal_id, existing.principal_type)
            if not rbac.authorize(state, caller, ROLE_ASSIGNMENT_DELETE, scope, {}, attrs):
                return self._forbidden(caller, ROLE_ASSIGNMENT_DELETE, scope, name)
            state.remove_assignment(name)
        return Response.json(self._json(existing))

    def list_assignments(self, request: Request, ctx: CallContext, scope: str) -> Response:
        expression = request.param("$filter")
        try:
            flt = rbac.parse_filter(expression)
        except rbac.FilterError:
            return error(400, "UnsupportedQuery", f"The filter '{expression}' is not supported. Supported filters "
                         "are either 'atScope()' or 'principalId eq '{value}' ' or 'assignedTo('{value}')'.")
        missing = self._missing_scope(scope)
        if missing is not None:
            return missing
        try:
            offset = int(request.param("$skipToken") or 0)
        except ValueError:
            return error(400, "InvalidSkipToken", "The skip token is not valid.")
        items = rbac.list_assignments(self.state, scope, flt)
        size = max(1, self.state.settings.page_size)
        body: dict = {"value": [self._json(a) for a in items[offset:offset + size]]}
        if offset + size < len(items):
            query = {"api-version": request.param("api-version") or "2022-04-01", "$skipToken": str(offset + size)}
            if expression:
                query["$filter"] = expression
            path = "" if scope == "/" else scope
            body["nextLink"] = f"{ctx.base_url}{path}/providers/Microsoft.Authorization/roleAssignments?" + urlencode(
                query)
        return Response.json(body)

    # ------------------------------------------------------------ role definitions
    def get_definition(self, scope: str, name: str) -> Response:
        role = self.state.role(name)
        if role is None:
            return error(404, "RoleDefinitionDoesNotExist", f"The specified role definition with ID '{name}' does "
                         "not exist.")
        return Response.json(armjson.role_definition(role, scopes.subscription_of(scope)))

    def list_definitions(self, request: Request, scope: str) -> Response:
        expression = (request.param("$filter") or "").strip()
        roles = self.state.all_roles()
        if expression:
            m = re.fullmatch(r"(roleName|type)\s+eq\s+'([^']*)'", expression, re.IGNORECASE)
            if m is None:
                return error(400, "UnsupportedQuery", f"The filter '{expression}' is not supported.")
            field, value = m.group(1).lower(), m.group(2)
            if field == "rolename":
                roles = [r for r in roles if r.name.casefold() == value.casefold()]
            else:
                roles = [r for r in roles if ("customrole" if r.custom else "builtinrole") == value.lower()]
        subscription = scopes.subscription_of(scope)
        return Response.json({"value": [armjson.role_definition(r, subscription) for r in roles]})

    # ------------------------------------------------------------ Cognitive Services
    def _account_or_404(self, m: re.Match[str]):
        if m.group("rg") is None:
            return None, error(404, "NotFound", "Accounts are addressed under a resource group.")
        missing = self._missing_scope(f"/subscriptions/{m.group('sub')}/resourceGroups/{m.group('rg')}")
        if missing is not None:
            return None, missing
        account = self.state.account(m.group("account"))
        if account is None or account.resource_group.lower() != m.group("rg").lower():
            kind = f"Microsoft.CognitiveServices/accounts/{m.group('account')}"
            return None, _not_found_resource(kind, m.group("rg"))
        return account, None

    def get_account(self, m: re.Match[str]) -> Response:
        account, failure = self._account_or_404(m)
        return failure or Response.json(armjson.account(account))

    def list_accounts(self, m: re.Match[str]) -> Response:
        scope = f"/subscriptions/{m.group('sub')}" + (f"/resourceGroups/{m.group('rg')}" if m.group("rg") else "")
        missing = self._missing_scope(scope)
        if missing is not None:
            return missing
        rg = (m.group("rg") or "").lower()
        accounts = [a for a in self.state.accounts.values() if not rg or a.resource_group.lower() == rg]
        return Response.json({"value": [armjson.account(a) for a in accounts]})

    def get_project(self, m: re.Match[str]) -> Response:
        account, failure = self._account_or_404(m)
        if failure:
            return failure
        project = account.projects.get(m.group("project").lower())
        if project is None:
            return _not_found_resource(
                f"Microsoft.CognitiveServices/accounts/{account.name}/projects/{m.group('project')}", m.group("rg"))
        return Response.json(armjson.project(account, project))

    def list_diagnostic_settings(self, target: str) -> Response:
        m = _CS.match(target)
        if m is None or not m.group("account") or m.group("project"):
            return error(404, "ResourceNotFound", f"The local stand-in serves diagnostic settings of accounts only, "
                         f"not of {target}.")
        account, failure = self._account_or_404(m)
        if failure:
            return failure
        workspace = armjson.workspace_resource_id(self.state.subscription_id, self.state.workspace_id)
        return Response.json(armjson.diagnostic_settings(account, workspace))

    def list_projects(self, m: re.Match[str]) -> Response:
        account, failure = self._account_or_404(m)
        if failure:
            return failure
        return Response.json({"value": [armjson.project(account, p) for p in account.projects.values()]})
