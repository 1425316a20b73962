"""What the stand-in writes where Azure's documentation is silent: the scenario switches of the log shape.

By default a RequestResponse row carries only documented columns and `properties_s` keys (docs/localazure.md,
"Rows written"). The switches choose an answer for what is not documented, so the service is tested both ways:

- `rejections_logged`: do requests rejected by the network, authentication or authorization checks (every 401
  and 403, and the 400 tenant mismatch) write a RequestResponse row at all? (UNCONFIRMED in Azure.)
- `foundry_api_names`: the `apiName` of the Foundry `/models` and `/api/projects/{p}` routes. "surface" names the
  surface ("Azure AI Model Inference API", "Azure AI Foundry Projects API"); "openai" writes what the `/openai`
  routes write ("Azure OpenAI API version ..."), so the row cannot tell the surfaces apart. (UNCONFIRMED.)
- `extra_properties`: undocumented `properties_s` keys to add, only to test that the service tolerates them
  (never in the demo or the benchmarks).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

SURFACE_NAMES = "surface"
OPENAI_NAMES = "openai"
FOUNDRY_API_NAMES = (SURFACE_NAMES, OPENAI_NAMES)
# Keys an earlier stand-in wrote that real rows do not carry.
EXTRA_PROPERTIES = ("errorCode", "errorMessage", "requestPath")


@dataclass(frozen=True)
class LogShape:
    rejections_logged: bool = True
    foundry_api_names: str = SURFACE_NAMES
    extra_properties: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.foundry_api_names not in FOUNDRY_API_NAMES:
            raise ValueError(f"foundry_api_names must be one of {FOUNDRY_API_NAMES}, got {self.foundry_api_names!r}")
        unknown = sorted(set(self.extra_properties) - set(EXTRA_PROPERTIES))
        if unknown:
            raise ValueError(f"unknown extra properties {unknown}; known: {list(EXTRA_PROPERTIES)}")
        if not isinstance(self.rejections_logged, bool):
            raise ValueError("rejections_logged must be true or false")


KEYS = frozenset(f.name for f in fields(LogShape))


def log_shape_from(raw: dict[str, Any]) -> LogShape:
    """The scenario's `settings.log_shape` object (every key optional)."""
    unknown = sorted(set(raw) - KEYS)
    if unknown:
        raise ValueError(f"settings.log_shape: unknown keys {unknown}; allowed: {sorted(KEYS)}")
    values = dict(raw)
    if "extra_properties" in values:
        values["extra_properties"] = tuple(values["extra_properties"])
    return LogShape(**values)
