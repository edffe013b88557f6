"""Batch scoring with the production model: what a prediction looks like per task, stamped
with the model version and time.

A model's raw prediction (`Predictor.predict_matrix`, shaped as `retrain.task` promises) is
shown to users through `Scores`, one class per task, so that the predict flow's file, the
service's JSON answers and its predictions log name the same things the same way:

- binary: `probability` (of the positive class) and `label` (1 at the model's threshold);
- multiclass: `predicted_class` (the class's name) and one `probability_<class>` column per
  class, in `dataset.classes` order (JSON: `class` and `probabilities: {class: p}`);
- regression: `prediction` (in the target's units) and its split-conformal interval
  `interval_lower`, `interval_upper` at `interval_level` (value +- the half-width `train`
  fitted on validation, `paths.intervals`; JSON: `interval: {lower, upper, level}`).
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from retrain.config import Params
from retrain.errors import DataError, RetrainError
from retrain.task import Task, task_for

if TYPE_CHECKING:
    from retrain.registry.serving import ServedModel

# The output columns per task (see the module docstring); the monitor reads them back from the
# predictions log.
PROBABILITY, LABEL = "probability", "label"
PREDICTED_CLASS = "predicted_class"
PREDICTION = "prediction"
LOWER, UPPER, LEVEL = "interval_lower", "interval_upper", "interval_level"


def probability_column(cls: Any) -> str:
    """The column of one class's probability (multiclass), e.g. `probability_VF`."""
    return f"{PROBABILITY}_{cls}"


class ModelMismatch(RetrainError):
    """The model's output does not have the shape the configured task promises."""


@dataclass(frozen=True)
class Interval:
    """A regression model's prediction interval: value +- `half_width` covers `level` of rows
    (split-conformal, fitted by `train` on `n_val` validation residuals)."""

    level: float
    half_width: float
    n_val: int

    @classmethod
    def load(cls, path: Path) -> Interval:
        """Read `path` (paths.intervals as `train` writes it).

        Raises:
            DataError: one line naming `path`: missing, not JSON, or not an interval.
        """
        if not path.is_file():
            raise DataError(
                f"{path}: not found; a regression model is served with its prediction "
                "interval (written by the train stage, paths.intervals)"
            )
        try:
            raw = json.loads(path.read_text())
            level, half, n_val = float(raw["level"]), float(raw["half_width"]), int(raw["n_val"])
        except (ValueError, KeyError, TypeError) as err:
            raise DataError(
                f"{path}: not a prediction interval ({type(err).__name__}: {err}); expected "
                '{"level": 0.9, "half_width": q, "n_val": n}'
            ) from None
        if not (0 < level < 1 and math.isfinite(half) and half >= 0):
            raise DataError(
                f"{path}: not a prediction interval (level {level} must be in (0, 1), "
                f"half_width {half} finite and >= 0)"
            )
        return cls(level, half, n_val)


class Scores(ABC):
    """One batch's predictions as the task shows them (see the module docstring)."""

    def __init__(self, prediction: np.ndarray) -> None:
        self.prediction = prediction

    def __len__(self) -> int:
        return len(self.prediction)

    @abstractmethod
    def columns(self) -> dict[str, np.ndarray]:
        """Named output columns, in order: the predict flow's file, /predict/batch's Parquet
        answer and the predictions log."""

    @abstractmethod
    def rows(self) -> list[dict[str, Any]]:
        """One JSON object per row (/predict), in plain Python types."""

    @abstractmethod
    def json_columns(self) -> dict[str, Any]:
        """The batch as JSON columns (/predict/batch), in plain Python types."""


class BinaryScores(Scores):
    """`probability` of the positive class and the 0/1 `label` at the model's threshold."""

    def __init__(self, prediction: np.ndarray, threshold: float) -> None:
        super().__init__(prediction)
        self.threshold = threshold
        self.label = decide(prediction, threshold)

    def columns(self) -> dict[str, np.ndarray]:
        return {PROBABILITY: self.prediction, LABEL: self.label}

    def rows(self) -> list[dict[str, Any]]:
        return [
            {PROBABILITY: float(p), LABEL: int(y)}
            for p, y in zip(self.prediction, self.label, strict=True)
        ]

    def json_columns(self) -> dict[str, Any]:
        return {PROBABILITY: self.prediction.tolist(), LABEL: self.label.tolist()}


class MulticlassScores(Scores):
    """The most probable class (the first of a tie, in `classes` order) and every class's
    probability."""

    def __init__(self, prediction: np.ndarray, classes: tuple[Any, ...]) -> None:
        super().__init__(prediction)
        self.classes = classes
        self.predicted = np.array(classes, dtype=object)[np.argmax(prediction, axis=1)]

    def columns(self) -> dict[str, np.ndarray]:
        probs = {probability_column(c): self.prediction[:, i] for i, c in enumerate(self.classes)}
        return {PREDICTED_CLASS: self.predicted, **probs}

    def rows(self) -> list[dict[str, Any]]:
        names = [str(c) for c in self.classes]
        return [
            {"class": cls, "probabilities": dict(zip(names, p.tolist(), strict=True))}
            for cls, p in zip(self.predicted.tolist(), self.prediction, strict=True)
        ]

    def json_columns(self) -> dict[str, Any]:
        probs = {str(c): self.prediction[:, i].tolist() for i, c in enumerate(self.classes)}
        return {"class": self.predicted.tolist(), "probabilities": probs}


