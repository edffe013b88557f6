"""Bench 7, model quality: our MLP vs logistic regression vs tuned LightGBM, same split and run.

The evaluate stage already scores all three on the same test split in the same run; this
reads its metrics/evaluate.json: from the pipeline bench's run when run_all ran it (or when
run alone in full mode, after running it), else (--quick) from this checkout's last
`dvc repro`.

    .venv/bin/python -m bench.quality [--quick]
"""

from __future__ import annotations

import json

from bench import pipeline
from bench.common import REPO, Section, Shared, cli

MODELS = {"mlp": "MLP (ours)", "logreg": "logistic regression", "lightgbm": "LightGBM (tuned)"}
KEYS = ("roc_auc", "pr_auc", "accuracy", "f1", "log_loss", "brier")


def run(quick: bool, shared: Shared) -> Section:
    if "pipeline_metrics" not in shared and not quick:
        pipeline.run(False, shared)
    if "pipeline_metrics" in shared:
        metrics = shared["pipeline_metrics"]["metrics"]
        source = "the pipeline bench's dvc repro on the real data" + (
            " (tests' small budgets)" if shared["pipeline_metrics"]["quick"] else " (params.yaml)"
        )
    else:
        metrics = json.loads((REPO / "metrics" / "evaluate.json").read_text())
        source = "this checkout's metrics/evaluate.json (its last dvc repro; --quick runs none)"
    section = Section("7", "Model quality on the test split", ["model", *KEYS])
    for key, name in MODELS.items():
        section.rows.append([name, *(f"{metrics[key][k]:.4f}" for k in KEYS)])
    best = max(("logreg", "lightgbm"), key=lambda m: metrics[m]["roc_auc"])
    gap = metrics["mlp"]["roc_auc"] - metrics[best]["roc_auc"]
    section.notes += [
        f"ROC AUC: ours {metrics['mlp']['roc_auc']:.4f} vs {MODELS[best]} "
        f"{metrics[best]['roc_auc']:.4f} ({gap:+.4f}); issue 7 sets no numeric goal here",
        f"source: {source}; {metrics['n_test']} test rows, threshold "
        f"{metrics['threshold']} (best F1 on validation; each baseline gets its own)",
    ]
    section.data = metrics
    return section


def main() -> None:
    cli(run, __doc__)


if __name__ == "__main__":
    main()
