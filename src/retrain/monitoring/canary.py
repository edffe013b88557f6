"""The canary's evidence: once labels arrive, each served version's metric on its own traffic.

`retrain serve` logs every scored row with its id and the version that scored it. When an
accepted batch brings labels for ids that were scored while a canary ran, the monitor joins
the two and computes, per version, ROC AUC and accuracy on the rows that version scored (a
version is never judged on the other's traffic). Below MIN_ROWS labelled rows, or MIN_CLASS
of either class, a version's numbers are reported with "too little evidence": an AUC on a
handful of positives is noise.

Per task (`dataset.task`): binary as above; multiclass, accuracy of the logged `label` (the
predicted class) against the batch's class; regression, RMSE and MAE of the logged
`prediction` against the batch's value. Those two need MIN_ROWS labelled rows only.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from retrain.config import DatasetSchema
from retrain.scoring import PREDICTED_CLASS, PREDICTION
from retrain.task import HIGHER_IS_BETTER

MIN_ROWS = 100
MIN_CLASS = 10
# Each task's headline: the metric the one-line summary compares (its direction:
# retrain.task.HIGHER_IS_BETTER), and the metrics a version's row reports.
HEADLINE = {"binary": "roc_auc", "multiclass": "accuracy", "regression": "rmse"}
METRICS = {"multiclass": ("accuracy",), "regression": ("rmse", "mae")}


def _version_row(part: pd.DataFrame, role: str, version: str) -> dict[str, Any]:
    from retrain.models.metrics import score

    y = part["_y"].to_numpy()
    n, positives = len(y), int(y.sum())
    enough = n >= MIN_ROWS and min(positives, n - positives) >= MIN_CLASS
    return {
        "version": version,
        "role": role,
        "n": n,
        "positives": positives,
        "roc_auc": score("roc_auc", y, part["probability"].to_numpy()),  # None: one class
        "accuracy": float((part["label"].astype(int).to_numpy() == y).mean()),
        "evidence": "enough"
        if enough
        else f"too little evidence (n={n}, {positives} positive; "
        f"needs {MIN_ROWS} rows with {MIN_CLASS} of each class)",
    }


def _task_row(part: pd.DataFrame, role: str, version: str, task: str) -> dict[str, Any]:
    """A multiclass or regression version's row: its metrics and whether n is enough."""
    n = len(part)
    if task == "multiclass":
        metrics = {"accuracy": float((part[PREDICTED_CLASS].astype(str) == part["_y"]).mean())}
    else:
        err = pd.to_numeric(part[PREDICTION]).to_numpy(float) - part["_y"].to_numpy(float)
        metrics = {"rmse": float(np.sqrt(np.mean(err**2))), "mae": float(np.mean(np.abs(err)))}
    enough = n >= MIN_ROWS
    evidence = "enough" if enough else f"too little evidence (n={n}; needs {MIN_ROWS} rows)"
    return {"version": version, "role": role, "n": n, **metrics, "evidence": evidence}


def _truth(values: pd.Series, schema: DatasetSchema) -> pd.Series:
    """The batch's target as each version is judged on it."""
    if schema.task == "multiclass":
        return values.astype(str)
    if schema.task == "regression":
        return pd.to_numeric(values, errors="coerce").astype(float)
    return (values.astype(str) == str(schema.positive_class)).astype(int)


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
    labels = labels.assign(_id=labels[ident].astype(str), _y=_truth(labels[target], schema))
    scored = logged.assign(_id=logged[ident].astype(str))
    joined = scored.merge(labels[["_id", "_y"]], on="_id")
    seen = sorted(joined["model_version"].astype(str).unique())
    if not seen or (len(seen) == 1 and seen[0] != candidate):
        return None
    rows = []
    for version in seen:
        role = "candidate" if version == candidate else "prod" if version == prod else "other"
        part = joined[joined["model_version"] == version]
        if schema.task == "binary":
            rows.append(_version_row(part, role, version))
        else:
            rows.append(_task_row(part, role, version, schema.task))
    found = {"versions": rows, "said": _said(rows, HEADLINE[schema.task])}
    # Binary results keep their keys (monitor artifacts and their tests read them as before).
    return found if schema.task == "binary" else {**found, "task": schema.task}


def _said(rows: list[dict[str, Any]], metric: str = "roc_auc") -> str:
    """One line: each version's headline metric and n, and the candidate's lead (positive:
    better, in the metric's direction) when both have evidence."""
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


def markdown(batch: str, result: dict[str, Any]) -> str:
    """The monitor's `canary` artifact: one row per version, on its own traffic."""
    task = result.get("task", "binary")
    if task != "binary":
        return _task_markdown(batch, result, METRICS[task])
    lines = [
        f"## Canary evidence from the labels in `{batch}`",
        "",
        result["said"],
        "",
        "| version | role | n | positives | roc_auc | accuracy | evidence |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in result["versions"]:
        auc = "n/a" if r["roc_auc"] is None else f"{r['roc_auc']:.4f}"
        lines.append(
            f"| {r['version']} | {r['role']} | {r['n']} | {r['positives']} | {auc} | "
            f"{r['accuracy']:.4f} | {r['evidence']} |"
        )
    return "\n".join(lines)


def _task_markdown(batch: str, result: dict[str, Any], metrics: tuple[str, ...]) -> str:
    lines = [
        f"## Canary evidence from the labels in `{batch}`",
        "",
        result["said"],
        "",
        "| version | role | n | " + " | ".join(metrics) + " | evidence |",
        "|---|---|---:|" + "---:|" * len(metrics) + "---|",
    ]
    for r in result["versions"]:
        values = " | ".join(f"{r[m]:.4f}" for m in metrics)
        lines.append(f"| {r['version']} | {r['role']} | {r['n']} | {values} | {r['evidence']} |")
    return "\n".join(lines)
