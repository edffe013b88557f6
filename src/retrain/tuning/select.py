"""Which trial the study's result is: the best, or the start when the best is not clearly
better on the same folds.

The best of N trials beats its start on ~1,000-row folds by chance: on IBM attrition the
chosen trial led the defaults by +0.0075 to +0.009 ROC AUC on all three folds and lost
0.002 on test (bench/RESULTS.md, 7t). So the best replaces the start only when its gain,
paired fold by fold (the folds are the same rows for every trial), exceeds `min_gain_se`
standard errors of the per-fold differences. Light on purpose (no Optuna import): it works on
trials' numbers, and the tune stage imports it for a study already run.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Choice:
    """The trial chosen, and the evidence: the best trial's paired gain over the start (in the
    direction of improvement), its standard error over the folds, and whether the start was
    kept although another trial scored higher on the mean."""

    number: int
    best: int
    gain: float | None = None
    se: float | None = None
    kept_start: bool = False

    def record(self) -> dict[str, Any]:
        """best_params.json's `selection`: what decided, for a reader of the run."""
        return {
            "best_trial": self.best,
            "chosen_trial": self.number,
            "gain_over_start": None if self.gain is None else round(self.gain, 6),
            "se": None if self.se is None else round(self.se, 6),
            "kept_start": self.kept_start,
        }


def paired_gain(start: list[float], best: list[float], maximize: bool) -> tuple[float, float]:
    """The mean per-fold gain of `best` over `start` and its standard error (sd / sqrt(K))."""
    sign = 1.0 if maximize else -1.0
    diffs = [sign * (b - s) for s, b in zip(start, best, strict=True)]
    mean = sum(diffs) / len(diffs)
    var = sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)
    return mean, math.sqrt(var / len(diffs))


def choose(
    best: int,
    best_folds: list[float] | None,
    start_folds: list[float] | None,
    maximize: bool,
    min_gain_se: float,
) -> Choice:
    """The chosen trial's number. `start_folds` is trial 0's fold scores when trial 0 was the
    start and finished every fold (None otherwise: nothing to keep). With one fold there is no
    standard error and the best is taken, as with `min_gain_se` 0."""
    if best == 0 or start_folds is None or best_folds is None or min_gain_se == 0:
        return Choice(number=best, best=best)
    if len(best_folds) < 2 or len(best_folds) != len(start_folds):
        return Choice(number=best, best=best)
    gain, se = paired_gain(start_folds, best_folds, maximize)
    keep = gain <= min_gain_se * se
    return Choice(number=0 if keep else best, best=best, gain=gain, se=se, kept_start=keep)
