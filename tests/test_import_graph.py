"""The import graph of src/kubernaut_audit has no cycle, counting every import statement:
module level, under ``TYPE_CHECKING`` and inside functions alike."""

from __future__ import annotations

import ast
import functools
from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from pathlib import Path

import kubernaut_audit

PACKAGE = "kubernaut_audit"
ROOT = Path(kubernaut_audit.__file__).parent


def _module_name(path: Path) -> str:
    parts = [PACKAGE, *path.relative_to(ROOT).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in sorted(ROOT.rglob("*.py"))}


def _resolve(importer: str, is_package: bool, node: ast.ImportFrom) -> str:
    if node.level == 0:
        return node.module or ""
    base = importer.split(".")
    if not is_package:
        base.pop()
    if node.level > 1:
        base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


# Parsed once per process: the whole package's syntax trees, several seconds of CPU on a loaded
# machine for each test that asked again.
@functools.cache
def import_graph() -> dict[str, frozenset[str]]:
    """Edges from each module of the package to the package modules its statements import.

    ``from X import name`` points at ``X.name`` when that is a module, else at ``X``. The
    parent packages Python initialises on the way are not edges: every package would otherwise
    sit in a cycle with its own modules.
    """
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                source = _resolve(name, path.name == "__init__.py", node)
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in modules else source)
            graph[name].update(t for t in targets if t in modules and t != name)
    return {name: frozenset(edges) for name, edges in graph.items()}


def find_cycle(graph: Mapping[str, AbstractSet[str]]) -> list[str] | None:
    """One cycle as a path that starts and ends at the same module, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: finished
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)) is not None:
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)) is not None:
            return cycle
    return None


def test_graph_sees_the_package() -> None:
    """The graph covers the package's modules and their imports (the check is not vacuous)."""
    graph = import_graph()
    assert f"{PACKAGE}._client" in graph[f"{PACKAGE}._sync"]
    assert f"{PACKAGE}._generated.models" in graph[f"{PACKAGE}.models"]


def test_finder_reports_a_cycle() -> None:
    """A cycle, however long, is found and printed as a closed path."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert find_cycle(graph) == ["a", "b", "c", "a"]


def test_no_import_cycle() -> None:
    """No module of src/ imports, however indirectly, a module that imports it."""
    cycle = find_cycle(import_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def _reach(graph: Mapping[str, AbstractSet[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = [start]
    while todo:
        for nxt in graph[todo.pop()] - seen:
            seen.add(nxt)
            todo.append(nxt)
    return seen


def test_waiting_code_never_reaches_a_client() -> None:
    """The waits, their polls and their planner reach neither face, even indirectly."""
    graph = import_graph()
    faces = {f"{PACKAGE}._client", f"{PACKAGE}._sync"}
    for module in ("_wait", "_polling", "_planner", "_schedule"):
        assert not _reach(graph, f"{PACKAGE}.{module}") & faces, module


def test_sans_io_core_never_reaches_the_network_code() -> None:
    """The sans-I/O modules reach neither face nor the waits."""
    graph = import_graph()
    above = {f"{PACKAGE}.{m}" for m in ("_client", "_sync", "_wait", "_wait_api", "_polling")}
    for module in ("_core", "_operations", "_query", "_error_map"):
        assert not _reach(graph, f"{PACKAGE}.{module}") & above, module
