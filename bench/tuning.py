"""Bench 5, tuning: trials per minute and best validation AUROC, with and without pruning.

Runs the tune stage's own `run(params)` twice on the prepared Telco splits, with the same
seed and the same number of trials: once with the median pruner of params.yaml, once with
pruning off (pruner.n_startup_trials = n_trials: a MedianPruner prunes nothing until that
many trials have completed). Everything else is params.yaml's.

    .venv/bin/python -m bench.tuning [--quick]
"""

from __future__ import annotations

import copy
import json
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.common import RAW, REPO, Section, Shared, cli, fmt_ratio, pipeline_params, telco_raw
from retrain.testing import params_in, small_overrides

N_TRIALS, N_TRIALS_QUICK = 8, 3


def _raw(quick: bool) -> dict[str, Any]:
    raw = pipeline_params()
    if telco_raw() != RAW:  # the checkout holds another table: the Telco table where it is
        raw["paths"]["raw_data"] = str(telco_raw())
    if quick:  # the tests' small network and search space: a smoke test, seconds a trial
        raw = small_overrides(raw)
    raw["tune"]["n_trials"] = N_TRIALS_QUICK if quick else N_TRIALS
    if quick:
        raw["tune"].update(max_epochs=3, patience=2)
        raw["tune"]["pruner"] = {"n_startup_trials": 1, "n_warmup_steps": 2}
    return raw


def _study(tmp: Path, raw: dict[str, Any]) -> dict[str, Any]:
    from retrain.stages import tune

    params = params_in(tmp, raw, REPO)
    start = time.perf_counter()
    tune.run(params)
    seconds = time.perf_counter() - start
    summary = json.loads(params.paths.best_params.read_text())
    import optuna

    study = optuna.load_study(study_name=params.tune.study_name, storage=params.tune.storage)
    return {
        "epochs": sum(len(t.intermediate_values) for t in study.trials),
        "seconds": seconds,
        "trials": summary["n_trials"],
        "pruned": summary["n_pruned"],
        "best": summary["best_value"],
        "trials_per_min": 60 * summary["n_trials"] / seconds,
    }


def _warm_up(params: Any) -> None:
    """One short fit first, so that neither study pays for the first Trainer and imports."""
    from retrain.data.splits import load_splits
    from retrain.models.training import fit

    splits = load_splits(params.paths, ("train", "val"))
    fit(
        splits.matrix("train"),
        splits.matrix("val"),
        params.model,
        seed=params.seed,
        max_epochs=1,
        patience=1,
        num_threads=params.train.num_threads,
    )


def run(quick: bool, shared: Shared) -> Section:
    from retrain.stages import prepare

    raw = _raw(quick)
    no_pruning = copy.deepcopy(raw)
    no_pruning["tune"]["pruner"]["n_startup_trials"] = raw["tune"]["n_trials"]
    with tempfile.TemporaryDirectory() as tmp:
        params = params_in(Path(tmp), raw, REPO)
        prepare.run(params)
        _warm_up(params)
        pruned = _study(Path(tmp), raw)
        full = _study(Path(tmp), no_pruning)
    section = Section(
        "5",
        "Tuning: pruning vs none, same seed and trial count",
        ["study", "trials", "pruned", "epochs trained", "wall", "trials/min", "best val AUROC"],
    )
    for name, r in (("median pruner (params.yaml)", pruned), ("no pruning", full)):
        section.rows.append(
            [
                name,
                str(r["trials"]),
                str(r["pruned"]),
                str(r["epochs"]),
                f"{r['seconds']:.1f} s",
                f"{r['trials_per_min']:.1f}",
                f"{r['best']:.4f}",
            ]
        )
    speedup = pruned["trials_per_min"] / full["trials_per_min"]
    fewer = 1 - pruned["epochs"] / full["epochs"]
    section.notes += [
        f"pruning trained {fewer:.0%} fewer epochs; trials per minute follow only when epochs "
        "dominate a trial's cost: on Telco's 4.5k training rows an epoch is a few dozen steps, "
        "so each trial's fixed cost (Trainer and module set-up, validation) weighs as much",
        f"pruning runs {fmt_ratio(speedup)} the trials per minute of no pruning; best val "
        f"AUROC {pruned['best'] - full['best']:+.4f} against it",
        f"Telco train/val splits of the prepare stage; tune: max_epochs "
        f"{raw['tune']['max_epochs']}, patience {raw['tune']['patience']}, pruner "
        f"n_startup_trials {raw['tune']['pruner']['n_startup_trials']}, n_warmup_steps "
        f"{raw['tune']['pruner']['n_warmup_steps']}; train.num_threads "
        f"{raw['train']['num_threads']}",
        "no goal in issue 7; one run each: with this few trials the best AUROC depends on "
        "which trials TPE happens to draw after the pruned ones",
    ]
    section.data = {"pruned": pruned, "no_pruning": full, "speedup": speedup}
    return section


def main() -> None:
    cli(run, __doc__)


if __name__ == "__main__":
    main()
