"""Likely leaks: a feature that predicts the target almost perfectly on its own (a copy of
the target, a log of it, a code that maps 1:1 to its classes) is a column the model will
lean on in training and not have, or not have honestly, when it scores.

Each feature is scored alone by two one-column models, the better one counting:

- an out-of-fold histogram model: the column cut into up to `BINS` quantile bins (text:
  its levels; a blank is a level of its own), each row predicted by its bin's mean target
  over the other `FOLDS` - 1 folds (rows fold by position, `i % FOLDS`, so the score is a
  function of the table alone). It catches non-monotone maps and categorical codes; a text
  id unique per row scores like a constant (its levels are never seen out of fold), while a
  row number of a table sorted by its target is flagged, as it should be.
- for a numeric column, its rank: a threshold (binary) or a monotone map (regression) of
  the raw value, blanks at the median.

The measure and the threshold depend on the target's kind:

| kind        | measure                                        | flagged at |
|-------------|------------------------------------------------|------------|
| binary      | ROC AUC                                        | >= 0.99    |
| multiclass  | macro one-vs-rest ROC AUC                      | >= 0.99    |
| regression  | max(|Spearman|, out-of-fold R^2)               | >= 0.98    |

An honest feature of a tabular problem rarely comes near: Telco's best single column
(tenure) scores an AUC of 0.74, IBM attrition's (TotalWorkingYears) 0.66, ISLR Wage's best
honest column for `wage` (education) an R^2 of 0.23; a copy of the target with noise of a
tenth of its step scores 1.0, as does Wage's `logwage` (|Spearman| 1.0).
(tests/unit/init/test_leaks.py holds each of these.)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

TargetKind = Literal["binary", "multiclass", "regression"]
FOLDS = 5
BINS = 20
# How strongly the histogram model shrinks a bin's mean to the overall mean (rows' worth).
PRIOR_ROWS = 1.0
THRESHOLDS: dict[str, float] = {"binary": 0.99, "multiclass": 0.99, "regression": 0.98}


@dataclass(frozen=True)
class LeakScore:
    """How well one column predicts the target on its own."""

    column: str
    score: float
    measure: str
    threshold: float

    @property
    def flagged(self) -> bool:
        return self.score >= self.threshold

    def describe(self) -> str:
        return f"{self.measure} {self.score:.3f} on its own (flagged at >= {self.threshold})"


def _codes(x: pd.Series) -> np.ndarray:
    """A level per row: quantile bins of a many-valued number, else its values; blank -1."""
    if pd.api.types.is_numeric_dtype(x) and not pd.api.types.is_bool_dtype(x):
        if x.nunique() > BINS:
            x = pd.qcut(x, BINS, duplicates="drop")
    codes, _ = pd.factorize(x, use_na_sentinel=True)
    return np.asarray(codes)


def _out_of_fold(codes: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Each row's prediction (one column per column of `y`) from its level's mean target in
    the other folds, shrunk towards the overall mean of those folds."""
    levels = codes + 1  # blank (-1) becomes level 0
    k = int(levels.max()) + 1
    fold = np.arange(len(levels)) % FOLDS
    out = np.empty_like(y, dtype=float)
    for f in range(FOLDS):
        test, train = fold == f, fold != f
        counts = np.bincount(levels[train], minlength=k).astype(float)
        for j in range(y.shape[1]):
            prior = float(y[train, j].mean())
            sums = np.bincount(levels[train], weights=y[train, j], minlength=k)
            means = (sums + PRIOR_ROWS * prior) / (counts + PRIOR_ROWS)
            out[test, j] = means[levels[test]]
    return out


def _auc(score: np.ndarray, positive: np.ndarray) -> float:
    """ROC AUC by ranks (the Mann-Whitney statistic), ties counted half."""
    n_pos = int(positive.sum())
    n_neg = len(positive) - n_pos
    if n_pos == 0 or n_neg == 0:
        return 0.5
    ranks = pd.Series(score).rank().to_numpy()
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def _filled(x: pd.Series) -> np.ndarray | None:
    """A numeric column's values, blanks at the median; None for text or booleans."""
    if not pd.api.types.is_numeric_dtype(x) or pd.api.types.is_bool_dtype(x):
        return None
    return x.astype(float).fillna(x.median()).to_numpy()


def _score_classes(x: pd.Series, y: pd.Series, kind: TargetKind) -> tuple[float, str]:
    classes = sorted(y.unique().tolist(), key=str)
    onehot = np.stack([(y == c).to_numpy() for c in classes], axis=1)
    encoded = _out_of_fold(_codes(x), onehot.astype(float))
    aucs = [_auc(encoded[:, j], onehot[:, j]) for j in range(len(classes))]
    if kind == "binary":
        best = aucs[1]
        raw = _filled(x)
        if raw is not None:
            rank = _auc(raw, onehot[:, 1])
            best = max(best, rank, 1 - rank)
        return best, "ROC AUC"
    return float(np.mean(aucs)), "macro ROC AUC"


def _score_numbers(x: pd.Series, y: pd.Series) -> tuple[float, str]:
    values = y.astype(float).to_numpy()
    encoded = _out_of_fold(_codes(x), values[:, None])[:, 0]
    spread = float(((values - values.mean()) ** 2).sum())
    r2 = 1 - float(((values - encoded) ** 2).sum()) / spread if spread else 0.0
    raw = _filled(x)
    rho = 0.0
    if raw is not None and np.ptp(raw) > 0:
        rho = abs(float(pd.Series(raw).rank().corr(pd.Series(values).rank())))
    return (rho, "|Spearman|") if rho >= r2 else (r2, "out-of-fold R^2")


def score_column(x: pd.Series, y: pd.Series, kind: TargetKind) -> LeakScore:
    """How well column `x` alone predicts target `y` (no blanks) of the given kind."""
    x, y = x.reset_index(drop=True), y.reset_index(drop=True)
    if kind == "regression":
        score, measure = _score_numbers(x, y)
    else:
        score, measure = _score_classes(x, y, kind)
    return LeakScore(str(x.name), round(score, 6), measure, THRESHOLDS[kind])


def flag_leaks(
    df: pd.DataFrame, features: list[str], target: str, kind: TargetKind
) -> list[LeakScore]:
    """The features of `df` that score at or above their kind's threshold, in column order."""
    scores = (score_column(df[col], df[target], kind) for col in features)
    return [s for s in scores if s.flagged]
