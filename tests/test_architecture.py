"""The import graph: no cycles, every arrow toward domain/, no project import inside a function.

The layers, top to bottom: ``hosts`` (the ``vip`` command and the processes it
runs), ``consumers`` (Kafka consumers and stream processors), ``infra``
(services, stores, bus, CLI and API), ``projections`` and ``schemas``,
``domain``. ``bench`` may import anything; nothing imports ``hosts`` but
``bench`` and the tests.
"""
from __future__ import annotations

import ast
import dataclasses
import sys
from pathlib import Path

import pytest

from infra.service_layer import handlers

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("domain", "projections", "schemas", "infra", "consumers", "hosts", "bench")
# Which project packages each layer may import (besides itself).
ALLOWED = {
    "domain": set(),
    "projections": {"domain"},
    "schemas": {"domain"},
    "infra": {"domain", "projections", "schemas"},
    "consumers": {"domain", "projections", "schemas", "infra"},
    "hosts": {"domain", "projections", "schemas", "infra", "consumers"},
    "bench": {"domain", "projections", "schemas", "infra", "consumers", "hosts"},
}
# Production code never imports the development tools (broker launcher, demo, simulator);
# only entry points (the CLI's and the hosts' dev commands), tests and benchmarks do.
DEV = "infra.dev"
MAY_IMPORT_DEV = ("infra.cli", "infra.dev", "hosts", "bench")


def _modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


MODULES = _modules()


def _resolve(name: str) -> str | None:
    """The project module an import names (``a.b.c`` may be a module or a name in ``a.b``)."""
    while name:
        if name in MODULES:
            return name
        name = name.rpartition(".")[0]
    return None


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(imported project module, imported at module level?) for every import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(node) for node in tree.body}
    for node in tree.body:  # `if TYPE_CHECKING:` blocks count as module level
        if isinstance(node, ast.If):
            top |= {id(child) for child in node.body}
    out = []
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            target = _resolve(name)
            if target:
                out.append((target, id(node) in top))
    return out


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def test_no_project_import_inside_a_function():
    inside = sorted(f"{name} imports {target}" for name, edges in GRAPH.items()
                    for target, at_top in edges if not at_top)
    assert inside == []


def test_every_arrow_points_toward_domain():
    wrong = []
    for name, edges in GRAPH.items():
        layer = name.split(".")[0]
        for target, _ in edges:
            other = target.split(".")[0]
            if other != layer and other not in ALLOWED[layer]:
                wrong.append(f"{name} -> {target}")
            if target.startswith(DEV) and not name.startswith(MAY_IMPORT_DEV):
                wrong.append(f"{name} -> {target} (development tools)")
    assert wrong == []


def test_infra_never_imports_consumers_or_hosts_and_only_benchmarks_import_hosts():
    """The arrows that kept being drawn upward (issue 18): infra is below the consumers and the
    process hosts, and a host is an entry point, never a library."""
    upward = sorted(f"{name} -> {target}" for name, edges in GRAPH.items() for target, _ in edges
                    if (name.split(".")[0] == "infra" and target.split(".")[0] in ("consumers", "hosts"))
                    or (target.split(".")[0] == "hosts" and name.split(".")[0] not in ("hosts", "bench")))
    assert upward == []


def test_every_package_of_the_repository_is_a_layer():
    """A new top-level package is given its place in ALLOWED, or its imports go unchecked."""
    packages = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests"}
    assert packages == set(PACKAGES) == set(ALLOWED)


def test_domain_imports_only_the_standard_library_and_eventsourcing_domain():
    stdlib = set(sys.stdlib_module_names) | {"__future__"}
    bad = []
    for name, path in MODULES.items():
        if not name.startswith("domain"):
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            mods = [a.name for a in node.names] if isinstance(node, ast.Import) else (
                [node.module] if isinstance(node, ast.ImportFrom) and node.level == 0 else [])
            for mod in mods:
                root = mod.split(".")[0]
                if root not in stdlib and root != "domain" and mod != "eventsourcing.domain":
                    bad.append(f"{name} imports {mod}")
    assert bad == []


def test_the_import_graph_has_no_cycle():
    edges = {name: {t for t, _ in targets if t != name} for name, targets in GRAPH.items()}
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for nxt in sorted(edges.get(node, ())):
            # A package's __init__ importing its own submodules is not a cycle of concern.
            if nxt.startswith(node + "."):
                continue
            if state.get(nxt) == 1:
                cycles.append(" -> ".join(trail[trail.index(nxt):] + [nxt]) if nxt in trail else nxt)
            elif nxt not in state:
                visit(nxt, trail + [nxt])
        state[node] = 2

    for module in sorted(edges):
        if module not in state:
            visit(module, [module])
    assert cycles == []


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.startswith("bench")))
def test_modules_stay_short(name):
    lines = MODULES[name].read_text(encoding="utf-8").count("\n")
    assert lines <= LIMIT.get(name, 400), f"{name} has {lines} lines"


# Modules still over the house limit, with the size they may not grow past (to be split).
LIMIT: dict[str, int] = {"domain.member": 530, "domain.contract": 480}


def _dispatch_tables(path: Path) -> list[str]:
    """Module-level dicts in ``path`` whose values call the application or a unit of work (``uow.<service>(…)``):
    a dispatch table from some key to application services."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for node in tree.body:
        targets = node.targets if isinstance(node, ast.Assign) else \
            [node.target] if isinstance(node, ast.AnnAssign) else []
        value = getattr(node, "value", None)
        if not isinstance(value, ast.Dict):
            continue
        calls_app = any(isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
                        and isinstance(n.func.value, ast.Name) and n.func.value.id in ("app", "uow")
                        for v in value.values for n in ast.walk(v))
        if calls_app:
            found += [t.id for t in targets if isinstance(t, ast.Name)]
    return found


def test_one_module_maps_command_types_to_handlers():
    """Commands are dispatched in one place (docs/decisions/0010-command-path.md)."""
    tables = {name: found for name, path in MODULES.items() if (found := _dispatch_tables(path))}
    assert tables == {"infra.service_layer.handlers": ["HANDLERS"]}
    for command in handlers.HANDLERS:
        assert dataclasses.is_dataclass(command) and command.__dataclass_params__.frozen, command
