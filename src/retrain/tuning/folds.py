"""The rows a tuning trial fits and scores on: K seeded, stratified folds of train+validation.

One validation split of ~1,100 Telco rows moves ROC AUC by ~0.01 between splits while the
differences tuned for are ~0.002 (issue 14, issue 27): a trial scored on one split selects on
noise. Each trial is therefore scored on every fold held out in turn, and the folds are cut
once, from the one seed, so every trial of a study is judged on the same rows. The test split
is never read. With tune.folds 1 a trial is the single fit of before (train, scored on val).

The rows went through the preprocessor `prepare` fitted on the training split (its bins and
scalings), validation rows included: a fold holding out training rows judges a model on rows
the preprocessor saw, which no model weight did. Refitting the preprocessor per fold would
change the network's inputs (the PLE bins) between trials' folds and the final fit.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from retrain.errors import RetrainError
from retrain.task import Task

Matrix = tuple[Any, Any]  # design matrix and targets
Fold = tuple[Matrix, Matrix]  # (fitted on, held out: early stopping and the fold's score)
FOLD_SCORES = "fold_scores"  # a trial's user attribute: its held-out score on each fold run


class FoldError(RetrainError):
    """tune.folds cannot cut these rows into folds that each hold every class."""


def cv_folds(matrix: Matrix, k: int, seed: int, task: Task) -> list[Fold]:
    """`k` folds of `matrix`, stratified on the task's strata (labels, or a regression target's
    quantile bins), shuffled by `seed`: the same rows in the same folds on every call.

    Raises:
        FoldError: a class has fewer rows than `k` (a fold would lack it, and its ROC AUC or
            log loss would be undefined).
    """
    x, y = matrix
    return [((x[fit], y[fit]), (x[held], y[held])) for fit, held in fold_rows(y, k, seed, task)]


def fold_rows(
    y: Any, k: int, seed: int, task: Task, key: str = "tune.folds"
) -> list[tuple[np.ndarray, np.ndarray]]:
    """The row indices (fitted on, held out) of `cv_folds`' folds of targets `y`: `train`'s
    bagged members need to know which held-out rows were validation rows. `key`: the params
    key that set `k`, for the error.

    Raises:
        FoldError: as `cv_folds`.
    """
    from sklearn.model_selection import KFold, StratifiedKFold

    strata = task.strata(np.asarray(y))
    if strata is None:
        splits = KFold(n_splits=k, shuffle=True, random_state=seed).split(np.zeros(len(y)))
    else:
        labels, counts = np.unique(strata, return_counts=True)
        if task.kind != "regression" and counts.min() < k:
            raise FoldError(
                f"{key} {k}: class {_name(task, labels[counts.argmin()])} has "
                f"{counts.min()} rows in train+validation, fewer than the folds; lower {key}"
                + (" (1: the validation split alone)" if key == "tune.folds" else "")
            )
        splits = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(
            np.zeros(len(y)), strata
        )
    return [(fit, held) for fit, held in splits]


def _name(task: Task, label: Any) -> str:
    """A class as params.yaml names it (the targets are its index, or 1 for the positive)."""
    if task.kind == "multiclass":
        return repr(task.classes[int(label)])
    positive = task.classes[-1]
    return repr(positive) if int(label) == 1 else f"other than {positive!r}"


def pool(train: Matrix, val: Matrix) -> Matrix:
    """Train and validation rows together, in that order: what the folds are cut from."""
    return np.concatenate([train[0], val[0]]), np.concatenate([train[1], val[1]])
