"""dvc.yaml lists every module and params key each stage depends on, computed from the code.

DVC reruns a stage only when something it lists changes; a module or key it omits makes the
lock lie ("up to date") and the replay promise false. So the lists are checked against the
code itself: the stage module's import closure inside `retrain` (every `import`, lazy ones in
functions included, followed transitively) and the params keys read anywhere in that closure
(attribute chains on a `Params` argument and on names bound to its sections). A new module
imported by a stage, or a new key read, fails this test until dvc.yaml lists it.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from retrain.config import Params
from tests.conftest import REPO

SRC = REPO / "src"
PACKAGE = "retrain"
# Paths reach DVC through `${paths.*}` in deps and outs, not through `params:`.
NOT_PARAMS = {"paths"}


def _module_file(name: str) -> Path | None:
    base = SRC.joinpath(*name.split("."))
    for candidate in (base.with_suffix(".py"), base / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _runs_code(init: Path) -> bool:
    """An __init__.py with more than a docstring and constants is code every import runs."""
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            continue
        return True
    return False


def _type_checking_only(node: ast.AST, parents: dict[ast.AST, ast.AST]) -> bool:
    while node in parents:
        node = parents[node]
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            return True
    return False


def _imports(name: str, path: Path) -> set[str]:
    """Modules of `retrain` that `path` (module `name`) imports, at any depth of its code."""
    tree = ast.parse(path.read_text())
    parents = {child: node for node in ast.walk(tree) for child in ast.iter_child_nodes(node)}
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(tree):
        if _type_checking_only(node, parents):
            continue
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                anchor = package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            else:
                base = node.module or ""
            # `from pkg import mod` imports the module pkg.mod; `from mod import f`, just mod.
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            if (target == PACKAGE or target.startswith(PACKAGE + ".")) and _module_file(target):
                found.add(target)
    return found


@cache
def closure(module: str) -> frozenset[str]:
    """`module` and every `retrain` module it imports, transitively, with their packages."""
    seen: set[str] = set()
    todo = [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        parts = name.split(".")
        todo.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages
        path = _module_file(name)
        assert path is not None, name
        todo.extend(_imports(name, path))
    return frozenset(seen)


def code_files(module: str) -> set[str]:
    files = set()
    for name in closure(module):
        path = _module_file(name)
        assert path is not None
        if path.name == "__init__.py" and not _runs_code(path):
            continue
        files.add(path.relative_to(REPO).as_posix())
    return files


# --- params keys -------------------------------------------------------------------------------


def _annotated_params(annotation: ast.expr | None) -> bool:
    if annotation is None:
        return False
    text = (
        annotation.value
        if isinstance(annotation, ast.Constant) and isinstance(annotation.value, str)
        else ast.unparse(annotation)
    )
    return "Params" in {part.strip() for part in text.split("|")}


def _field(model: type[BaseModel], attr: str) -> tuple[str, Any] | None:
    """(params.yaml key, annotation) of `model`'s field `attr`, or None if not a field."""
    info = model.model_fields.get(attr)
    if info is None:
        return None
    return (info.alias or attr), info.annotation


@dataclass(frozen=True)
class Bound:
    """A name bound to a part of Params: its key path and its pydantic class (if a model)."""

    key: tuple[str, ...]
    model: type[BaseModel] | None


def _resolve(node: ast.expr, names: dict[str, Bound]) -> tuple[Bound, ast.expr] | None:
    """The deepest part of Params an attribute chain names, and the outermost node of it."""
    chain: list[ast.Attribute] = []
    cur = node
    while isinstance(cur, ast.Attribute):
        chain.append(cur)
        cur = cur.value
    if not isinstance(cur, ast.Name) or cur.id not in names:
        return None
    bound, outer = names[cur.id], cur
    for attr_node in reversed(chain):
        if bound.model is None:
            break
        field = _field(bound.model, attr_node.attr)
        if field is None:  # a method or a property: it may read anything in this part
            break
        key, annotation = field
        model = (
            annotation
            if isinstance(annotation, type) and issubclass(annotation, BaseModel)
            else None
        )
        bound, outer = Bound((*bound.key, key), model), attr_node
    return bound, outer


class _Reads(ast.NodeVisitor):
    """The params keys one function reads, through names bound to Params or its sections."""

    def __init__(self, names: dict[str, Bound]) -> None:
        self.names = dict(names)
        self.keys: set[tuple[str, ...]] = set()
        self._done: set[int] = set()

    def visit_Assign(self, node: ast.Assign) -> None:
        pairs: list[tuple[ast.expr, ast.expr]] = []
        for target in node.targets:
            if isinstance(target, ast.Tuple) and isinstance(node.value, ast.Tuple):
                pairs += list(zip(target.elts, node.value.elts, strict=False))
            else:
                pairs.append((target, node.value))
        for target, value in pairs:
            found = _resolve(value, self.names)
            if isinstance(target, ast.Name) and found is not None and found[1] is value:
                # An alias (`cfg = params.tune`) is judged by how it is used later.
                self.names[target.id] = found[0]
                continue
            if isinstance(target, ast.Name):
                self.names.pop(target.id, None)
            self.visit(value)

    def _use(self, node: ast.expr) -> None:
        found = _resolve(node, self.names)
        if found is None:
            return
        self.keys.add(found[0].key)
        self._done.update(id(sub) for sub in ast.walk(node))

    def visit_Attribute(self, node: ast.Attribute) -> None:
        if id(node) not in self._done:
            self._use(node)
        self.generic_visit(node)

    def visit_Name(self, node: ast.Name) -> None:
        if id(node) not in self._done and node.id in self.names and isinstance(node.ctx, ast.Load):
            self.keys.add(self.names[node.id].key)  # passed on whole: the whole part counts


