"""The layers of ``core`` point down: no import circle, and the data layer knows no experiment.

The graph is read from the source (every ``import`` statement, the ones inside functions too: a lazy import that
points up is still a circle in the design). The package's own ``__init__`` is left out: it imports the modules
that declare experiments, on purpose, so that importing any part of core fills the registries.
"""
from __future__ import annotations

import ast
from pathlib import Path

CORE = Path(__file__).resolve().parents[1] / "core"


def module_name(path: Path) -> str:
    parts = path.relative_to(CORE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported(tree: ast.AST, modules: set[str]) -> set[str]:
    """The core modules a file imports (``from core.x import y`` counts as core.x.y where that is a module)."""
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found |= {f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in modules else node.module
                      for a in node.names}
        elif isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
    return found & modules


def import_graph() -> dict[str, set[str]]:
    paths = {module_name(p): p for p in CORE.rglob("*.py")}
    modules = set(paths) - {"core"}
    return {name: imported(ast.parse(path.read_text()), modules) - {name} for name, path in paths.items()
            if name != "core"}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each import circle once, as the path that closes it (a depth-first search over the graph)."""
    found, state = [], {}

    def visit(node: str, path: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node, [node])
    return found


def test_the_graph_sees_imports_inside_functions():
    tree = ast.parse("def f():\n    from core.data import load_dataset\n    import core.cache\n")
    assert imported(tree, {"core.data", "core.cache", "core.train"}) == {"core.data", "core.cache"}
    assert circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c", "a"]]


def test_core_has_no_import_circle():
    assert circles(import_graph()) == []


def test_the_data_layer_imports_only_itself_and_the_layers_below():
    below = {"core.progress", "core.cache", "core.config", "core._version", "core.io", "core.errors"}
    for name, targets in import_graph().items():
        if name == "core.data" or name.startswith("core.data."):
            assert {t for t in targets if not t.startswith("core.data")} <= below, name


def test_feature_datasets_load_through_the_registered_source():
    from core.data import SOURCES, DataError, load_dataset
    import pytest

    assert "features:" in SOURCES  # registered by core.features, which importing core imports
    with pytest.raises(DataError, match="no extracted feature dataset"):
        load_dataset("features:nothing-here")


def reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for nxt in graph.get(todo.pop(), ()):
            if nxt not in seen:
                seen.add(nxt)
                todo.append(nxt)
    return seen


def test_training_depends_on_no_experiment():
    """The trainer records App. I's landscape (core.landscape); the input-space surface experiment is apart."""
    assert "core.experiments" not in reachable(import_graph(), "core.train")
