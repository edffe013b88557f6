"""The model card: one Markdown document (and the same as HTML) built from a run's own outputs.

Every number comes from the files of the run (the train stage's model_card.json, the
evaluate, prepare and report metrics), never typed in; nothing in it depends on the clock, so
the same run gives the same bytes.
"""

from __future__ import annotations

from typing import Any

from retrain.analysis.card_parts import (
    SECTIONS,
    CardInputs,
    Explained,
    bagged,
    data_section,
    explanations,
    training_rows,
)
from retrain.analysis.card_parts import correlated_example as _correlated_example
from retrain.analysis.card_parts import fmt as _f
from retrain.analysis.card_parts import names_of as _names
from retrain.analysis.card_parts import reproduce as _reproduce
from retrain.markdown import html_page
from retrain.markdown import table as _table
from retrain.model_key import OURS
from retrain.models.metrics import METRICS
from retrain.report import best_baseline

__all__ = ["SECTIONS", "CardInputs", "render_html", "render_markdown"]


def _stopped(t: dict[str, Any]) -> str:
    """How training ended, from the trainer's state the train stage recorded."""
    by, improving = t.get("stopped_by"), t.get("still_improving", False)
    if by == "early_stopping":
        return "early stopping: validation ROC AUC stopped improving"
    if by in ("max_steps", "max_epochs"):
        limit = "`train.max_steps`" if by == "max_steps" else "`train.max_epochs`"
        still = " while validation was still improving" if improving else ""
        return f"stopped at {limit}{still}"
    return "not recorded"


def _val(t: dict[str, Any]) -> str:
    """Which validation scores the threshold was chosen on (retrain.models.val_scores)."""
    return "the members' out-of-fold validation scores" if t.get("members") else "validation"


def _model(c: CardInputs) -> list[str]:
    t, e = c.train, c.evaluate
    params = [
        [f"`{k}`", f"{v:.6g}" if isinstance(v, float) else str(v)] for k, v in t["params"].items()
    ]
    cal = c.calibration
    hp = t["params"]
    kind = "TabM, BatchEnsemble" if hp.get("arch") == "tabm" else "TabM-mini"
    network = (
        f"An ensemble of {hp['k']} MLPs sharing their weights ({kind}; the score is the mean "
        "of their probabilities)"
        if hp.get("k", 1) > 1
        else "A multilayer perceptron"
    )
    if hp.get("num_embeddings") == "ple":
        network += " over piecewise-linear embeddings of the numeric columns"
    return [
        f"{bagged(t, network)} (PyTorch Lightning) that scores the probability that "
        f"`{c.dataset['target']}` is `{c.dataset['positive_class']}`.",
        "",
        *_table(
            ["model", "value"],
            [
                ["model", f"`{t['model']}`, {t['n_inputs']} design inputs"],
                ["served artifact", f"`{c.paths['onnx_model']}` with `{c.paths['preprocessor']}`"],
                ["seed", str(t["seed"])],
                *training_rows(t, "val/auroc", "validation ROC AUC", _stopped),
                ["decision threshold", f"{_f(e['threshold'])} (best F1 on {_val(t)})"],
                [
                    "temperature",
                    f"{cal['temperature']:.4f} ({'applied' if cal['applied'] else 'not applied'}"
                    ", see Calibration)",
                ],
            ],
        ),
        "",
        "Training parameters:",
        "",
        *_table(["parameter", "value"], params),
    ]


def _data(c: CardInputs) -> list[str]:
    rate = c.prepare.get("positive_rate", {})
    splits = ["train", "val", "test"]
    row = ["positive rate per split", ", ".join(f"{s} {_f(rate.get(s))}" for s in splits)]
    return data_section(c, row, "stratified and seeded")


def _metrics(c: CardInputs) -> list[str]:
    e, names = c.evaluate, _names(c)
    rows = [
        [label, *(_f(e[key].get(m)) for m in METRICS)] for key, label in names.items() if key in e
    ]
    best, gap = best_baseline(e)
    return [
        f"Test split, {e['n_test']} rows. Each model's threshold is its best F1 on validation "
        f"(ours: {_f(e['threshold'])}).",
        "",
        *_table(["model", *METRICS], rows, "l" + "r" * len(METRICS)),
        "",
        "Expected calibration error of our model on test, on the served scores "
        "(uncalibrated: what predict returns and what the promotion gate judges against "
        f"`registry.gate.max_ece`): {_f(e[OURS].get('ece'))}. Our ROC "
        f"AUC is {'at or above' if gap >= 0 else 'below'} the better baseline "
        f"({names[best]}) by {abs(gap):.4f}.",
    ]


