"""Target + frequency encoding of high-cardinality categorical columns (issue 27).

A categorical column with many levels (`dataset.high_cardinality`: a city, a product code)
is too sparse to one-hot encode: most levels have a handful of rows. Each such column becomes
a small block of numbers instead, the same for the network and the baselines:

- the **target** columns: a level's mean target on the training split, smoothed towards the
  split's prior by `smoothing` rows' worth (an m-estimate) -- binary: the positive share;
  multiclass: one column per class (its share); regression: the mean of the target
  standardised as the network learns it;
- the **frequency** column: the level's share of the training rows.

An unseen level (or a blank, if training had none) gets the prior and frequency 0.

Leakage: a training row's own label must not be in its encoding, or the model learns that a
level's mean "predicts" the rows it was computed from (a level seen once encodes its row's
label exactly). So the training rows get **out-of-fold** means: the rows are dealt into
`folds` seeded folds, and a row's value is computed from the other folds only (a level seen
only in its own fold gets the other folds' prior). Validation, test and every scored row use
the means of the whole training split. `Preprocessor.training_matrix` builds the former,
`Preprocessor.transform` the latter; both are standardised with the mean and std of the
out-of-fold training values (what the network trains on), so the inputs are on the scale of
the standardised numerics.

Saved inside preprocessor.json (key `encoded`, absent when no column is encoded), so the
ONNX model plus that file still score a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

MISSING = "__missing__"  # as retrain.data.preprocess: a blank is a level of its own


def level_strings(values: pd.Series) -> pd.Series:
    """The column's values as the encoders key them: text, a blank as MISSING."""
    return values.fillna(MISSING).astype(str)


def label_matrix(
    y: np.ndarray, kind: str, n_classes: int, scale: tuple[float, float] | None
) -> np.ndarray:
    """The model's target (`retrain.data.clean.targets`) as the columns a level's mean is
    taken of: binary 0/1, multiclass one-hot, regression standardised with `scale`."""
    y = np.asarray(y, dtype=np.float64)
    if kind == "multiclass":
        return np.eye(n_classes)[y.astype(int)]
    if kind == "regression":
        mean, std = scale if scale is not None else (0.0, 1.0)
        return ((y - mean) / std)[:, None]
    return y[:, None]


def smoothed_means(
    codes: np.ndarray, y: np.ndarray, n_levels: int, prior: np.ndarray, smoothing: float
) -> np.ndarray:
    """(n_levels, outputs): each level's mean of `y` shrunk towards `prior` by `smoothing`
    rows' worth; a level with no row is the prior."""
    counts = np.bincount(codes, minlength=n_levels).astype(np.float64)[:, None]
    sums = np.stack(
        [np.bincount(codes, weights=y[:, j], minlength=n_levels) for j in range(y.shape[1])],
        axis=1,
    )
    with np.errstate(invalid="ignore", divide="ignore"):
        means = (sums + smoothing * prior) / (counts + smoothing)
    return np.where(counts > 0, means, prior)


def fold_of_rows(n: int, folds: int, seed: int) -> np.ndarray:
    """Each training row's fold: a seeded deal of the rows into `folds` near-equal folds."""
    return np.random.default_rng(seed).permutation(n) % folds


def out_of_fold(
    codes: np.ndarray, y: np.ndarray, n_levels: int, folds: int, seed: int, smoothing: float
) -> np.ndarray:
    """(rows, outputs): each row's level mean computed without its own fold's rows."""
    fold = fold_of_rows(len(codes), folds, seed)
    out = np.empty(y.shape, dtype=np.float64)
    for k in range(folds):
        inside = fold == k
        if not inside.any():
            continue
        other = ~inside
        prior = y[other].mean(axis=0) if other.any() else y.mean(axis=0)
        means = smoothed_means(codes[other], y[other], n_levels, prior, smoothing)
        out[inside] = means[codes[inside]]
    return out


@dataclass(frozen=True)
class EncodedColumn:
    """One column's fitted encoding: per training level its smoothed target means and its
    frequency; `mean`/`std`: the standardisation of its block (target columns, frequency)."""

    levels: list[str]
    target: list[list[float]]
    frequency: list[float]
    mean: list[float]
    std: list[float]

    def codes(self, values: pd.Series) -> np.ndarray:
        """Each value's level index, -1 for a level unseen in training."""
        return np.asarray(pd.Categorical(level_strings(values), categories=self.levels).codes)

    def table(self, prior: Sequence[float]) -> np.ndarray:
        """(levels + 1, width) float64: each level's standardised block, the last row an
        unseen level's (the prior, frequency 0). Serving looks rows up in the same table."""
        raw = np.vstack(
            [
                np.column_stack([np.asarray(self.target), np.asarray(self.frequency)]),
                np.append(np.asarray(prior, dtype=np.float64), 0.0),
            ]
        )
        return (raw - np.asarray(self.mean)) / np.asarray(self.std)


