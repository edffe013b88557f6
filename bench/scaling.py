"""Bench 6, scaling: the whole pipeline at 10k, 100k and 1M rows; time and peak memory per stage.

Each size gets a fresh repository of this checkout whose raw table is that many synthetic rows
(the real table resampled with the seed, numbers jittered: `bench.common.synthetic_telco`).
Growth: the stages run in dvc.yaml order, each in its own process as `dvc repro` runs them,
with tuning and training budgets cut (BUDGETS) so that the three sizes compare the same work;
per stage: process wall time, import time, the stage's own `run()` time and the process's
peak RSS (VmHWM). Then the goal itself: a 1M-row retrain with params.yaml as shipped, run
the way users run it, through the `retrain` Prefect flow (DVC underneath), timed end to end.

    .venv/bin/python -m bench.scaling [--quick]
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from bench.common import (
    STAGES,
    Goal,
    Section,
    Shared,
    StageRun,
    cli,
    growth_exponent,
    make_repo,
    pipeline_params,
    run_pipeline,
    timed_flow,
)

SIZES, SIZES_QUICK = (10_000, 100_000, 1_000_000), (1_000, 5_000)
# --quick is a smoke test: the data stages only (tune, train and evaluate start Lightning,
# Optuna and LightGBM processes that cost a minute per size on the shared 2-core machine).
QUICK_STAGES = ("validate", "prepare")
BUDGETS: dict[str, dict[str, Any]] = {
    "tune": {"n_trials": 2, "max_epochs": 2, "patience": 1},
    "tune.pruner": {"n_startup_trials": 1, "n_warmup_steps": 1},
    "train": {"max_epochs": 3, "patience": 1},
    "evaluate.lightgbm": {"n_trials": 2, "n_estimators": 100, "early_stopping_rounds": 20},
}
QUICK_BUDGETS: dict[str, dict[str, Any]] = {
    "tune": {"n_trials": 1, "max_epochs": 1, "patience": 1},
    "tune.pruner": {"n_startup_trials": 1, "n_warmup_steps": 1},
    "train": {"max_epochs": 1, "patience": 1},
    "evaluate.lightgbm": {"n_trials": 1, "n_estimators": 20, "early_stopping_rounds": 5},
}
RETRAIN_BUDGET_S = 15 * 60
LINEAR = 1.2  # log-log slope of compute time vs rows, between the two largest sizes


def _tuning(repo: Path) -> dict[str, Any]:
    """What tune and train did, read from their outputs."""
    card = json.loads((repo / "models" / "model" / "model_card.json").read_text())
    best = json.loads((repo / "models" / "tune" / "best_params.json").read_text())
    return {"train_epochs": int(card["epochs_run"]), **best}


def run(quick: bool, shared: Shared) -> Section:
    sizes = SIZES_QUICK if quick else SIZES
    stages = QUICK_STAGES if quick else STAGES
    budgets = QUICK_BUDGETS if quick else BUDGETS
    params = pipeline_params(budgets)
    runs: dict[int, list[StageRun]] = {}
    repos: dict[int, Path] = {}
    for n in sizes:
        repos[n] = make_repo(shared["workdir"] / f"scaling-{n}", params, n)
        runs[n] = run_pipeline(repos[n], stages)
    shared["scaling"] = {"params": params, "repos": repos, "runs": runs, "stages": stages}

    section = Section(
        "6",
        "Scaling: the whole pipeline at growing row counts",
        ["stage", *[f"{n:,} rows: wall / run() / peak RSS" for n in sizes], "growth of run()"],
    )
    for i, stage in enumerate(stages):
        cells = [
            f"{r.wall_s:.1f} s / {r.run_s:.1f} s / {r.peak_rss_mb:.0f} MB"
            for r in (runs[n][i] for n in sizes)
        ]
        slope = growth_exponent(list(sizes), [runs[n][i].run_s for n in sizes])
        section.rows.append([stage, *cells, f"n^{slope:.2f}"])
    totals = {n: sum(r.wall_s for r in runs[n]) for n in sizes}
    compute = {n: sum(r.run_s for r in runs[n]) for n in sizes}
    peak = {n: max(r.peak_rss_mb for r in runs[n]) for n in sizes}
    slope = growth_exponent(list(sizes), [compute[n] for n in sizes])
    mem_slope = growth_exponent(list(sizes), [peak[n] for n in sizes])
    section.rows.append(
        [
            "**pipeline**",
            *[f"**{totals[n]:.0f} s** / {compute[n]:.0f} s / {peak[n]:.0f} MB" for n in sizes],
            f"n^{slope:.2f}",
        ]
    )
    section.goals.append(
        Goal(
            "growth near-linear (pipeline run() time, two largest sizes)",
            f"n^{slope:.2f} (peak RSS n^{mem_slope:.2f})",
            f"exponent <= {LINEAR}",
            slope <= LINEAR,
        )
    )
    section.data = {str(n): [r.__dict__ for r in runs[n]] for n in sizes}
    section.notes.append("bench budgets: " + "; ".join(f"{k}: {v}" for k, v in budgets.items()))
    if quick:
        section.goals.append(
            Goal(
                "1,000,000-row retrain, default params.yaml, through the retrain flow",
                "not run in --quick",
                f"<= {RETRAIN_BUDGET_S // 60} min",
                None,
            )
        )
        section.notes.append(
            f"--quick runs only the stages {', '.join(stages)} (a smoke test of the harness)"
        )
    else:
        _default_retrain(section, sizes[-1], shared)
    section.notes.append(
        "wall: the stage's process (interpreter start, imports, run); run(): the stage's own "
        "work; peak RSS of the stage's process (its VmHWM). Stages run one after another in fresh "
        "processes, as dvc repro runs them (dvc's own overhead is bench 4's). Growth is the "
        "log-log slope between the two largest sizes: 1.0 is linear"
    )
    return section


def _default_retrain(section: Section, n: int, shared: Shared) -> None:
    """The goal as users meet it: `n` rows, params.yaml as shipped, the retrain flow."""
    repo = make_repo(shared["workdir"] / f"retrain-default-{n}", pipeline_params(), n)
    flow = timed_flow(repo)
    shared["retrain_at_scale"] = {"rows": n, "run": flow}
    did = _tuning(repo)
    default = pipeline_params()
    stages = ", ".join(
        f"{s['stage']} {s['startup_s'] + s['run_s']:.0f} s ({s['peak_rss_mb']:.0f} MB)"
        for s in flow.stages
    )
    section.goals.append(
        Goal(
            f"{n:,}-row retrain, default params.yaml, through the retrain flow (measured)",
            f"{flow.wall_s / 60:.1f} min",
            f"<= {RETRAIN_BUDGET_S // 60} min",
            flow.wall_s <= RETRAIN_BUDGET_S,
        )
    )
    section.notes.append(
        f"the {n:,}-row retrain with the default params took {flow.wall_s / 60:.1f} min end to "
        f"end through the retrain flow (a temporary Prefect server, DVC, the gate, the push "
        f"and the record). Per stage process (start-up + run(), peak RSS): {stages}. Tuning: "
        f"{did['n_trials']} trials ({did['n_pruned']} pruned) of at most "
        f"{default['tune']['max_epochs']} epochs on a seeded sample of "
        f"{default['tune']['max_rows']:,} rows per split (tune.max_rows; the gradient-boosting "
        f"baseline's search likewise, evaluate.lightgbm.max_rows); the final fit trained "
        f"{did['train_epochs']} epochs (early stopping, patience {default['train']['patience']})"
        f" on every training row at batch {did['params']['batch_size']}"
    )
    section.data["retrain_default"] = {"rows": n, **flow.__dict__, "tuning": did}


def main() -> None:
    cli(run, __doc__)


if __name__ == "__main__":
    main()