def params_read(module: str) -> set[str]:
    """Every params key read in `module`'s import closure, as dotted params.yaml keys."""
    keys: set[tuple[str, ...]] = set()
    for name in closure(module):
        path = _module_file(name)
        assert path is not None
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            args = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            roots = {a.arg: Bound((), Params) for a in args if _annotated_params(a.annotation)}
            if not roots:
                continue
            reads = _Reads(roots)
            for stmt in node.body:
                reads.visit(stmt)
            keys |= reads.keys
    # The whole Params handed on goes to a function of the closure, scanned in its turn.
    return {".".join(k) for k in keys if k and k[0] not in NOT_PARAMS}


# --- dvc.yaml ----------------------------------------------------------------------------------


def _stages() -> dict[str, dict[str, Any]]:
    return yaml.safe_load((REPO / "dvc.yaml").read_text())["stages"]


def _stage_module(stage: dict[str, Any]) -> str:
    cmd = stage["cmd"].split()
    assert cmd[:2] == ["python", "-m"], stage["cmd"]
    return cmd[2]


def _covered(path: str, deps: list[str]) -> bool:
    return any(path == d or path.startswith(d.rstrip("/") + "/") for d in deps)


def _key_covered(key: str, listed: list[str]) -> bool:
    return any(key == k or key.startswith(k + ".") for k in listed)


def _listed_params(stage: dict[str, Any]) -> list[str]:
    out: list[str] = []
    for entry in stage.get("params", []):
        out += list(entry) if isinstance(entry, dict) else [entry]
    return out


STAGES = sorted(_stages())


@pytest.mark.parametrize("name", STAGES)
def test_stage_lists_its_whole_import_closure(name):
    stage = _stages()[name]
    deps = [d for d in stage.get("deps", []) if not d.startswith("${")]
    needed = code_files(_stage_module(stage))
    missing = sorted(f for f in needed if not _covered(f, deps))
    assert not missing, f"dvc.yaml stage {name!r} imports but does not list: {missing}"


@pytest.mark.parametrize("name", STAGES)
def test_stage_lists_every_params_key_it_reads(name):
    stage = _stages()[name]
    needed = params_read(_stage_module(stage))
    listed = _listed_params(stage)
    missing = sorted(k for k in needed if not _key_covered(k, listed))
    assert not missing, f"dvc.yaml stage {name!r} reads but does not list params: {missing}"


# --- the checker itself, on crafted code ---------------------------------------------------------


def test_closure_follows_lazy_and_relative_imports(tmp_path, monkeypatch):
    pkg = tmp_path / "src" / PACKAGE
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""doc"""\n__version__ = "1"\n')
    (pkg / "sub" / "__init__.py").write_text("from .b import thing\n")
    (pkg / "sub" / "a.py").write_text("def f():\n    from retrain.sub import c\n")
    (pkg / "sub" / "b.py").write_text("thing = 1\n")
    (pkg / "sub" / "c.py").write_text(
        "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from retrain import d\n"
    )
    (pkg / "d.py").write_text("")
    monkeypatch.setattr(f"{__name__}.SRC", tmp_path / "src")
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    closure.cache_clear()
    try:
        files = code_files("retrain.sub.a")
    finally:
        closure.cache_clear()
    # c is imported lazily, b through the package's code; d only for type checkers.
    assert files == {f"src/{PACKAGE}/sub/{n}" for n in ("a.py", "b.py", "c.py", "__init__.py")}


def test_params_scan_follows_aliases_and_whole_sections(tmp_path, monkeypatch):
    pkg = tmp_path / "src" / PACKAGE
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "m.py").write_text(
        "def run(params: Params):\n"
        "    paths, cfg = params.paths, params.tune\n"
        "    x = cfg.pruner.n_startup_trials + params.seed\n"
        "    schema = params.dataset\n"
        "    use(schema)\n"
        "    hp = params.model.model_copy()\n"
        "    params.validate_.partial_unexpected_count\n"
        "def other(p: 'Params | None'):\n"
        "    return p.evaluate.lightgbm.n_trials\n"
    )
    monkeypatch.setattr(f"{__name__}.SRC", tmp_path / "src")
    closure.cache_clear()
    try:
        keys = params_read("retrain.m")
    finally:
        closure.cache_clear()
    assert keys == {
        "tune.pruner.n_startup_trials",
        "seed",
        "dataset",
        "model",
        "validate.partial_unexpected_count",
        "evaluate.lightgbm.n_trials",
    }
