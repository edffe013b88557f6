"""The canary's evidence: once labels arrive, each served version's metric on its own traffic.

`retrain serve` logs every scored row with its id and the version that scored it. When an
accepted batch brings labels for ids that were scored while a canary ran, the monitor joins
the two and computes, per version, its numbers on the rows that version scored (a version is
never judged on the other's traffic), from what the log holds for the task (retrain.scoring):
binary, ROC AUC and accuracy of `probability`/`label`; multiclass, the accuracy of
`predicted_class`; regression, the mean absolute error of `prediction`. Below MIN_ROWS
labelled rows (classification: or MIN_CLASS of either class, binary; two classes at least,
multiclass) a version's numbers are reported with "too little evidence": an AUC on a handful
of positives is noise.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from retrain.config import DatasetSchema
from retrain.scoring import PREDICTED_CLASS, PREDICTION
from retrain.task import HIGHER_IS_BETTER

MIN_ROWS = 100
MIN_CLASS = 10


def _binary_row(part: pd.DataFrame) -> tuple[dict[str, Any], str | None]:
    from retrain.models.metrics import score

    y = part["_y"].to_numpy()
    n, positives = len(y), int(y.sum())
    enough = n >= MIN_ROWS and min(positives, n - positives) >= MIN_CLASS
    numbers = {
        "positives": positives,
        "roc_auc": score("roc_auc", y, part["probability"].to_numpy()),  # None: one class
        "accuracy": float((part["label"].astype(int).to_numpy() == y).mean()),
    }
    short = f"n={n}, {positives} positive; needs {MIN_ROWS} rows with {MIN_CLASS} of each class"
    return numbers, None if enough else short


def _multiclass_row(part: pd.DataFrame) -> tuple[dict[str, Any], str | None]:
    y = part["_y"].astype(str).to_numpy()
    n, classes = len(y), int(pd.Series(y).nunique())
    right = part[PREDICTED_CLASS].astype(str).to_numpy() == y
    numbers = {"classes": classes, "accuracy": float(right.mean())}
    enough = n >= MIN_ROWS and classes >= 2
    return numbers, None if enough else f"n={n}, {classes} classes; needs {MIN_ROWS} rows of 2+"


def _regression_row(part: pd.DataFrame) -> tuple[dict[str, Any], str | None]:
    y = part["_y"].astype("float64").to_numpy()
    error = part[PREDICTION].astype("float64").to_numpy() - y
    n = len(y)
    numbers = {"mae": float(abs(error).mean())}
    return numbers, None if n >= MIN_ROWS else f"n={n}; needs {MIN_ROWS} rows"


# Per task: its numbers of one version's rows, and the one the canary's line compares.
ROWS = {"binary": _binary_row, "multiclass": _multiclass_row, "regression": _regression_row}
HEADLINE = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "mae"}


def _version_row(part: pd.DataFrame, role: str, version: str, kind: str) -> dict[str, Any]:
    numbers, short = ROWS[kind](part)
    return {
        "version": version,
        "role": role,
        "n": len(part),
        **numbers,
        "evidence": "enough" if short is None else f"too little evidence ({short})",
    }


def _labels(values: pd.Series, schema: DatasetSchema) -> pd.Series:
    """The batch's target as the log's predictions are compared with it: 0/1 (binary), the
    class's name (multiclass), the value (regression; a value that is not one is dropped)."""
    if schema.task == "binary":
        return (values.astype(str) == str(schema.positive_class)).astype(int)
    if schema.task == "regression":
        return pd.to_numeric(values, errors="coerce")
    return values.astype(str)


def evaluate(
    batch: pd.DataFrame,
    logged: pd.DataFrame,
    schema: DatasetSchema,
    prod: str | None,
    candidate: str | None,
) -> dict[str, Any] | None:
    """Per version, its metrics on the logged rows this batch labels; None when the batch
    labels no row a canary could have scored (no id or target, no overlap, one version only
    and it is not the candidate)."""
    ident, target = schema.id_column, schema.target
    if ident is None or target not in batch.columns or ident not in logged.columns:
        return None
    labels = batch[[ident, target]].dropna().drop_duplicates(ident)
    labels = labels.assign(_id=labels[ident].astype(str), _y=_labels(labels[target], schema))
    scored = logged.assign(_id=logged[ident].astype(str))
    joined = scored.merge(labels[["_id", "_y"]].dropna(), on="_id")
    seen = sorted(joined["model_version"].astype(str).unique())
    if not seen or (len(seen) == 1 and seen[0] != candidate):
        return None
    rows = []
    for version in seen:
        role = "candidate" if version == candidate else "prod" if version == prod else "other"
        part = joined[joined["model_version"] == version]
        rows.append(_version_row(part, role, version, schema.task))
    return {"versions": rows, "said": _said(rows, schema.task)}


def _said(rows: list[dict[str, Any]], kind: str = "binary") -> str:
    """One line: each version's headline metric and n, and the candidate's lead (how much
    better, whichever way the metric runs) when both have evidence."""
    metric = HEADLINE[kind]
    parts = []
    for r in rows:
        value = "n/a" if r[metric] is None else f"{r[metric]:.4f}"
        flag = "" if r["evidence"] == "enough" else ", too little evidence"
        parts.append(f"{r['role']} {r['version']} {metric} {value} (n={r['n']}{flag})")
    said = "canary: " + " vs ".join(parts)
    by_role = {r["role"]: r for r in rows if r["evidence"] == "enough" and r[metric]}
    if "candidate" in by_role and "prod" in by_role:
        lead = by_role["candidate"][metric] - by_role["prod"][metric]
        said += f"; candidate {lead if HIGHER_IS_BETTER[metric] else -lead:+.4f}"
    return said


# The artifact's columns per task after version, role and n (each version's row's keys).
COLUMNS = {
    "binary": ("positives", "roc_auc", "accuracy"),
    "multiclass": ("classes", "accuracy"),
    "regression": ("mae",),
}


def markdown(batch: str, result: dict[str, Any], kind: str = "binary") -> str:
    """The monitor's `canary` artifact: one row per version, on its own traffic."""
    columns = COLUMNS[kind]
    lines = [
        f"## Canary evidence from the labels in `{batch}`",
        "",
        result["said"],
        "",
        "| version | role | n | " + " | ".join(columns) + " | evidence |",
        "|---|---|---:|" + "---:|" * len(columns) + "---|",
    ]
    for r in result["versions"]:
        cells = [_cell(r[c]) for c in columns]
        row = [r["version"], r["role"], str(r["n"]), *cells, r["evidence"]]
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "n/a"
    return f"{value:.4f}" if isinstance(value, float) else str(value)
