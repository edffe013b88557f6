"""No import circles inside `retrain` (issue 24).

A circle hidden by a function-local import (stages.tune -> tuning.parallel -> stages.tune)
works until someone moves the import to the top, and it means neither module can be read or
tested without the other. The graph here counts every import that runs: module-level and
inside functions alike (only `if TYPE_CHECKING:` blocks, which never run, are left out).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGE = "retrain"


def _module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _type_checking(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _targets(node: ast.Import | ast.ImportFrom, name: str, is_package: bool) -> list[str]:
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if node.level:
        anchor = name.split(".") if is_package else name.split(".")[:-1]
        anchor = anchor[: len(anchor) - node.level + 1]
        base = ".".join([*anchor, *([node.module] if node.module else [])])
    else:
        base = node.module or ""
    # `from pkg import mod` imports the module pkg.mod; `from mod import f` only mod.
    return [base, *(f"{base}.{alias.name}" for alias in node.names)]


def import_graph(src: Path) -> dict[str, set[str]]:
    """Each module of the package under `src` -> the package's modules it imports."""
    files = {_module_name(p, src): p for p in (src / PACKAGE).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in files.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        parents = {c: n for n in ast.walk(tree) for c in ast.iter_child_nodes(n)}
        edges = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom) and not _type_checking(node, parents):
                targets = _targets(node, name, path.name == "__init__.py")
                edges |= {t for t in targets if t in files and t != name}
        graph[name] = edges
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def test_retrain_has_no_import_circles():
    found = cycles(import_graph(REPO / "src"))
    assert not found, "import circles (move what they share into a module both import):\n" + (
        "\n".join(" <-> ".join(c) for c in found)
    )


def test_a_circle_through_a_function_local_import_is_found(tmp_path):
    pkg = tmp_path / PACKAGE
    (pkg / "stages").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "stages" / "__init__.py").write_text("")
    (pkg / "stages" / "tune.py").write_text("def run():\n    from retrain import parallel\n")
    (pkg / "parallel.py").write_text("from .stages.tune import run\n")
    (pkg / "typed.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from retrain import parallel\n"
    )
    (pkg / "worker.py").write_text("import retrain.typed\n")
    assert cycles(import_graph(tmp_path)) == [["retrain.parallel", "retrain.stages.tune"]]
