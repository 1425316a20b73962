"""The infrastructure as parsed data: every `.bicep` file under infra/ read with pycep-parser (offline; no Bicep
compiler), and small look-ups over what it returns.

pycep gives each file as {"parameters", "variables", "resources", "modules", "outputs", ...}; a resource is
{"type", "api_version", "config"}, and a looped or conditional one nests its body under config["config"].
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from tests.support.paths import REPO_ROOT

INFRA = REPO_ROOT / "infra"


@dataclass(frozen=True)
class Resource:
    file: str  # relative to infra/
    symbol: str
    type: str
    body: dict[str, Any]  # the resource's object (name, scope, properties, ...), loop or condition unwrapped
    condition: Any  # the deploy condition (`if (...)`) or None


def bicep_files() -> list[Path]:
    return sorted(INFRA.rglob("*.bicep"))


@cache
def parsed(relative: str) -> dict[str, Any]:
    from pycep import BicepParser

    return BicepParser().parse(file_path=INFRA / relative)


def relative(path: Path) -> str:
    return path.relative_to(INFRA).as_posix()


def _unwrap(config: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    if "loop_type" in config or "condition" in config:
        return config["config"], config.get("condition")
    return config, None


def resources(resource_type: str | None = None, *, existing: bool = False) -> Iterator[Resource]:
    """The resources the template declares (with `existing`, also those it only refers to)."""
    for path in bicep_files():
        for symbol, resource in parsed(relative(path)).get("resources", {}).items():
            if resource.get("existing") and not existing:
                continue
            if resource_type is None or resource["type"].lower() == resource_type.lower():
                body, condition = _unwrap(resource["config"])
                yield Resource(relative(path), symbol, resource["type"], body, condition)


def modules(file: str) -> dict[str, tuple[dict[str, Any], Any, str]]:
    """symbol -> (body, condition, module path) of the modules a file deploys."""
    out = {}
    for symbol, module in parsed(file).get("modules", {}).items():
        body, condition = _unwrap(module["config"])
        out[symbol] = (body, condition, module["detail"]["path"])
    return out


def parameters(file: str) -> dict[str, Any]:
    return parsed(file).get("parameters", {})


def variable(file: str, name: str) -> Any:
    return parsed(file)["variables"][name]["value"]


def text_of(value: Any) -> str:
    """Any parsed value as one searchable text."""
    return json.dumps(value, sort_keys=True)


def parameter_file() -> dict[str, Any]:
    return json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
