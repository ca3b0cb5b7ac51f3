"""The package's layers, enforced: a module imports only from its own layer or lower ones,
and no two modules import each other, directly or around a loop.

    cli  >  api, view  >  reports  >  engine  >  probes, store  >  http  >  protocols  >  keys  >  config  >  base

Every import counts: those inside functions (kept lazy for start-up speed) and those inside
``if TYPE_CHECKING:`` too, since a type-only cycle still ties two modules together (neither reads
without the other). The package itself (runner/__init__.py, the public API) sits on top: it
re-exports names from every layer, so nothing inside imports it (``__version__`` is runner/version.py).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

RUNNER = Path(__file__).resolve().parent.parent / "runner"

# Lowest first. A module's layer is the first prefix of its dotted name found here.
LAYERS: list[tuple[str, ...]] = [
    ("runner.errors", "runner.paths", "runner.resources", "runner.private_files", "runner.version"),
    ("runner.config",),
    ("runner.keys",),
    ("runner.protocols",),
    ("runner.http",),
    ("runner.probes", "runner.store"),
    ("runner.engine",),
    ("runner.reports",),
    ("runner.api", "runner.ask", "runner.view"),
    ("runner.cli", "runner.__main__"),
]


def layer_of(module: str) -> int:
    if module == "runner":  # the public API: above everything it re-exports
        return len(LAYERS)
    best: tuple[int, int] | None = None  # (prefix length, layer)
    for level, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                best = (len(prefix), level)
    assert best is not None, f"{module} is in no layer; add it to LAYERS in {__file__}"
    return best[1]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(RUNNER.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path) -> set[str]:
    """The runner modules ``path`` imports (resolved; lazy and type-only imports included)."""
    module = module_name(path)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    tree = ast.parse(path.read_text(), str(path))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                source = ".".join(base + ([node.module] if node.module else []))
            else:
                source = node.module or ""
            if not source.startswith("runner"):
                continue
            for alias in node.names:  # "from . import x" may name a module
                candidate = f"{source}.{alias.name}"
                found.add(candidate if _exists(candidate) else source)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("runner"))
    return {m for m in found if m != module}


def _exists(module: str) -> bool:
    path = RUNNER.parent / module.replace(".", "/")
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


# Type-only imports that close a cycle today, in modules the lifecycle work of issue 16 is rewriting:
# each goes when its cycle does (a test below says when), and nothing is added.
BEING_REMOVED: set[tuple[str, str]] = set()

MODULES = {module_name(p): p for p in sorted(RUNNER.rglob("*.py")) if "_data" not in p.parts}
FOUND = {name: imports_of(path) for name, path in MODULES.items()}
GRAPH = {name: {dep for dep in deps if (name, dep) not in BEING_REMOVED} for name, deps in FOUND.items()}


@pytest.mark.parametrize("module", sorted(MODULES))
def test_imports_only_from_its_own_or_lower_layers(module: str) -> None:
    upward = sorted(m for m in GRAPH[module] if layer_of(m) > layer_of(module))
    assert not upward, f"{module} (layer {layer_of(module)}) imports from a higher layer: {upward}"


def test_no_import_cycles() -> None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        path.append(module)
        for dep in sorted(GRAPH.get(module, ())):
            if dep not in MODULES:
                continue
            if state.get(dep) == 1:
                loop = path[path.index(dep):] + [dep]
                raise AssertionError("import cycle: " + " -> ".join(loop))
            if dep not in state:
                visit(dep)
        path.pop()
        state[module] = 2

    for module in sorted(MODULES):
        if module not in state:
            visit(module)


def test_the_layer_test_sees_a_wrong_way_import(tmp_path: Path) -> None:
    """A store module importing the engine would be caught (the check is not vacuous)."""
    bad = RUNNER / "store" / "_layer_probe.py"
    bad.write_text("from ..engine import scheduler\n")
    try:
        found = imports_of(bad)
    finally:
        bad.unlink()
    assert "runner.engine.scheduler" in found
    assert layer_of("runner.engine.scheduler") > layer_of("runner.store._layer_probe")


def test_the_layer_test_sees_a_type_only_import() -> None:
    """A cycle through ``if TYPE_CHECKING:`` is a cycle: such imports are counted."""
    bad = RUNNER / "store" / "_layer_probe_types.py"
    bad.write_text("from typing import TYPE_CHECKING\n\nif TYPE_CHECKING:\n    from ..engine.scheduler import Engine\n")
    try:
        found = imports_of(bad)
    finally:
        bad.unlink()
    assert "runner.engine.scheduler" in found


def test_each_import_being_removed_is_still_there() -> None:
    gone = sorted(edge for edge in BEING_REMOVED if edge[1] not in FOUND.get(edge[0], set()))
    assert not gone, f"these cycles are gone: delete them from BEING_REMOVED in {__file__}: {gone}"
