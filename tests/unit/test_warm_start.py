"""Tuning warm-starts: the champion's parameters are the study's first trial."""

from __future__ import annotations

import json
from pathlib import Path

import optuna

from retrain.config import parse_params
from retrain.registry.champion import warm_start, write_warm_start
from retrain.stages.tune import suggest, warm_start_trial
from tests.conftest import REPO

CHAMPION = {
    "hidden_dim": 40,
    "n_layers": 2,
    "dropout": 0.2,
    "lr": 0.001,
    "weight_decay": 0.001,
    "batch_size": 128,
}


def test_the_committed_file_says_no_champion_and_matches_what_the_flow_writes(tmp_path):
    committed = REPO / "registry" / "champion_params.json"
    assert json.loads(committed.read_text()) == {"champion": None, "params": None}
    # The flow rewrites it before every run; with no champion the bytes must not change,
    # or tune (which depends on it) would rerun for nothing.
    assert not write_warm_start(committed, warm_start(None))


def test_the_champion_parameters_are_trial_zero(tmp_path: Path, default_params_raw):
    params = parse_params(default_params_raw)
    path = tmp_path / "champion_params.json"
    write_warm_start(path, {"champion": "churn-model@v1.0.0", "params": CHAMPION})
    warm = warm_start_trial(path, params.tune)
    assert warm == CHAMPION
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=params.seed)
    )
    study.enqueue_trial(warm)
    study.optimize(lambda t: float(len(suggest(t, params.tune))), n_trials=3)
    assert study.trials[0].params == CHAMPION
    assert study.trials[1].params != CHAMPION


def test_values_outside_the_search_space_are_left_to_the_sampler(tmp_path, default_params_raw):
    params = parse_params(default_params_raw)
    path = tmp_path / "champion_params.json"
    outside = {**CHAMPION, "lr": 0.5, "batch_size": 1024, "hidden_dim": 64}
    write_warm_start(path, {"champion": "x", "params": outside})
    assert warm_start_trial(path, params.tune) == {
        k: v for k, v in outside.items() if k not in ("lr", "batch_size")
    }
    assert warm_start_trial(tmp_path / "missing.json", params.tune) is None
    write_warm_start(path, warm_start(None))
    assert warm_start_trial(path, params.tune) is None
