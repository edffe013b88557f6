"""The model card's statements on crafted run outputs: each one true for the table it describes."""

from __future__ import annotations

import copy
import re
from typing import Any

import numpy as np
import pytest

from retrain.analysis.card import CardInputs, render_html, render_markdown
from retrain.analysis.correlation import correlated_pairs
from retrain.model_key import OURS


def _inputs(**changes: Any) -> CardInputs:
    columns = {
        "tenure": {"rank": 1, "mean_abs": 0.80, "share": 0.5, "mean": 0.1},
        "monthly_charges": {"rank": 2, "mean_abs": 0.40, "share": 0.3, "mean": -0.1},
        "total_charges": {"rank": 3, "mean_abs": 0.20, "share": 0.2, "mean": 0.0},
    }
    slice_entry = {
        "n": 60,
        "positives": 20,
        "positive_rate": 1 / 3,
        "small": False,
        "metrics": {"roc_auc": 0.8, "recall": 0.5, "f1": 0.6},
    }
    base: dict[str, Any] = {
        "dataset": {
            "name": "t",
            "target": "churn",
            "positive_class": "Yes",
            "id_column": None,
            "numeric": list(columns),
            "categorical": ["contract"],
        },
        "train": {
            "model": "m",
            "params": {
                "hidden_dim": 8,
                "n_layers": 1,
                "dropout": 0.0,
                "lr": 0.01,
                "weight_decay": 0.0,
                "batch_size": 32,
                "k": 4,
            },
            "dataset": "t",
            "n_inputs": 5,
            "seed": 1,
            "device": "cpu",
            "metrics": {"val/auroc": 0.8},
            "best_epoch": 13,
            "epochs_run": 20,
            "stopped_by": "early_stopping",
            "still_improving": False,
            "data": {"path": "d.csv", "md5": "abc"},
            "git_revision": "deadbeef",
        },
        "prepare": {"rows_in": 100, "rows_out": 100, "rows": {"val": 20}, "n_features": 5},
        "evaluate": {
            "threshold": 0.5,
            "n_test": 60,
            **{m: {"roc_auc": 0.8, "ece": 0.01} for m in (OURS, "logreg", "lightgbm")},
        },
        "slices": {
            "split": "test",
            "threshold": 0.5,
            "n": 60,
            "positives": 20,
            "min_slice_rows": 50,
            "min_slice_class_rows": 10,
            "overall": {"roc_auc": 0.8, "recall": 0.5, "f1": 0.6},
            "slices": {"contract": {"Month-to-month": slice_entry}},
            "weakest": {},
        },
        "calibration": {
            "temperature": 1.0,
            "applied": False,
            "enabled": False,
            "min_log_loss_gain": 0.0005,
            "threshold_after": 0.5,
            "bins": 10,
            "val": {"log_loss_before": 0.5, "log_loss_after": 0.5},
            "test": {k: {"log_loss": 0.5, "brier": 0.2, "ece": 0.01} for k in ("before", "after")},
            "reliability": {"before": [], "after": []},
        },
        "attributions": {
            "rows": 60,
            "n_steps": 50,
            "baseline": "train_mean",
            "baseline_score": 0.3,
            "max_abs_delta": 1e-4,
            "columns": columns,
            "correlated": [],
        },
        "top_features": 10,
        "paths": {k: k for k in ("onnx_model", "preprocessor", "slice_metrics", "attributions")},
    }
    for key, value in changes.items():
        section, _, field = key.partition("__")
        if field:
            base[section] = {**copy.deepcopy(base[section]), field: value}
        else:
            base[section] = value
    return CardInputs(**base)


def test_best_epoch_and_early_stopping_are_printed_as_recorded():
    md = render_markdown(_inputs())
    assert "| best epoch / epochs run | 13 / 20 |" in md
    assert "early stopping" in md


def test_a_step_cut_while_improving_is_said_so():
    md = render_markdown(_inputs(train__stopped_by="max_steps", train__still_improving=True))
    assert "stopped at `train.max_steps` while validation was still improving" in md
    md = render_markdown(_inputs(train__stopped_by="max_epochs"))
    assert "stopped at `train.max_epochs` |" in md


def test_correlated_pair_named_only_when_there_is_one():
    md = render_markdown(_inputs())
    # Before: "(e.g. `tenure` and `monthly_charges`)", the top two by rank, whatever their r.
    assert "e.g." not in md and "correlated inputs share credit" in md
    pair = [{"columns": ["monthly_charges", "total_charges"], "r": 0.95}]
    md = render_markdown(_inputs(attributions__correlated=pair))
    assert "(e.g. `monthly_charges` and `total_charges`, r = +0.95)" in md


def test_correlated_pairs_on_the_encoded_matrix():
    rng = np.random.default_rng(0)
    a = rng.standard_normal(500)
    noise = rng.standard_normal(500)
    level = (a > 0).astype(float)  # a one-hot level that follows `a`
    x = np.column_stack([a, 2 * a + 0.01 * noise, noise, level, 1 - level])
    sources = ["a", "a_twin", "noise", "flag", "flag"]
    pairs = correlated_pairs(x, sources)
    assert pairs[0]["columns"] == ["a", "a_twin"]  # strongest first
    assert sorted(p["columns"] for p in pairs[1:]) == [["a", "flag"], ["a_twin", "flag"]]
    assert pairs[0]["r"] == pytest.approx(1.0, abs=1e-3)
    assert correlated_pairs(x[:, 2:4], ["noise", "flag"]) == []  # |r| ~ 0: nothing named


def test_a_large_completeness_error_is_flagged_in_words():
    assert "completeness error is large" not in render_markdown(_inputs())
    md = render_markdown(_inputs(attributions__max_abs_delta=0.52))
    assert "**The completeness error is large**: 5.20e-01 is 65% of" in md


def test_no_slices_section_without_slice_columns():
    assert "## Slices" in render_markdown(_inputs())
    md = render_markdown(_inputs(slices__slices={}))
    assert "## Slices" not in md and "Metrics of our model on the test split" not in md
    assert re.findall(r"^## (.+)$", md, re.M)[3] == "Calibration"


def test_tables_start_with_their_rows_not_an_empty_header():
    md = render_markdown(_inputs())
    heads = re.findall(r"^(\|.*\|)\n\|[-:|]+\|$", md, re.M)  # the row above each rule
    assert len(heads) >= 4
    for head in heads:  # Markdown (the Prefect UI's artifact) draws an empty one as a grey bar
        assert re.sub(r"[|\s]", "", head), head
    page = render_html(md, "card")
    tables = re.findall(r"<table>.*?</table>", page, re.S)
    assert len(tables) >= 4
    for t in tables:
        for head in re.findall(r"<thead>.*?</thead>", t, re.S):
            assert re.search(r"<th[^>]*>\s*[^<\s]", head), head  # a header has a word in it
    # The key-value table still shows its keys and values.
    assert "<td>best epoch / epochs run</td>" in page


def test_the_reproduce_section_names_the_command_that_rebuilds_a_recorded_run():
    # Issue 28: `git checkout && dvc pull && dvc repro` does not rebuild a run with overrides.
    md = render_markdown(_inputs())
    reproduce = md.split("## Reproduce", 1)[1]
    assert "`retrain reproduce <run id>`" in reproduce and "overrides" in reproduce
