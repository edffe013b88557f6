"""How a column's values are written: the Python value, integer-valued or not, decimals."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def plain(value: Any) -> Any:
    """A numpy scalar as the Python value YAML and JSON write."""
    if isinstance(value, np.generic):
        return value.item()
    return value


def is_integer_valued(values: pd.Series) -> bool:
    finite = values.dropna()
    return bool(len(finite)) and bool(np.all(np.mod(finite.to_numpy(dtype=float), 1) == 0))


def decimals(values: pd.Series) -> int:
    """How many decimals the column is written with (at most 6)."""
    for d in range(7):
        if np.allclose(values.dropna().to_numpy(dtype=float), values.dropna().round(d)):
            return d
    return 6
