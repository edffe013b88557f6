"""The results table (our model vs baselines), rendered from the evaluate stage's metrics, and
the models' names wherever a table shows them."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain.markdown import markers, table
from retrain.markdown import replace_block as _replace
from retrain.model_key import OURS, network_name
from retrain.task import HIGHER_IS_BETTER, BinaryTask, Task

if TYPE_CHECKING:
    from retrain.config import ModelParams

BASELINES = ("logreg", "lightgbm")
MODEL_KEYS = (OURS, *BASELINES)  # the evaluate stage's model keys, in table order
BASELINE_NAMES = {"logreg": "Logistic regression", "lightgbm": "LightGBM (tuned)"}
BASELINE_SHORT_NAMES = {"logreg": "logreg", "lightgbm": "LightGBM"}
# The linear baseline (key `logreg` whatever the task, so records and plots keep one key) is
# named for what it is on a multiclass or regression table (retrain.models.baselines.linear).
LINEAR_NAMES = {
    "multiclass": ("Multinomial logistic regression", "multinomial logistic regression"),
    "regression": ("Ridge regression", "ridge regression"),
}
COLUMNS = ("roc_auc", "pr_auc", "accuracy", "f1", "log_loss", "brier")  # binary's table
RESULTS, SPLITS = "results", "splits"
START, END = markers(RESULTS)
SPLITS_START, SPLITS_END = markers(SPLITS)


def _linear_name(task: Task | None, short: bool) -> dict[str, str]:
    if task is None or task.kind not in LINEAR_NAMES:
        return {}
    return {"logreg": LINEAR_NAMES[task.kind][short]}


def model_names(model: ModelParams, task: Task | None = None) -> dict[str, str]:
    """How the README and the model card name each model key; ours from its parameters
    (`task` None: a binary table's names)."""
    return {
        OURS: f"{network_name(model)} (ours, Lightning)",
        **BASELINE_NAMES,
        **_linear_name(task, False),
    }


def short_names(model: ModelParams, task: Task | None = None) -> dict[str, str]:
    """How the Prefect UI's metric table names each model key (narrow columns)."""
    return {
        OURS: f"ours ({network_name(model, embeddings=False)})",
        **BASELINE_SHORT_NAMES,
        **_linear_name(task, True),
    }


def columns(task: Task | None = None) -> tuple[str, ...]:
    """The results table's metric columns: binary's COLUMNS, else every metric of the task."""
    return COLUMNS if task is None or isinstance(task, BinaryTask) else task.metrics


def best_baseline(metrics: dict[str, Any], task: Task | None = None) -> tuple[str, float]:
    """The better baseline on the task's headline metric (`task.default_metric`; None: binary,
    ROC AUC), and how much better ours is (negative: worse), from evaluate's metrics."""
    metric = task.default_metric if task is not None else BinaryTask.default_metric
    sign = 1 if HIGHER_IS_BETTER[metric] else -1
    best = max(BASELINES, key=lambda k: sign * metrics[k][metric])
    return best, sign * (metrics[OURS][metric] - metrics[best][metric])


def _cell(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _summary(metrics: dict[str, Any], names: dict[str, str], task: Task | None) -> str:
    best, gap = best_baseline(metrics, task)
    if task is None or isinstance(task, BinaryTask):
        verdict = "at or above" if gap >= 0 else "below"
        return (
            f"Test split: {metrics['n_test']} rows, decision threshold "
            f"{metrics['threshold']:.4f} (best F1 on validation). Our ROC AUC is {verdict} the "
            f"better baseline ({names[best]}) by {abs(gap):.4f}."
        )
    metric = task.default_metric
    direction = "higher" if HIGHER_IS_BETTER[metric] else "lower"
    verdict = "as good as or better than" if gap >= 0 else "worse than"
    summary = (
        f"Test split: {metrics['n_test']} rows ({task.describe()}). Our {metric} "
        f"({direction} is better) is {verdict} the better baseline ({names[best]}) by "
        f"{abs(gap):.4f}."
    )
    interval, coverage = metrics.get("interval"), metrics[OURS].get("coverage")
    if interval and coverage is not None:
        summary += (
            f" Our {interval['level']:.0%} prediction interval (value ± "
            f"{interval['half_width']:.4f}, fitted on validation) covers {coverage:.4f} of "
            "the test rows."
        )
    return summary


def results_table(metrics: dict[str, Any], model: ModelParams, task: Task | None = None) -> str:
    """Markdown table of test metrics, then one line comparing us with the better baseline.

    `model` is the model section the metrics came from: it names our row. `task` (None: a
    binary table) picks the columns (`columns`) and the headline metric."""
    names = model_names(model, task)
    cols = columns(task)
    rows = [[label, *(_cell(metrics[key][c]) for c in cols)] for key, label in names.items()]
    lines = table(["model", *cols], rows, "l" + "r" * len(cols))
    return "\n".join([*lines, "", _summary(metrics, names, task)]) + "\n"


def update_readme(
    readme: Path, metrics: dict[str, Any], model: ModelParams, task: Task | None = None
) -> bool:
    """Rewrite the README's results block; True when it changed."""
    text = readme.read_text()
    new = replace_block(text, results_table(metrics, model, task))
    if new != text:
        readme.write_text(new)
    return new != text


def replace_block(text: str, block: str) -> str:
    """Put `block` between the results markers of a Markdown document."""
    return _replace(text, RESULTS, block)


def _paired(rows: list[dict[str, Any]], baseline: str) -> str:
    diffs = [r[OURS] - r[baseline] for r in rows]
    mean = sum(diffs) / len(diffs)
    sd = (sum((d - mean) ** 2 for d in diffs) / (len(diffs) - 1)) ** 0.5 if len(diffs) > 1 else 0
    wins = sum(d > 0 for d in diffs)
    se = sd / len(diffs) ** 0.5  # the mean's standard error: what a difference is judged by
    return f"{mean:+.4f} ± {sd:.4f} (se {se:.4f}), {wins}/{len(diffs)}"


def splits_table(data: dict[str, Any]) -> str:
    """Test ROC AUC of ours and both baselines over many splits, as bench 7 measured them.

    `data["datasets"][name]["splits"]` holds one record per split: its seed and each model's
    test ROC AUC. The differences are paired (same split), their sd taken across splits; a
    win is a split where ours is strictly higher.
    """
    head = (
        "| table (rows) | splits | ours | logistic regression | LightGBM (tuned) | "
        "ours − LightGBM: mean ± sd (se), wins | "
        "ours − logistic regression: mean ± sd (se), wins | "
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
    note = (
        f"Test ROC AUC, mean over stratified splits ({_seed_ranges(data)}); each split "
        "is prepared, trained and scored as `dvc repro` does with params.yaml (validation "
        "only for early stopping, thresholds and LightGBM's search). Differences are paired "
        "on the same split; sd across splits (the mean's standard error is sd/√splits); "
        "wins: splits where ours is higher. "
        "Generated by bench 7 (`python -m bench.quality`), raw numbers in bench/quality.json."
    )
    return "\n".join([*lines, "", note]) + "\n"


def _seed_ranges(data: dict[str, Any]) -> str:
    """The seeds of bench 7's splits: one range, or one per group of tables that share it."""
    tables: dict[str, list[str]] = {}
    for name, d in data["datasets"].items():
        seeds = sorted(r["seed"] for r in d["splits"])
        tables.setdefault(f"{seeds[0]}–{seeds[-1]}", []).append(name)
    if len(tables) == 1:
        return f"seeds {next(iter(tables))}"
    return "seeds " + "; ".join(f"{r} for {', '.join(names)}" for r, names in tables.items())


def replace_splits_block(text: str, data: dict[str, Any]) -> str:
    """Put `splits_table(data)` between the splits markers of a Markdown document."""
    return _replace(text, SPLITS, splits_table(data))
