"""The tune stage's cross-validated study on small synthetic tables, one per task: a trial's
value is its mean held-out score over tune.folds folds of train+validation, trial 0 is the
model section's defaults, pruning judges the running mean after each fold, and a rerun with
the same seed writes the same bytes."""

from __future__ import annotations

import copy
import csv
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from retrain.config import Params
from retrain.stages import prepare, tune
from tests.conftest import params_in, small_overrides, telco_params

ROWS = 240


def _table(dest: Path, kind: str) -> tuple[Path, dict[str, Any]]:
    """A table whose target follows two numeric columns and a categorical one."""
    rng = np.random.default_rng(0)
    x1, x2 = rng.standard_normal(ROWS), rng.standard_normal(ROWS)
    colour = rng.choice(["red", "green", "blue"], ROWS)
    signal = 1.5 * x1 - x2 + (colour == "red") + 0.3 * rng.standard_normal(ROWS)
    dataset: dict[str, Any] = {"name": f"synthetic-{kind}", "task": kind, "target": "y"}
    if kind == "binary":
        y: Any = np.where(signal > 0, "yes", "no")
        dataset["positive_class"] = "yes"
    elif kind == "multiclass":
        y = np.select([signal < -0.7, signal < 0.7], ["low", "mid"], "high")
        dataset["classes"] = ["low", "mid", "high"]
    else:
        y = 100.0 + 10.0 * signal
    frame = pd.DataFrame({"id": range(ROWS), "x1": x1, "x2": x2, "colour": colour, "y": y})
    path = dest / f"{kind}.csv"
    frame.to_csv(path, index=False)
    dataset.update(id_column="id", numeric=["x1", "x2"], categorical=["colour"])
    return path, dataset


def _params(tmp: Path, kind: str, space: dict[str, Any] | None = None, **tune_keys: Any) -> Params:
    raw = copy.deepcopy(small_overrides(telco_params()))
    table, dataset = _table(tmp, kind)
    raw["dataset"] = {"suite": raw["dataset"]["suite"], **dataset}
    raw["paths"]["raw_data"] = str(table)
    raw["prepare"]["fill_values"] = {}
    raw["registry"]["gate"].pop("metric")  # the task's default
    raw["registry"]["gate"]["slices"] = raw["report"]["slices"] = []
    raw["model"].update(k=2, hidden_dim=16, n_bins=8, d_embedding=4, batch_size=32)
    tiny = {"n_trials": 2, "folds": 2, "max_epochs": 3, "patience": 2}
    raw["tune"].update({**tiny, "study_name": f"test-{kind}", **tune_keys})
    raw["tune"]["search_space"] = space or {"dropout": {"type": "float", "low": 0.0, "high": 0.3}}
    params = params_in(tmp, raw)
    prepare.run(params)
    return params


def _trials(params: Params) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(params.paths.tune_trials.read_text())))


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_a_trial_is_scored_on_every_fold_of_train_and_validation(tmp_path, kind):
    params = _params(tmp_path, kind)
    tune.run(params)
    best = json.loads(params.paths.best_params.read_text())
    assert best["cv_folds"] == 2 and len(best["fold_scores"]) == 2
    assert best["best_value"] == pytest.approx(np.mean(best["fold_scores"]), abs=1e-6)
    rows = _trials(params)
    assert list(rows[0])[:5] == ["trial", "state", "value", "fold_1", "fold_2"]
    done = [r for r in rows if r["state"] == "COMPLETE"]
    for row in done:  # the value is the mean of the folds' held-out scores
        folds = [float(row["fold_1"]), float(row["fold_2"])]
        assert float(row["value"]) == pytest.approx(np.mean(folds), abs=2e-6)
    # The task's direction: ROC AUC is maximised, log loss and RMSE minimised.
    pick = max if kind == "binary" else min
    assert best["best_value"] == pytest.approx(pick(float(r["value"]) for r in done), abs=1e-6)
    # Trial 0 starts from the model section (no champion here).
    assert float(rows[0]["dropout"]) == params.model.dropout


def test_a_rerun_with_the_same_seed_writes_the_same_study(tmp_path):
    params = _params(tmp_path, "regression")
    tune.run(params)
    first = params.paths.best_params.read_bytes(), params.paths.tune_trials.read_bytes()
    tune.run(params)
    assert (params.paths.best_params.read_bytes(), params.paths.tune_trials.read_bytes()) == first


def test_the_search_starts_from_the_defaults_and_never_chooses_worse(tmp_path):
    """A search space where everything but the default learning rate is worse (smaller rates
    learn less in 3 epochs): the study chooses trial 0, the model section's parameters; the
    others are pruned after their first fold, whose running mean is below trial 0's."""
    lr = small_overrides(telco_params())["model"]["lr"]
    params = _params(
        tmp_path,
        "binary",
        space={"lr": {"type": "float", "low": 1e-6, "high": lr, "log": True}},
        n_trials=3,
        folds=3,
        pruner={"n_startup_trials": 1, "n_warmup_steps": 0},
    )
    tune.run(params)
    best = json.loads(params.paths.best_params.read_text())
    rows = _trials(params)
    assert float(rows[0]["lr"]) == params.model.lr  # trial 0: the default, not sampled
    assert best["best_trial"] == 0 and best["params"]["lr"] == params.model.lr
    assert [r["state"] for r in rows] == ["COMPLETE", "PRUNED", "PRUNED"]
    for row in rows[1:]:  # pruned on the running mean after fold 1: the later folds not run
        assert float(row["fold_1"]) < float(rows[0]["fold_1"])
        assert row["fold_2"] == row["fold_3"] == ""
        assert row["value"] == row["fold_1"]  # Optuna keeps the last running mean reported


