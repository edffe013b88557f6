"""Bench: the whole default pipeline on the real data, against its 3-minute budget.

Runs `dvc repro` with this checkout's params.yaml in a temporary copy of it, then a no-op
`dvc repro`, and reports each stage's wall time and the ratios to the budgets. Its
metrics/evaluate.json is what bench 7 (model quality) reads. --quick uses the tests' small
budgets (retrain.testing.small_overrides) and judges no budget.

    .venv/bin/python -m bench.pipeline [--quick]
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import yaml

from bench.common import (
    REPO,
    Goal,
    Section,
    Shared,
    cli,
    dvc_repro,
    fmt_ratio,
    make_repo,
    pipeline_params,
    timed_dvc,
)
from retrain.testing import small_overrides

BUDGET_S = 180.0
NOOP_BUDGET_S = 5.0


def run(quick: bool, shared: Shared) -> Section:
    params = pipeline_params()
    if quick:
        params = small_overrides(params)
    repo = make_repo(shared["workdir"] / "pipeline", params)
    timed = timed_dvc(repo)
    total, stages = timed.wall_s, list(timed.log_s.items())
    if not quick:
        shared["pipeline_run"] = {"repo": repo, "run": timed}  # bench 4's DVC half
    noop, ran = dvc_repro(repo)
    if ran:
        raise RuntimeError(f"the second dvc repro ran {ran}")
    metrics = json.loads((repo / "metrics" / "evaluate.json").read_text())
    shared["pipeline_metrics"] = {"metrics": metrics, "quick": quick}
    config = "the tests' small budgets" if quick else "this checkout's params.yaml"
    section = Section(
        "P",
        f"The whole pipeline on the real data ({config})",
        ["stage", "wall"],
        [[name, f"{seconds:.1f} s"] for name, seconds in stages]
        + [["**dvc repro**", f"**{total:.1f} s**"], ["dvc repro (no-op)", f"{noop:.2f} s"]],
    )
    if quick:
        section.notes.append("--quick: budgets cut, so the 3-minute budget is not judged")
    else:
        section.goals += [
            Goal(
                "dvc repro, default params",
                f"{total:.0f} s ({fmt_ratio(total / BUDGET_S)} of the budget)",
                f"<= {BUDGET_S:.0f} s",
                total <= BUDGET_S,
            ),
            Goal(
                "no-op dvc repro, default pipeline",
                f"{noop:.2f} s",
                f"<= {NOOP_BUDGET_S:.0f} s",
                noop <= NOOP_BUDGET_S,
            ),
        ]
    if not quick:
        section.notes.append(_same_model(repo))
    section.notes.append(
        "stage times are read from dvc's log (from one 'Running stage' line to the next), so "
        "they include DVC's work between stages"
    )
    section.data = {"total_s": total, "noop_s": noop, "stages": dict(stages), "metrics": metrics}
    return section


def _same_model(repo: Path) -> str:
    """Whether this run's ONNX model is byte-identical to the one in the checkout's dvc.lock."""
    rel = "models/model/model.onnx"
    lock = yaml.safe_load((REPO / "dvc.lock").read_text())
    pinned = {o["path"]: o["md5"] for o in lock["stages"]["train"]["outs"]}.get(rel)
    got = hashlib.md5((repo / rel).read_bytes()).hexdigest()
    same = "byte-identical to" if got == pinned else "DIFFERENT from"
    return f"{rel} of this run is {same} the one recorded in the checkout's dvc.lock"


def main() -> None:
    cli(run, __doc__)


if __name__ == "__main__":
    main()
