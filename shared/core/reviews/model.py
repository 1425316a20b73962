"""The plain data the access reviews judge (read by the engine through `ports.ReviewInputs`) and what they say.

Every input that could not be read carries its whole error instead of a value, so a rule that needs it reports
"could not check" rather than passing: `None` means "not read", an empty tuple means "read, and there was none".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

# Where the rules come from: the RBAC guide the service is built from (seed 002, "Configure RBAC for Azure OpenAI
# identities in Microsoft Foundry"), quoted by each rule in docs/reviews.md.
GUIDE = "Configure RBAC for Azure OpenAI identities in Microsoft Foundry"


@dataclass(frozen=True)
class CallerActivity:
    """One summarized group of an account's RequestResponse rows over the review window: one caller (object id,
    "" for a key caller) and one operation."""

    account_id: str
    object_id: str  # "" = key (or anonymous) caller: the log's objectId is empty for key requests
    operation: str
    api_name: str
    calls: int
    first_seen: datetime | None
    last_seen: datetime | None
    caller_ips: tuple[str, ...] = ()  # as logged (Azure masks the last octet); masked again by `mask_ip`
    app: str = ""  # the app that sent them, where App Insights or a gateway tells (not read yet: "")


@dataclass(frozen=True)
class AppActivity:
    """Calls an app made to an inference host over the review window, as a client-side source logged them: an App
    Insights app (`AppDependencies.AppRoleName`) or an API Management subscription or gateway
    (`ApiManagementGatewayLogs`). Neither says how the call authenticated: it links an app to a host, not to a key."""

    host: str  # lower-cased, no port
    app: str
    source: str  # appinsights | gateway
    calls: int
    first_seen: datetime | None
    last_seen: datetime | None


@dataclass(frozen=True)
class HeldAssignment:
    """A role assignment whose scope covers the account (at, or above it), or one a caller holds through a group."""

    assignment_id: str
    role_guid: str
    scope: str
    principal_id: str  # the assignment's principal (the group, for a role held through one)
    principal_type: str  # User | Group | ServicePrincipal | ...
    via_group_of: str = ""  # the caller's object id when the assignment is one of its groups'
    description: str = ""


@dataclass(frozen=True)
class RoleDefinitionFacts:
    """A role definition read through ARM (custom roles, built-ins the catalogue lacks)."""

    guid: str
    name: str
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()
    custom: bool = True


@dataclass(frozen=True)
class PolicyAssignmentFacts:
    """A policy assignment in effect on the account's scope chain, with the definition (or set) it assigns."""

    assignment_id: str
    name: str
    scope: str
    definition_id: str
    enforcement_mode: str = "Default"  # Default | DoNotEnforce
    parameters: dict[str, Any] = field(default_factory=dict)  # name -> value (the assignment's `{"value": v}`)
    # The definition JSON (`properties` of a policyDefinition or policySetDefinition), None when unreadable
    definition: dict[str, Any] | None = None
    # For a set definition: each member definition's `properties` by its id, lower-cased (absent: unreadable)
    members: dict[str, dict[str, Any]] = field(default_factory=dict)
    definition_error: str = ""
    not_scopes: tuple[str, ...] = ()  # the assignment's `notScopes`: it does not apply at or under these


@dataclass(frozen=True)
class PolicyExemptionFacts:
    exemption_id: str
    name: str
    policy_assignment_id: str
    category: str = ""  # Waiver | Mitigated
    expires_on: datetime | None = None
    reference_ids: tuple[str, ...] = ()  # policyDefinitionReferenceIds: empty = the whole assignment


@dataclass(frozen=True)
class AccountFacts:
    """What the reviews read about one account. `*_error` says why a part is `None` (not read)."""

    account_id: str
    kind: str | None = None
    disable_local_auth: bool | None = None
    account_error: str = ""
    activity: tuple[CallerActivity, ...] | None = None
    activity_error: str = ""
    assignments: tuple[HeldAssignment, ...] | None = None
    assignments_error: str = ""
    definitions: tuple[RoleDefinitionFacts, ...] = ()
    policies: tuple[PolicyAssignmentFacts, ...] | None = None
    exemptions: tuple[PolicyExemptionFacts, ...] | None = None
    policy_error: str = ""
    principal_names: dict[str, str] = field(default_factory=dict)  # object id -> display name, where known
    # object id -> User | ServicePrincipal | ManagedIdentity | Group, where known (ARM's principalType of a direct
    # assignment; it says ServicePrincipal for a managed identity)
    principal_kinds: dict[str, str] = field(default_factory=dict)
    custom_subdomain: str | None = None  # the account's hosts' first label: how app activity is matched to it
    apps: tuple[AppActivity, ...] | None = None  # every host's apps over the window (None: not read)
    apps_error: str = ""
    # how the policy was read, when that limits what it shows (Resource Graph leaves out unreadable scopes)
    policy_caveat: str = ""


