"""The shape of the code (architecture v3): rules a reviewer would otherwise check by hand.

- no import circles in drip_core/, drip_protocol/, installer/, gimp_plugin/, counting imports
  inside functions (a lazy import hides a circle, it does not remove it);
- the server knows engines only through their interface and the registry, and names none;
- no function over 60 lines in those folders;
- trimap values are spelled once: no ``== 128`` outside drip_core/trimaps/.
"""
from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("drip_core", "drip_protocol", "installer", "gimp_plugin/drip_matting")
MAX_FUNCTION_LINES = 60


def _module_name(path: Path) -> str:
    rel = path.relative_to(REPO).with_suffix("")
    parts = list(rel.parts)
    if parts[:2] == ["gimp_plugin", "drip_matting"]:
        parts = parts[2:]  # the plug-in's files import each other as top-level modules
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _sources():
    for folder in FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            yield path, _module_name(path), ast.parse(path.read_text())


def _imports(module: str, is_package: bool, tree: ast.AST, known: set[str]):
    """Every module this one imports, at any depth of its code (only modules of ``known``)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            # ``from package import module`` imports the module (the package is its parent,
            # initialised already); ``from module import name`` imports the module
            names = [f"{target}.{a.name}" if f"{target}.{a.name}" in known else target for a in node.names]
        else:
            continue
        for name in names:
            if name in known:
                yield name


def _lazy_imports(module: str, tree: ast.AST, known: set[str]):
    """A package's ``_LAZY = {"Name": "submodule"}`` map (drip_core/lazy.py): each name it resolves
    imports that submodule, so it counts as an import of the package."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "_LAZY" for t in node.targets) \
                and isinstance(node.value, ast.Dict):
            for value in node.value.values:
                if isinstance(value, ast.Constant) and f"{module}.{value.value}" in known:
                    yield f"{module}.{value.value}"


def _graph():
    sources = list(_sources())
    known = {name for _, name, _ in sources}
    return {name: (set(_imports(name, path.name == "__init__.py", tree, known))
                   | set(_lazy_imports(name, tree, known))) - {name}
            for path, name, tree in sources}


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                out.append(sorted(component))

    for v in graph:
        if v not in index:
            visit(v)
    return out


def test_no_import_circles():
    assert _cycles(_graph()) == []


def test_the_server_knows_engines_only_through_their_interface_and_the_registry():
    graph = _graph()
    allowed = {"drip_core.engines", "drip_core.engines.base", "drip_core.engines.registry"}
    for module, imports in graph.items():
        if module.startswith("drip_core.server"):
            engine_parts = {m for m in imports if m.startswith("drip_core.engines")} - allowed
            assert not engine_parts, (module, engine_parts)
    for path in (REPO / "drip_core" / "server").rglob("*.py"):
        text = path.read_text()
        assert not re.search(r"""["']classical["']|["']drip["']|last_stats""", text), path


def test_no_function_is_longer_than_a_screen():
    long = [f"{path.relative_to(REPO)}:{node.lineno} {node.name} ({node.end_lineno - node.lineno + 1} lines)"
            for path, _, tree in _sources() for node in ast.walk(tree)
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
            and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES]
    assert long == []


@pytest.mark.parametrize("folder", ["drip_core", "drip_protocol", "gimp_plugin"])
def test_trimap_values_are_spelled_once(folder):
    literal = re.compile(r"[!=]= ?128\b")
    found = [f"{p.relative_to(REPO)}:{i}" for p in (REPO / folder).rglob("*.py") if "trimaps" not in p.parts
             for i, line in enumerate(p.read_text().splitlines(), 1) if literal.search(line.split("#")[0])]
    assert found == []