def _slices(c: CardInputs) -> list[str]:
    s = c.slices
    if not s["slices"]:
        return []  # no slice columns (e.g. a table without categoricals): no section
    out = [
        f"Metrics of our model on the {s['split']} split per value of each slice column, at the "
        f"served threshold {_f(s['threshold'])}. Per column the rows add up to all {s['n']} "
        f"rows ({s['positives']} positive). Slices under {s['min_slice_rows']} rows, or with "
        f"fewer than {s['min_slice_class_rows']} of either class, are marked *small*: their "
        "metrics are too noisy to judge, and the promotion gate does not judge them either. "
        "Machine-readable: "
        f"`{c.paths['slice_metrics']}`.",
    ]
    overall = s["overall"]
    for column, values in s["slices"].items():
        rows = [
            [
                "**all**",
                str(s["n"]),
                str(s["positives"]),
                _f(s["positives"] / s["n"]),
                _f(overall["roc_auc"]),
                _f(overall["recall"]),
                _f(overall["f1"]),
                "",
            ]
        ]
        for value, entry in values.items():
            m = entry["metrics"] or {}
            note = "small" if entry["small"] else ""
            if entry["metrics"] is None:
                note = "one class only" + (", small" if entry["small"] else "")
            rows.append(
                [
                    f"`{value}`",
                    str(entry["n"]),
                    str(entry["positives"]),
                    _f(entry["positive_rate"]),
                    _f(m.get("roc_auc")),
                    _f(m.get("recall")),
                    _f(m.get("f1")),
                    note,
                ]
            )
        out += ["", f"### `{column}`", ""]
        out += _table(
            ["value", "rows", "positives", "positive rate", "ROC AUC", "recall", "F1", "note"],
            rows,
            "lrrrrrrl",
        )
        weak = s["weakest"].get(column)
        if weak:
            out += [
                "",
                f"Weakest: `{weak['value']}` (ROC AUC {_f(weak['roc_auc'])}, {weak['n']} rows).",
            ]
    return out


def _calibration(c: CardInputs) -> list[str]:
    cal = c.calibration
    before, after = cal["test"]["before"], cal["test"]["after"]
    verdict = (
        "Temperature scaling is turned off (`report.temperature_scaling`)."
        if not cal["enabled"]
        else f"It lowers validation log loss by at least {cal['min_log_loss_gain']}, so it is "
        f"**applied**: calibrated score = sigmoid(logit(score) / {cal['temperature']:.6f}); the "
        f"same decisions come from the threshold {_f(cal['threshold_after'])} on calibrated "
        "scores."
        if cal["applied"]
        else f"It lowers validation log loss by less than {cal['min_log_loss_gain']}, so it is "
        "**not applied**: scores are served as the model gives them."
    )
    rows = [
        [name, _f(before[k]), _f(after[k])]
        for name, k in (("log loss", "log_loss"), ("Brier score", "brier"), ("ECE", "ece"))
    ]
    curve = [
        [str(r["bin"]), _f(r["mean_predicted"]), _f(r["fraction_positive"]), str(r["count"])]
        for r in cal["reliability"]["before"]
    ]
    return [
        (
            f"Temperature scaling fitted on the validation split only: T = "
            f"{cal['temperature']:.4f}, validation log loss "
            f"{_f(cal['val']['log_loss_before'])} -> {_f(cal['val']['log_loss_after'])}. "
            if cal["enabled"]
            else ""
        )
        + f"{verdict} The ONNX model itself is unchanged: predict serves, and the promotion "
        "gate judges, the scores before scaling.",
        "",
        "On the test split (never used for fitting):",
        "",
        *_table(
            ["", "before (served, gated)", f"after (T = {cal['temperature']:.4f}, not served)"],
            rows,
            "lrr",
        ),
        "",
        f"Reliability curve of the served scores on test ({cal['bins']} equal-width bins; "
        "`dvc plots show` draws it before and after scaling):",
        "",
        *_table(["bin", "mean predicted", "fraction positive", "rows"], curve, "rrrr"),
    ]


