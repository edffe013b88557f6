"""The results table (our model vs baselines), rendered from the evaluate stage's metrics."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

MODELS = {
    "mlp": "MLP (ours, Lightning + Optuna)",
    "logreg": "Logistic regression",
    "lightgbm": "LightGBM (tuned)",
}
COLUMNS = ("roc_auc", "pr_auc", "accuracy", "f1", "log_loss", "brier")
START, END = "<!-- results:start -->", "<!-- results:end -->"


def results_table(metrics: dict[str, Any]) -> str:
    """Markdown table of test metrics, then one line comparing us with the better baseline."""
    head = "| model | " + " | ".join(COLUMNS) + " |"
    rule = "|---|" + "---:|" * len(COLUMNS)
    rows = [
        f"| {label} | " + " | ".join(f"{metrics[key][c]:.4f}" for c in COLUMNS) + " |"
        for key, label in MODELS.items()
    ]
    best = max(("logreg", "lightgbm"), key=lambda k: metrics[k]["roc_auc"])
    gap = metrics["mlp"]["roc_auc"] - metrics[best]["roc_auc"]
    verdict = "at or above" if gap >= 0 else "below"
    summary = (
        f"Test split: {metrics['n_test']} rows, decision threshold {metrics['threshold']:.4f} "
        f"(best F1 on validation). Our ROC AUC is {verdict} the better baseline "
        f"({MODELS[best]}) by {abs(gap):.4f}."
    )
    return "\n".join([head, rule, *rows, "", summary]) + "\n"


def replace_block(text: str, block: str) -> str:
    """Put `block` between the results markers of a Markdown document."""
    pattern = re.compile(re.escape(START) + r".*?" + re.escape(END), re.S)
    if not pattern.search(text):
        raise ValueError(f"no {START} ... {END} block found")
    return pattern.sub(lambda _: f"{START}\n{block}{END}", text)


def update_readme(readme: Path, metrics: dict[str, Any]) -> bool:
    """Rewrite the README's results block; True when it changed."""
    text = readme.read_text()
    new = replace_block(text, results_table(metrics))
    if new != text:
        readme.write_text(new)
    return new != text
