"""Every third-party package that src/ imports is declared in pyproject.toml.

An import satisfied only because another dependency happens to pull the package in breaks the
day that dependency drops it; declaring it makes the range ours to choose.
"""

from __future__ import annotations

import ast
import re
import sys
from importlib.metadata import packages_distributions

import pytest

from tests.conftest import REPO

tomllib = pytest.importorskip("tomllib")  # Python 3.11+


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _declared() -> set[str]:
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = set()
    # An extra (postgres, dask, s3) declares what only its feature imports, lazily.
    extras = [r for reqs in project.get("optional-dependencies", {}).values() for r in reqs]
    for requirement in [*project["dependencies"], *extras]:
        names.add(_canonical(re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0]))
    return names


def top_level_imports(root) -> dict[str, set[str]]:
    """Top-level names imported anywhere under `root` (lazy imports too), with their files."""
    found: dict[str, set[str]] = {}
    for path in sorted(root.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and not node.level and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(REPO)))
    return found


def test_every_third_party_import_in_src_is_declared():
    declared = _declared()
    distributions = packages_distributions()
    local = {"retrain", "__future__"}
    undeclared = {}
    for name, files in top_level_imports(REPO / "src").items():
        if name in sys.stdlib_module_names or name in local:
            continue
        provided_by = {_canonical(d) for d in distributions.get(name, [])}
        assert provided_by, f"{name} (imported in {sorted(files)}) is not installed"
        if not provided_by & declared:
            undeclared[name] = (sorted(provided_by), sorted(files))
    assert not undeclared, f"imported but not in pyproject's dependencies: {undeclared}"


def test_the_scan_sees_lazy_imports(tmp_path, monkeypatch):
    (tmp_path / "m.py").write_text("def f():\n    from scipy.special import expit\n")
    monkeypatch.setattr(f"{__name__}.REPO", tmp_path)
    assert top_level_imports(tmp_path) == {"scipy": {"m.py"}}


# The test files whose subject is the bench's own code (how RESULTS.md and the README's bench
# blocks are written; bench 7's tables, goals and reruns): they import what they test. No other
# test uses a bench helper.
BENCH_SUBJECT = {"tests/unit/test_bench_results.py", "tests/unit/test_bench_quality.py"}


def test_bench_and_tests_share_helpers_without_importing_each_other():
    # Both import retrain.testing; one importing the other's modules couples their layouts.
    assert "tests" not in top_level_imports(REPO / "bench")
    assert top_level_imports(REPO / "tests").get("bench", set()) <= BENCH_SUBJECT
