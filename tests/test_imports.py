"""The import graph of pipeline/ and flows/ has no cycles — counting imports inside functions, which
only hide a cycle from the interpreter, not from the next engineer who moves one of them."""

from __future__ import annotations

import ast
from pathlib import Path

from conftest import REPO

PACKAGES = ("pipeline", "flows")


def module_name(path: Path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, modules: set[str]) -> set[str]:
    """The project modules `path` imports anywhere in its body (a package's submodule when named)."""
    name, found = module_name(path), set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                up = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(up + ([base] if base else []))
            found |= {f"{base}.{a.name}" if f"{base}.{a.name}" in modules else base for a in node.names}
    return {m for m in found if m in modules and m != name}


def find_cycle(graph: dict[str, set[str]]) -> list[str]:
    """One cycle of `graph` as a path that ends where it starts, or [] (iterative DFS, three colours)."""
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for start in sorted(graph):
        if state.get(start):
            continue
        path, stack = [start], [iter(sorted(graph[start]))]
        state[start] = 1
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[path.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            elif not state.get(nxt):
                state[nxt] = 1
                path.append(nxt)
                stack.append(iter(sorted(graph[nxt])))
    return []


def test_find_cycle_finds_one() -> None:
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles() -> None:
    files = [p for pkg in PACKAGES for p in (REPO / pkg).rglob("*.py")]
    modules = {module_name(p) for p in files}
    graph = {module_name(p): imports(p, modules) for p in files}
    assert len(graph) > 40 and graph["pipeline.tokenize.subword"] >= {"pipeline.tokenize.encoder"}
    assert find_cycle(graph) == []


def test_package_inits_only_re_export() -> None:
    """No stage body hides in an `__init__.py`: a docstring, imports and `__all__` (plus `__version__`) only."""
    for init in (p for pkg in PACKAGES for p in (REPO / pkg).rglob("__init__.py")):
        for node in ast.parse(init.read_text(encoding="utf-8")).body:
            docstring = isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
            names = isinstance(node, ast.Assign) and all(
                isinstance(t, ast.Name) and t.id in ("__all__", "__version__") for t in node.targets
            )
            assert docstring or names or isinstance(node, (ast.Import, ast.ImportFrom)), (
                f"{init.relative_to(REPO)}:{node.lineno}: move this into a named module"
            )
