"""Bench S, stage start-up: each stage process's start-up (interpreter and imports) beside its
work (issue 24: the tune stage with nothing to do spent 6-18 s importing).

Every stage runs as `dvc repro` runs it, `python -m retrain.stages.<stage>` in a fresh
process of a small Telco repository, and reports its own times through RETRAIN_STAGE_TIMES
(retrain.stages._common.report_times): `startup_s`, from the process's creation to the
stage's `run()`, and `run_s`, the stage's work (heavy libraries imported on its code path
count here). Then the tune stage again with tune.n_trials 0, the stage with nothing to do.
Goal: that one's whole process ends within 2 s (a bare interpreter with pydantic and yaml).
--quick runs validate, prepare and the tune stage with nothing to do.

    .venv/bin/python -m bench.startup [--quick]
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bench.common import (
    STAGES,
    TIMES_ENV,
    Goal,
    Section,
    Shared,
    bench_env,
    cli,
    fmt_s,
    make_repo,
    pipeline_params,
)

QUICK_STAGES = ("validate", "prepare")
IDLE_GOAL_S = 2.0


def _stage(repo: Path, stage: str, times: Path) -> dict[str, Any]:
    """Run one stage in a fresh process; its reported times and the process's wall time."""
    began = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", f"retrain.stages.{stage}"],
        cwd=repo,
        env={**bench_env(), TIMES_ENV: str(times)},
        capture_output=True,
        text=True,
        check=False,
    )
    wall = time.perf_counter() - began
    if proc.returncode != 0:
        raise RuntimeError(f"stage {stage} failed:\n{proc.stdout[-2000:]}{proc.stderr[-2000:]}")
    *_, last = times.read_text().splitlines()
    return {**json.loads(last), "wall_s": wall}


def _with_no_search(repo: Path) -> None:
    params = repo / "params.yaml"
    raw = yaml.safe_load(params.read_text())
    raw["tune"]["n_trials"] = 0
    params.write_text(yaml.safe_dump(raw, sort_keys=False))


def run(quick: bool, shared: Shared) -> Section:
    from retrain.testing import small_overrides

    repo = make_repo(shared["workdir"] / "startup", small_overrides(pipeline_params()))
    times = shared["workdir"] / "startup_times.jsonl"
    rows = []
    for stage in QUICK_STAGES if quick else STAGES:
        rows.append((stage, _stage(repo, stage, times)))
    _with_no_search(repo)
    idle = _stage(repo, "tune", times)
    rows.append(("tune, n_trials 0", idle))
    table = [
        [
            name,
            fmt_s(t["startup_s"]),
            fmt_s(t["run_s"]),
            f"{t['startup_s'] / max(t['startup_s'] + t['run_s'], 1e-9):.2f}",
            fmt_s(t["wall_s"]),
        ]
        for name, t in rows
    ]
    return Section(
        "S",
        "Stage start-up",
        columns=[
            "stage",
            "start-up (interpreter + imports)",
            "work (run)",
            "start-up share",
            "process wall",
        ],
        rows=table,
        goals=[
            Goal(
                "a tune stage with nothing to do (n_trials 0) ends quickly",
                f"{idle['wall_s']:.2f} s",
                f"<= {IDLE_GOAL_S:.0f} s",
                idle["wall_s"] <= IDLE_GOAL_S,
            )
        ],
        notes=[
            "start-up: from the process's creation to the stage's run(); work: run() itself, "
            "including the heavy imports on the stage's own code path",
            "small Telco budgets (retrain.testing.small_overrides); the shared machine's load "
            "moves absolute times, the start-up share is what to read",
        ],
        data={name: t for name, t in rows},
    )


if __name__ == "__main__":
    cli(run, __doc__)
