"""Which DVC plots a task has, and how dvc.yaml draws them.

The evaluate stage writes a task's plot files only (binary: ROC, precision-recall,
calibration, confusion at the threshold; multiclass: the confusion matrix of the most probable
class, by class name; regression: residuals and predicted-vs-actual of a seeded sample), and
dvc.yaml must list exactly those as evaluate's outs and draw exactly those (plus the report
stage's) under `plots:`: a chart whose file a task never writes would show as "failed to
load". `dvc_yaml_for(text, task, paths)` rewrites the shipped dvc.yaml for a task (what
`retrain init` calls); for a binary task it is the shipped text, unchanged. A regression
dvc.yaml also lists `train`'s prediction interval (paths.intervals) as its out and a dep of
`evaluate`, which reports the interval's test coverage.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import yaml

from retrain.report import MODEL_KEYS
from retrain.task import BinaryTask, MulticlassTask, RegressionTask, Task

if TYPE_CHECKING:
    from retrain.config import Paths

# The evaluate stage's plot files per task: keys of params.paths, in dvc.yaml's order.
EVALUATE_PLOTS: dict[str, tuple[str, ...]] = {
    "binary": ("roc_plot", "pr_plot", "calibration_plot", "confusion_plot"),
    "multiclass": ("confusion_plot",),
    "regression": ("residuals_plot", "predicted_vs_actual_plot"),
}


def evaluate_plots(task: Task) -> tuple[str, ...]:
    """The params.paths keys of the plot files the evaluate stage writes for `task`."""
    return EVALUATE_PLOTS[task.kind]


def _attributions(paths: Paths, task: Task) -> dict[str, Any]:
    units = "log-odds" if isinstance(task, BinaryTask) else "the model's output"
    return {
        "attributions": {
            "template": "bar_horizontal_sorted",
            "title": f"Global attributions (mean |Integrated Gradients|, {units}) per "
            "original column",
            "x": "mean_abs_attribution",
            "y": {str(paths.attributions_plot): "column"},
        }
    }


def _binary(paths: Paths) -> list[dict[str, Any]]:
    models = list(MODEL_KEYS)
    return [
        {
            "roc": {
                "template": "lines_by_model",
                "title": "ROC on the test split",
                "x": "fpr",
                "y": {str(paths.roc_plot): models},
            }
        },
        {
            "precision_recall": {
                "template": "lines_by_model",
                "title": "Precision-recall on the test split",
                "x": "recall",
                "y": {str(paths.pr_plot): models},
            }
        },
        {
            "calibration": {
                "template": "lines_by_file",
                "title": "Calibration (reliability curve) of our model, before and after "
                "temperature scaling",
                "x": "mean_predicted",
                "y": {
                    str(paths.calibration_plot): "fraction_positive",
                    str(paths.calibration_scaled_plot): "fraction_positive",
                },
            }
        },
        {
            "confusion": {
                "template": "confusion_counts",
                "title": "Confusion matrix at the chosen threshold",
                "x": "actual",
                "y": {str(paths.confusion_plot): "predicted"},
            }
        },
    ]


def _multiclass(paths: Paths) -> list[dict[str, Any]]:
    return [
        {
            "confusion": {
                "template": "confusion_counts",
                "title": "Confusion matrix of the most probable class (test split)",
                "x": "actual",
                "y": {str(paths.confusion_plot): "predicted"},
            }
        }
    ]


def _regression(paths: Paths) -> list[dict[str, Any]]:
    return [
        {
            "residuals": {
                "template": "scatter",
                "title": "Residuals (actual - predicted) of our model on the test split",
                "x": "predicted",
                "y": {str(paths.residuals_plot): "residual"},
            }
        },
        {
            "predicted_vs_actual": {
                "template": "scatter",
                "title": "Predicted against actual value, our model on the test split",
                "x": "actual",
                "y": {str(paths.predicted_vs_actual_plot): "predicted"},
            }
        },
    ]


def dvc_plots(task: Task, paths: Paths) -> list[dict[str, Any]]:
    """dvc.yaml's top-level `plots:` for `task`: the evaluate stage's charts of the task, then
    the report stage's attributions (every task has them)."""
    if isinstance(task, MulticlassTask):
        charts = _multiclass(paths)
    elif isinstance(task, RegressionTask):
        charts = _regression(paths)
    else:
        charts = _binary(paths)
    return [*charts, _attributions(paths, task)]


def _outs(keys: tuple[str, ...]) -> str:
    """The evaluate stage's plot outs in dvc.yaml, as one block of lines."""
    return "".join(f"      - ${{paths.{k}}}:\n          cache: false\n" for k in keys)


# Which task's layout a dvc.yaml has, told by its evaluate plot outs: binary's block holds
# multiclass's (the confusion matrix), so it is looked for first.
_LAYOUTS = ("binary", "regression", "multiclass")
_PLOTS_HEAD = re.compile(r"^plots:\n", re.MULTILINE)


def dvc_yaml_for(text: str, task: Task, paths: Paths, source: str = "dvc.yaml") -> str:
    """dvc.yaml `text` (the shipped binary layout, or one this function wrote for another
    task) with evaluate's plot outs and the top-level `plots:` of `task`; `text` itself when
    it already has `task`'s layout (the shipped file, comments and all, for a binary task).

    Raises:
        ValueError: `text` has no task's evaluate plot outs or no top-level `plots:` (one
            line naming `source`).
    """
    current = next((k for k in _LAYOUTS if _outs(EVALUATE_PLOTS[k]) in text), None)
    head = _PLOTS_HEAD.search(text)
    if current is None or head is None:
        raise ValueError(
            f"{source}: not the shipped layout (evaluate's plot outs of a task and a "
            "top-level plots: section); write the task's plots by hand (retrain.models.plots)"
        )
    if current == task.kind:
        return text
    section = yaml.safe_dump(
        {"plots": dvc_plots(task, paths)}, sort_keys=False, default_flow_style=False, width=99
    )
    outs = text[: head.start()].replace(
        _outs(EVALUATE_PLOTS[current]), _outs(evaluate_plots(task))
    )
    return outs + section
