"""The package layout's promises: dependencies point one way, and the runtime path needs no torch."""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src" / "recognizer"


def _unit(path: Path) -> str:
    """A module's unit: its subpackage (``engines``) or, for top-level modules, the module (``config``)."""
    return path.relative_to(SRC).parts[0].removesuffix(".py")


def _imports(path: Path) -> set[str]:
    """Every recognizer unit a module imports, lazily inside functions too (a cycle is a cycle)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        found |= {name.split(".")[1] for name in names if name.startswith("recognizer.")}
    return found


def _graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        unit = _unit(path)
        if unit != "__init__":
            graph.setdefault(unit, set()).update(_imports(path) - {unit})
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    visiting: list[str] = []
    done: set[str] = set()

    def visit(unit: str) -> list[str] | None:
        if unit in visiting:
            return [*visiting[visiting.index(unit) :], unit]
        if unit in done:
            return None
        visiting.append(unit)
        for nxt in sorted(graph.get(unit, ())):
            if cycle := visit(nxt):
                return cycle
        visiting.pop()
        done.add(unit)
        return None

    return next((cycle for unit in sorted(graph) if (cycle := visit(unit))), None)


def test_no_import_cycle_between_packages():
    assert _cycle(_graph()) is None, " -> ".join(_cycle(_graph()) or [])


def test_dependencies_point_down():
    graph = _graph()
    assert "export" not in graph["engines"] and "inference" not in graph["engines"]
    assert not graph["models"] - {"errors"}
    for lower in ("inference", "engines", "export", "models", "imaging"):
        assert not graph[lower] & {"api", "cli", "observability"}, lower
