"""Which original columns are strongly correlated, measured on the encoded design matrix.

The model card says that correlated inputs share attribution credit; it names a pair only when
this finds one, so the example is a fact about the table, not the two top-ranked columns.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# |r| from which two inputs are "correlated" for the card: at 0.7 one explains about half the
# other's variance, where attributions visibly trade credit between them.
MIN_ABS_R = 0.7


def correlated_pairs(
    x: np.ndarray, sources: Sequence[str], min_abs_r: float = MIN_ABS_R
) -> list[dict[str, object]]:
    """Pairs of original columns whose design columns correlate at |r| >= `min_abs_r`.

    Args:
        x: the design matrix (rows x design columns), as the network sees it.
        sources: the original column behind each design column (`source_columns`).
        min_abs_r: the smallest |r| reported.

    Returns:
        `{"columns": [a, b], "r": r}` per pair of distinct original columns, with r the
        strongest correlation between any of their design columns (a one-hot level against a
        numeric column counts), strongest first.
    """
    if len(sources) != x.shape[1]:
        raise ValueError(f"{len(sources)} source names for {x.shape[1]} design columns")
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.corrcoef(np.asarray(x, dtype=np.float64), rowvar=False)
    r = np.atleast_2d(np.nan_to_num(r, nan=0.0))  # a constant column correlates with nothing
    best: dict[tuple[str, str], float] = {}
    upper_i, upper_j = np.triu_indices(len(sources), k=1)
    for i, j in zip(upper_i.tolist(), upper_j.tolist(), strict=True):
        a, b = sources[i], sources[j]
        if a == b:
            continue  # levels of one categorical are always (negatively) related
        key = (a, b) if a < b else (b, a)
        if abs(r[i, j]) > abs(best.get(key, 0.0)):
            best[key] = float(r[i, j])
    pairs = [(k, v) for k, v in best.items() if abs(v) >= min_abs_r]
    pairs.sort(key=lambda kv: (-abs(kv[1]), kv[0]))
    return [{"columns": list(k), "r": round(v, 4)} for k, v in pairs]
