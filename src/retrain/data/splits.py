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
