"""The layers of docs/architecture.md, checked from the source: who may import whom.

Every module's imports are read with ``ast`` (imports inside functions and under
``TYPE_CHECKING`` count too: a layer that needs another only for types still depends on it), so
the check runs in a second and needs nothing installed. A failure names the module, the line
and the import, and the rule it breaks.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.helpers.paths import REPO

# What is scanned: the installed package, the worker's own modules and the benchmarks (which
# run on top of the worker like an operator, not below the CLI). tests/ is a harness over
# everything and may import anything.
SCANNED_PACKAGES = ("meshfleet", "workflows", "activities", "bench")
SCANNED_MODULES = ("worker.py",)

# HTTP clients and servers: none of them belongs in a deterministic workflow.
HTTP_LIBRARIES = (
    "aiohttp",
    "requests",
    "httpx",
    "urllib3",
    "yarl",
    "http.client",
    "http.server",
    "urllib.request",
)
# What may import the CLI: the CLI itself, the dev stack that sits beside it, and the
# ``python -m meshfleet`` entry point.
ABOVE_THE_CLI = ("meshfleet.cli", "meshfleet.dev", "meshfleet.__main__")


def within(name: str, *prefixes: str) -> bool:
    """Whether the dotted ``name`` is one of ``prefixes`` or inside one of them."""
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes)


@dataclass(frozen=True)
class Import:
    """One imported name, as the importing module wrote it, resolved to an absolute name."""

    module: str
    name: str
    line: int


@dataclass(frozen=True)
class Rule:
    """Modules that ``applies`` to must not import a name that ``forbids``."""

    text: str
    applies: Callable[[str], bool]
    forbids: Callable[[str, str], bool]


RULES = (
    Rule(
        "meshfleet.asm and meshfleet.simulator know nothing of Temporal",
        lambda module: within(module, "meshfleet.asm", "meshfleet.simulator"),
        lambda module, name: within(name, "temporalio"),
    ),
    Rule(
        "workflows/ know nothing of HTTP",
        lambda module: within(module, "workflows"),
        lambda module, name: within(name, *HTTP_LIBRARIES),
    ),
    Rule(
        "workflows/ never reach the ASM API or the simulator (activities do)",
        lambda module: within(module, "workflows"),
        lambda module, name: within(name, "meshfleet.asm", "meshfleet.simulator"),
    ),
    Rule(
        "nothing below the CLI imports meshfleet.cli",
        lambda module: not within(module, *ABOVE_THE_CLI),
        lambda module, name: within(name, "meshfleet.cli"),
    ),
    Rule(
        "meshfleet.asm stands alone: nothing of meshfleet outside meshfleet.asm",
        lambda module: within(module, "meshfleet.asm"),
        lambda module, name: within(name, "meshfleet") and not within(name, "meshfleet.asm"),
    ),
)


def module_name(path: Path, root: Path) -> tuple[str, bool]:
    """The dotted name of the module at ``path``, and whether it is a package's ``__init__``."""
    parts = list(path.relative_to(root).with_suffix("").parts)
    is_package = parts[-1] == "__init__"
    if is_package:
        parts.pop()
    return ".".join(parts), is_package


