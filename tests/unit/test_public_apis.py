"""src/ uses only the public APIs of its dependencies (STYLE.md, second review).

A private module (`optuna.storages._heartbeat`) or attribute (`DataFrame._from_arrays`,
`trial._trial_id`) of a dependency breaks on a minor release, and working around a library's
loop by hand blocked its features (the manual step count forbade mixed precision). Read from
the AST of every module under src/:
- imports: `import pkg._x`, `from pkg._x import y`, `from pkg import _y` of anything but ours;
- attributes: `obj._name` on anything but `self` or `cls` (our code reaches its own private
  attributes only through them, so any other receiver is a dependency's object), and the few
  internals whose names do not start with an underscore (NOT_UNDERSCORED).
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

SRC = REPO / "src"
OURS = "retrain"

# Internals of dependencies whose names look public, each with what it is.
NOT_UNDERSCORED = {
    "ca": "ruamel.yaml's comment attribute (CommentedBase.ca): its token layout is internal",
    "optim_step_progress": "Lightning's loop progress tracker (trainer.fit_loop.epoch_loop...)",
}

# The standard library's public names that start with an underscore, each with why it is used.
STDLIB_UNDERSCORED = {
    "os._exit": "a bag member's process exits without tearing torch down (models/bag_workers.py)",
}


def _private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__")


def _offences(path: Path, root: Path = REPO) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    where = path.relative_to(root).as_posix()
    found = []
    for node in ast.walk(tree):
        line = f"{where}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] != OURS and any(
                    _private(p) for p in alias.name.split(".")
                ):
                    found.append(f"{line}: import {alias.name}")
        elif isinstance(node, ast.ImportFrom) and not node.level:
            module = node.module or ""
            if module.split(".")[0] == OURS:
                continue
            names = [module, *(f"{module}.{a.name}" for a in node.names)]
            if any(_private(p) for n in names for p in n.split(".")):
                found.append(
                    f"{line}: from {module} import {', '.join(a.name for a in node.names)}"
                )
        elif isinstance(node, ast.Attribute):
            receiver = node.value
            if isinstance(receiver, ast.Name) and receiver.id in ("self", "cls"):
                continue
            if ast.unparse(node) in STDLIB_UNDERSCORED:
                continue
            if _private(node.attr) or node.attr in NOT_UNDERSCORED:
                found.append(f"{line}: {ast.unparse(node)}")
    return found


def offences() -> dict[str, list[str]]:
    found = {}
    for path in sorted(SRC.rglob("*.py")):
        hits = _offences(path)
        if hits:
            found[path.relative_to(REPO).as_posix()] = hits
    return found


def test_src_uses_only_public_apis_of_its_dependencies():
    found = offences()
    assert not found, "private internals of dependencies:\n" + "\n".join(
        hit for hits in found.values() for hit in hits
    )


def test_the_scan_finds_each_kind_of_offence(tmp_path):
    sample = tmp_path / "sample.py"
    sample.write_text(
        "from optuna.storages._heartbeat import BaseHeartbeat\n"
        "import torch._dynamo\n"
        "from pandas import _libs\n"
        "from retrain._x import ok\n"
        "df = pd.DataFrame._from_arrays([], [], [])\n"
        "seq.ca.items.clear()\n"
        "self._mine = cls._also_mine = x.__class__\n"
    )
    hits = [h.split(": ", 1)[1] for h in _offences(sample, tmp_path)]
    assert sorted(hits) == sorted(
        [
            "from optuna.storages._heartbeat import BaseHeartbeat",
            "import torch._dynamo",
            "from pandas import _libs",
            "pd.DataFrame._from_arrays",
            "seq.ca",
        ]
    )
