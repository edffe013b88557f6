"""One way to load the project: `Project(root, params)` with every path from params.yaml's
`paths`, and no path literal in the code that a rename in params.yaml would not reach."""

from __future__ import annotations

import ast
import shutil
from pathlib import Path

import yaml

from retrain import PARAMS_FILE
from retrain.config import Paths
from retrain.infra.dvc import LOCK_FILE
from retrain.project import Project, managed_paths
from tests.conftest import REPO

# Where the names are defined, once: the config file's name, DVC's fixed lock-file name, and
# the defaults of the `paths` keys params.yaml may leave out.
DEFINITIONS = {
    ("src/retrain/__init__.py", "PARAMS_FILE"),
    ("src/retrain/infra/dvc.py", "LOCK_FILE"),
    ("src/retrain/config.py", "Paths"),
}


def _path_like(value: str) -> bool:
    return "/" in value or "." in value  # a folder path or a file name, not a bare word


def forbidden_literals() -> set[str]:
    shipped = yaml.safe_load((REPO / PARAMS_FILE).read_text())["paths"]
    defaults = [f.default for f in Paths.model_fields.values() if f.default is not None]
    values = {str(v) for v in [*shipped.values(), *defaults]}
    return {PARAMS_FILE, LOCK_FILE} | {v for v in values if _path_like(v)}


def _defined_in(tree: ast.Module, rel: str) -> set[int]:
    """Ids of the string nodes inside the allowed definitions of this file."""
    allowed: set[int] = set()
    for node in ast.walk(tree):
        name = None
        if isinstance(node, ast.Assign) and len(node.targets) == 1:
            target = node.targets[0]
            name = target.id if isinstance(target, ast.Name) else None
        elif isinstance(node, ast.ClassDef):
            name = node.name
        if name and (rel, name) in DEFINITIONS:
            allowed |= {id(n) for n in ast.walk(node)}
    return allowed


def path_literals(root: Path = REPO) -> list[str]:
    """`file:line: 'literal'` for every string constant in src/ and flows/ that names one of
    the project's paths (docstrings are prose, and never equal to a bare path)."""
    forbidden = forbidden_literals()
    found = []
    for file in sorted([*(root / "src").rglob("*.py"), *(root / "flows").rglob("*.py")]):
        rel = file.relative_to(root).as_posix()
        tree = ast.parse(file.read_text(), filename=rel)
        allowed = _defined_in(tree, rel)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and node.value.rstrip("/") in forbidden
                and id(node) not in allowed
            ):
                found.append(f"{rel}:{node.lineno}: {node.value!r}")
    return found


def test_no_path_literal_in_the_code():
    """Every path comes from params.yaml's `paths` through the Project (or the one constant
    naming params.yaml / dvc.lock): a literal would miss a rename."""
    forbidden = forbidden_literals()
    assert {"metrics/evaluate.json", "data/landing", "reports/pr", "dvc.lock"} <= forbidden
    assert path_literals() == []


def test_the_scan_finds_a_literal(tmp_path):
    """The scan itself works: a module naming the metrics file and params.yaml is caught."""
    (tmp_path / "src").mkdir()
    (tmp_path / "flows").mkdir()
    (tmp_path / "src" / "bad.py").write_text(
        'from pathlib import Path\nMETRICS = Path("metrics/evaluate.json")\n'
        'def f(root):\n    return root / "params.yaml"\n'
    )
    (tmp_path / "flows" / "ok.py").write_text('"""Reads metrics/evaluate.json."""\nX = "a"\n')
    assert path_literals(tmp_path) == [
        "src/bad.py:2: 'metrics/evaluate.json'",
        "src/bad.py:4: 'params.yaml'",
    ]


def test_project_paths_are_absolute_and_follow_a_renamed_key(tmp_path):
    root = tmp_path / "proj"
    root.mkdir()
    raw = yaml.safe_load((REPO / PARAMS_FILE).read_text())
    raw["paths"]["metrics"] = "results/scores.json"
    raw["paths"]["landing"] = "inbox"
    (root / PARAMS_FILE).write_text(yaml.safe_dump(raw, sort_keys=False))
    shutil.copytree(REPO / "expectations", root / "expectations")
    project = Project.load(root)
    assert project.root == root.resolve() and project.params_file == root / PARAMS_FILE
    assert project.params.paths.metrics == root / "results" / "scores.json"
    assert project.params.paths.landing == root / "inbox"
    assert all(Path(p).is_absolute() for p in project.params.paths.model_dump().values())
    assert project.lock_file == root / LOCK_FILE
    managed = project.managed_paths()
    assert {PARAMS_FILE, LOCK_FILE, "results/scores.json", "inbox"} <= set(managed)
    assert "metrics/evaluate.json" not in managed
    # Another params file names the project it sits in.
    other = root / "conf" / "alt.yaml"
    other.parent.mkdir()
    shutil.copy2(root / PARAMS_FILE, other)
    alt = Project.from_params_file(other)
    assert alt.root == other.parent and alt.params_file == other
    assert managed_paths(alt.root, alt.params, alt.params_file)[0] == "alt.yaml"


def test_simulate_lands_batches_where_params_yaml_says(tmp_path, default_params_raw, raw_csv):
    """A checkout whose params.yaml renames paths.landing: `retrain simulate` (no --out) writes
    there, where ingest and the monitor look, not into a hard-coded data/landing."""
    from typer.testing import CliRunner

    from retrain.cli import app

    raw = dict(default_params_raw)
    raw["paths"] = {**raw["paths"], "landing": "incoming/batches", "raw_data": str(raw_csv)}
    raw["dataset"] = {**raw["dataset"], "suite": str(REPO / raw["dataset"]["suite"])}
    (tmp_path / PARAMS_FILE).write_text(yaml.safe_dump(raw, sort_keys=False))
    params = str(tmp_path / PARAMS_FILE)
    result = CliRunner().invoke(app, ["simulate", "--size", "20", "--params", params])
    assert result.exit_code == 0, result.output
    landed = sorted(p.name for p in (tmp_path / "incoming" / "batches").iterdir())
    assert landed == ["batch-0001.csv", "batch-0001.csv.done"] + [
        f"batch-000{i}.csv{s}" for i in (2, 3) for s in ("", ".done")
    ]
    assert not (tmp_path / "data" / "landing").exists()
    assert Project.from_params_file(params).params.paths.landing == tmp_path / "incoming/batches"
