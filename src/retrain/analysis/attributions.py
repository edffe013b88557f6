"""Feature attributions from Captum's Integrated Gradients, mapped back to the original columns.

Integrated Gradients runs on the trained network over the preprocessed design matrix and
attributes, per task (`retrain.models.network.TabularNet.forward` gives each):

- binary: the **logit** (log-odds of the positive class), not the probability: then every
  row's attributions add up (IG's completeness) to ``logit(row) - logit(baseline)``, in the
  same unit for every row, and a column's share does not depend on where the sigmoid
  saturates;
- multiclass: the **log-probability of the row's predicted class** (the ensemble's log mean
  softmax; per row its own class, Captum's per-example `target`): the rows add up to
  ``log p_c(row) - log p_c(baseline)`` for their class c, and the log keeps the unit additive
  as the logit does for binary;
- regression: the **predicted value in the target's own units** (the network's standardised
  output times the training std plus the mean, as the ONNX model serves it): an attribution
  reads "this column moves the prediction by so many units of the target", next to RMSE and
  MAE; de-standardising is affine, so the ranking is the standardised output's.

One-hot fragments (``contract=One year``, ``contract=Two year`` ...) are summed per row into
their source column before anything is averaged: the sum is that column's contribution, and
completeness still holds for the sums.

Baseline: by default the mean of the *training* design matrix, "the average training row".
For the standardised numeric columns that is the zero vector anyway; for a one-hot block an
all-zeros baseline would be a row with no level of any category, an input the network never
saw, so the attributions would partly explain an impossible row. The mean stays inside the
data, and an attribution then reads "how this value moves the score away from the average
row's". ``report.baseline: zeros`` is there for comparison.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from retrain.config import Params
from retrain.data.preprocess import Preprocessor
from retrain.errors import RetrainError
from retrain.models.network import network_from_record
from retrain.task import TaskKind, task_for

Baseline = Literal["train_mean", "zeros"]
IG_BATCH_ROWS = 4096  # interpolated rows per forward/backward pass of Integrated Gradients


def load_network(checkpoint: Path) -> nn.Module:
    """The trained network (no Lightning needed) from the checkpoint the train stage wrote."""
    if not checkpoint.exists():
        raise RetrainError(f"{checkpoint}: not found; run `dvc repro` (or `dvc pull`) first")
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    try:
        network = network_from_record(dict(state["hyper_parameters"]))
        prefix = "network."
        weights = {
            k.removeprefix(prefix): v
            for k, v in state["state_dict"].items()
            if k.startswith(prefix)
        }
        network.load_state_dict(weights)
    except (KeyError, TypeError, RuntimeError, ValueError) as err:
        raise RetrainError(f"{checkpoint}: not a checkpoint written by `train` ({err})") from None
    return network.eval()


def source_columns(pre: Preprocessor) -> list[str]:
    """The original column behind each design-matrix column, in `Preprocessor.transform` order
    (an encoded column's target + frequency block sums back into it, as one-hot fragments do)."""
    return pre.sources()


def baseline_row(train_x: np.ndarray, kind: Baseline) -> np.ndarray:
    """The reference input attributions are measured from (see the module docstring)."""
    if kind == "zeros":
        return np.zeros(train_x.shape[1], dtype=np.float32)
    return train_x.mean(axis=0, dtype=np.float64).astype(np.float32)


# What is attributed, per task (see the module docstring).
EXPLAINED: dict[TaskKind, str] = {
    "binary": "logit",
    "multiclass": "log_probability of the predicted class",
    "regression": "value (the target's units)",
}


@dataclass(frozen=True)
class Attributions:
    """Per-row attributions of the explained output (`EXPLAINED`) to the original columns."""

    columns: list[str]  # original columns, in design-matrix order of first appearance
    values: np.ndarray  # rows x columns, in the explained output's unit (log-odds for binary)
    logits: np.ndarray  # the explained output of each row (binary: the logit)
    baseline_logit: float  # the baseline row's (multiclass: of the first row's class)
    delta: np.ndarray  # Captum's convergence delta per row: completeness error
    # Multiclass: each row's predicted class (index), whose log-probability is explained.
    classes: np.ndarray | None = None
    # The baseline row's output for each explained row (its class's, for multiclass): the
    # rows' attributions add up to logits - baseline_outputs, up to delta.
    baseline_outputs: np.ndarray | None = None

    def row(self, i: int) -> dict[str, float]:
        return dict(zip(self.columns, self.values[i].tolist(), strict=True))

    def completeness_gap(self) -> float:
        """The largest |sum of a row's attributions - (its output - the baseline's)|: IG's
        completeness, checked rather than trusted (Captum's delta is the same number)."""
        if len(self.values) == 0:
            return 0.0
        base = self.baseline_outputs if self.baseline_outputs is not None else self.baseline_logit
        return float(np.abs(self.values.sum(axis=1) - (self.logits - base)).max())


def explained_output(
    network: nn.Module, kind: TaskKind = "binary", target: tuple[float, float] | None = None
) -> Callable[[torch.Tensor], torch.Tensor]:
    """The function of the design matrix that is attributed (`EXPLAINED`): (rows,) for binary
    and regression, (rows, classes) of log-probabilities for multiclass (a per-row target
    picks the class). `target`: a regression target's training (mean, std)."""
    if kind == "multiclass":
        return lambda inputs: network(inputs)
    if kind == "regression":
        mean, std = target if target is not None else (0.0, 1.0)
        return lambda inputs: network(inputs).squeeze(-1) * std + mean
    return lambda inputs: network(inputs).squeeze(-1)


def integrated_gradients(
    network: nn.Module,
    x: np.ndarray,
    baseline: np.ndarray,
    sources: list[str],
    *,
    n_steps: int = 50,
    kind: TaskKind = "binary",
    target: tuple[float, float] | None = None,
) -> Attributions:
    """Captum's IntegratedGradients on `network`'s explained output, summed per source column.

    Args:
        network: maps a float design matrix to the task's output (`TabularNet.forward`: one
            logit per row; log-probabilities per class; one standardised value per row).
        x: the rows to explain (design matrix).
        baseline: one design row to integrate from.
        sources: the original column of each design column (`source_columns`).
        n_steps: integration steps; the convergence delta shows whether they are enough.
        kind: the task (`EXPLAINED` says what is attributed for each).
        target: regression: the target's training (mean, std), to explain the served value.
    """
    from captum.attr import IntegratedGradients

    network = network.eval()
    output = explained_output(network, kind, target)
    inputs = torch.as_tensor(x, dtype=torch.float32)
    base = torch.as_tensor(baseline, dtype=torch.float32).unsqueeze(0)
    with torch.no_grad():
        outputs, base_out = output(inputs).double(), output(base).double()
    classes = outputs.argmax(dim=1) if kind == "multiclass" else None
    # Rows x steps inputs go through the network in chunks: all at once, 500 rows x 200 steps
    # through 32 ensemble members hold gigabytes of activations (the report stage was killed).
    attr, delta = IntegratedGradients(output).attribute(
        inputs,
        baselines=base,
        target=classes,
        n_steps=n_steps,
        return_convergence_delta=True,
        internal_batch_size=IG_BATCH_ROWS,
    )
    columns = list(dict.fromkeys(sources))
    onto = np.zeros((len(sources), len(columns)))
    onto[np.arange(len(sources)), [columns.index(s) for s in sources]] = 1.0
    if classes is not None:
        explained = outputs.gather(1, classes[:, None]).squeeze(1).numpy()
        base_rows = base_out[0, classes].numpy()
    else:
        explained = outputs.numpy()
        base_rows = np.full(len(explained), float(base_out.reshape(-1)[0]))
    return Attributions(
        columns=columns,
        values=attr.detach().double().numpy() @ onto,
        logits=explained,
        baseline_logit=float(base_rows[0]) if len(base_rows) else float("nan"),
        delta=delta.detach().double().numpy().reshape(-1),
        classes=None if classes is None else classes.numpy(),
        baseline_outputs=base_rows if kind != "binary" else None,
    )


def global_attributions(
    attributions: Attributions, rows: np.ndarray | None = None
) -> list[dict[str, Any]]:
    """Columns ranked by mean absolute attribution over the explained rows (`rows`: a boolean
    mask of them, e.g. those predicted as one class; all when None).

    Each entry: rank, column, mean_abs (the explained output's unit: log-odds for binary),
    share (of the summed mean_abs) and mean (signed: on average the column pushes the output
    up, > 0, or down, < 0).
    """
    values = attributions.values if rows is None else attributions.values[rows]
    mean_abs = np.abs(values).mean(axis=0)
    mean = values.mean(axis=0)
    total = float(mean_abs.sum()) or 1.0
    order = np.argsort(-mean_abs, kind="stable")
    return [
        {
            "rank": rank,
            "column": attributions.columns[i],
            "mean_abs": round(float(mean_abs[i]), 6),
            "share": round(float(mean_abs[i]) / total, 6),
            "mean": round(float(mean[i]), 6),
        }
        for rank, i in enumerate(order, start=1)
    ]


def per_class_attributions(
    attributions: Attributions, classes: list[str]
) -> dict[str, dict[str, Any]]:
    """Multiclass: `global_attributions` over the rows predicted as each class, by class name
    (``{"rows": n, "columns": [...]}``; a class no explained row is predicted as has 0 rows
    and no columns)."""
    if attributions.classes is None:
        raise ValueError("per-class attributions need a multiclass explanation")
    out: dict[str, dict[str, Any]] = {}
    for index, name in enumerate(classes):
        mask = attributions.classes == index
        ranked = global_attributions(attributions, mask) if mask.any() else []
        out[str(name)] = {"rows": int(mask.sum()), "columns": ranked}
    return out


@dataclass(frozen=True)
class RowExplanation:
    """Why the model scored one row as it did, column by column."""

    id_column: str
    row_id: str
    split: str
    # The model's probability for the row (binary), its predicted class's probability
    # (multiclass), its predicted value (regression) ...
    score: float
    baseline_score: float  # ... and the same for the baseline row
    baseline: str
    contributions: list[dict[str, Any]]  # column, value, attribution; largest |attribution| first
    delta: float
    # Newer than binary explanations, left out of to_dict when None (binary output unchanged).
    task: str | None = None  # multiclass, regression
    predicted_class: str | None = None  # multiclass: the class explained

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None or k not in _NEWER}

    def unit(self) -> tuple[str, str]:
        """What an attribution is, and what the row's attributions add up to, in words."""
        if self.task == "multiclass":
            return (
                f"log-probability of class {self.predicted_class!r}",
                "its log-probability minus the baseline row's",
            )
        if self.task == "regression":
            return "units of the target", "the prediction minus the baseline row's"
        return "log-odds", "the score's log-odds minus the baseline's"


