"""The layers as the imports really are (docs/architecture.md): every import in shared/, at module level or inside a
function, read from the source, checked against what its layer may import.

Run it alone as the import-graph check: `python -m pytest tests/test_layers.py -q`.
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "shared"
PROJECT_PACKAGES = ("shared", "localazure", "bench", "tests")

# What each layer may not import (prefix match on the dotted name).
FORBIDDEN = {
    "shared.core": ("shared.engine", "shared.bootstrap", "shared.adapters", "shared.state", "shared.tickets",
                    "shared.settings", "shared.cli", "localazure", "bench", "tests"),
    "shared.adapters": ("shared.engine", "shared.bootstrap", "localazure", "bench", "tests"),
    "shared.state": ("shared.engine", "shared.bootstrap", "shared.adapters", "shared.tickets", "localazure", "bench",
                     "tests"),
    "shared.tickets": ("shared.engine", "shared.bootstrap", "shared.adapters", "shared.state", "localazure", "bench",
                       "tests"),
    # The engine reaches Azure and telemetry only through its ports: no SDK, not even OpenTelemetry's API.
    "shared.engine": ("shared.bootstrap", "shared.adapters", "shared.state", "shared.tickets", "localazure", "bench",
                      "tests", "azure", "opentelemetry"),
}
# Narrow exceptions to FORBIDDEN: the engine words its tickets with the ticket content.
ALLOWED = {"shared.engine": ("shared.tickets.content",)}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(source: str) -> list[tuple[str, tuple[str, ...], int]]:
    """(module, imported names, line) for every absolute import statement in the source."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(alias.name, (), node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, tuple(alias.name for alias in node.names), node.lineno))
    return found


def layer_of(module: str) -> str | None:
    return next((layer for layer in FORBIDDEN if module == layer or module.startswith(layer + ".")), None)


def violations(me: str, source: str) -> list[str]:
    """What in `source` (the text of module `me`) breaks its layer's rules."""
    layer = layer_of(me)
    if layer is None:
        return []
    problems = []
    for module, names, line in imports_of(source):
        # `from shared import bootstrap` imports the module shared.bootstrap: check both spellings.
        targets = [module, *(f"{module}.{name}" for name in names)]
        allowed = ALLOWED.get(layer, ())
        if any(t == a or t.startswith(a + ".") for t in targets[:1] for a in allowed):
            continue
        if any(t == f or t.startswith(f + ".") for t in targets for f in FORBIDDEN[layer]):
            problems.append(f"{me}:{line} imports {module} {names} ({layer} may not)")
        top = module.split(".")[0]
        if layer == "shared.core" and top != "shared" and top not in sys.stdlib_module_names:
            problems.append(f"{me}:{line} imports {module}: the core imports only itself and the standard library")
        if layer == "shared.core" and top == "shared" and not any(t.startswith("shared.core") for t in targets):
            problems.append(f"{me}:{line} imports {module} {names}: outside the core")
    return problems


SOURCES = sorted(PACKAGE.rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_each_module_imports_only_what_its_layer_may(path: Path) -> None:
    assert violations(module_name(path), path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize(("me", "source"), [
    ("shared.core.probe", "from shared.engine.runtime import Runtime\n"),
    ("shared.core.probe", "def f():\n    import azure.core\n"),
    ("shared.core.probe", "from shared import settings\n"),
    ("shared.adapters.probe", "from shared import bootstrap\n"),
    ("shared.state.probe", "def f():\n    from shared.engine.unit_of_work import RunState\n"),
    ("shared.tickets.probe", "from shared.engine import ticketing\n"),
    ("shared.engine.probe", "from shared.adapters.azure import AzureClients\n"),
    ("shared.engine.probe", "from shared.state.sqlite import SqliteStore\n"),
    ("shared.engine.probe", "from shared.tickets.github import GitHubIssuesSink\n"),
    ("shared.engine.probe", "def f():\n    from opentelemetry import trace\n"),
    ("shared.engine.probe", "import azure.core.exceptions\n"),
])
def test_the_rules_catch_a_wrong_import(me: str, source: str) -> None:
    assert violations(me, source)


@pytest.mark.parametrize("path", [*SOURCES, *sorted((ROOT / "localazure").rglob("*.py")),
                                  *sorted((ROOT / "bench").rglob("*.py")), ROOT / "function_app.py"],
                         ids=lambda p: str(p.relative_to(ROOT)))
def test_no_module_imports_another_modules_private_name(path: Path) -> None:
    private = [f"{module}.{name}" for module, names, _ in imports_of(path.read_text(encoding="utf-8"))
               if module.split(".")[0] in PROJECT_PACKAGES for name in names if name.startswith("_")]
    assert private == []


def test_the_composition_root_is_the_only_builder_of_the_runtime() -> None:
    """Entry points get their runtime from shared.bootstrap; nothing else constructs Runtime(...)."""
    builders = []
    for path in [*SOURCES, ROOT / "function_app.py", *sorted((ROOT / "localazure").rglob("*.py")),
                 *sorted((ROOT / "bench").rglob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", None)) == "Runtime":
                builders.append(module_name(path))
    assert builders == ["shared.bootstrap"]


# What an instance must not pay for at import (the service, the Azure SDK clients, their HTTP stack, the stores):
# each comes with the first invocation that needs it.
HEAVY_AT_IMPORT = ("shared", "azure.core", "azure.mgmt", "azure.monitor", "azure.identity", "azure.data",
                   "requests", "urllib3", "sqlite3", "opentelemetry")


def _modules_loaded_by(statement: str, after: str) -> list[str]:
    """The modules a fresh interpreter has loaded by `statement` beyond those `after` had loaded."""
    import subprocess

    probe = (f"import sys\n{after}\nbefore = set(sys.modules)\n{statement}\n"
             "print('\\n'.join(sorted(set(sys.modules) - before)))")
    done = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True)
    return done.stdout.split()


@pytest.mark.slow  # two fresh interpreters
def test_importing_the_function_app_loads_nothing_but_itself_beyond_the_functions_library() -> None:
    assert _modules_loaded_by("import function_app", after="import azure.functions") == ["function_app"]
    heavy = [m for m in _modules_loaded_by("import function_app", after="")
             if any(m == h or m.startswith(h + ".") for h in HEAVY_AT_IMPORT)]
    assert heavy == []
