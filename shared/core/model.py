"""Plain data the core works on. Everything here is immutable and free of I/O.

The classes are slotted: a scan holds one signal and one diagnosis per failure group (100,000 in a flood), and an
instance without a `__dict__` is a quarter of the size."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from datetime import datetime

ENTRA = "entra"
KEY = "key"

HIGH = "high"
MEDIUM = "medium"
LOW = "low"


@dataclass(frozen=True, slots=True)
class FailureSignal:
    """One failure, or a group of identical failures summarized by a source.

    Every field but `status` may be unknown (None): log rows, alert payloads and pasted error texts
    each carry a different subset.
    """

    status: int
    code: str | None = None
    message: str | None = None
    object_id: str | None = None  # caller's Entra object id; None/"" for key callers
    auth: str | None = None  # ENTRA | KEY | None
    endpoint: str | None = None  # full URL, or just a host
    route: str | None = None  # URL path or an API name such as "Azure OpenAI API version ..."
    operation: str | None = None  # log OperationName, e.g. ChatCompletions_Create
    resource_id: str | None = None  # target account (or project) ARM id
    principal_type: str | None = None  # User | ServicePrincipal | Group when known
    count: int = 1
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    source: str | None = None  # where it came from: "logs:<ws>", "appinsights:<ws>", "apim:<ws>", "event", "http"
    # How many of `count` rows fall in the re-read overlap before the source's watermark (scans re-read that
    # span to catch late-ingested rows). Lets the incident lifecycle avoid counting those rows twice.
    overlap_count: int = 0


@dataclass(frozen=True, slots=True)
class RoleAssignmentEvidence:
    """A role assignment that applies to the caller at the target resource (or above it)."""

    role_definition_id: str  # GUID or full id
    scope: str
    principal_id: str | None = None
    principal_type: str | None = None
    created_on: datetime | None = None
    via_group: bool = False  # held through a group the caller is a member of
    assignment_id: str | None = None
    description: str | None = None


@dataclass(frozen=True, slots=True)
class ResourceEvidence:
    """Settings of the target Cognitive Services / Foundry account (from ARM)."""

    resource_id: str
    kind: str | None = None  # OpenAI | AIServices | CognitiveServices | ...
    endpoint: str | None = None
    custom_subdomain: str | None = None
    disable_local_auth: bool | None = None
    public_network_access: str | None = None  # Enabled | Disabled
    network_default_action: str | None = None  # Allow | Deny
    ip_rules: tuple[str, ...] = ()
    virtual_network_rules: tuple[str, ...] = ()
    private_endpoints: int = 0
    projects: tuple[str, ...] = ()  # project resource ids under the account
    tenant_id: str | None = None
    identity_type: str | None = None  # SystemAssigned | UserAssigned | "SystemAssigned, UserAssigned" | None
    identity_principal_id: str | None = None  # the system-assigned identity's principal (object) id
    # The account's ARM tags as (name, value) pairs, sorted: the owner tag (TRIAGE_ROUTING_TAG) routes its tickets.
    tags: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True, slots=True)
class RoleDefinitionEvidence:
    """A role definition read through ARM, for a held role the built-in catalogue does not carry (a custom role,
    or a built-in newer than the catalogue): the diagnosis judges it by these permissions."""

    id: str  # GUID or full role definition id
    name: str = ""
    actions: tuple[str, ...] = ()
    not_actions: tuple[str, ...] = ()
    data_actions: tuple[str, ...] = ()
    not_data_actions: tuple[str, ...] = ()
    custom: bool = True


@dataclass(frozen=True, slots=True)
class Evidence:
    """Live evidence gathered at the edge. `assignments is None` means "not looked up".

    `failed` names the look-ups for this pair that failed (ARM unreachable, throttled past its retries, ...): such
    evidence is degraded, and nothing may be concluded from what is absent in it (an outage never downgrades)."""

    assignments: tuple[RoleAssignmentEvidence, ...] | None = None
    resource: ResourceEvidence | None = None
    principal_type: str | None = None
    principal_name: str | None = None
    failed: tuple[str, ...] = ()
    # Definitions of the held roles the built-in catalogue does not know, read through ARM. A held role with neither
    # is unknown: nothing is concluded from it (the look-up that failed is in `failed`).
    role_definitions: tuple[RoleDefinitionEvidence, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.failed


@dataclass(frozen=True, slots=True)
class FixStep:
    text: str
    doc_url: str | None = None


@dataclass(frozen=True, slots=True)
class Diagnosis:
    cause: str  # a catalogue id from shared.core.causes
    role_fixable: bool
    confidence: str  # HIGH | MEDIUM | LOW
    summary: str
    role_name: str | None = None
    role_id: str | None = None  # role definition GUID
    scope: str | None = None  # narrowest scope for the assignment
    surface: str | None = None  # openai | models | project
    evidence: tuple[str, ...] = ()
    fix_command: str | None = None
    fix_steps: tuple[FixStep, ...] = field(default_factory=tuple)

    @classmethod
    def fast(
        cls,
        cause: str,
        role_fixable: bool,
        confidence: str,
        summary: str,
        role_name: str | None,
        role_id: str | None,
        scope: str | None,
        surface: str | None,
        evidence: tuple[str, ...],
        fix_command: str | None,
        fix_steps: tuple[FixStep, ...],
    ) -> Diagnosis:
        """The same value as the constructor, built without the frozen dataclass's per-field object.__setattr__
        (about 1 us of the engine's ~10 us per signal): each slot is set through its own descriptor. Every field
        is set, so the result is indistinguishable."""
        self = object.__new__(cls)
        (set_cause, set_fixable, set_confidence, set_summary, set_role_name, set_role_id, set_scope, set_surface,
         set_evidence, set_fix_command, set_fix_steps) = _DIAGNOSIS_SETTERS
        set_cause(self, cause)
        set_fixable(self, role_fixable)
        set_confidence(self, confidence)
        set_summary(self, summary)
        set_role_name(self, role_name)
        set_role_id(self, role_id)
        set_scope(self, scope)
        set_surface(self, surface)
        set_evidence(self, evidence)
        set_fix_command(self, fix_command)
        set_fix_steps(self, fix_steps)
        return self

    def to_classify_json(self) -> dict:
        """The stable `classify` output contract."""
        return {
            "cause": self.cause,
            "role_fixable": self.role_fixable,
            "role": self.role_name,
            "role_id": self.role_id,
            "confidence": self.confidence,
            "summary": self.summary,
        }

    @classmethod
    def from_json(cls, data: dict) -> Diagnosis:
        """The inverse of `to_json` (records written by earlier versions may lack fields: they get defaults)."""
        return cls(
            cause=data.get("cause", "unknown"),
            role_fixable=bool(data.get("role_fixable")),
            confidence=data.get("confidence", LOW),
            summary=data.get("summary", ""),
            role_name=data.get("role"),
            role_id=data.get("role_id"),
            scope=data.get("scope"),
            surface=data.get("surface"),
            evidence=tuple(data.get("evidence") or ()),
            fix_command=data.get("fix_command"),
            fix_steps=tuple(FixStep(s.get("text", ""), s.get("doc_url")) for s in data.get("fix_steps") or ()),
        )

    def to_json(self) -> dict:
        out = self.to_classify_json()
        out.update(
            scope=self.scope,
            surface=self.surface,
            evidence=list(self.evidence),
            fix_command=self.fix_command,
            fix_steps=[{"text": s.text, "doc_url": s.doc_url} for s in self.fix_steps],
        )
        return out


# The slot descriptors' setters, in field order, for Diagnosis.fast.
_DIAGNOSIS_SETTERS = tuple(vars(Diagnosis)[f.name].__set__ for f in fields(Diagnosis))
