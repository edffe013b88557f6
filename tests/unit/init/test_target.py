"""The task `retrain init` chooses from the target, with its reason; `--task` overrides it,
impossible choices are one-line errors naming the column (small synthetic tables)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.init import InitError, profile
from retrain.init.target import MIN_CLASS_ROWS, choose_task
from tests.unit.init.test_profile import crafted


def _table(target: np.ndarray | list[object]) -> pd.DataFrame:
    return crafted(len(target)).assign(y=target).drop(columns=["left"])


def test_text_with_three_or_more_values_is_multiclass_classes_sorted():
    rng = np.random.default_rng(0)
    p = profile(_table(rng.choice(["VF", "F", "M", "L"], 400)), target="y", name="x")
    assert (p.task, p.classes) == ("multiclass", ("F", "L", "M", "VF"))
    assert p.task_reason == "4 classes: F, L, M, VF"
    assert p.positive_class is None and p.negative_class is None


def test_numbers_are_regression_integers_with_few_values_too():
    rng = np.random.default_rng(0)
    decimals = profile(_table(np.round(rng.normal(50, 10, 400), 2)), target="y", name="x")
    assert decimals.task == "regression" and decimals.classes == ()
    assert decimals.task_reason.startswith("numeric, ") and "codes" not in decimals.task_reason
    rating = profile(_table(rng.integers(1, 6, 400)), target="y", name="x")
    assert rating.task == "regression"
    assert rating.task_reason == (
        "numeric, 5 distinct values; integers 1..5: if they are codes rather than "
        "quantities, use --task multiclass"
    )
    codes = profile(_table(rng.integers(1, 6, 400)), target="y", name="x", task="multiclass")
    assert codes.task == "multiclass" and codes.classes == (1, 2, 3, 4, 5)
    assert codes.task_reason.endswith("; given (--task)")
    # Numbers are pinned by value, not as text (10 after 9).
    wide = profile(_table(rng.integers(1, 12, 400)), target="y", name="x", task="multiclass")
    assert wide.classes == tuple(range(1, 12))


def test_two_values_stay_binary_as_before():
    p = profile(crafted(), target="left", name="x")
    assert (p.task, p.positive_class, p.classes) == ("binary", "left", ())
    flags = profile(_table(np.arange(400) % 2), target="y", name="x")
    assert (flags.task, flags.positive_class) == ("binary", 1)


@pytest.mark.parametrize(
    ("target", "task", "positive", "message"),
    [
        (["a", "b", "c", "d"] * 100, "regression", None,
         r"^column 'y' \(target\) holds text \(e\.g\. 'a'\); a regression target must be numeric"),
        (["a", "b"] * 200, "multiclass", None,
         r"^column 'y' \(target\) has 2 distinct values \['a', 'b'\]; a multiclass target has 3 "
         r"or more: use --task binary$"),
        (["a", "b", "c", "d"] * 100, "binary", None,
         r"^column 'y' \(target\) has 4 distinct values \['a', 'b', 'c', 'd'\]; a binary target "
         r"has exactly 2$"),
        (["a", "b", "c", "d"] * 100, None, "a",
         r"^--positive-class is for a binary target only; column 'y' \(target\) is multiclass"),
        (list(range(400)), None, "3",
         r"^--positive-class is for a binary target only; column 'y' \(target\) is regression"),
        ([f"c{i}" for i in range(60)] * 10, None, None,
         r"^column 'y' \(target\) has 60 classes, more than 50: group the rare ones"),
        (["a"] * 200 + ["b"] * 193 + ["rare"] * 7, None, None,
         rf"^column 'y' \(target\) has class 'rare' in 7 rows; every class needs at least "
         rf"{MIN_CLASS_ROWS} so that the train, validation and test splits each hold it"),
        (["a", "b", "c"] * 100, "ordinal", None, r"^--task 'ordinal' is not a task; one of "),
    ],
)  # fmt: skip
def test_impossible_choices_are_one_line_errors(target, task, positive, message):
    with pytest.raises(InitError, match=message) as err:
        profile(_table(target), target="y", name="x", task=task, positive_class=positive)
    assert "\n" not in str(err.value)


def test_choose_task_alone_on_a_series():
    values = pd.Series([1.5, 2.5, 3.5, 4.5] * 10, name="amount")
    assert choose_task(values, "amount").task == "regression"
    assert choose_task(values, "amount", task="multiclass").classes == (1.5, 2.5, 3.5, 4.5)


def test_params_pin_the_classes_and_the_task_in_place():
    """On the shipped params.yaml: `task:` is replaced on its line (its comment kept), the
    classes pinned by value (11 after 5), positive_class gone, the gate metric the task's."""
    import yaml

    from retrain.config import parse_params
    from retrain.init import update_params
    from tests.conftest import REPO

    rng = np.random.default_rng(0)
    codes = np.concatenate([np.full(16, 11), rng.integers(1, 6, 384)])
    p = profile(_table(codes), target="y", name="x", task="multiclass")
    text = (REPO / "params.yaml").read_text()
    new = update_params(text, p, Path("expectations/x.json"), "data/raw")
    assert "  classes: [1, 2, 3, 4, 5, 11]\n" in new
    task_line = next(line for line in new.splitlines() if line.startswith("  task:"))
    assert task_line.startswith("  task: multiclass ") and "# binary | multiclass" in task_line
    dataset = parse_params(yaml.safe_load(new)).dataset
    assert (dataset.task, dataset.classes, dataset.positive_class) == (
        "multiclass", [1, 2, 3, 4, 5, 11], None,
    )  # fmt: skip
    assert yaml.safe_load(new)["registry"]["gate"]["metric"] == "log_loss"
