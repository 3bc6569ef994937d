"""The package's layout: modules a reader can take in at once, imports that point one way."""

from __future__ import annotations

import ast
from pathlib import Path

import promisesim

PACKAGE = Path(promisesim.__file__).parent
#: The longest a module of the package may be, in lines.
MAX_LINES = 800


def _modules() -> dict[str, Path]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """Modules of the package that ``name`` imports, at any depth of its code (a lazy import
    inside a function is still an arrow). ``from package import name`` counts as importing
    the submodule when there is one, else the package."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base
                       for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in modules and t != name)
    return found


def _cycle(graph: dict[str, set[str]]) -> list[str]:
    state: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> list[str]:
        if state.get(node) == 2:
            return []
        if state.get(node) == 1:
            return stack[stack.index(node):] + [node]
        state[node] = 1
        for nxt in sorted(graph[node]):
            found = visit(nxt, stack + [node])
            if found:
                return found
        state[node] = 2
        return []

    for node in sorted(graph):
        found = visit(node, [])
        if found:
            return found
    return []


def test_no_module_is_longer_than_a_sitting():
    long = {name: n for name, path in _modules().items()
            if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"


def test_imports_between_the_packages_modules_have_no_cycle():
    """Arrows point one way. The package's own ``__init__`` modules re-export their
    submodules' names, so an arrow from a submodule back to its package (``from . import
    __version__``) is left out: only the arrows between modules of code count."""
    modules = _modules()
    graph = {name: {t for t in _imports(name, path, modules)
                    if not (modules[t].name == "__init__.py" and name.startswith(t + "."))}
             for name, path in modules.items()}
    assert _cycle(graph) == []


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) == []


def test_the_vector_engine_is_a_package_by_stage_that_imports_nothing_back():
    modules = _modules()
    stages = {"states", "arrivals", "routing", "queues", "records", "windows"}
    found = {n.rpartition(".")[2] for n in modules if n.startswith("promisesim.engines.vector.")}
    assert stages <= found
    engine = "promisesim.engines.vector.engine"
    for name, path in modules.items():
        if name.startswith("promisesim.engines.vector.") and name != engine:
            assert engine not in _imports(name, path, modules), name
