"""Load the prepared splits and their design matrices (what tune, train and evaluate read)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from retrain.config import Paths
from retrain.data.clean import targets
from retrain.data.preprocess import Preprocessor


@dataclass(frozen=True)
class Splits:
    preprocessor: Preprocessor
    frames: dict[str, pd.DataFrame]

    def matrix(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        frame = self.frames[split]
        return self.preprocessor.transform(frame), targets(frame)


def load_splits(paths: Paths, names: tuple[str, ...] = ("train", "val", "test")) -> Splits:
    where = {"train": paths.train, "val": paths.val, "test": paths.test}
    return Splits(
        Preprocessor.load(paths.preprocessor),
        {name: pd.read_parquet(where[name]) for name in names},
    )


def sample_rows(
    matrix: tuple[np.ndarray, np.ndarray], max_rows: int | None, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """At most `max_rows` rows of a design matrix: a seeded sample, in table order.

    What tuning trials train on when the table is large: the final fit sees every row.
    """
    x, y = matrix
    if max_rows is None or len(y) <= max_rows:
        return matrix
    rows = np.sort(np.random.default_rng(seed).permutation(len(y))[:max_rows])
    return x[rows], y[rows]