# ---- what the reviews say ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Reason:
    """One reason behind a readiness verdict: `blocking` ones make the account not ready."""

    rule: str  # a rule id of docs/reviews.md
    blocking: bool
    text: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class AppSeen:
    """An app seen calling the account while key calls were made (a hint of who sent them, never proof)."""

    name: str
    source: str  # appinsights | gateway
    calls: int  # the app's calls to the account's hosts over the window, however they authenticated
    first_seen: str
    last_seen: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class KeyCaller:
    operation: str
    calls: int
    first_seen: str
    last_seen: str
    caller_ips: tuple[str, ...]
    app: str = ""
    apps: tuple[AppSeen, ...] = ()  # apps seen calling the account in the same window (reviews/apps.py)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "caller_ips": list(self.caller_ips), "apps": [a.to_json() for a in self.apps]}


@dataclass(frozen=True)
class EntraCaller:
    object_id: str
    name: str
    surfaces: tuple[str, ...]
    calls: int
    covered: bool  # holds a role at the account that covers every surface it calls
    roles: tuple[str, ...]  # names of the roles it holds at the account
    recommended_role: str = ""  # where not covered: the least-privilege role to assign
    command: str = ""

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "surfaces": list(self.surfaces), "roles": list(self.roles)}


@dataclass(frozen=True)
class PolicyFinding:
    """A policy assignment whose definition sets or checks `disableLocalAuth`, and what it does to a rollback."""

    assignment_id: str
    name: str
    scope: str
    definition_id: str
    effect: str  # deny | modify | deployifnotexists | audit | auditifnotexists | disabled | unknown
    enforced: bool
    exempt: bool
    blocks_rollback: bool
    rollback_effect: str

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Readiness:
    account_id: str
    verdict: str  # ready | not_ready | already_disabled
    disable_local_auth: bool | None
    days: int
    reasons: tuple[Reason, ...]
    key_callers: tuple[KeyCaller, ...]
    entra_callers: tuple[EntraCaller, ...]
    policies: tuple[PolicyFinding, ...]
    could_not_check: tuple[str, ...]
    disable_command: str
    bicep: str
    rollback: tuple[str, ...]
    apps_unread: str = ""  # why the key callers' apps could not be told ("" when a source was read)

    @property
    def blocking_policies(self) -> tuple[PolicyFinding, ...]:
        return tuple(p for p in self.policies if p.blocks_rollback)

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account_id, "verdict": self.verdict, "disable_local_auth": self.disable_local_auth,
            "days": self.days, "reasons": [r.to_json() for r in self.reasons],
            "key_callers": [k.to_json() for k in self.key_callers],
            "entra_callers": [e.to_json() for e in self.entra_callers],
            "entra_callers_without_role": [e.object_id for e in self.entra_callers if not e.covered],
            "policies": [p.to_json() for p in self.policies],
            "blocking_policies": [p.to_json() for p in self.blocking_policies],
            "could_not_check": list(self.could_not_check), "disable_command": self.disable_command,
            "bicep": self.bicep, "rollback": list(self.rollback), "apps_unread": self.apps_unread,
        }


@dataclass(frozen=True)
class AccessFinding:
    account_id: str
    rule: str
    principal: str
    principal_name: str
    role: str
    scope: str
    calls_account: bool | None  # None: the logs could not be read
    text: str
    recommendation: str
    commands: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "account": self.account_id, "commands": list(self.commands)}


@dataclass(frozen=True)
class AccessReview:
    account_id: str
    findings: tuple[AccessFinding, ...]
    could_not_check: tuple[str, ...]
    pre_upgrade: bool

    def to_json(self) -> dict[str, Any]:
        return {"account": self.account_id, "pre_upgrade": self.pre_upgrade,
                "findings": [f.to_json() for f in self.findings], "could_not_check": list(self.could_not_check)}
