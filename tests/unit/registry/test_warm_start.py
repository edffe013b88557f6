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
    "hidden_dim": 140,
    "n_layers": 2,
    "dropout": 0.2,
    "lr": 0.001,
    "weight_decay": 0.001,
    "batch_size": 128,
    "k": 32,
    "num_embeddings": "ple",
    "n_bins": 48,
    "d_embedding": 8,
    "grad_clip": 1.0,
}
# A champion trained before issue 14: the plain MLP, whose parameters had none of the
# ensemble and embedding keys.
OLD_MLP = {
    "hidden_dim": 40,
    "n_layers": 2,
    "dropout": 0.2,
    "lr": 0.001,
    "weight_decay": 0.001,
    "batch_size": 128,
}
SEARCHED = ("hidden_dim", "n_layers", "dropout", "d_embedding", "lr", "weight_decay", "batch_size")


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
    warm = warm_start_trial(path, params.tune, params.model)
    searched = {k: CHAMPION[k] for k in SEARCHED}
    assert warm == searched
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.TPESampler(seed=params.seed)
    )
    study.enqueue_trial(warm)
    study.optimize(lambda t: float(len(suggest(t, params.tune))), n_trials=3)
    assert study.trials[0].params == searched
    assert study.trials[1].params != searched


def test_a_champion_of_another_network_passes_on_only_the_optimiser(
    tmp_path: Path, default_params_raw, capsys
):
    params = parse_params(default_params_raw)
    path = tmp_path / "champion_params.json"
    write_warm_start(path, {"champion": "churn-model@v1.0.0", "params": OLD_MLP})
    warm = warm_start_trial(path, params.tune, params.model)
    # Widths, depth and dropout chosen for a 64-wide MLP say nothing about TabM's.
    assert warm == {"lr": 0.001, "weight_decay": 0.001, "batch_size": 128}
    assert "the champion is another network" in capsys.readouterr().out
    # Nothing left that applies: no trial 0, and the log says so.
    write_warm_start(path, {"champion": "x", "params": {"hidden_dim": 40, "n_layers": 2}})
    assert warm_start_trial(path, params.tune, params.model) is None
    assert "no warm start" in capsys.readouterr().out
    # The same network family passes everything in the space on.
    same = {
        **OLD_MLP,
        "hidden_dim": 80,
        "k": 8,
        "num_embeddings": "ple",
    }  # k differs: still TabM-mini
    write_warm_start(path, {"champion": "x", "params": same})
    assert warm_start_trial(path, params.tune, params.model) == {
        k: same[k] for k in SEARCHED if k in same
    }


def test_a_champion_of_the_other_ensemble_kind_is_another_network(
    tmp_path: Path, default_params_raw, capsys
):
    params = parse_params(default_params_raw)
    path = tmp_path / "champion_params.json"
    other = "tabm" if params.model.arch == "tabm-mini" else "tabm-mini"
    write_warm_start(path, {"champion": "x", "params": {**CHAMPION, "arch": other}})
    # A BatchEnsemble's widths are not a TabM-mini's: only the optimiser's values carry over.
    assert warm_start_trial(path, params.tune, params.model) == {
        k: CHAMPION[k] for k in ("lr", "weight_decay", "batch_size")
    }
    assert f"'network': '{other}'" in capsys.readouterr().out


def test_values_outside_the_search_space_are_left_to_the_sampler(tmp_path, default_params_raw):
    params = parse_params(default_params_raw)
    path = tmp_path / "champion_params.json"
    outside = {**CHAMPION, "lr": 0.5, "batch_size": 1024, "hidden_dim": 100}
    write_warm_start(path, {"champion": "x", "params": outside})
    assert warm_start_trial(path, params.tune, params.model) == {
        k: outside[k] for k in SEARCHED if k not in ("lr", "batch_size")
    }
    assert warm_start_trial(tmp_path / "missing.json", params.tune) is None
    write_warm_start(path, warm_start(None))
    assert warm_start_trial(path, params.tune) is None
