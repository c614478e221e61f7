"""The package layout follows the data flow: no import cycles, and stages never import what runs them.

The graph counts every import a module makes, at the top or inside a function, except those under
``if TYPE_CHECKING:`` (they never run).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

LABKIT = Path(__file__).resolve().parent.parent / "labkit"
# The stages of the data flow, and what they must never reach back into.
STAGES = (
    "labkit.data",
    "labkit.features",
    "labkit.models",
    "labkit.strategies",
    "labkit.gates",
    "labkit.engine.core",
)
DOWNSTREAM = (
    "labkit.session",
    "labkit.readiness",
    "labkit.reports",
    "labkit.operations",
    "labkit.cli",
    "labkit.config.schema",  # the schema composes the stages' configs; the stages never read it
    "labkit.config.loading",
)


def _module_name(path: Path) -> str:
    parts = path.relative_to(LABKIT.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in LABKIT.rglob("*.py")}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path, known: set[str]) -> set[str]:
    found: set[str] = set()

    def visit(node: ast.AST) -> None:
        if isinstance(node, ast.If) and _is_type_checking(node):
            for child in node.orelse:
                visit(child)
            return
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
        for child in ast.iter_child_nodes(node):
            visit(child)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {name for name in found if name in known}


def import_graph() -> dict[str, set[str]]:
    """Return labkit's modules and the labkit modules each imports."""
    modules = _modules()
    known = set(modules)
    return {name: _imports(path, known) - {name} for name, path in modules.items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    stack: list[str] = []

    def dfs(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt) :] + [nxt]
            if nxt not in state and (found := dfs(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := dfs(node)):
            return found
    return None


def test_import_graph_when_walked_has_no_cycle():
    # Arrange
    graph = import_graph()
    # Act
    cycle = _cycle(graph)
    # Assert
    assert cycle is None, " -> ".join(cycle or [])


def test_import_graph_when_a_cycle_is_planted_finds_it():
    # The checker itself must be able to fail.
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert _cycle(graph) == ["a", "b", "c", "a"]


def test_stages_when_imported_never_reach_sessions_readiness_reports_ops_or_cli():
    # Arrange
    graph = import_graph()
    # Act
    bad = sorted(
        f"{module} imports {target}"
        for module, targets in graph.items()
        if module.startswith(STAGES)
        for target in targets
        if target.startswith(DOWNSTREAM)
    )
    # Assert
    assert bad == []


def test_import_labkit_when_done_loads_no_pandas():
    # `labkit --help` is checked in tests/test_cli_parsing.py.
    code = "import labkit, sys; print('pandas' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