class RegressionScores(Scores):
    """The predicted value and its prediction interval (value +- the half-width)."""

    def __init__(self, prediction: np.ndarray, interval: Interval) -> None:
        super().__init__(prediction)
        self.interval = interval
        self.lower = prediction - interval.half_width
        self.upper = prediction + interval.half_width

    def columns(self) -> dict[str, np.ndarray]:
        level = np.full(len(self.prediction), self.interval.level)
        return {PREDICTION: self.prediction, LOWER: self.lower, UPPER: self.upper, LEVEL: level}

    def rows(self) -> list[dict[str, Any]]:
        level = self.interval.level
        return [
            {PREDICTION: v, "interval": {"lower": lo, "upper": hi, "level": level}}
            for v, lo, hi in zip(
                self.prediction.tolist(), self.lower.tolist(), self.upper.tolist(), strict=True
            )
        ]

    def json_columns(self) -> dict[str, Any]:
        return {
            PREDICTION: self.prediction.tolist(),
            "interval": {
                "lower": self.lower.tolist(),
                "upper": self.upper.tolist(),
                "level": self.interval.level,
            },
        }


def scores_for(
    task: Task,
    prediction: np.ndarray,
    *,
    threshold: float | None = None,
    interval: Interval | None = None,
) -> Scores:
    """`prediction` (a model's output for a batch) shown as `task` shows it.

    Args:
        task: the configured task (`task_for(params.dataset)`).
        prediction: `Predictor.predict_matrix`'s output.
        threshold: binary: the model's decision threshold.
        interval: regression: the model's prediction interval.

    Raises:
        ModelMismatch: the output's shape is not the task's (e.g. a model trained for other
            classes than params.yaml's `dataset.classes`).
    """
    shape = prediction.shape
    want = (len(task.classes),) if task.kind == "multiclass" else ()
    if shape[1:] != want:
        raise ModelMismatch(
            f"the model's output has shape {shape}; a {task.describe()} task needs "
            f"(rows{''.join(f', {n}' for n in want)}): was it trained for this params.yaml?"
        )
    if task.kind == "binary":
        if threshold is None:
            raise ModelMismatch("a binary model needs its decision threshold (metrics.json)")
        return BinaryScores(prediction, threshold)
    if task.kind == "multiclass":
        return MulticlassScores(prediction, task.classes)
    if interval is None:
        raise ModelMismatch("a regression model needs its prediction interval (intervals.json)")
    return RegressionScores(prediction, interval)


def model_version(model: Path) -> str:
    """Content hash of the exported model: the same bytes are the same version."""
    return "md5:" + hashlib.md5(model.read_bytes()).hexdigest()[:12]


def threshold(params: Params) -> float:
    """The decision threshold the evaluate stage chose for the workspace model (binary)."""
    return float(json.loads(params.paths.metrics.read_text())["threshold"])


def model_input(df: pd.DataFrame, params: Params) -> pd.DataFrame:
    """The raw rows as the model saw them in training: prepare.fill_values filled.

    `clean` fills these documented gaps before the preprocessor is fitted (Telco: a blank
    total_charges is 0 for a new customer); scoring must fill them the same way, not with
    the preprocessor's median.
    """
    fills = {c: v for c, v in params.prepare.fill_values.items() if c in df.columns}
    if not fills or not any(df[c].isna().any() for c in fills):
        return df
    return df.fillna(fills)


def decide(proba: np.ndarray, cut: float) -> np.ndarray:
    """0/1 labels: positive when the probability reaches the model's threshold."""
    return (proba >= cut).astype(int)


def score_frame(
    df: pd.DataFrame,
    params: Params,
    model: ServedModel | None = None,
    *,
    now: datetime | None = None,
) -> pd.DataFrame:
    """Every row's prediction as its task shows it (`Scores.columns`), stamped with the
    model version and time.

    Args:
        df: the raw table (validated).
        params: dataset schema and, without `model`, the workspace model's paths.
        model: a registered version (the predict flow passes the prod one); None scores
            with the workspace model, for which `registry_version` is empty.
        now: the scoring time to stamp (default: the current UTC time).

    Raises:
        DataError: a regression workspace model without its interval (paths.intervals).
        ModelMismatch: the model's output is not the configured task's.
    """
    from retrain.models.predictor import Predictor

    task = task_for(params.dataset)
    if model is None:
        onnx, pre, label = params.paths.onnx_model, params.paths.preprocessor, ""
        cut = threshold(params) if task.kind == "binary" else None
        interval = Interval.load(params.paths.intervals) if task.kind == "regression" else None
    else:
        onnx, pre, label = model.onnx, model.preprocessor, model.label
        cut, interval = model.threshold, model.interval
    predictor = Predictor(pre, onnx)
    x = predictor.preprocessor.transform(model_input(df, params))
    prediction = predictor.predict_matrix(x)
    scores = scores_for(task, prediction, threshold=cut, interval=interval)
    out = pd.DataFrame(scores.columns())
    if params.dataset.id_column and params.dataset.id_column in df.columns:
        out.insert(0, params.dataset.id_column, df[params.dataset.id_column].to_numpy())
    out["model_version"] = model_version(onnx)
    out["registry_version"] = label
    out["scored_at"] = (now or datetime.now(UTC)).isoformat(timespec="seconds")
    return out
