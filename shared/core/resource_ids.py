"""Cognitive Services account and Foundry project resource ids, and ARM scopes: the one place that reads them.

    /subscriptions/{s}/resourceGroups/{rg}/providers/Microsoft.CognitiveServices/accounts/{a}[/projects/{p}]

Readings, from the strictest to the most lenient:
- `parse_strict`: the remediation policy's rule (a GUID subscription, ARM's name characters, ASCII only, nothing
  stripped, no trailing slash or extra segment). Only an id that passes it is ever granted a role.
- `parse`: an id a failure is diagnosed against: surrounding whitespace and one trailing slash are dropped,
  keywords match in any case, a name is any non-empty text without "/".
- `enclosing_account` / `account_key`: the normalized account of an account, a project or anything under an
  account (the form AzureDiagnostics rows carry); `account_key` normalizes any other id whole.

A `ResourceId` keeps its names as written (fix commands show the caller's id), and compares, hashes and prints
(`str`) in its normalized, lower-case form, as ARM compares ids case-insensitively.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

_PROJECTS = "/projects/"
_ACCOUNT_WORDS = ("subscriptions", "resourcegroups", "providers", "microsoft.cognitiveservices", "accounts")


@dataclass(frozen=True, eq=False)
class ResourceId:
    """An account id, or the id of a project under an account."""

    subscription: str
    resource_group: str
    account_name: str
    project_name: str | None = None
    text: str = ""  # the id as written; built from the names when not given
    key: str = field(init=False, repr=False)  # the normalized form: str(), equality and hashing

    def __post_init__(self) -> None:
        account = (f"/subscriptions/{self.subscription}/resourcegroups/{self.resource_group}"
                   f"/providers/microsoft.cognitiveservices/accounts/{self.account_name}")
        key = (account if self.project_name is None else f"{account}{_PROJECTS}{self.project_name}").lower()
        object.__setattr__(self, "key", key)
        if not self.text:
            written = (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}"
                       f"/providers/Microsoft.CognitiveServices/accounts/{self.account_name}")
            if self.project_name is not None:
                written += _PROJECTS + self.project_name
            object.__setattr__(self, "text", written)

    def __str__(self) -> str:
        return self.key

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ResourceId) and other.key == self.key

    def __hash__(self) -> int:
        return hash(self.key)

    @property
    def is_project(self) -> bool:
        return self.project_name is not None

    def account(self) -> ResourceId:
        """The account-level id (itself for an account), written as this id writes it."""
        if self.project_name is None:
            return self
        written = self.text[: len(self.text) - len(_PROJECTS) - len(self.project_name)]
        return ResourceId(self.subscription, self.resource_group, self.account_name, text=written)

    def project(self, name: str) -> ResourceId:
        """The id of project `name` under this id's account."""
        account = self.account()
        return ResourceId(self.subscription, self.resource_group, self.account_name, name,
                          text=f"{account.text}{_PROJECTS}{name}")

    def covers(self, other: ResourceId) -> bool:
        """This id is `other` or a parent of it (an account covers its projects), on segment boundaries."""
        return scope_within(other.key, self.key)


def parse(text: object) -> ResourceId | None:
    """An account or project id (see the module doc), or None for anything else."""
    return _parse(text) if isinstance(text, str) else None


@lru_cache(maxsize=8192)  # the same few ids arrive again and again; the values are immutable
def _parse(text: str) -> ResourceId | None:
    written = text.strip()
    if written.endswith("/"):
        written = written[:-1]
    return _from_parts(written.split("/"), written)


def _from_parts(parts: list[str], written: str) -> ResourceId | None:
    # "", subscriptions, s, resourcegroups, rg, providers, microsoft.cognitiveservices, accounts, a[, projects, p]
    if len(parts) not in (9, 11) or parts[0] or not all(parts[2::2]):
        return None
    if (parts[1].lower(), parts[3].lower(), parts[5].lower(), parts[6].lower(), parts[7].lower()) != _ACCOUNT_WORDS:
        return None
    if len(parts) == 11 and parts[9].lower() != "projects":
        return None
    return ResourceId(parts[2], parts[4], parts[8], parts[10] if len(parts) == 11 else None, text=written)


_GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_RESOURCE_GROUP = r"[a-z0-9_()-][a-z0-9_().-]{0,89}(?<!\.)"
_NAME = r"[a-z0-9][a-z0-9_.-]{0,63}(?<!\.)"
# re.ASCII: with IGNORECASE alone, [a-z] would also match look-alikes such as the Kelvin sign.
_STRICT = re.compile(
    rf"/subscriptions/(?P<subscription>{_GUID})/resourcegroups/(?P<group>{_RESOURCE_GROUP})"
    rf"/providers/microsoft\.cognitiveservices/accounts/(?P<account>{_NAME})(?:/projects/(?P<project>{_NAME}))?",
    re.IGNORECASE | re.ASCII,
)


def parse_strict(text: object) -> ResourceId | None:
    """An account or project id by the policy's `resource_scope` rule (see the module doc), or None."""
    if not isinstance(text, str):
        return None
    match = _STRICT.fullmatch(text)
    if match is None:
        return None
    return ResourceId(match["subscription"], match["group"], match["account"], match["project"], text=text)


def is_account_or_project_id(text: object) -> bool:
    """A whole account (or project) id, as `parse` reads it. A failure is diagnosed against it, so the substring
    test used for alert targets (`mentions_account`) is not enough: "/x/providers/Microsoft.CognitiveServices/
    accounts/a" has no subscription to read evidence from."""
    return parse(text) is not None


def mentions_account(text: str) -> bool:
    """The id names a Cognitive Services account somewhere (an alert target: the account, a project, ...)."""
    return "/providers/microsoft.cognitiveservices/accounts/" in text.lower()


def project_name(text: object) -> str | None:
    """The project name of a project id; None for an account id or anything else."""
    resource = parse(text)
    return resource.project_name if resource is not None else None


@lru_cache(maxsize=8192)
def enclosing_account(text: str) -> ResourceId | None:
    """The account, normalized, that an account id, a project id or any id under an account (`.../deployments/d`)
    belongs to; None for any other id."""
    parts = normalize_scope(text).split("/", 9)[:9]  # the first nine segments name the account, if any
    return _from_parts(parts, "/".join(parts))


def account_key(text: str) -> str:
    """The normalized account id `enclosing_account` finds; any other id normalized whole (`normalize_scope`)."""
    account = enclosing_account(text)
    return account.key if account is not None else normalize_scope(text)


# ---- any ARM scope ----------------------------------------------------------------------------------------


def normalize_scope(scope: str) -> str:
    """Any ARM scope (management group, subscription, resource group, resource) as one comparable text."""
    return "/" + scope.strip().strip("/").lower()


def scope_within(target: str, held: str) -> bool:
    """On normalized scopes: `target` is `held` or lies under it on a segment boundary, so account "contoso" never
    holds "contoso-openai". The root "/" holds only itself here; callers that treat it as holding everything say
    so."""
    return target == held or target.startswith(held + "/")


def applies_at(scope: str, target: str) -> bool:
    """A role assigned at `scope` applies at `target` (any ARM scopes): the same scope or a parent of it on a segment
    boundary; the root scope "/" applies everywhere."""
    held = normalize_scope(scope)
    return held == "/" or scope_within(normalize_scope(target), held)


def short_name(resource_id: str | None) -> str:
    """`account` or `account/projects/project` for tables; the last segment of any other id."""
    if not resource_id:
        return "-"
    parsed = parse(resource_id)
    if parsed is None:
        return resource_id.rstrip("/").rsplit("/", 1)[-1] or resource_id
    return parsed.account_name + (f"{_PROJECTS}{parsed.project_name}" if parsed.project_name else "")
