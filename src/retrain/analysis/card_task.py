"""The model card's sections for a multiclass or a regression model (`retrain.analysis.card`
renders binary models itself, as it always has).

The wording is the task's: a multiclass card names its classes and their shares and reads
log loss, macro ROC AUC and the top-class calibration; a regression card names the target's
scale, RMSE/MAE/R² in the target's units and the interval's coverage. No sentence about a
positive class or a decision threshold is left where neither exists.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from retrain.analysis.card_parts import (
    CardInputs,
    Explained,
    bagged,
    correlated_example,
    data_section,
    explanations,
    fmt,
    names_of,
    reproduce,
    training_rows,
)
from retrain.markdown import table
from retrain.model_key import OURS
from retrain.report import BASELINES
from retrain.task import HIGHER_IS_BETTER, Task, make_task

LABELS = {
    "log_loss": "log loss",
    "roc_auc_ovr": "macro ROC AUC (one-vs-rest)",
    "accuracy": "accuracy",
    "macro_f1": "macro F1",
    "brier": "Brier score",
    "rmse": "RMSE",
    "mae": "MAE",
    "r2": "R²",
}
MONITOR_LABELS = {"val/log_loss": "validation log loss", "val/rmse": "validation RMSE"}
# The slice table's columns (the task's headline metrics).
SLICE_METRICS = {
    "multiclass": ("log_loss", "accuracy", "macro_f1"),
    "regression": ("rmse", "mae", "r2"),
}


def task_of(c: CardInputs) -> Task:
    d = c.dataset
    return make_task(
        d.get("task") or "binary",
        positive_class=d.get("positive_class"),
        classes=d.get("classes") or (),
    )


def _target(c: CardInputs) -> str:
    return f"`{c.dataset['target']}`"


def _shares(c: CardInputs) -> str:
    """Each class with its share of the test rows (the slices' counts)."""
    rows = c.slices.get("class_rows") or {}
    total = sum(rows.values()) or 1
    return ", ".join(f"`{k}` {100 * v / total:.1f}%" for k, v in rows.items())


def _scale(c: CardInputs) -> str:
    """The regression target on test: mean, sd and range, the units RMSE and MAE are in."""
    t = c.slices.get("target")
    if not t:
        return "not recorded"
    return f"mean {t['mean']:.4g}, sd {t['std']:.4g}, range {t['min']:.4g} to {t['max']:.4g}"


def _stopped(t: dict[str, Any], task: Task) -> str:
    by, improving = t.get("stopped_by"), t.get("still_improving", False)
    if by == "early_stopping":
        return f"early stopping: {MONITOR_LABELS[task.monitor]} stopped improving"
    if by in ("max_steps", "max_epochs"):
        still = " while validation was still improving" if improving else ""
        return f"stopped at `train.{by}`{still}"
    return "not recorded"


def _network(hp: dict[str, Any], task: Task) -> str:
    kind = "TabM, BatchEnsemble" if hp.get("arch") == "tabm" else "TabM-mini"
    mean_of = "class probabilities" if task.kind == "multiclass" else "predicted values"
    network = (
        f"An ensemble of {hp['k']} MLPs sharing their weights ({kind}; the prediction is the "
        f"mean of their {mean_of})"
        if hp.get("k", 1) > 1
        else "A multilayer perceptron"
    )
    if hp.get("num_embeddings") == "ple":
        network += " over piecewise-linear embeddings of the numeric columns"
    return network


def _calibration_row(c: CardInputs, task: Task) -> list[str]:
    cal = c.calibration
    if task.kind == "regression":
        iv = cal["interval"]
        return [
            "prediction interval",
            f"prediction ± {iv['half_width']:.4g} ({100 * iv['level']:g}% split-conformal, see "
            "Calibration)",
        ]
    applied = "applied" if cal["applied"] else "not applied"
    return ["temperature", f"{cal['temperature']:.4f} ({applied}, see Calibration)"]


def _model(c: CardInputs, task: Task) -> list[str]:
    t, hp = c.train, c.train["params"]
    params = [[f"`{k}`", f"{v:.6g}" if isinstance(v, float) else str(v)] for k, v in hp.items()]
    served = f"`{c.paths['onnx_model']}` with `{c.paths['preprocessor']}`"
    if task.kind == "multiclass":
        what = f"gives the probability of each class of {_target(c)}: {_classes(task)}."
    else:
        what = (
            f"predicts {_target(c)} in its own units (learnt standardised on the training "
            "split; the served model undoes the scaling)."
        )
        served += f" and `{c.paths['intervals']}`"
    rows = [
        ["model", f"`{t['model']}`, {t['n_inputs']} design inputs"],
        ["served artifact", served],
        ["seed", str(t["seed"])],
        *training_rows(t, task.monitor, MONITOR_LABELS[task.monitor], lambda m: _stopped(m, task)),
        _calibration_row(c, task),
    ]
    return [
        f"{bagged(t, _network(hp, task))} (PyTorch Lightning) that {what}",
        "",
        *table(["model", "value"], rows),
        "",
        "Training parameters:",
        "",
        *table(["parameter", "value"], params),
    ]


def _classes(task: Task) -> str:
    return ", ".join(f"`{c}`" for c in task.classes)


def _data(c: CardInputs, task: Task) -> list[str]:
    target_row = (
        ["classes (share of test rows)", _shares(c)]
        if task.kind == "multiclass"
        else [f"target {_target(c)} on test", _scale(c)]
    )
    strata = "the class" if task.kind == "multiclass" else "quantile bins of the target"
    return data_section(c, target_row, f"seeded and stratified on {strata}")


# The linear baseline of each task (issue 26): the evaluate stage keeps its key, `logreg`.
LINEAR = {"multiclass": "Multinomial logistic regression", "regression": "Ridge regression"}


def _names(c: CardInputs, task: Task) -> dict[str, str]:
    names = names_of(c)
    if "logreg" in names:
        names["logreg"] = LINEAR[task.kind]
    return names


def best_baseline(e: dict[str, Any], metric: str) -> tuple[str, float] | None:
    """The baseline better on `metric`, and how much better ours is (positive: ours)."""
    scored = [k for k in BASELINES if e.get(k, {}).get(metric) is not None]
    ours = e.get(OURS, {}).get(metric)
    if not scored or ours is None:
        return None
    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    best = max(scored, key=lambda k: sign * e[k][metric])
    return best, sign * (ours - e[best][metric])


def _metrics(c: CardInputs, task: Task) -> list[str]:
    e, names = c.evaluate, _names(c, task)
    metrics = task.metrics
    rows = [
        [label, *(fmt(e[key].get(m)) for m in metrics)] for key, label in names.items() if key in e
    ]
    out = [
        f"Test split, {e.get('n_test', c.slices.get('n'))} rows."
        + (
            " A row's predicted class is its most probable one."
            if task.kind == "multiclass"
            else ""
        ),
        "",
        *table(["model", *(LABELS[m] for m in metrics)], rows, "l" + "r" * len(metrics)),
        "",
    ]
    if task.kind == "multiclass":
        ece = c.calibration["test"]["before"]["ece"]
        check = (
            "Expected calibration error of our model's top class on test, on the served "
            "probabilities (what predict returns and what the promotion gate judges against "
            f"`registry.gate.max_ece`): {fmt(ece)}."
        )
    else:
        iv = c.calibration["interval"]
        check = (
            f"The {100 * iv['level']:g}% prediction interval (prediction ± "
            f"{iv['half_width']:.4g}) covers {fmt(iv['coverage'])} of the test rows (see "
            "Calibration). Errors are in the target's units."
        )
    compared = best_baseline(e, task.default_metric)
    if compared is not None:
        best, gap = compared
        verdict = "at or better than" if gap >= 0 else "worse than"
        check += (
            f" Our {LABELS[task.default_metric]} is {verdict} the better baseline "
            f"({names[best]}) by {abs(gap):.4f}."
        )
    return [*out, check]


def _slice_rows(s: dict[str, Any], task: Task, values: dict[str, Any]) -> list[list[str]]:
    shown = SLICE_METRICS[task.kind]
    rows = [["**all**", str(s["n"]), *(fmt(s["overall"].get(m)) for m in shown), ""]]
    for value, entry in values.items():
        rows.append(
            [
                f"`{value}`",
                str(entry["n"]),
                *(fmt(entry["metrics"].get(m)) for m in shown),
                "small" if entry["small"] else "",
            ]
        )
    return rows


def _slices(c: CardInputs, task: Task) -> list[str]:
    s = c.slices
    if not s["slices"]:
        return []
    rule = f"Slices under {s['min_slice_rows']} rows"
    if task.kind == "multiclass":
        rule += f", or with fewer than {s['min_slice_class_rows']} rows of any class,"
    out = [
        f"Metrics of our model on the {s['split']} split per value of each slice column. Per "
        f"column the rows add up to all {s['n']} rows. {rule}, are marked *small*: their "
        "metrics are too noisy to judge, and the promotion gate does not judge them either. "
        f"Machine-readable: `{c.paths['slice_metrics']}`.",
    ]
    shown = SLICE_METRICS[task.kind]
    for column, values in s["slices"].items():
        out += ["", f"### `{column}`", ""]
        out += table(
            ["value", "rows", *(LABELS[m] for m in shown), "note"],
            _slice_rows(s, task, values),
            "lr" + "r" * len(shown) + "l",
        )
        weak = s["weakest"].get(column)
        if weak:
            metric = weak["metric"]
            out += [
                "",
                f"Weakest: `{weak['value']}` ({LABELS[metric]} {fmt(weak[metric])}, "
                f"{weak['n']} rows).",
            ]
    return out


def _calibration(c: CardInputs, task: Task) -> list[str]:
    cal = c.calibration
    if task.kind == "regression":
        iv = cal["interval"]
        return [
            f"Split-conformal prediction interval: prediction ± {iv['half_width']:.4g} in "
            f"{_target(c)}'s units, the {100 * iv['level']:g}% quantile of the absolute "
            f"residuals of {iv['n_val']} validation rows (written by `train` to "
            f"`{c.paths['intervals']}` and served with every prediction). On the test split "
            f"(never used for fitting) it covers {fmt(iv['coverage'])} of {iv['rows']} rows, "
            f"{fmt(iv['miss'])} from its level. The promotion gate refuses a model whose "
            "coverage misses the level by more than `registry.gate.coverage_tolerance`. A "
            "regression model has no ECE.",
        ]
    before, after = cal["test"]["before"], cal["test"]["after"]
    verdict = (
        "Temperature scaling is turned off (`report.temperature_scaling`)."
        if not cal["enabled"]
        else f"It lowers validation log loss by at least {cal['min_log_loss_gain']}, so it is "
        "**applied**: calibrated probabilities = softmax(log(probabilities) / "
        f"{cal['temperature']:.6f}); every row keeps its predicted class."
        if cal["applied"]
        else f"It lowers validation log loss by less than {cal['min_log_loss_gain']}, so it is "
        "**not applied**: probabilities are served as the model gives them."
    )
    rows = [
        [name, fmt(before[k]), fmt(after[k])]
        for name, k in (
            ("log loss", "log_loss"),
            ("Brier score", "brier"),
            ("ECE (top class)", "ece"),
        )
    ]
    curve = [
        [str(r["bin"]), fmt(r["mean_predicted"]), fmt(r["fraction_positive"]), str(r["count"])]
        for r in cal["reliability"]["before"]
    ]
    return [
        f"Temperature scaling of the log-probabilities, fitted on the validation split only: "
        f"T = {cal['temperature']:.4f}, validation log loss {fmt(cal['val']['log_loss_before'])}"
        f" -> {fmt(cal['val']['log_loss_after'])}. {verdict} The ONNX model itself is "
        "unchanged: predict serves, and the promotion gate judges, the probabilities before "
        "scaling.",
        "",
        "On the test split (never used for fitting):",
        "",
        *table(
            ["", "before (served, gated)", f"after (T = {cal['temperature']:.4f}, not served)"],
            rows,
            "lrr",
        ),
        "",
        f"Reliability of the top class on test ({cal['bins']} equal-width bins of the largest "
        "probability; correct = the predicted class is the row's class):",
        "",
        *table(["bin", "mean top probability", "fraction correct", "rows"], curve, "rrrr"),
    ]


def _words(c: CardInputs, task: Task) -> Explained:
    """What is attributed, and the unit of an attribution (`retrain.analysis.attributions`)."""
    if task.kind == "multiclass":
        return Explained(
            attributed="the log-probability of each row's predicted class",
            unit="natural-log probability: how far the column moves the predicted class's "
            "log-probability away from the baseline row's",
            change="the change in the predicted class's log-probability",
            after_table=tuple(_per_class(c.attributions)),
        )
    return Explained(
        attributed=f"the predicted value of {_target(c)} (in its own units)",
        unit=f"units of {_target(c)}: how far the column moves a row's prediction away from "
        f"the baseline row's ({fmt(c.attributions['baseline_score'])})",
        change="the change in the prediction",
    )


def _per_class(a: dict[str, Any]) -> list[str]:
    rows = []
    for name, entry in (a.get("per_class") or {}).items():
        top = sorted(entry["columns"].items(), key=lambda kv: kv[1]["rank"])[:3]
        rows.append([f"`{name}`", str(entry["rows"]), ", ".join(f"`{col}`" for col, _ in top)])
    if not rows:
        return []
    return [
        "",
        "Per predicted class (the explained rows predicted as it):",
        "",
        *table(["class", "rows", "top columns"], rows, "lrl"),
    ]


def _explanations(c: CardInputs, task: Task) -> list[str]:
    return explanations(c, _words(c, task))


def _limits(c: CardInputs, task: Task) -> list[str]:
    s, metric = c.slices, task.default_metric
    limits = [
        f"Trained and tested on one snapshot of `{c.train['dataset']}` "
        f"({c.prepare.get('rows_out')} rows); how it scores later rows is not measured here.",
    ]
    compared = best_baseline(c.evaluate, metric)
    if compared is not None and compared[1] < 0:
        limits.append(
            f"Its test {LABELS[metric]} is {abs(compared[1]):.4f} worse than the better "
            f"baseline ({_names(c, task)[compared[0]]}); prefer the baseline where the difference "
            "matters."
        )
    small = [
        f"`{col}={v}` ({x['n']} rows)"
        for col, vals in s["slices"].items()
        for v, x in vals.items()
        if x["small"]
    ]
    if small:
        limits.append("Slices too small to judge: " + ", ".join(small) + ".")
    example = correlated_example(c.attributions)
    if task.kind == "multiclass":
        limits.append(
            "The predicted class is the most probable one; where one mistake costs more than "
            "another (e.g. a rare class missed), weigh the probabilities instead."
        )
        calibrated = "Calibration was fitted on"
    else:
        limits.append(
            "The interval has one width for every row: it covers the stated share of rows on "
            "average, not of each segment; rows unlike the validation rows may fall outside "
            "more often."
        )
        calibrated = "The interval was fitted on"
    limits += [
        "Attributions explain the model's prediction relative to the baseline row, not causes "
        f"of {_target(c)}; correlated inputs{example} share credit between them somewhat "
        "arbitrarily.",
        f"{calibrated} {c.prepare.get('rows', {}).get('val')} validation rows; it can drift "
        "with the data like everything else.",
        "The PII guard is a heuristic on column names and sampled values; it does not prove a "
        "table free of personal data.",
    ]
    return [f"- {item}" for item in limits]


Builder = Callable[[CardInputs, Task], list[str]]
BUILDERS: tuple[Builder, ...] = (
    _model,
    _data,
    _metrics,
    _slices,
    _calibration,
    _explanations,
    _limits,
    lambda c, _task: reproduce(c),
)
