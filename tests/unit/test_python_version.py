"""The Python versions the package promises are the ones its code runs on.

pyproject's `requires-python` is the one statement of the range; the classifiers, the README,
ruff's `target-version` and mypy's `python_version` must say the same, and mypy, told each end
of the range, must find nothing at one end that it does not find at the other (typeshed knows
which names each version has: `datetime.UTC` is 3.11+).
"""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest

from tests.conftest import REPO

PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())


def _range() -> tuple[tuple[int, int], tuple[int, int]]:
    """(floor, ceiling) from `>=3.X,<3.Y`: the oldest and the newest supported minor."""
    spec = PYPROJECT["project"]["requires-python"]
    low = re.search(r">=\s*3\.(\d+)", spec)
    high = re.search(r"<\s*3\.(\d+)", spec)
    assert low and high, f"requires-python {spec!r}: expected >=3.X,<3.Y"
    return (3, int(low.group(1))), (3, int(high.group(1)) - 1)


def _mypy(version: tuple[int, int]) -> subprocess.Popen[str]:
    """mypy over src/ for `version`, our modules only (the libraries' own code would take
    minutes; the standard library's stubs are what differ between versions)."""
    return subprocess.Popen(
        [
            *(sys.executable, "-m", "mypy", "--python-version", f"{version[0]}.{version[1]}"),
            *("--follow-imports=skip", "--ignore-missing-imports", "--config-file", "/dev/null"),
            *("--cache-dir", "/dev/null", "--no-error-summary", "--hide-error-context", "src"),
        ],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.mark.slow
def test_src_type_checks_the_same_at_the_floor_and_the_ceiling():
    floor, ceiling = _range()
    runs = {v: _mypy(v) for v in (floor, ceiling)}
    errors = {v: set(p.communicate(timeout=300)[0].splitlines()) for v, p in runs.items()}
    only_floor = sorted(errors[floor] - errors[ceiling])
    only_ceiling = sorted(errors[ceiling] - errors[floor])
    assert not only_floor, f"src/ needs a newer Python than requires-python says: {only_floor}"
    assert not only_ceiling, f"src/ breaks on Python {ceiling}: {only_ceiling}"


def test_every_statement_of_the_version_range_agrees():
    (_, lo), (_, hi) = _range()
    classifiers = PYPROJECT["project"]["classifiers"]
    listed = sorted(
        int(m.group(1)) for c in classifiers if (m := re.fullmatch(r".*:: 3\.(\d+)", c))
    )
    assert listed == list(range(lo, hi + 1)), classifiers
    assert PYPROJECT["tool"]["ruff"]["target-version"] == f"py3{lo}"
    assert PYPROJECT["tool"]["mypy"]["python_version"] == f"3.{lo}"
    readme = (REPO / "README.md").read_text()
    assert f"Python 3.{lo}–3.{hi}" in readme
    assert not re.search(r"Python 3\.\d+[–-]3\.\d+", readme.replace(f"Python 3.{lo}–3.{hi}", ""))
