"""Every path and module a Makefile target's commands name exists.

The commands are read as make itself prints them (`make --dry-run`, variables expanded, nothing
run), so a path kept in a variable (`TABLE_TESTS`) counts too: a renamed test file breaks
here, not in `make test-attrition` an hour later.
"""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import REPO

MAKEFILE = REPO / "Makefile"
# A repository path as a command names one: a top-level folder of the checkout, then more.
REPO_PATH = re.compile(r"^(?:src|tests|bench|docs|flows|expectations)/[\w./-]*$")
# `python -m bench.x` or `-m retrain.x`: our own modules.
MODULE = re.compile(r"-m\s+((?:bench|retrain)(?:\.\w+)+)")


def _targets() -> list[str]:
    return re.findall(r"^([a-zA-Z][\w-]*):(?!=)", MAKEFILE.read_text(), re.M)


def _commands(target: str) -> str:
    """What `make <target>` would run, prerequisites included, with every variable expanded."""
    out = subprocess.run(
        [
            "make",
            "--dry-run",
            "--always-make",
            "--no-print-directory",
            "-f",
            str(MAKEFILE),
            target,
        ],
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "RUN": "some-run-id", "HOME": str(REPO)},
    )
    assert out.returncode == 0, f"make -n {target}: {out.stderr[-500:]}"
    return out.stdout


def _named(commands: str) -> tuple[set[str], set[str]]:
    """(repository paths, our modules) that `commands` name."""
    tokens = {t.strip("'\";,()") for t in commands.split()}
    paths = {t.rstrip("/") for t in tokens if REPO_PATH.match(t)}
    return paths, set(MODULE.findall(commands))


def _module_exists(name: str) -> bool:
    parts = name.split(".")
    base = REPO / "src" if parts[0] == "retrain" else REPO
    path = base.joinpath(*parts)
    return path.with_suffix(".py").exists() or (path / "__init__.py").exists()


@pytest.mark.skipif(shutil.which("make", path="/usr/bin:/bin") is None, reason="no make")
def test_every_path_and_module_a_target_names_exists():
    targets = _targets()
    assert {"test", "test-attrition", "test-wage", "test-hpc", "bench", "screenshots"} <= set(
        targets
    )
    missing = []
    seen_paths: set[str] = set()
    for target in targets:
        paths, modules = _named(_commands(target))
        seen_paths |= paths
        missing += [f"{target}: {p}" for p in sorted(paths) if not (REPO / p).exists()]
        missing += [f"{target}: -m {m}" for m in sorted(modules) if not _module_exists(m)]
    # The scan sees what the recipes name, the variables expanded.
    assert {"tests/data", "tests/unit/init", "docs/screenshots"} <= seen_paths
    assert not missing, f"Makefile targets name what does not exist: {missing}"


def test_the_scan_finds_a_missing_path_and_module():
    paths, modules = _named(
        "python -m pytest tests/unit/test_gone.py 'docs/x.md';\npython -m bench.gone --quick"
    )
    assert paths == {"tests/unit/test_gone.py", "docs/x.md"} and modules == {"bench.gone"}
    assert not _module_exists("bench.gone") and _module_exists("bench.run_all")
    assert _module_exists("retrain.orchestration.screenshots")
