"""cnnhub's import graph: no cycle, and no library module importing a command module.

Computed from the source with ``ast`` (every ``import`` statement, at the top of a module or
inside a function), so a cycle hidden in a function-local import fails too.
"""

from __future__ import annotations

import ast
import graphlib
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "cnnhub"
COMMANDS = "cnnhub.commands"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported(node: ast.AST, here: str, is_package: bool, modules: set[str]) -> set[str]:
    """The cnnhub modules an import statement loads (none for other statements)."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names} & modules
    if not isinstance(node, ast.ImportFrom):
        return set()
    base = node.module or ""
    if node.level:  # relative: resolve against this module's package
        parts = here.split(".")
        package = parts[: len(parts) - node.level + (1 if is_package else 0)]
        base = ".".join([*package, base] if base else package)
    # `from cnnhub.pkg import module` imports that module (the package's __init__ runs first
    # either way, as for every submodule); `from cnnhub.mod import name` imports cnnhub.mod
    submodules = {f"{base}.{alias.name}" for alias in node.names} & modules
    return submodules or ({base} & modules)


def import_graph() -> dict[str, set[str]]:
    """``{module: the cnnhub modules it imports}`` over every module of cnnhub."""
    files = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in files}
    for name, path in files.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        for node in ast.walk(tree):
            graph[name] |= _imported(node, name, path.name == "__init__.py", set(files)) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One import cycle (first module repeated at the end), or [] when there is none."""
    try:
        graphlib.TopologicalSorter(graph).prepare()
    except graphlib.CycleError as exc:
        return list(exc.args[1])
    return []


def _is_command(module: str) -> bool:
    return module == COMMANDS or module.startswith(COMMANDS + ".")


def test_graph_sees_the_known_edges():
    graph = import_graph()
    assert "cnnhub.data.inspect" in graph["cnnhub.commands.inspect"]
    assert "cnnhub.data.sources" in graph["cnnhub.data.sets"]
    assert "cnnhub.data.sets" not in graph["cnnhub.data.sources"]


def test_cycle_finder_finds_a_function_level_cycle():
    cycle = find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}})
    assert set(cycle) == {"a", "b", "c"} and len(cycle) == 4 and cycle[0] == cycle[-1]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_cycle():
    cycle = find_cycle(import_graph())
    assert cycle == [], "import cycle: " + " -> ".join(cycle)


def test_library_never_imports_a_command():
    graph = import_graph()
    upward = [
        f"{src} -> {dst}"
        for src, targets in graph.items()
        for dst in targets
        if _is_command(dst) and not _is_command(src)
    ]
    assert upward == []


@pytest.mark.parametrize("module", ["cnnhub.cli", "cnnhub.__main__"])
def test_only_the_entry_points_reach_commands_by_name(module):
    """cli.py names command modules as strings (imported on use); it imports none at the top."""
    graph = import_graph()
    assert [d for d in graph[module] if _is_command(d)] == []