def _explanations(c: CardInputs) -> list[str]:
    score = f"probability {_f(c.attributions['baseline_score'])}"
    return explanations(
        c,
        Explained(
            attributed="the network's logit",
            unit="log-odds: how far the column moves a row's score away from the baseline "
            f"row's ({score})",
            change="the score's change",
        ),
    )


def _limits(c: CardInputs) -> list[str]:
    e, s, cal = c.evaluate, c.slices, c.calibration
    best, gap = best_baseline(e)
    limits = [
        f"Trained and tested on one snapshot of `{c.train['dataset']}` "
        f"({c.prepare.get('rows_out')} rows); how it scores later rows is not measured "
        "here.",
    ]
    if gap < 0:
        limits.append(
            f"Its test ROC AUC is {abs(gap):.4f} below the better baseline ({_names(c)[best]}); "
            "prefer the baseline where the difference matters."
        )
    small = [
        f"`{col}={v}` ({x['n']} rows)"
        for col, vals in s["slices"].items()
        for v, x in vals.items()
        if x["small"]
    ]
    if small:
        limits.append("Slices too small to judge: " + ", ".join(small) + ".")
    for column, weak in s["weakest"].items():
        if weak["roc_auc"] < s["overall"]["roc_auc"] - 0.05:
            limits.append(
                f"Within `{column}={weak['value']}` the model ranks rows less well (ROC "
                f"AUC {_f(weak['roc_auc'])} against {_f(s['overall']['roc_auc'])} overall; part "
                "of the overall figure comes from telling the segments apart)."
            )
    target, positive = c.dataset.get("target"), c.dataset.get("positive_class")
    label = f"`{target}` = `{positive}`"
    example = _correlated_example(c.attributions)
    limits += [
        f"The decision threshold ({_f(e['threshold'])}) maximises F1 on validation; other "
        f"costs of a missed {label} versus a false alarm call for another threshold.",
        "Attributions explain the model's score relative to the baseline row, not causes of "
        f"{label}; correlated inputs{example} share credit between them somewhat "
        "arbitrarily.",
        f"Calibration was fitted on {c.prepare.get('rows', {}).get('val')} validation rows"
        + ("" if cal["applied"] else " and is not applied")
        + "; it can drift with the data like everything else.",
        "The PII guard is a heuristic on column names and sampled values; it does not prove a "
        "table free of personal data.",
    ]
    return [f"- {item}" for item in limits]


def render_markdown(c: CardInputs) -> str:
    """The card as Markdown, one `##` heading per entry of SECTIONS, in that order; a
    multiclass or regression model's sections are `retrain.analysis.card_task`'s."""
    if (c.dataset.get("task") or "binary") != "binary":
        return _render_task(c)
    builders = (_model, _data, _metrics, _slices, _calibration, _explanations, _limits, _reproduce)
    lines = [
        f"# Model card: `{c.train['model']}` on `{c.train['dataset']}`",
        "",
        "Written by the `report` stage of `dvc repro` from this run's outputs; do not edit.",
    ]
    for title, build in zip(SECTIONS, builders, strict=True):
        body = build(c)
        if body:  # a section with nothing to say is left out, not shown empty
            lines += ["", f"## {title}", "", *body]
    return "\n".join(lines) + "\n"


def _render_task(c: CardInputs) -> str:
    from retrain.analysis import card_task

    task = card_task.task_of(c)
    lines = [
        f"# Model card: `{c.train['model']}` on `{c.train['dataset']}` ({task.kind})",
        "",
        "Written by the `report` stage of `dvc repro` from this run's outputs; do not edit.",
    ]
    for title, build in zip(SECTIONS, card_task.BUILDERS, strict=True):
        body = build(c, task)
        if body:
            lines += ["", f"## {title}", "", *body]
    return "\n".join(lines) + "\n"


def render_html(markdown_text: str, title: str) -> str:
    """The Markdown card as a standalone HTML page (no scripts, no external resources)."""
    import markdown

    body = markdown.markdown(markdown_text, extensions=["tables", "fenced_code"])
    return html_page(title, body)
