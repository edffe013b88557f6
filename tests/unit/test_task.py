"""The task abstraction: how each task's raw target becomes the model's, and its bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from retrain.errors import DataError
from retrain.task import make_task


def test_binary_encodes_the_positive_class_as_one():
    task = make_task("binary", positive_class="Yes")
    y = task.encode(pd.Series(["No", "Yes", "No"], name="churn"), "t.csv")
    assert y.tolist() == [0, 1, 0] and task.n_outputs == 1
    with pytest.raises(DataError, match=r"t.csv: column 'churn' \(target\) has no rows of the"):
        task.encode(pd.Series(["No", "No"], name="churn"), "t.csv")


def test_multiclass_keeps_the_pinned_order_and_names_an_unknown_class():
    task = make_task("multiclass", classes=["VF", "F", "M", "L"])
    y = task.encode(pd.Series(["L", "VF", "M", "F"], name="class"), "b.csv")
    assert y.tolist() == [3, 0, 2, 1] and task.n_outputs == 4
    with pytest.raises(DataError, match=r"b.csv: column 'class' \(target\) has class 'XL'"):
        task.encode(pd.Series(["L", "XL"], name="class"), "b.csv")


def test_regression_needs_numbers_and_stratifies_on_quantile_bins():
    task = make_task("regression")
    y = task.encode(pd.Series(["1.5", "2", "3"], name="wage"), "w.csv")
    assert y.tolist() == [1.5, 2.0, 3.0]
    with pytest.raises(DataError, match=r"w.csv: column 'wage' \(target\) is not numeric"):
        task.encode(pd.Series(["1.5", "high"], name="wage"), "w.csv")
    strata = task.strata(np.random.default_rng(0).lognormal(size=1000))
    assert strata is not None and np.bincount(strata).tolist() == [100] * 10


def test_the_gain_follows_the_metric_direction():
    task = make_task("regression")
    assert task.gain("rmse", 9.0, 10.0) == 1.0 and task.gain("r2", 0.5, 0.4) == 0.1
