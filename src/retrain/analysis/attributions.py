"""Feature attributions from Captum's Integrated Gradients, mapped back to the original columns.

Integrated Gradients runs on the trained network over the preprocessed design matrix and
attributes its **logit** (log-odds of the positive class), not the probability: then every
row's attributions add up (IG's completeness) to ``logit(row) - logit(baseline)``, in the same
unit for every row, and a column's share does not depend on where the sigmoid saturates.

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
    """The original column behind each design-matrix column, in `Preprocessor.transform` order."""
    return [*pre.numeric, *(col for col in pre.categorical for _ in pre.categories[col])]


def baseline_row(train_x: np.ndarray, kind: Baseline) -> np.ndarray:
    """The reference input attributions are measured from (see the module docstring)."""
    if kind == "zeros":
        return np.zeros(train_x.shape[1], dtype=np.float32)
    return train_x.mean(axis=0, dtype=np.float64).astype(np.float32)


@dataclass(frozen=True)
class Attributions:
    """Per-row attributions of the network's logit to the original columns."""

    columns: list[str]  # original columns, in design-matrix order of first appearance
    values: np.ndarray  # rows x columns, in log-odds
    logits: np.ndarray  # the network's logit of each row
    baseline_logit: float
    delta: np.ndarray  # Captum's convergence delta per row: completeness error

    def row(self, i: int) -> dict[str, float]:
        return dict(zip(self.columns, self.values[i].tolist(), strict=True))


def integrated_gradients(
    network: nn.Module,
    x: np.ndarray,
    baseline: np.ndarray,
    sources: list[str],
    *,
    n_steps: int = 50,
) -> Attributions:
    """Captum's IntegratedGradients on `network`'s logit, summed per source column.

    Args:
        network: maps a float design matrix to one logit per row.
        x: the rows to explain (design matrix).
        baseline: one design row to integrate from.
        sources: the original column of each design column (`source_columns`).
        n_steps: integration steps; the convergence delta shows whether they are enough.
    """
    from captum.attr import IntegratedGradients

    network = network.eval()

    def logit(inputs: torch.Tensor) -> torch.Tensor:
        return network(inputs).squeeze(-1)

    inputs = torch.as_tensor(x, dtype=torch.float32)
    base = torch.as_tensor(baseline, dtype=torch.float32).unsqueeze(0)
    # Rows x steps inputs go through the network in chunks: all at once, 500 rows x 200 steps
    # through 32 ensemble members hold gigabytes of activations (the report stage was killed).
    attr, delta = IntegratedGradients(logit).attribute(
        inputs,
        baselines=base,
        n_steps=n_steps,
        return_convergence_delta=True,
        internal_batch_size=IG_BATCH_ROWS,
    )
    columns = list(dict.fromkeys(sources))
    onto = np.zeros((len(sources), len(columns)))
    onto[np.arange(len(sources)), [columns.index(s) for s in sources]] = 1.0
    with torch.no_grad():
        logits = logit(inputs).double().numpy()
        baseline_logit = float(logit(base).double().item())
    return Attributions(
        columns=columns,
        values=attr.detach().double().numpy() @ onto,
        logits=logits,
        baseline_logit=baseline_logit,
        delta=delta.detach().double().numpy().reshape(-1),
    )


def global_attributions(attributions: Attributions) -> list[dict[str, Any]]:
    """Columns ranked by mean absolute attribution over the explained rows.

    Each entry: rank, column, mean_abs (log-odds), share (of the summed mean_abs) and mean
    (signed: on average the column pushes the score up, > 0, or down, < 0).
    """
    mean_abs = np.abs(attributions.values).mean(axis=0)
    mean = attributions.values.mean(axis=0)
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


@dataclass(frozen=True)
class RowExplanation:
    """Why the model scored one row as it did, column by column."""

    id_column: str
    row_id: str
    split: str
    score: float  # the model's probability for the row
    baseline_score: float  # its probability for the baseline row
    baseline: str
    contributions: list[dict[str, Any]]  # column, value, attribution; largest |attribution| first
    delta: float

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


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
    result = integrated_gradients(
        load_network(paths.checkpoint),
        pre.transform(row),
        baseline,
        source_columns(pre),
        n_steps=params.report.ig_steps,
    )
    values = row.iloc[0]
    contributions = sorted(
        (
            {"column": col, "value": _plain(values[col]), "attribution": round(a, 6)}
            for col, a in result.row(0).items()
        ),
        key=lambda c: -abs(c["attribution"]),
    )
    return RowExplanation(
        id_column=id_column,
        row_id=str(row_id),
        split=split,
        score=round(float(torch.sigmoid(torch.tensor(result.logits[0]))), 6),
        baseline_score=round(float(torch.sigmoid(torch.tensor(result.baseline_logit))), 6),
        baseline=params.report.baseline,
        contributions=contributions,
        delta=round(float(result.delta[0]), 6),
    )


def _plain(value: Any) -> Any:
    """A JSON-friendly copy of a table value (numpy scalars, NaN)."""
    if hasattr(value, "item"):
        value = value.item()
    if isinstance(value, float) and np.isnan(value):
        return None
    return value
