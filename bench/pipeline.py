"""Bench: the whole default pipeline on this machine, against the 3-minute budget.

Runs `dvc repro --force` on the default params in a temporary copy of this checkout, then a
no-op `dvc repro`, and prints each stage's wall time and the ratios to their budgets.

    .venv/bin/python bench/pipeline.py
"""

from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # bench scripts reuse the tests' repo builder

from tests.conftest import make_pipeline_repo  # noqa: E402

BUDGET_S = 180.0
NOOP_BUDGET_S = 5.0


def _timed_repro(repo: Path, *args: str) -> tuple[float, list[tuple[str, float]]]:
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc", "repro", *args],
        cwd=repo,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    stages: list[tuple[str, float]] = []
    current, began = None, start
    assert proc.stdout is not None
    for line in proc.stdout:
        found = re.match(r"Running stage '(\w+)'", line)
        if found:
            now = time.perf_counter()
            if current:
                stages.append((current, now - began))
            current, began = found.group(1), now
    if proc.wait() != 0:
        raise SystemExit("dvc repro failed")
    total = time.perf_counter() - start
    if current:
        stages.append((current, time.perf_counter() - began))
    return total, stages


def main() -> None:
    params = yaml.safe_load((REPO / "params.yaml").read_text())
    with tempfile.TemporaryDirectory() as tmp:
        repo = make_pipeline_repo(Path(tmp) / "repo", params, Path(tmp) / "remote")
        total, stages = _timed_repro(repo, "--force")
        noop, _ = _timed_repro(repo)
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    for name, seconds in stages:
        print(f"  {name:<10} {seconds:6.1f} s")
    print(
        f"dvc repro --force (default params): {total:6.1f} s  ratio to {BUDGET_S:.0f} s budget: "
        f"{total / BUDGET_S:.2f}  {'MET' if total <= BUDGET_S else 'MISSED'}"
    )
    print(
        f"dvc repro (no-op):                  {noop:6.1f} s  "
        f"ratio to {NOOP_BUDGET_S:.0f} s budget: "
        f"{noop / NOOP_BUDGET_S:.2f}  {'MET' if noop <= NOOP_BUDGET_S else 'MISSED'}"
    )


if __name__ == "__main__":
    main()
