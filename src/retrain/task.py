"""The supervised task: binary, multiclass or regression, asked by every stage, flow and report.

One object per table (`task_for(params.dataset)`) answers what differs between tasks: how the
raw target becomes the model's target, how many outputs the network has, which metrics score
it and in which direction, what early stopping watches, and what a prediction looks like. The
stages ask it rather than testing `dataset.task` themselves.

A prediction (what `Predictor.predict_matrix`, the baselines' `scores` and every metric take):

- binary: shape (rows,), the probability of the positive class;
- multiclass: shape (rows, classes), each row the probabilities of `classes` in their pinned
  order (summing to 1);
- regression: shape (rows,), the predicted value in the target's own units.

The model's target (`retrain.data.clean.TARGET`, read back by `targets`): 0/1 (binary), the
class's index in `classes` (multiclass), the value itself (regression).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import Any, ClassVar, Literal

import numpy as np
import pandas as pd

from retrain.errors import DataError

TaskKind = Literal["binary", "multiclass", "regression"]
TASKS: tuple[TaskKind, ...] = ("binary", "multiclass", "regression")

# Every metric any task reports, and its direction.
HIGHER_IS_BETTER = {
    # binary
    "roc_auc": True,
    "pr_auc": True,
    "accuracy": True,
    "precision": True,
    "recall": True,
    "f1": True,
    "log_loss": False,
    "brier": False,
    "ece": False,
    # multiclass (macro averages over the classes; ROC AUC one-vs-rest)
    "macro_f1": True,
    "roc_auc_ovr": True,
    # regression
    "rmse": False,
    "mae": False,
    "r2": True,
}


class Task(ABC):
    """What a task is; see the module docstring for the shapes it promises."""

    kind: ClassVar[TaskKind]
    # Every metric of the task, in the order tables show them.
    metrics: ClassVar[tuple[str, ...]]
    # Metrics of the predictions alone, with no decision threshold: what a gate may compare
    # between two models (each with its own threshold).
    gate_metrics: ClassVar[tuple[str, ...]]
    # The gate's and the bench's headline metric when params.yaml names none.
    default_metric: ClassVar[str]
    # What early stopping, checkpointing and the tuning objective watch on validation:
    # a key logged by the LightningModule, and whether larger is better.
    monitor: ClassVar[str]
    monitor_mode: ClassVar[Literal["max", "min"]]

    def __init__(self, classes: Sequence[Any] = ()) -> None:
        self.classes: tuple[Any, ...] = tuple(classes)

    @property
    @abstractmethod
    def n_outputs(self) -> int:
        """The network's outputs per row and ensemble member."""

    @abstractmethod
    def encode(self, target: pd.Series, source: str) -> pd.Series:
        """The raw target column as the model's target (see the module docstring).

        Raises:
            DataError: one line naming `source` and the target column: a value that is not
                one of the classes, not numeric, or a table with only one class.
        """

    def strata(self, y: np.ndarray) -> np.ndarray | None:
        """Labels the seeded split stratifies on (None: no stratification)."""
        return y

    @staticmethod
    def higher_is_better(metric: str) -> bool:
        return HIGHER_IS_BETTER[metric]

    @staticmethod
    def gain(metric: str, challenger: float, champion: float) -> float:
        """How much better `challenger` is than `champion` (positive) or worse (negative)."""
        diff = challenger - champion
        return round(diff if HIGHER_IS_BETTER[metric] else -diff, 6)

    def describe(self) -> str:
        """One line for logs and cards, e.g. "multiclass: 4 classes ['F', 'L', 'M', 'VF']"."""
        return self.kind

    def __repr__(self) -> str:
        return f"{type(self).__name__}({list(self.classes)!r})"


def _target_nulls(target: pd.Series, source: str) -> None:
    if target.isna().any():
        raise DataError(
            f"{source}: column {target.name!r} (target) has {int(target.isna().sum())} nulls"
        )


