"""The remediation policy: one pure function decides whether the service may assign a role, and every refusal
names the rule that refused it.

`decide` evaluates every rule (not just the first failing one) so a ticket can say everything that stands in
the way. Safety rules are checked here even when configuration loading already enforces them (defence in depth):
a hand-built allowlist entry or a diagnosis naming Owner must still never produce a grant.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from shared.core import roles
from shared.core.allowlist import Allowlist, AllowlistEntry, normalize_object_id
from shared.core.approval import ApprovalTerms, binding_mismatch
from shared.core.causes import ROLE_FIXABLE
from shared.core.model import HIGH, Diagnosis
from shared.core.resource_ids import normalize_scope, parse_strict, scope_within
from shared.core.revocations import Revocations, blocking
from shared.core.roles import PROJECT
from shared.core.status import DecisionAction, Mode
from shared.core.suppression import is_suppressed

PROPAGATION_PENDING = "propagation_pending"
GROUP_MEMBERSHIP_CACHE = "group_membership_cache"

# Every rule id a Refusal can carry, with what it checks. Ids are a public contract (audit log, tickets,
# docs/policy.md): never rename one.
RULES: dict[str, str] = {
    "mode": "The mode is enforce, or an on-call engineer approved this incident and the approval is unexpired.",
    "role_fixable": "The diagnosis says a role assignment fixes the failure, and the cause catalogue agrees.",
    "confidence": "The diagnosis has high confidence.",
    "entra_principal": "The caller has an Entra object id; key and anonymous callers are never granted a role.",
    "allowlist": "The principal's object id is on the allowlist (normalized: case, whitespace, braces; exact).",
    "allowlist_role": "The principal's allowlist entry allows this role (entries may narrow the roles).",
    "allowlist_scope": "The principal's allowlist entry allows this resource (entries may narrow the scopes).",
    "grantable_role": "The role is one of the three least-privilege data roles (Cognitive Services OpenAI User, "
    "Cognitive Services User, Foundry User) and cannot write role assignments.",
    "resource_scope": "The scope is an account or project resource id, never a resource group, subscription or "
    "management group, and has no extra or odd segments.",
    "scope_matches_resource": "The scope is the failing resource's account or a project under that account.",
    "principal_type_match": "The allowlist entry's declared principal type agrees with the evidence.",
    "principal_type": "The principal is a ServicePrincipal (managed identities included); a User or Group only "
    "when allow_user_grants / allow_group_grants is set.",
    "run_cap": "Fewer grants than max_grants_per_run were made in this run.",
    "daily_cap": "A slot of the grant budget is free: fewer than max_grants_per_day grants were made or reserved "
    "in the last 24 hours, by any run, event, approval or instance.",
    "hourly_cap": "A slot of the grant budget is free: fewer than max_grants_per_hour grants were made or reserved "
    "in the last hour, by any run, event, approval or instance.",
    "cooldown": "The incident's last grant is older than the per-incident cool-down.",
    "suppression": "Neither the principal nor the resource (or a parent of it) is under an active suppression.",
    "circuit_breaker": "The circuit breaker is closed.",
    "evidence_complete": "Every live-evidence look-up for this failure succeeded (role assignments, account "
    "settings): a diagnosis made while ARM could not be read is never acted on.",
    "corroborated": "In enforce mode, a witness the failing app cannot write confirms the failure: a server-side "
    "log row of this principal failing on this account, or an event from a trusted Event Grid topic. Without one an "
    "engineer approves the grant.",
    "revoked": "No engineer revoked this role (or one granting some of the same data access) from this principal "
    "at an overlapping scope; `python -m shared unrevoke` lifts a revocation.",
    "approval_binding": "An approval grants exactly what it approved: the principal, role, scope and diagnosis "
    "fingerprint the recommendation showed.",
    "project_scope": "A Foundry project call is granted at the project the failure named, never at the account or "
    "another project.",
    "policy_error": "The policy could not evaluate its inputs; nothing is granted.",
}

# Refusals an engineer's approval lifts: a recommendation is made when these are all that stand in the way.
APPROVABLE_RULES = frozenset({"mode", "corroborated"})

_PRINCIPAL_TYPES = {"serviceprincipal": "ServicePrincipal", "user": "User", "group": "Group"}


def is_resource_scope(scope: str | None) -> bool:
    """The resource_scope rule: an account or project id by `resource_ids.parse_strict`."""
    return parse_strict(scope) is not None


@dataclass(frozen=True)
class PolicyConfig:
    mode: str
    allowlist: Allowlist
    allow_user_grants: bool = False
    allow_group_grants: bool = False
    max_grants_per_run: int = 5
    max_grants_per_day: int = 20
    incident_cooldown: timedelta = timedelta(minutes=60)
    max_grants_per_hour: int = 10

    @classmethod
    def from_settings(cls, settings: Any) -> PolicyConfig:
        return cls(
            mode=settings.mode,
            allowlist=settings.allowlist,
            allow_user_grants=settings.allow_user_grants,
            allow_group_grants=settings.allow_group_grants,
            max_grants_per_run=settings.max_grants_per_run,
            max_grants_per_day=settings.max_grants_per_day,
            incident_cooldown=timedelta(minutes=settings.incident_cooldown_minutes),
            max_grants_per_hour=settings.max_grants_per_hour,
        )


@dataclass(frozen=True)
class PolicyContext:
    now: datetime
    grants_this_run: int
    grants_last_24h: int
    last_grant_at: datetime | None  # this incident's last grant (cool-down)
    suppressed_targets: frozenset[str]  # normalized object ids / resource ids under an active suppression
    breaker_open: bool
    approved: bool  # a valid, unexpired approval exists: lifts the mode gate (never observe's) for its terms only
    # The principal type ARM evidence shows (role assignments the service read); never what a signal claims.
    evidence_principal_type: str | None = None
    # The failing resource (the incident's resource id). When given, the scope must be its account or a project
    # under it, and a suppression of it counts.
    resource_id: str | None = None
    # The evidence look-ups for this failure that failed (`Evidence.failed`): any one refuses the grant.
    evidence_failures: tuple[str, ...] = ()
    # Grants made or reserved in the last hour, by every instance (the budget's snapshot; the reservation decides).
    grants_last_hour: int = 0
    # What confirms the failure and the failing app cannot write (core/correlation.py): a server-side log row's
    # source, or a trusted event topic. None: the failure is only claimed (a custom event, client-side telemetry,
    # a pasted error), and in enforce mode a grant waits for an engineer's approval.
    witness: str | None = None
    # The principal type the failure itself claims (an event, a log row): a grant is refused when it disagrees.
    claimed_principal_type: str | None = None
    # Engineers' revocations (core/revocations.py): a grant that would undo one is refused.
    revocations: Revocations = field(default_factory=Revocations)
    # What the approval approved (core/approval.py): with `approved`, the grant must be exactly this.
    approved_terms: ApprovalTerms | None = None


@dataclass(frozen=True)
class Refusal:
    rule: str  # a key of RULES
    reason: str


@dataclass(frozen=True)
class Decision:
    action: DecisionAction
    role_id: str | None  # bare role definition GUID; set only when it names a grantable role
    role_name: str | None
    scope: str | None  # set only when it is an account or project id
    principal_type: str | None
    refusals: tuple[Refusal, ...]
    cause: str | None = None

    @property
    def grants(self) -> bool:
        return self.action == DecisionAction.ASSIGN

    @property
    def rules(self) -> tuple[str, ...]:
        return tuple(r.rule for r in self.refusals)

    @property
    def opens_ticket(self) -> bool:
        """Recommendations and refusals are ticketed; so is a managed identity's group case even when the role
        is assigned, because its verification can take a day."""
        ticketed = self.action in (DecisionAction.RECOMMEND, DecisionAction.TICKET)
        return ticketed or (self.grants and self.cause == GROUP_MEMBERSHIP_CACHE)

    def explain(self) -> str:
        return "; ".join(f"[{r.rule}] {r.reason}" for r in self.refusals)


@dataclass
class _Evaluation:
    refusals: list[Refusal] = field(default_factory=list)
    role_guid: str | None = None
    scope: str | None = None
    principal_type: str | None = None

    def refuse(self, rule: str, reason: str) -> None:
        self.refusals.append(Refusal(rule, reason))


def decide(diagnosis: Diagnosis, principal_id: str | None, config: PolicyConfig, ctx: PolicyContext) -> Decision:
    """Decide what the service does about one diagnosed incident. Pure; never raises."""
    try:
        return _decide(diagnosis, principal_id, config, ctx)
    except Exception as exc:  # noqa: BLE001 - the contract is "never raises": an error must fail closed
        mode = getattr(config, "mode", None)
        return Decision(
            action=DecisionAction.OBSERVE if mode == Mode.OBSERVE else DecisionAction.TICKET,
            role_id=None,
            role_name=None,
            scope=None,
            principal_type=None,
            refusals=(Refusal("policy_error", f"could not evaluate the policy ({type(exc).__name__})"),),
            cause=getattr(diagnosis, "cause", None),
        )


def _decide(diagnosis: Diagnosis, principal_id: str | None, config: PolicyConfig, ctx: PolicyContext) -> Decision:
    ev = _Evaluation()
    _check_mode(ev, config, ctx)
    _check_diagnosis(ev, diagnosis)
    entries = _check_principal(ev, principal_id, config)
    needs_approval = any(e.require_approval is not False for e in entries)
    if config.mode == Mode.ENFORCE and ctx.approved is not True and needs_approval:
        ev.refuse("mode", "this identity's allowlist entry requires an on-call engineer's approval")
    if config.mode == Mode.ENFORCE and ctx.approved is not True and not _witnessed(ctx.witness):
        ev.refuse("corroborated", "nothing the failing app cannot write confirms this failure (no service-side log "
                  "row of this principal failing on this account, no event from a trusted topic; client-side "
                  "telemetry, custom events and pasted errors are the app's own word): an on-call engineer approves "
                  "the grant")
    _check_approval(ev, diagnosis, principal_id, ctx)
    _check_role(ev, diagnosis, entries)
    _check_scope(ev, diagnosis, entries, ctx)
    _check_principal_type(ev, entries, config, ctx)
    _check_limits(ev, principal_id, diagnosis, config, ctx)
    _check_revocations(ev, principal_id, ctx)

    rules = {r.rule for r in ev.refusals}
    if config.mode == Mode.OBSERVE:
        action = DecisionAction.OBSERVE
    elif "suppression" in rules:
        action = DecisionAction.SUPPRESSED
    elif diagnosis.cause == PROPAGATION_PENDING:
        action = DecisionAction.WAIT
    elif not rules:
        action = DecisionAction.ASSIGN
    elif rules <= APPROVABLE_RULES:
        action = DecisionAction.RECOMMEND  # only what an engineer's approval lifts stands in the way
    else:
        action = DecisionAction.TICKET
    role = roles.BY_GUID.get(ev.role_guid) if ev.role_guid else None
    return Decision(
        action=action,
        role_id=ev.role_guid,
        role_name=role.name if role else None,
        scope=ev.scope,
        principal_type=ev.principal_type,
        refusals=tuple(ev.refusals),
        cause=diagnosis.cause,
    )


def _check_mode(ev: _Evaluation, config: PolicyConfig, ctx: PolicyContext) -> None:
    if config.mode == Mode.OBSERVE:  # observe writes nothing to Azure: an approval does not lift it
        ev.refuse("mode", "mode is observe: failures are diagnosed only, and nothing is written to Azure "
                  "(approvals included)" if ctx.approved is True else "mode is observe: failures are diagnosed only")
        return
    if config.mode == Mode.ENFORCE or ctx.approved is True:
        return
    if config.mode == Mode.RECOMMEND:
        ev.refuse("mode", "mode is recommend: the fix needs an on-call engineer's approval")
    else:
        ev.refuse("mode", f"unknown mode {config.mode!r}: treated as no automatic changes")


def _witnessed(witness: object) -> bool:
    return isinstance(witness, str) and bool(witness.strip())


def _check_approval(ev: _Evaluation, diagnosis: Diagnosis, principal_id: str | None, ctx: PolicyContext) -> None:
    """An approval grants exactly the terms it approved; an approval that names none approves nothing."""
    if ctx.approved is not True:
        return
    if not isinstance(ctx.approved_terms, ApprovalTerms):
        ev.refuse("approval_binding", "the approval names no principal, role and scope: it approves nothing")
        return
    mismatch = binding_mismatch(ctx.approved_terms, diagnosis, principal_id)
    if mismatch:
        ev.refuse("approval_binding", f"the grant differs from what was approved ({mismatch}): a new approval is "
                  "needed")


def _check_revocations(ev: _Evaluation, principal_id: str | None, ctx: PolicyContext) -> None:
    revocations = ctx.revocations
    if not isinstance(revocations, Revocations) or revocations.unreadable:
        reason = revocations.unreadable if isinstance(revocations, Revocations) else "no revocation list"
        ev.refuse("revoked", f"the engineers' revocations could not be read ({reason})")
        return
    revoked = blocking(revocations, principal_id, ev.role_guid, ev.scope)
    if revoked is not None:
        ev.refuse("revoked", f"{revoked.by} revoked {revoked.role_name} at {revoked.scope} from this principal at "
                  f"{revoked.at.isoformat()} ({revoked.id}); `python -m shared unrevoke {revoked.id}` lifts it")


def _check_diagnosis(ev: _Evaluation, diagnosis: Diagnosis) -> None:
    if diagnosis.role_fixable is not True or diagnosis.cause not in ROLE_FIXABLE:
        ev.refuse("role_fixable", f"cause {diagnosis.cause!r} is not fixed by a role assignment")
    if diagnosis.confidence != HIGH:
        ev.refuse("confidence", f"diagnosis confidence is {diagnosis.confidence!r}, not {HIGH!r}")


def _check_principal(ev: _Evaluation, principal_id: str | None, config: PolicyConfig) -> tuple[AllowlistEntry, ...]:
    oid = normalize_object_id(principal_id) if isinstance(principal_id, str) else None
    if oid is None:
        ev.refuse("entra_principal", "no Entra object id (key or anonymous caller): never granted a role")
        return ()
    # Every entry for this object id must allow the grant: duplicated entries can only narrow, never widen.
    entries = tuple(
        e for e in config.allowlist.entries
        if isinstance(e.object_id, str) and normalize_object_id(e.object_id) == oid
    )
    if not entries:
        ev.refuse("allowlist", f"principal {oid} is not on the allowlist")
    return entries


def _resolve_role(ev: _Evaluation, diagnosis: Diagnosis) -> roles.Role | None:
    by_id = roles.BY_GUID.get(roles.guid_of(diagnosis.role_id)) if isinstance(diagnosis.role_id, str) else None
    by_name = roles.lookup(diagnosis.role_name) if isinstance(diagnosis.role_name, str) else None
    if diagnosis.role_id is None and diagnosis.role_name is None:
        ev.refuse("grantable_role", "the diagnosis names no role")
        return None
    if diagnosis.role_id is not None and by_id is None:
        ev.refuse("grantable_role", f"role id {diagnosis.role_id!r} is not a known role")
        return None
    if diagnosis.role_name is not None and by_name is None and by_id is None:
        ev.refuse("grantable_role", f"role {diagnosis.role_name!r} is not a known role")
        return None
    if by_id is not None and by_name is not None and by_id != by_name:
        ev.refuse("grantable_role", f"role id names {by_id.name!r} but role name says {by_name.name!r}")
        return None
    return by_id or by_name


def _check_role(ev: _Evaluation, diagnosis: Diagnosis, entries: tuple[AllowlistEntry, ...]) -> None:
    role = _resolve_role(ev, diagnosis)
    if role is None:
        return
    if role.guid not in roles.GRANTABLE or role.writes_role_assignments:
        ev.refuse("grantable_role", f"{role.name} is not one of the least-privilege data roles the service grants")
        return
    ev.role_guid = role.guid
    for entry in entries:
        allowed = {roles.guid_of(r) for r in entry.role_ids if isinstance(r, str)}
        if role.guid not in allowed:
            ev.refuse("allowlist_role", f"the allowlist entry for this principal does not allow {role.name}")
            return


def _check_scope(
    ev: _Evaluation, diagnosis: Diagnosis, entries: tuple[AllowlistEntry, ...], ctx: PolicyContext
) -> None:
    scope = diagnosis.scope
    target_id = parse_strict(scope)
    if target_id is None:
        shown = "no scope" if scope is None else f"scope {scope!r}"
        ev.refuse("resource_scope", f"{shown} is not an account or project resource id")
        return
    ev.scope = scope
    failing = parse_strict(ctx.resource_id) if ctx.resource_id is not None else None
    if ctx.resource_id is not None and (failing is None or failing.account() != target_id.account()):
        ev.refuse("scope_matches_resource", f"scope {scope!r} is not the failing resource {ctx.resource_id!r}")
    if diagnosis.surface == PROJECT and not target_id.is_project:
        ev.refuse("project_scope", "a Foundry project call whose project is not known: the account is broader than "
                  "the call needs, and a project name is never guessed")
    elif diagnosis.surface == PROJECT and failing is not None and failing.is_project and failing != target_id:
        ev.refuse("project_scope", f"the failure named project {failing.project_name!r}, the scope is {scope!r}")
    target = normalize_scope(target_id.text)
    for entry in entries:
        narrowed = tuple(normalize_scope(s) for s in entry.scopes if isinstance(s, str) and s.strip())
        if entry.scopes and not any(scope_within(target, s) for s in narrowed):
            ev.refuse("allowlist_scope", f"the allowlist entry for this principal does not allow scope {scope!r}")
            return


def _canonical_type(value: str | None) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    return _PRINCIPAL_TYPES.get(value.strip().lower(), value.strip())


def _check_principal_type(
    ev: _Evaluation, entries: tuple[AllowlistEntry, ...], config: PolicyConfig, ctx: PolicyContext
) -> None:
    declared = {_canonical_type(e.principal_type) for e in entries}
    observed = _canonical_type(ctx.evidence_principal_type)
    if len(declared) > 1:
        ev.refuse("principal_type_match", "allowlist entries for this principal declare different types")
        return
    claimed = _canonical_type(ctx.claimed_principal_type)
    # What is sent to ARM is the allowlist's type (every grantable principal has an entry); without an entry
    # (refused anyway) the refusals are worded on what the evidence, or else the failure, says.
    principal_type = next(iter(declared)) if declared else (observed or claimed)
    if declared and observed is not None and observed != principal_type:
        ev.refuse("principal_type_match", f"allowlist declares {principal_type}, evidence says {observed}")
        return
    if claimed is not None and principal_type is not None and claimed != principal_type:
        ev.refuse("principal_type_match", f"the failure says the principal is a {claimed}, the "
                  f"{'allowlist' if declared else 'evidence'} says {principal_type}")
        return
    ev.principal_type = principal_type
    if principal_type == "ServicePrincipal":
        return
    if principal_type == "User" and config.allow_user_grants is True:
        return
    if principal_type == "Group" and config.allow_group_grants is True:
        return
    if principal_type in ("User", "Group"):
        setting = "allow_user_grants" if principal_type == "User" else "allow_group_grants"
        ev.refuse("principal_type", f"principal is a {principal_type}; grants to it need {setting}")
    elif principal_type is None:
        ev.refuse("principal_type", "principal type is unknown")
    else:
        ev.refuse("principal_type", f"principal type {principal_type!r} is never granted")


def _check_limits(
    ev: _Evaluation, principal_id: str | None, diagnosis: Diagnosis, config: PolicyConfig, ctx: PolicyContext
) -> None:
    if not ctx.grants_this_run < config.max_grants_per_run:
        ev.refuse("run_cap", f"{ctx.grants_this_run} grants this run; the cap is {config.max_grants_per_run}")
    if not ctx.grants_last_24h < config.max_grants_per_day:
        ev.refuse("daily_cap", f"{ctx.grants_last_24h} grants in 24 h; the cap is {config.max_grants_per_day}")
    if not ctx.grants_last_hour < config.max_grants_per_hour:
        ev.refuse("hourly_cap", f"{ctx.grants_last_hour} grants in the last hour; the cap is "
                  f"{config.max_grants_per_hour}")
    if ctx.last_grant_at is not None and not ctx.now - ctx.last_grant_at >= config.incident_cooldown:
        ev.refuse("cooldown", f"last grant for this incident at {ctx.last_grant_at.isoformat()} is within the "
                  f"{config.incident_cooldown} cool-down")
    if is_suppressed(principal_id, (ctx.resource_id, diagnosis.scope), ctx.suppressed_targets):
        ev.refuse("suppression", "the principal or the resource is suppressed (opted out)")
    if ctx.breaker_open is not False:
        ev.refuse("circuit_breaker", "the circuit breaker is open: grants failed verification; an operator "
                  "must reset it")
    if ctx.evidence_failures:
        ev.refuse("evidence_complete", "live evidence could not be read (" + "; ".join(ctx.evidence_failures)
                  + "): nothing is granted on a diagnosis made without it")