def _study(folds: dict[int, list[float]], start: bool = True) -> Any:
    """An in-memory study of finished trials with these fold scores (trial 0 the start when
    `start`), each with a distinct dropout so the chosen parameters say which trial won."""
    import optuna

    from retrain.tuning.folds import FOLD_SCORES
    from retrain.tuning.space import START

    study = optuna.create_study(direction="maximize")
    if start:
        study.set_user_attr(START, True)
    dist = {"dropout": optuna.distributions.FloatDistribution(0.0, 0.5)}
    for number, scores in folds.items():
        study.add_trial(
            optuna.trial.create_trial(
                params={"dropout": 0.1 * number},
                distributions=dist,
                value=float(np.mean(scores)),
                user_attrs={FOLD_SCORES: scores},
            )
        )
    return study


@pytest.mark.parametrize(
    ("best", "chosen"),
    [
        # +0.004 on the mean, but the folds disagree (+0.012, -0.004, +0.004): se 0.0046.
        ([0.852, 0.836, 0.834], 0),
        # +0.004 on every fold: se 0, a clear gain.
        ([0.844, 0.844, 0.834], 1),
    ],
)
def test_the_best_replaces_the_start_only_when_clearly_better_on_the_same_folds(
    tmp_path, best, chosen
):
    """Trial 1 leads the start on the mean in both cases; it is chosen only when its paired
    gain over the start exceeds one standard error of the per-fold differences."""
    params = _params(tmp_path, "binary", folds=3)
    start = [0.840, 0.840, 0.830]
    if chosen == 1:
        best = [0.844, 0.844, 0.834]
    study = _study({0: start, 1: best, 2: [0.70, 0.71, 0.72]})
    got = tune.finish(params, study)
    written = json.loads(params.paths.best_params.read_text())
    assert study.best_trial.number == 1  # Optuna's best either way
    assert written["best_trial"] == chosen
    assert got.dropout == pytest.approx(0.1 * chosen)
    assert written["params"]["dropout"] == pytest.approx(0.1 * chosen)
    assert written["fold_scores"] == pytest.approx(start if chosen == 0 else best)
    selection = written["selection"]
    assert selection["best_trial"] == 1 and selection["kept_start"] is (chosen == 0)
    assert selection["gain_over_start"] == pytest.approx(0.004, abs=1e-9)


def test_without_a_start_or_with_min_gain_se_0_the_best_is_chosen(tmp_path):
    folds = {0: [0.840, 0.840, 0.830], 1: [0.852, 0.836, 0.834]}
    params = _params(tmp_path, "binary", folds=3)
    tune.finish(params, _study(folds, start=False))  # trial 0 was sampled, not the start
    assert json.loads(params.paths.best_params.read_text())["best_trial"] == 1
    (tmp_path / "b").mkdir()
    params = _params(tmp_path / "b", "binary", folds=3, min_gain_se=0)
    tune.finish(params, _study(folds))
    assert json.loads(params.paths.best_params.read_text())["best_trial"] == 1


def test_the_rule_reads_the_task_s_direction():
    """For a score minimised (log loss, RMSE) a gain is a decrease."""
    from retrain.tuning.select import choose

    start, best = [0.50, 0.52, 0.51], [0.48, 0.50, 0.49]  # lower by 0.02 on every fold
    assert choose(1, best, start, maximize=False, min_gain_se=1.0).number == 1
    noisy = [0.45, 0.53, 0.50]  # lower by 0.0167 on the mean, the folds disagree
    picked = choose(1, noisy, start, maximize=False, min_gain_se=1.0)
    assert picked.kept_start and picked.number == 0 and picked.gain == pytest.approx(0.05 / 3)


def test_a_start_the_sampler_completed_is_not_kept_over_the_best(tmp_path):
    """A default outside the search space (here the learning rate) leaves that dimension to
    the sampler: trial 0 is then partly a random draw, and the rule that keeps the start must
    not favour it; a start inside the space is marked as the start."""
    import optuna

    from retrain.tuning.space import START, start_trial

    lr = small_overrides(telco_params())["model"]["lr"]
    space = {
        "lr": {"type": "float", "low": lr * 2, "high": lr * 4, "log": True},
        "dropout": {"type": "float", "low": 0.0, "high": 0.3},
    }
    params = _params(tmp_path, "binary", space=space, folds=3)
    study = optuna.create_study(direction="maximize")
    assert start_trial(study, params) == {"dropout": params.model.dropout}
    assert START not in study.user_attrs
    (tmp_path / "b").mkdir()
    space["lr"] = {"type": "float", "low": lr / 2, "high": lr * 2, "log": True}
    params = _params(tmp_path / "b", "binary", space=space, folds=3)
    study = optuna.create_study(direction="maximize")
    assert start_trial(study, params) == {"dropout": params.model.dropout, "lr": lr}
    assert study.user_attrs[START] is True