_NEWER = ("task", "predicted_class")


def _row_scores(kind: TaskKind, result: Attributions) -> tuple[float, float]:
    """The row's and the baseline's served prediction, from the explained output."""
    out, base = float(result.logits[0]), result.baseline_logit
    if kind == "multiclass":
        return round(float(np.exp(out)), 6), round(float(np.exp(base)), 6)
    if kind == "regression":
        return round(out, 6), round(base, 6)
    # As binary explanations always were computed (the logit a float64, the baseline's float32).
    return (
        round(float(torch.sigmoid(torch.tensor(result.logits[0]))), 6),
        round(float(torch.sigmoid(torch.tensor(result.baseline_logit))), 6),
    )


def explain_row(params: Params, row_id: str) -> RowExplanation:
    """Attributions for the row whose id column equals `row_id`, in any prepared split.

    Raises:
        RetrainError: no id column is declared, the row is not found, or an artifact is missing.
    """
    from retrain.data.splits import load_splits

    id_column = params.dataset.id_column
    if not id_column:
        raise RetrainError("params.yaml: dataset.id_column is not set, so rows have no id")
    paths = params.paths
    for path in (paths.preprocessor, paths.train, paths.val, paths.test):
        if not path.exists():
            raise RetrainError(f"{path}: not found; run `dvc repro` (or `dvc pull`) first")
    splits = load_splits(paths)
    found = [
        (name, frame[frame[id_column].astype(str) == str(row_id)])
        for name, frame in splits.frames.items()
    ]
    hits = [(name, rows) for name, rows in found if len(rows)]
    if not hits:
        raise RetrainError(
            f"{id_column} {row_id!r} not found in the prepared splits "
            f"({', '.join(str(p) for p in (paths.train, paths.val, paths.test))})"
        )
    split, rows = hits[0]
    row = rows.head(1)
    pre = splits.preprocessor
    baseline = baseline_row(splits.matrix("train")[0], params.report.baseline)
    task = task_for(params.dataset)
    result = integrated_gradients(
        load_network(paths.checkpoint),
        pre.transform(row),
        baseline,
        source_columns(pre),
        n_steps=params.report.ig_steps,
        kind=task.kind,
        target=pre.target_scale(),
    )
    values = row.iloc[0]
    contributions = sorted(
        (
            {"column": col, "value": _plain(values[col]), "attribution": round(a, 6)}
            for col, a in result.row(0).items()
        ),
        key=lambda c: -abs(c["attribution"]),
    )
    score, baseline_score = _row_scores(task.kind, result)
    predicted = None if result.classes is None else str(task.classes[int(result.classes[0])])
    return RowExplanation(
        id_column=id_column,
        row_id=str(row_id),
        split=split,
        score=score,
        baseline_score=baseline_score,
        baseline=params.report.baseline,
        contributions=contributions,
        delta=round(float(result.delta[0]), 6),
        task=None if task.kind == "binary" else task.kind,
        predicted_class=predicted,
    )


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a table value (numpy scalars, NaN)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value
