"""The package's structure: no import cycle between its modules, no private name imported from a sibling."""

from __future__ import annotations

import ast
from pathlib import Path

import convscope

ROOT = Path(convscope.__file__).parent


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _resolve(module: str, is_package: bool, level: int, target: str | None) -> str:
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[:len(base) - (level - 1)] if level > 1 else base
    return ".".join(base + ([target] if target else []))


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    """Module -> the convscope modules it imports at import time (top level, not inside functions)."""
    modules = {_module_name(p): p for p in ROOT.rglob("*.py")}
    graph: dict[str, set[str]] = {name: set() for name in modules}
    private = []
    for name, path in modules.items():
        is_package = path.name == "__init__.py"
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.ImportFrom) and node.level:
                target = _resolve(name, is_package, node.level, node.module)
                for alias in node.names:
                    sub = f"{target}.{alias.name}"
                    graph[name].add(sub if sub in modules else target)
                    if alias.name.startswith("_") and not alias.name.startswith("__") and sub not in modules:
                        private.append(f"{name} imports {alias.name} from {target}")
            elif isinstance(node, ast.Import):
                graph[name].update(a.name for a in node.names if a.name in modules)
    return {k: {v for v in vs if v in modules and v != k} for k, vs in graph.items()}, private


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return stack[stack.index(nxt):] + [nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle():
    graph, _ = _graph()
    cycle = _cycle(graph)
    assert cycle is None, " -> ".join(cycle)


def test_no_private_name_is_imported_from_a_sibling():
    _, private = _graph()
    assert not private, private
