"""The one seeded stratified split (prepare), and the prepared splits with their design matrices
(what tune, train, evaluate and report read)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from retrain.config import Paths
from retrain.data.clean import TARGET, targets
from retrain.data.preprocess import Preprocessor
from retrain.task import Task


def split(
    df: pd.DataFrame, *, test_size: float, val_size: float, seed: int, task: Task | None = None
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Stratified train/val/test split from the one seed; val_size is a share of the rest.

    Stratified on the task's strata (retrain.task): the labels, or a regression target's
    quantile bins. `task` None: on the labels (a binary or multiclass table).
    """
    from sklearn.model_selection import train_test_split

    def strata(frame: pd.DataFrame) -> np.ndarray | None:
        y = frame[TARGET].to_numpy()
        return y if task is None else task.strata(y)

    rest, test = train_test_split(df, test_size=test_size, stratify=strata(df), random_state=seed)
    train, val = train_test_split(
        rest, test_size=val_size, stratify=strata(rest), random_state=seed
    )
    return (
        train.reset_index(drop=True),
        val.reset_index(drop=True),
        test.reset_index(drop=True),
    )


@dataclass(frozen=True)
class Splits:
    preprocessor: Preprocessor
    frames: dict[str, pd.DataFrame]

    def matrix(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """The split's design matrix and targets. The training split's encoded columns are
        out of fold (`Preprocessor.training_matrix`): what every model trains on, the network,
        the baselines and a tuning trial alike; the other splits are scored as any row is."""
        frame = self.frames[split]
        y = targets(frame)
        if split == "train":
            return self.preprocessor.training_matrix(frame, y), y
        return self.preprocessor.transform(frame), y


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