class BinaryTask(Task):
    """Two classes; `classes` is (negative, positive) where the negative one is known, else
    just (positive,): every value other than the positive class is negative."""

    kind = "binary"
    metrics = ("roc_auc", "pr_auc", "accuracy", "precision", "recall", "f1", "log_loss", "brier")
    gate_metrics = ("roc_auc", "pr_auc", "log_loss", "brier")
    default_metric = "roc_auc"
    monitor = "val/auroc"
    monitor_mode = "max"

    @property
    def positive(self) -> Any:
        return self.classes[-1]

    @property
    def n_outputs(self) -> int:
        return 1

    def encode(self, target: pd.Series, source: str) -> pd.Series:
        _target_nulls(target, source)
        positive = target.astype(str) == str(self.positive)
        if not positive.any() or positive.all():
            raise DataError(
                f"{source}: column {target.name!r} (target) has no rows of "
                f"{'the positive class' if not positive.any() else 'the negative class'} "
                f"{self.positive!r}"
            )
        return positive.astype("int64")

    def describe(self) -> str:
        return f"binary: positive class {self.positive!r}"


class MulticlassTask(Task):
    """Three or more classes, pinned in params.yaml (`dataset.classes`) in a fixed order:
    output i of the network is class i, whatever order a batch brings them in."""

    kind = "multiclass"
    metrics = ("log_loss", "roc_auc_ovr", "accuracy", "macro_f1", "brier")
    gate_metrics = ("log_loss", "roc_auc_ovr", "brier")
    default_metric = "log_loss"
    monitor = "val/log_loss"
    monitor_mode = "min"

    @property
    def n_outputs(self) -> int:
        return len(self.classes)

    def encode(self, target: pd.Series, source: str) -> pd.Series:
        _target_nulls(target, source)
        index = {str(c): i for i, c in enumerate(self.classes)}
        text = target.astype(str)
        unknown = sorted(set(text) - set(index))
        if unknown:
            raise DataError(
                f"{source}: column {target.name!r} (target) has class {unknown[0]!r}, not one "
                f"of dataset.classes {[str(c) for c in self.classes]}"
            )
        return text.map(index).astype("int64")

    def describe(self) -> str:
        return f"multiclass: {len(self.classes)} classes {[str(c) for c in self.classes]}"


class RegressionTask(Task):
    """A numeric target, predicted in its own units (the network learns it standardised)."""

    kind = "regression"
    metrics = ("rmse", "mae", "r2")
    gate_metrics = ("rmse", "mae", "r2")
    default_metric = "rmse"
    monitor = "val/rmse"
    monitor_mode = "min"
    # The split stratifies on this many quantile bins of the target, so that every split
    # sees the whole range (the tails of a skewed target included).
    STRATA = 10

    @property
    def n_outputs(self) -> int:
        return 1

    def encode(self, target: pd.Series, source: str) -> pd.Series:
        _target_nulls(target, source)
        values = pd.to_numeric(target, errors="coerce")
        bad = values.isna() | ~np.isfinite(values.astype("float64"))
        if bad.any():
            raise DataError(
                f"{source}: column {target.name!r} (target) is not numeric "
                f"(e.g. {target[bad].iloc[0]!r}); a regression target must be"
            )
        if values.nunique() < 2:
            raise DataError(f"{source}: column {target.name!r} (target) has one value only")
        return values.astype("float64")

    def strata(self, y: np.ndarray) -> np.ndarray | None:
        ranks = pd.Series(y).rank(method="first").to_numpy()
        bins = min(self.STRATA, max(1, len(y) // 20))
        return np.minimum((ranks - 1) * bins // len(y), bins - 1).astype(int)

    def describe(self) -> str:
        return "regression"


def make_task(kind: str, *, positive_class: Any = None, classes: Sequence[Any] = ()) -> Task:
    """The task of `kind` (one of TASKS)."""
    if kind == "binary":
        return BinaryTask([positive_class])
    if kind == "multiclass":
        return MulticlassTask(classes)
    if kind == "regression":
        return RegressionTask()
    raise ValueError(f"unknown task {kind!r}; known: {', '.join(TASKS)}")


def task_for(dataset: Any) -> Task:
    """The task `dataset` (params.dataset, a DatasetSchema) declares."""
    return make_task(
        dataset.task, positive_class=dataset.positive_class, classes=dataset.classes or ()
    )