def imports_of(module: str, source: str, *, is_package: bool = False) -> list[Import]:
    """Every name ``source`` imports, relative imports resolved against ``module``.

    ``from a import b`` yields ``a.b``: ``b`` may be a submodule, and a rule about ``a.b``
    must see it.
    """
    found: list[Import] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [Import(module, alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module if is_package else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{base}" if base else package
            found += [Import(module, base, node.lineno)]
            found += [
                Import(module, f"{base}.{alias.name}", node.lineno)
                for alias in node.names
                if alias.name != "*"
            ]
    return found


def violations(imports: Iterable[Import], rules: Iterable[Rule] = RULES) -> list[str]:
    """One line per broken rule: module, line, import and the rule."""
    found: list[str] = []
    rules = list(rules)
    for imp in imports:
        for rule in rules:
            if rule.applies(imp.module) and rule.forbids(imp.module, imp.name):
                line = f"{imp.module}:{imp.line} imports {imp.name}: {rule.text}"
                if line not in found:
                    found.append(line)
    return found


def sources(root: Path = REPO) -> Iterator[tuple[str, bool, str]]:
    """(module, is_package, source) of every scanned module."""
    paths = [root / name for name in SCANNED_MODULES]
    for package in SCANNED_PACKAGES:
        paths += sorted((root / package).rglob("*.py"))
    for path in paths:
        name, is_package = module_name(path, root)
        yield name, is_package, path.read_text()


def import_graph(
    modules: Iterable[tuple[str, bool, str]],
) -> dict[str, list[Import]]:
    """Each scanned module's imports."""
    return {
        name: imports_of(name, source, is_package=is_package)
        for name, is_package, source in modules
    }


def reached_http(graph: Mapping[str, list[Import]], start: str) -> list[str] | None:
    """The chain of first-party imports by which ``start`` loads an HTTP library, if any.

    The workflow sandbox loads everything a workflow module imports, so an HTTP library two
    modules away is as much inside it as one imported directly.
    """
    chain: dict[str, list[str]] = {start: [start]}
    queue = [start]
    while queue:
        module = queue.pop(0)
        for imp in graph.get(module, []):
            if within(imp.name, *HTTP_LIBRARIES):
                return [*chain[module], imp.name]
            # A name may be a module, a package or something defined in one: each package on
            # the way is imported too.
            parts = imp.name.split(".")
            for end in range(1, len(parts) + 1):
                target = ".".join(parts[:end])
                if target in graph and target not in chain:
                    chain[target] = [*chain[module], target]
                    queue.append(target)
    return None


# --- the repository keeps its layers ---------------------------------------------------------


def test_every_module_keeps_to_its_layer() -> None:
    graph = import_graph(sources())
    assert "meshfleet.asm.client" in graph  # the scan found the code
    found = violations(imp for imports in graph.values() for imp in imports)
    assert not found, "layer rules broken (docs/architecture.md):\n" + "\n".join(found)


def test_no_workflow_module_loads_http_through_another() -> None:
    graph = import_graph(sources())
    chains = [
        " -> ".join(chain)
        for module in graph
        if within(module, "workflows") and (chain := reached_http(graph, module)) is not None
    ]
    assert not chains, "workflows reach an HTTP library:\n" + "\n".join(chains)


# --- the checker itself ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("module", "source", "expected"),
    [
        (
            "meshfleet.asm.client",
            "import temporalio.client\n",
            "meshfleet.asm.client:1 imports temporalio.client: meshfleet.asm and "
            "meshfleet.simulator know nothing of Temporal",
        ),
        (
            "meshfleet.simulator.app",
            "def f():\n    from temporalio import workflow\n",
            "meshfleet.simulator.app:2 imports temporalio",
        ),
        ("workflows.rollout", "from aiohttp import web\n", "workflows/ know nothing of HTTP"),
        ("workflows.rollout", "import urllib.request\n", "workflows/ know nothing of HTTP"),
        (
            "workflows.rollout",
            "from meshfleet.asm.client import AsmClient\n",
            "workflows.rollout:1 imports meshfleet.asm.client: workflows/ never reach the ASM",
        ),
        (
            "activities.mesh",
            "from meshfleet.cli import exit_codes\n",
            "activities.mesh:1 imports meshfleet.cli: nothing below the CLI",
        ),
        (
            "meshfleet.models",
            "from .cli.output import report_document\n",
            "meshfleet.models:1 imports meshfleet.cli.output",
        ),
        (
            "meshfleet.asm.client",
            "from ..models import MeshTarget\n",
            "meshfleet.asm.client:1 imports meshfleet.models: meshfleet.asm stands alone",
        ),
        (
            "meshfleet.asm.auth",
            "from meshfleet import __version__\n",
            "meshfleet.asm.auth:1 imports meshfleet.__version__: meshfleet.asm stands alone",
        ),
    ],
)
def test_the_checker_catches_a_violation(module: str, source: str, expected: str) -> None:
    found = violations(imports_of(module, source))

    assert any(line.startswith(expected) or expected in line for line in found), found


@pytest.mark.parametrize(
    ("module", "source"),
    [
        ("meshfleet.asm.client", "from meshfleet.asm.models import Mesh\nimport aiohttp\n"),
        ("meshfleet.asm.client", "from . import models\nfrom .errors import AsmError\n"),
        ("workflows.rollout", "from meshfleet.models import TargetOutcome\n"),
        ("meshfleet.cli.app", "from meshfleet.cli.output import plan_table\n"),
        ("meshfleet.dev.demo", "from meshfleet.cli.exit_codes import ExitCode\n"),
        ("meshfleet.__main__", "from meshfleet.cli.app import main\n"),
        ("activities.mesh", "from meshfleet.asm.client import AsmClient\n"),
    ],
)
def test_the_checker_allows_what_the_layers_allow(module: str, source: str) -> None:
    assert violations(imports_of(module, source)) == []


def test_the_checker_follows_an_import_chain_to_http() -> None:
    graph = import_graph(
        [
            ("workflows.rollout", False, "from meshfleet.models import X\n"),
            ("meshfleet", True, ""),
            ("meshfleet.models", False, "from meshfleet.asm.models import Y\n"),
            ("meshfleet.asm", True, "import aiohttp\n"),
            ("meshfleet.asm.models", False, ""),
        ]
    )

    assert reached_http(graph, "workflows.rollout") == [
        "workflows.rollout",
        "meshfleet.models",
        "meshfleet.asm",
        "aiohttp",
    ]