def training_block(
    frequency: np.ndarray,
    codes: np.ndarray,
    labels: np.ndarray,
    *,
    folds: int,
    seed: int,
    smoothing: float,
) -> np.ndarray:
    """The training rows' unstandardised block: out-of-fold target means, the frequency
    (which holds no label, so the whole split's is used)."""
    oof = out_of_fold(codes, labels, len(frequency), folds, seed, smoothing)
    return np.column_stack([oof, frequency[codes]])


@dataclass(frozen=True)
class TargetEncoding:
    """The encoded columns of one preprocessor and what fitted them.

    `outputs`: the target columns' names ("target", or the class names of a multiclass task);
    `prior`: the training split's mean of each; `kind`: the task, which says how a label
    becomes those columns (`scale`: a regression target's training mean and std); `rows`,
    `folds`, `seed`, `smoothing`: what the training split's out-of-fold values are recomputed
    from (`training_blocks`).
    """

    columns: dict[str, EncodedColumn]
    outputs: list[str]
    prior: list[float]
    kind: str
    folds: int
    seed: int
    smoothing: float
    rows: int
    scale: list[float] | None = None

    @classmethod
    def fit(
        cls,
        frame: pd.DataFrame,
        columns: Sequence[str],
        y: np.ndarray,
        *,
        kind: str,
        outputs: Sequence[str],
        scale: tuple[float, float] | None,
        folds: int,
        seed: int,
        smoothing: float,
    ) -> TargetEncoding:
        """Fit on the training split `frame` with its model targets `y` (0/1, class index
        or value, as `retrain.data.clean.targets` reads them)."""
        labels = label_matrix(y, kind, len(outputs), scale)
        prior = labels.mean(axis=0)
        fitted = {}
        # In name order: preprocessor.json sorts its keys, so the design matrix's order is the
        # same whether the encoding was just fitted or loaded.
        for col in sorted(columns):
            values = level_strings(frame[col])
            levels = sorted(values.unique().tolist())
            codes = np.asarray(pd.Categorical(values, categories=levels).codes)
            frequency = np.bincount(codes, minlength=len(levels)) / len(frame)
            means = smoothed_means(codes, labels, len(levels), prior, smoothing)
            block = training_block(
                frequency, codes, labels, folds=folds, seed=seed, smoothing=smoothing
            )
            std = block.std(axis=0)
            fitted[col] = EncodedColumn(
                levels,
                means.tolist(),
                frequency.tolist(),
                block.mean(axis=0).tolist(),
                np.where(std > 0, std, 1.0).tolist(),
            )
        return cls(
            fitted,
            list(outputs),
            prior.tolist(),
            kind,
            folds,
            seed,
            float(smoothing),
            len(frame),
            None if scale is None else [float(scale[0]), float(scale[1])],
        )

    def width(self) -> int:
        """Design columns per encoded column: the target columns and the frequency."""
        return len(self.outputs) + 1

    def names(self, col: str) -> list[str]:
        """The design columns' names of one encoded column."""
        if self.kind == "multiclass":
            targets = [f"{col}:target={name}" for name in self.outputs]
        else:
            targets = [f"{col}:target"]
        return [*targets, f"{col}:frequency"]

    def transform(self, frame: pd.DataFrame) -> list[np.ndarray]:
        """Each encoded column's standardised block, from the whole training split's means:
        validation, test and every scored row."""
        blocks = []
        for name, col in self.columns.items():
            codes = col.codes(frame[name])
            blocks.append(col.table(self.prior)[np.where(codes >= 0, codes, len(col.levels))])
        return blocks

    def training_blocks(self, frame: pd.DataFrame, y: np.ndarray) -> list[np.ndarray]:
        """The training split's standardised blocks, from out-of-fold means.

        Raises:
            ValueError: `frame` is not the training split the encoding was fitted on (by its
                number of rows: the folds are a deal of exactly those rows).
        """
        if len(frame) != self.rows:
            raise ValueError(
                f"out-of-fold encodings are for the {self.rows} training rows they were "
                f"fitted on, not {len(frame)} rows: use transform for any other rows"
            )
        scale = None if self.scale is None else (self.scale[0], self.scale[1])
        labels = label_matrix(y, self.kind, len(self.outputs), scale)
        blocks = []
        for name, col in self.columns.items():
            codes = col.codes(frame[name])
            raw = training_block(
                np.asarray(col.frequency),
                codes,
                labels,
                folds=self.folds,
                seed=self.seed,
                smoothing=self.smoothing,
            )
            blocks.append((raw - np.asarray(col.mean)) / np.asarray(col.std))
        return blocks

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TargetEncoding:
        """The encoding as `dataclasses.asdict` wrote it into preprocessor.json."""
        columns = {name: EncodedColumn(**c) for name, c in data["columns"].items()}
        return cls(**{**data, "columns": columns})
