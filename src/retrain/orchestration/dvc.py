"""Run DVC from Python with the project's interpreter first on PATH, streaming its output.

A stage's `cmd: python -m ...` resolves `python` through PATH; a Prefect worker started from
a service manager may have the system Python first, so every call prepends this interpreter.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import yaml

from retrain.errors import RetrainError
from retrain.infra.dvc import stages_run


class DvcError(RetrainError):
    """A DVC command failed; the message carries the last lines it printed."""


def dvc_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, **(extra or {})}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.setdefault("GX_ANALYTICS_ENABLED", "false")
    return env


def stage_names(repo: Path) -> list[str]:
    """The stages of dvc.yaml in file order, which is their dependency order here."""
    return list(yaml.safe_load((repo / "dvc.yaml").read_text())["stages"])


def run_dvc(
    repo: Path,
    *args: str,
    on_line: Callable[[str], None] | None = None,
    env: dict[str, str] | None = None,
) -> list[str]:
    """Run `dvc *args` in `repo`; each output line goes to `on_line` as it is printed.

    `env` adds variables to the inherited environment (e.g. PYTHONPATH for a replay).

    Returns:
        Every line printed (stdout and stderr interleaved).

    Raises:
        DvcError: non-zero exit, with the last lines of output.
    """
    proc = subprocess.Popen(
        [sys.executable, "-m", "dvc", *args],
        cwd=repo,
        env=dvc_env(env),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    lines: list[str] = []
    assert proc.stdout is not None
    for raw in proc.stdout:
        line = raw.rstrip("\n")
        lines.append(line)
        if on_line is not None and line.strip():
            on_line(line)
    if proc.wait() != 0:
        tail = [ln for ln in lines if ln.strip()][-5:]
        raise DvcError(
            f"dvc {' '.join(args)} failed (exit {proc.returncode}): " + " | ".join(tail)
        )
    return lines


def stage_ran(lines: list[str], stage: str) -> bool:
    return stage in stages_run(lines)
