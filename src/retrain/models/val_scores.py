"""paths.oof_val: the validation rows' scores that calibrate the model.

The F1 threshold (evaluate, binary), the temperature (report, classifiers) and the conformal
interval (train, regression) are fitted on validation rows, which must be rows the served
model never trained on. One model (train.bag_folds 0) never trains on validation: its own
scores are written, and the stages keep scoring validation with the ONNX model as before. A
bag of fold models trains every validation row into K-1 of its members: its in-sample scores
would be too confident (a threshold too sharp, an interval too narrow), so each validation row
is scored by the one member that held it out (`retrain.models.bagging`), and the stages read
these out-of-fold scores instead.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from retrain.config import Params
from retrain.errors import DataError


def write(path: Path, scores: np.ndarray) -> Path:
    """The scores (rows,) or (rows, classes), in the validation split's row order."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        np.save(fh, np.asarray(scores, dtype=np.float64), allow_pickle=False)
    return path


def read(path: Path, n_val: int) -> np.ndarray:
    """The scores `write` wrote, checked against the validation split's `n_val` rows.

    Raises:
        DataError: the file is missing, not such scores, or of another validation split.
    """
    try:
        scores = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise DataError(f"{path}: not found; run `dvc repro train`") from None
    except ValueError as err:
        raise DataError(f"{path}: not validation scores ({err})") from None
    if len(scores) != n_val:
        raise DataError(
            f"{path}: {len(scores)} scores for {n_val} validation rows; run `dvc repro train`"
        )
    return np.asarray(scores, dtype=np.float64)


def for_calibration(params: Params, served: np.ndarray) -> np.ndarray:
    """What to calibrate on: `served` (the ONNX model's validation scores) for one model, the
    members' out-of-fold scores (paths.oof_val) for a bag (train.bag_folds)."""
    if not params.train.bag_folds:
        return served
    return read(params.paths.oof_val, len(served))
