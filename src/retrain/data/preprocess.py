"""Scaling, one-hot encoding, target + frequency encoding (retrain.data.encoding) and embedding
bins, fitted on the training split, saved as JSON.

JSON rather than a pickle: it is readable in review, diffable in DVC, and loads anywhere
without this package's classes (the ONNX model plus this file score a table).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from retrain.data.encoding import MISSING, TargetEncoding

__all__ = ["MISSING", "Preprocessor", "quantile_bins", "target_scale"]


def quantile_bins(values: np.ndarray, n_bins: int) -> list[float]:
    """Bin edges at `n_bins` + 1 evenly spaced quantiles, duplicates removed.

    What `rtdl_num_embeddings.compute_bins` computes without a tree (torch.quantile with linear
    interpolation, then unique), in numpy: fitting the preprocessor needs no torch
    (tests/unit/data/test_preprocess.py compares the two).
    """
    n_bins = min(n_bins, len(values) - 1)
    edges = np.quantile(values, np.linspace(0.0, 1.0, n_bins + 1))
    return np.unique(edges).tolist()


def target_scale(y: np.ndarray | pd.Series) -> tuple[float, float]:
    """The (mean, std) a regression target is standardised with for training: the population
    std as for the numeric columns, 1 where the target is constant."""
    values = np.asarray(y, dtype=np.float64)
    std = float(values.std())
    return float(values.mean()), std if std > 0 else 1.0


@dataclass(frozen=True)
class Preprocessor:
    """Numeric: fill with the training median, then standardise. Categorical: one-hot.

    `bins`: for each numeric column with more than two distinct training values (0/1 flags are
    left as they are), the edges of its piecewise-linear embedding on the standardised scale,
    at quantiles of the training split. The network is built from them (the ONNX model carries
    them), and this file records them beside the scaling they apply to.

    `target`: a regression target's {"mean", "std"} on the training split: the network learns
    the target standardised with them (the ONNX model undoes it). None for a classification
    task, and then absent from the file, which stays as it was before there were other tasks.

    `encoded`: the high-cardinality categorical columns (`dataset.high_cardinality`), each a
    block of target + frequency columns after the one-hot ones (retrain.data.encoding); the
    training split's matrix is `training_matrix` (out-of-fold values), every other row's
    `transform`. None when no column is encoded, and then absent from the file.
    `categorical` lists the one-hot columns only.
    """

    numeric: list[str]
    categorical: list[str]
    medians: dict[str, float]
    means: dict[str, float]
    stds: dict[str, float]
    categories: dict[str, list[str]]
    bins: dict[str, list[float]] = field(default_factory=dict)
    target: dict[str, float] | None = None
    encoded: TargetEncoding | None = None

    @classmethod
    def fit(
        cls,
        train: pd.DataFrame,
        numeric: list[str],
        categorical: list[str],
        n_bins: int | None = None,
        target: pd.Series | None = None,
        encoding: TargetEncoding | None = None,
    ) -> Preprocessor:
        """Fit on the training split; `target`: its regression target, to standardise;
        `encoding`: the encoded columns, fitted on the same split (`TargetEncoding.fit`)."""
        medians, means, stds = {}, {}, {}
        for col in numeric:
            values = train[col].astype("float64")
            median = float(values.median()) if values.notna().any() else 0.0
            filled = values.fillna(median)
            medians[col] = median
            means[col] = float(filled.mean())
            std = float(filled.std(ddof=0))
            stds[col] = std if std > 0 else 1.0
        categories = {
            col: sorted(train[col].fillna(MISSING).astype(str).unique().tolist())
            for col in categorical
        }
        bins: dict[str, list[float]] = {}
        if n_bins is not None and len(train) > 2:
            for col in numeric:
                scaled = (train[col].astype("float64").fillna(medians[col]) - means[col]) / stds[
                    col
                ]
                edges = quantile_bins(scaled.to_numpy(), n_bins) if scaled.nunique() > 2 else []
                # One bin (two edges: a column that is mostly one value, e.g. 95% zeros) is a
                # min-max scaling, no embedding: such a column stays a plain numeric (issue 27).
                if len(edges) > 2:
                    bins[col] = edges
        scale = None
        if target is not None:
            mean, std = target_scale(target)
            scale = {"mean": mean, "std": std}
        columns = (list(numeric), list(categorical))
        return cls(*columns, medians, means, stds, categories, bins, scale, encoding)

    def target_scale(self) -> tuple[float, float] | None:
        """The regression target's (mean, std), None for a classification task."""
        return (self.target["mean"], self.target["std"]) if self.target is not None else None

    def embedded(self) -> dict[int, list[float]]:
        """Bin edges by design-matrix column (the numerics come first, in `numeric` order)."""
        return {i: self.bins[col] for i, col in enumerate(self.numeric) if col in self.bins}

    def groups(self) -> list[int]:
        """Design-matrix columns per original column, in order: 1 per numeric, a categorical
        column's number of levels, an encoded column's block (the network starts their
        ensemble scalings equal)."""
        encoded = [self.encoded.width()] * len(self.encoded.columns) if self.encoded else []
        return (
            [1] * len(self.numeric) + [len(self.categories[c]) for c in self.categorical] + encoded
        )

    def sources(self) -> list[str]:
        """The original column behind each design-matrix column, in `transform` order."""
        columns = [*self.numeric, *self.categorical, *self.encoded_columns]
        return [c for c, n in zip(columns, self.groups(), strict=True) for _ in range(n)]

    @property
    def encoded_columns(self) -> list[str]:
        """The target + frequency encoded columns, in design-matrix order."""
        return list(self.encoded.columns) if self.encoded else []

    @property
    def feature_names(self) -> list[str]:
        names = list(self.numeric)
        for col in self.categorical:
            names += [f"{col}={level}" for level in self.categories[col]]
        for col in self.encoded_columns:
            names += self.encoded.names(col) if self.encoded else []
        return names

    @property
    def n_features(self) -> int:
        return len(self.feature_names)

    def transform(self, df: pd.DataFrame) -> np.ndarray:
        """Float32 design matrix of any rows but the training split's (`training_matrix`); a
        level unseen in training: all zeros one-hot, the prior and frequency 0 encoded."""
        blocks = self._plain_blocks(df)
        if self.encoded:
            blocks += self.encoded.transform(df)
        return np.hstack(blocks).astype(np.float32)

    def training_matrix(self, df: pd.DataFrame, y: np.ndarray) -> np.ndarray:
        """The training split's design matrix: `transform`'s, but each encoded column's target
        means computed out of fold (never from the row's own label). `y`: the split's model
        targets (`retrain.data.clean.targets`). Without encoded columns, `transform`."""
        if not self.encoded:
            return self.transform(df)
        blocks = self._plain_blocks(df) + self.encoded.training_blocks(df, y)
        return np.hstack(blocks).astype(np.float32)

    def _plain_blocks(self, df: pd.DataFrame) -> list[np.ndarray]:
        """Standardised numerics, then the one-hot columns (float64)."""
        blocks = []
        if self.numeric:
            num = df[self.numeric].astype("float64").fillna(self.medians)
            mean = np.array([self.means[c] for c in self.numeric])
            std = np.array([self.stds[c] for c in self.numeric])
            blocks.append((num.to_numpy() - mean) / std)
        for col in self.categorical:
            values = df[col].fillna(MISSING).astype(str)
            codes = pd.Categorical(values, categories=self.categories[col]).codes
            onehot = np.zeros((len(df), len(self.categories[col])))
            known = codes >= 0
            onehot[np.flatnonzero(known), codes[known]] = 1.0
            blocks.append(onehot)
        return blocks

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fields = asdict(self)
        if fields["target"] is None:
            del fields["target"]  # a classifier's file, byte for byte as before the key existed
        if fields["encoded"] is None:
            del fields["encoded"]  # nothing encoded: the file as before the key existed
        path.write_text(json.dumps(fields, indent=2, sort_keys=True) + "\n")

    @classmethod
    def load(cls, path: Path) -> Preprocessor:
        fields = json.loads(path.read_text())
        if fields.get("encoded") is not None:
            fields["encoded"] = TargetEncoding.from_dict(fields["encoded"])
        return cls(**fields)
