"""Bench 6, scaling: the whole pipeline at 10k, 100k and 1M rows; time and peak memory per stage.

Each size gets a fresh repository of this checkout whose raw table is that many synthetic rows
(the real table resampled with the seed, numbers jittered: `bench.common.synthetic_telco`).
The five stages run in dvc.yaml order, each in its own process as `dvc repro` runs them;
per stage: process wall time, import time, the stage's own `run()` time and the process's
peak RSS (VmHWM). Tuning and training budgets are cut (BUDGETS) so that 1M rows fit in the
bench; the default budgets are extrapolated from the measured time per epoch, and labelled so.

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


def _epochs(repo: Path) -> dict[str, int]:
    """Epochs trained by tune (all trials) and train, read from their outputs."""
    import csv

    card = json.loads((repo / "models" / "model" / "model_card.json").read_text())
    with (repo / "models" / "tune" / "trials.csv").open() as fh:
        trials = list(csv.DictReader(fh))
    best = json.loads((repo / "models" / "tune" / "best_params.json").read_text())
    return {"train": int(card["epochs_run"]), "tune_trials": len(trials), **best}


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
        "Scaling: the whole pipeline at growing row counts (bench budgets)",
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
            Goal("1M-row retrain", "not run in --quick", f"<= {RETRAIN_BUDGET_S // 60} min", None)
        )
        section.notes.append(
            f"--quick runs only the stages {', '.join(stages)} (a smoke test of the harness)"
        )
    else:
        _retrain_goals(section, sizes[-1], repos[sizes[-1]], runs[sizes[-1]])
    section.notes.append(
        "wall: the stage's process (interpreter start, imports, run); run(): the stage's own "
        "work; peak RSS of the stage's process (its VmHWM). Stages run one after another in fresh "
        "processes, as dvc repro runs them (dvc's own overhead is bench 4's). Growth is the "
        "log-log slope between the two largest sizes: 1.0 is linear"
    )
    return section


def _retrain_goals(section: Section, n: int, repo: Path, runs: list[StageRun]) -> None:
    """The measured retrain at `n` rows, and the default budgets extrapolated from it."""
    epochs = _epochs(repo)
    total = sum(r.wall_s for r in runs)
    tune_run, train_run = runs[2].run_s, runs[3].run_s
    per_epoch = train_run / max(epochs["train"], 1)
    default = pipeline_params()
    default_epochs = (
        default["tune"]["n_trials"] * default["tune"]["max_epochs"]
        + default["train"]["max_epochs"]
    )
    other = total - tune_run - train_run
    extrapolated = other + default_epochs * per_epoch
    affordable = (RETRAIN_BUDGET_S - other) / per_epoch
    section.goals += [
        Goal(
            f"{n:,}-row retrain with the bench budgets (measured)",
            f"{total / 60:.1f} min",
            f"<= {RETRAIN_BUDGET_S // 60} min",
            total <= RETRAIN_BUDGET_S,
        ),
        Goal(
            f"{n:,}-row retrain with the default budgets (EXTRAPOLATED upper bound)",
            f"~{extrapolated / 60:.0f} min",
            f"<= {RETRAIN_BUDGET_S // 60} min",
            extrapolated <= RETRAIN_BUDGET_S,
        ),
    ]
    section.notes.append(
        f"tune ran {epochs['n_trials']} trials ({epochs['n_pruned']} pruned), train "
        f"{epochs['train']} epochs at {n:,} rows. One training epoch there (train stage, batch "
        f"{epochs['params']['batch_size']}) costs ~{per_epoch:.1f} s; the default budgets allow "
        f"up to {default['tune']['n_trials']} x {default['tune']['max_epochs']} tuning + "
        f"{default['train']['max_epochs']} training epochs = {default_epochs} epochs, hence the "
        f"extrapolated upper bound (no early stopping, no pruning) of ~{extrapolated / 60:.0f} "
        f"min; 15 min leave room for ~{max(affordable, 0):.0f} epochs at this size. Early "
        "stopping and pruning cut the real number, but a 1M-row retrain needs budgets sized "
        "for it (fewer trials and epochs, larger batches)"
    )
    section.data["extrapolated_default_s"] = extrapolated
    section.data["per_epoch_s"] = per_epoch


def main() -> None:
    cli(run, __doc__)


if __name__ == "__main__":
    main()
