from __future__ import annotations

import json

import numpy as np
import pytest

from retrain.models.metrics import (
    best_f1_threshold,
    calibration_points,
    classification_metrics,
    expected_calibration_error,
    roc_points,
)
from retrain.report import END, START, replace_block, results_table
from tests.conftest import REPO


def test_metrics_on_a_known_case():
    y = np.array([0, 0, 1, 1])
    p = np.array([0.1, 0.4, 0.35, 0.8])
    m = classification_metrics(y, p, 0.5)
    assert m["roc_auc"] == 0.75
    assert m["accuracy"] == 0.75 and m["precision"] == 1.0 and m["recall"] == 0.5
    assert best_f1_threshold(y, p) == pytest.approx(0.35)


def test_calibration_counts_add_up_and_perfect_scores_have_zero_error():
    rng = np.random.default_rng(0)
    p = rng.uniform(size=20000)
    y = (rng.uniform(size=20000) < p).astype(int)
    rows = calibration_points(y, p, 10)
    assert sum(r["count"] for r in rows) == 20000
    assert expected_calibration_error(y, p, 10) < 0.02
    assert expected_calibration_error(y, np.clip(p + 0.3, 0, 1), 10) > 0.2


def test_roc_points_run_from_zero_to_one():
    y = np.array([0, 1] * 50)
    tpr = roc_points(y, np.linspace(0, 1, 100))
    assert tpr[0] >= 0 and tpr[-1] == 1.0 and (np.diff(tpr) >= 0).all()


def test_readme_results_are_the_pipelines_own():
    metrics = json.loads((REPO / "metrics" / "evaluate.json").read_text())
    readme = (REPO / "README.md").read_text()
    block = readme.split(START)[1].split(END)[0]
    assert block.strip() == results_table(metrics).strip()


def test_replace_block_requires_markers():
    assert replace_block(f"a\n{START}\nold\n{END}\nb", "new\n") == f"a\n{START}\nnew\n{END}\nb"
    with pytest.raises(ValueError):
        replace_block("no markers", "x")
