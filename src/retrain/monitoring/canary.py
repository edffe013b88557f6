"""The canary's evidence: once labels arrive, each served version's metric on its own traffic.

`retrain serve` logs every scored row with its id and the version that scored it. When an
accepted batch brings labels for ids that were scored while a canary ran, the monitor joins
the two and computes, per version, ROC AUC and accuracy on the rows that version scored (a
version is never judged on the other's traffic). Below MIN_ROWS labelled rows, or MIN_CLASS
of either class, a version's numbers are reported with "too little evidence": an AUC on a
handful of positives is noise.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from retrain.config import DatasetSchema

MIN_ROWS = 100
MIN_CLASS = 10


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
    labels = labels.assign(
        _id=labels[ident].astype(str),
        _y=(labels[target].astype(str) == str(schema.positive_class)).astype(int),
    )
    scored = logged.assign(_id=logged[ident].astype(str))
    joined = scored.merge(labels[["_id", "_y"]], on="_id")
    seen = sorted(joined["model_version"].astype(str).unique())
    if not seen or (len(seen) == 1 and seen[0] != candidate):
        return None
    rows = []
    for version in seen:
        role = "candidate" if version == candidate else "prod" if version == prod else "other"
        rows.append(_version_row(joined[joined["model_version"] == version], role, version))
    return {"versions": rows, "said": _said(rows)}


def _said(rows: list[dict[str, Any]]) -> str:
    """One line: each version's AUC and n, and the candidate's lead when both have evidence."""
    parts = []
    for r in rows:
        auc = "n/a" if r["roc_auc"] is None else f"{r['roc_auc']:.4f}"
        flag = "" if r["evidence"] == "enough" else ", too little evidence"
        parts.append(f"{r['role']} {r['version']} roc_auc {auc} (n={r['n']}{flag})")
    said = "canary: " + " vs ".join(parts)
    by_role = {r["role"]: r for r in rows if r["evidence"] == "enough" and r["roc_auc"]}
    if "candidate" in by_role and "prod" in by_role:
        lead = by_role["candidate"]["roc_auc"] - by_role["prod"]["roc_auc"]
        said += f"; candidate {lead:+.4f}"
    return said


def markdown(batch: str, result: dict[str, Any]) -> str:
    """The monitor's `canary` artifact: one row per version, on its own traffic."""
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
