"""The results table (our model vs baselines), rendered from the evaluate stage's metrics, and
the models' names wherever a table shows them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain.markdown import markers, table
from retrain.markdown import replace_block as _replace
from retrain.model_key import OURS, network_name

if TYPE_CHECKING:
    from retrain.config import ModelParams

BASELINES = ("logreg", "lightgbm")
MODEL_KEYS = (OURS, *BASELINES)  # the evaluate stage's model keys, in table order
BASELINE_NAMES = {"logreg": "Logistic regression", "lightgbm": "LightGBM (tuned)"}
BASELINE_SHORT_NAMES = {"logreg": "logreg", "lightgbm": "LightGBM"}
COLUMNS = ("roc_auc", "pr_auc", "accuracy", "f1", "log_loss", "brier")
RESULTS, SPLITS = "results", "splits"
START, END = markers(RESULTS)
SPLITS_START, SPLITS_END = markers(SPLITS)


def model_names(model: ModelParams) -> dict[str, str]:
    """How the README and the model card name each model key; ours from its parameters."""
    return {OURS: f"{network_name(model)} (ours, Lightning)", **BASELINE_NAMES}


def short_names(model: ModelParams) -> dict[str, str]:
    """How the Prefect UI's metric table names each model key (narrow columns)."""
    return {OURS: f"ours ({network_name(model, embeddings=False)})", **BASELINE_SHORT_NAMES}


def best_baseline(metrics: dict[str, Any]) -> tuple[str, float]:
    """The baseline with the higher test ROC AUC, and ours minus it (evaluate's metrics)."""
    best = max(BASELINES, key=lambda k: metrics[k]["roc_auc"])
    return best, metrics[OURS]["roc_auc"] - metrics[best]["roc_auc"]


def results_table(metrics: dict[str, Any], model: ModelParams) -> str:
    """Markdown table of test metrics, then one line comparing us with the better baseline.

    `model` is the model section the metrics came from: it names our row."""
    names = model_names(model)
    rows = [[label, *(f"{metrics[key][c]:.4f}" for c in COLUMNS)] for key, label in names.items()]
    best, gap = best_baseline(metrics)
    verdict = "at or above" if gap >= 0 else "below"
    summary = (
        f"Test split: {metrics['n_test']} rows, decision threshold {metrics['threshold']:.4f} "
        f"(best F1 on validation). Our ROC AUC is {verdict} the better baseline "
        f"({names[best]}) by {abs(gap):.4f}."
    )
    lines = table(["model", *COLUMNS], rows, "l" + "r" * len(COLUMNS))
    return "\n".join([*lines, "", summary]) + "\n"


def replace_block(text: str, block: str) -> str:
    """Put `block` between the results markers of a Markdown document."""
    return _replace(text, RESULTS, block)


def update_readme(readme: Path, metrics: dict[str, Any], model: ModelParams) -> bool:
    """Rewrite the README's results block; True when it changed."""
    text = readme.read_text()
    new = replace_block(text, results_table(metrics, model))
    if new != text:
        readme.write_text(new)
    return new != text


def _paired(rows: list[dict[str, Any]], baseline: str) -> str:
    diffs = [r[OURS] - r[baseline] for r in rows]
    mean = sum(diffs) / len(diffs)
    sd = (sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)) ** 0.5 if len(diffs) > 1 else 0
    wins = sum(d > 0 for d in diffs)
    return f"{mean:+.4f} ± {sd:.4f}, {wins}/{len(diffs)}"


def splits_table(data: dict[str, Any]) -> str:
    """Test ROC AUC of ours and both baselines over many splits, as bench 7 measured them.

    `data["datasets"][name]["splits"]` holds one record per split: its seed and each model's
    test ROC AUC. The differences are paired (same split), their sd taken across splits; a
    win is a split where ours is strictly higher.
    """
    head = (
        "| table (rows) | splits | ours | logistic regression | LightGBM (tuned) | "
        "ours − LightGBM: mean ± sd, wins | ours − logistic regression: mean ± sd, wins | "
        "seed 42: ours / LR / LightGBM |"
    )
    rule = "|---|---:|---:|---:|---:|---:|---:|---:|"
    lines = [head, rule]
    for name, d in data["datasets"].items():
        rows = d["splits"]

        def mean(key: str, rows: list[dict[str, Any]] = rows) -> float:
            return sum(r[key] for r in rows) / len(rows)

        first = next((r for r in rows if r["seed"] == 42), None)
        seed42 = " / ".join(f"{first[k]:.4f}" for k in MODEL_KEYS) if first else "—"
        lines.append(
            f"| {name} ({d['rows']:,}) | {len(rows)} | {mean(OURS):.4f} | {mean('logreg'):.4f} "
            f"| {mean('lightgbm'):.4f} | {_paired(rows, 'lightgbm')} | {_paired(rows, 'logreg')} "
            f"| {seed42} |"
        )
    seeds = sorted({r["seed"] for d in data["datasets"].values() for r in d["splits"]})
    note = (
        f"Test ROC AUC, mean over stratified splits (seeds {seeds[0]}–{seeds[-1]}); each split "
        "is prepared, trained and scored as `dvc repro` does with params.yaml (validation "
        "only for early stopping, thresholds and LightGBM's search). Differences are paired "
        "on the same split; sd across splits (the mean's standard error is sd/√splits); "
        "wins: splits where ours is higher. "
        "Generated by bench 7 (`python -m bench.quality`), raw numbers in bench/quality.json."
    )
    return "\n".join([*lines, "", note]) + "\n"


def replace_splits_block(text: str, data: dict[str, Any]) -> str:
    """Put `splits_table(data)` between the splits markers of a Markdown document."""
    return _replace(text, SPLITS, splits_table(data))
