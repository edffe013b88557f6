"""The pull-request check as Markdown: a verdict line, a summary table, then one section per
check. Written for a PR comment: compact tables, long lists folded into <details>."""

from __future__ import annotations

import json
import math
from typing import Any

from retrain.markdown import markers, replace_block, table
from retrain.model_key import OURS
from retrain.prcheck.check import BLOCKED, INCOMPLETE, PASSED, WARNED, PrCheck
from retrain.report import MODEL_KEYS
from retrain.task import HIGHER_IS_BETTER, MulticlassTask, RegressionTask

MARKER = "<!-- retrain-check-pr -->"  # lets a bot find and update its one comment
ICONS = {PASSED: "✅", WARNED: "⚠️", BLOCKED: "❌", INCOMPLETE: "⛔"}
HEADLINE_METRICS = ("roc_auc", "pr_auc", "f1", "log_loss", "brier")
# The test metrics table's columns per task (retrain.task): binary's headline five, the
# others' every metric (they have three to five).
TABLE_METRICS = {
    "binary": HEADLINE_METRICS,
    "multiclass": MulticlassTask.metrics,
    "regression": RegressionTask.metrics,
}
# What the target's drift is called: classes are labels, a regression target is a value.
TARGET_WORD = {"binary": "label", "multiclass": "label", "regression": "target"}
MAX_ROWS = 25


def _cell(value: Any) -> str:
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    return text.replace("|", "\\|").replace("\n", " ")


def _num(value: Any) -> str:
    if isinstance(value, bool) or value is None:
        return str(value)
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:.4f}" if math.isfinite(value) else str(value)
    return str(value)


def _changed(entry: dict[str, Any]) -> bool:
    """Changed as shown: numbers equal to 4 decimals read as unchanged (float noise of a
    retrained baseline is not news for a reviewer; report.json keeps the exact values)."""
    old, new = entry.get("old"), entry.get("new")
    if isinstance(old, int | float) and isinstance(new, int | float):
        return round(float(old), 4) != round(float(new), 4)
    return old != new


def _signed(value: float) -> str:
    return f"{value:+.4f}".replace("-", "−")


def _metric_change(entry: dict[str, Any]) -> str:
    old, new = entry.get("old"), entry.get("new")
    if not _changed(entry):
        return _num(new)
    if isinstance(old, int | float) and isinstance(new, int | float):
        return f"{_num(old)} → **{_num(new)}** ({_signed(float(new) - float(old))})"
    return f"{_num(old)} → **{_num(new)}**"


def _table(head: list[str], rows: list[list[str]]) -> list[str]:
    return table(head, [[_cell(c) for c in row] for row in rows])


def _details(summary: str, lines: list[str]) -> list[str]:
    return ["<details>", f"<summary>{summary}</summary>", "", *lines, "", "</details>"]


# --- the one-line summaries -----------------------------------------------------------------


def _validation_summary(check: PrCheck) -> tuple[str, str]:
    if check.validation_error:
        return ICONS[BLOCKED], f"data unreadable: {check.validation_error}"
    if not check.validation:
        return "➖", "not run"
    if check.contract:
        return ICONS[BLOCKED], (
            f"{len(check.contract)} file(s) break the data contract: {_clip(check.contract[0])}"
        )
    blocking = sum(len(r.blocking_failures) for r in check.validation)
    failed = sum(len(r.failures) for r in check.validation)
    evaluated = sum(r.evaluated for r in check.validation)
    rows = sum(r.n_rows for r in check.validation)
    tables = f"{len(check.validation)} file(s), {rows:,} rows"
    if blocking:
        return ICONS[BLOCKED], (
            f"{blocking} blocking, {failed - blocking} warning of {evaluated} expectations "
            f"failed ({tables})"
        )
    if failed:
        return ICONS[WARNED], f"{failed} warning(s) of {evaluated} expectations ({tables})"
    return ICONS[PASSED], f"all {evaluated} expectations passed ({tables})"


def _suite_summary(check: PrCheck) -> tuple[str, str]:
    if not check.suite_changes:
        return ICONS[PASSED], "unchanged"
    counts: dict[str, int] = {}
    for c in check.suite_changes:
        counts[c.change] = counts.get(c.change, 0) + 1
    text = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
    return "📝", f"{text} (review below)"


def _drift_summary(check: PrCheck) -> tuple[str, str]:
    drift = check.drift
    if drift is None:
        icon = ICONS[INCOMPLETE] if (check.drift_note or "").startswith("not computed") else "➖"
        return icon, check.drift_note or "not computed"
    drifted = drift["drifted_features"]
    n = len(drift["features"])
    target = drift.get("target")
    word = TARGET_WORD[check.task]
    label = f"; {word}s drifted ({target['column']})" if target and target["drifted"] else ""
    if drift["gate"]["tripped"]:
        return ICONS[WARNED], (
            f"gate tripped: {len(drifted)} of {n} columns drifted ({', '.join(drifted)}){label}"
        )
    if drifted:
        return ICONS[WARNED], (
            f"{len(drifted)} of {n} columns drifted: {', '.join(drifted)}{label} "
            f"(gate passed: {drift['share_drifted']:.0%} of columns, "
            f"limit {drift.get('max_share_drifted', 0):.0%})"
        )
    return ICONS[PASSED], f"no column drifted ({n} compared){label}"


def _params_summary(check: PrCheck) -> tuple[str, str]:
    diff = check.pipeline.params_diff
    if check.params_error:
        return ICONS[BLOCKED], "params.yaml is invalid"
    if not diff:
        return ICONS[PASSED], "unchanged"
    return "📝", f"{len(diff)} changed: " + ", ".join(f"`{k}`" for k in diff)


def _headline_metric(check: PrCheck) -> str | None:
    """Our model's change in the gate's metric, when it changed."""
    metric = check.gate_metric
    entry = check.pipeline.metrics_diff.get(f"{check.metrics_file}:{OURS}.{metric}")
    if entry and _changed(entry):
        return f"{OURS} {metric} {_metric_change(entry).replace('**', '')}"
    return None


def directions(metrics: tuple[str, ...]) -> str:
    """One sentence: which of `metrics` are better higher, which lower."""
    parts = []
    for way, higher in (("higher", True), ("lower", False)):
        names = [m for m in metrics if HIGHER_IS_BETTER[m] is higher]
        if names:
            parts.append(f"{way} is better: {', '.join(names)}")
    text = "; ".join(parts) + "."
    return text[0].upper() + text[1:]


def _pipeline_summary(check: PrCheck) -> tuple[str, str]:
    pipe = check.pipeline
    changed = [k for k, v in pipe.metrics_diff.items() if _changed(v)]
    if pipe.error:
        return ICONS[BLOCKED], pipe.error
    if pipe.reran:
        what = f"re-ran {', '.join(pipe.stages_run) or 'nothing'}"
    elif pipe.changed:
        what = f"inputs changed, not re-run ({pipe.skipped_because})"
    else:
        what = "up to date"
    headline = _headline_metric(check)
    metrics = f"{len(changed)} metric(s) changed" if changed else "metrics unchanged"
    if headline:
        metrics += f"; {headline}"
    icon = ICONS[WARNED] if pipe.changed and not pipe.reran else "📈" if changed else ICONS[PASSED]
    return icon, f"{what}; {metrics}"


def _short_expectation(name: str) -> str:
    for prefix in ("expect_column_values_to_", "expect_column_", "expect_table_"):
        if name.startswith(prefix):
            return name.removeprefix(prefix)
    return name


def _blocking_summary(check: PrCheck) -> str:
    """Blocking validation failures grouped by column, then any other blocking reason."""
    by_column: dict[str, list[str]] = {}
    for r in check.validation:
        for f in r.blocking_failures:
            key = f"`{f.column}`" if f.column else "table"
            by_column.setdefault(key, []).append(_short_expectation(f.expectation))
    parts = []
    if by_column:
        n = sum(len(v) for v in by_column.values())
        parts.append(
            f"{n} critical expectation(s) failed on the head's data: "
            + "; ".join(f"{col} ({', '.join(names)})" for col, names in by_column.items())
        )
    validation = {f"{r.source}: " for r in check.validation}
    # A contract breach starts with a file's name too, but no expectation stands for it.
    others = [
        b
        for b in check.blocking
        if b in check.contract or not any(b.startswith(v) for v in validation)
    ]
    parts += others
    return " — ".join(parts) if parts else "a blocking check failed"


def _no_feature_drift(drift: dict[str, Any], word: str) -> str:
    """The data changed and no feature drifted: say what was compared, the target by name
    (`word`: label, or target for a regression)."""
    n = len(drift["features"])
    target = drift.get("target")
    if not target:
        return f"no drift in {n} features"
    label = f"`{target['column']}`"
    if target["drifted"]:
        return f"{word} drift: {label} (no drift in {n} features)"
    return f"no drift in {label} or {n} features"


def verdict_line(check: PrCheck) -> str:
    """The first line of the report: the status, then why (or what changed)."""
    status = check.status
    icon = ICONS[status]
    label = status[0].upper() + status[1:]
    if status == BLOCKED:
        return f"## {icon} {label}: {_blocking_summary(check)}"
    if status == INCOMPLETE:
        return f"## {icon} {label}: {check.errors[0]}"
    changes = []
    if check.data and not check.data.identical and check.data.files:
        moved = [f for f in check.data.files if f.status != "unchanged"]
        changes.append(f"data: {len(moved)} file(s) changed")
    if check.drift and check.drift["drifted_features"]:
        changes.append("drift: " + ", ".join(check.drift["drifted_features"]))
    elif check.drift is not None:
        changes.append(_no_feature_drift(check.drift, TARGET_WORD[check.task]))
    if check.suite_changes:
        changes.append(f"suites: {len(check.suite_changes)} expectation(s) changed")
    if check.pipeline.params_diff:
        changes.append("params: " + ", ".join(check.pipeline.params_diff))
    headline = _headline_metric(check)
    if headline:
        changes.append(headline)
    what = "; ".join(changes) if changes else "no change to data, suites, params or metrics"
    return f"## {icon} {label}: {what}"


# --- the sections ---------------------------------------------------------------------------


def _examples(f: Any) -> str:
    """Distinct example values with their counts; row positions where values are null."""
    values = [v for v in f.examples if v not in (None, "nan", "NaN", "None")]
    if not values:
        return _rows(f.rows) or _clip(f.detail)
    counts: dict[str, int] = {}
    for v in values:
        text = json.dumps(v, default=str)
        counts[text] = counts.get(text, 0) + 1
    shown = ", ".join(t + (f" ×{n}" if n > 1 else "") for t, n in counts.items())
    return shown + (f" ({_rows(f.rows)})" if f.rows else "")


def _rows(rows: list[int]) -> str:
    if not rows:
        return ""
    return ("row " if len(rows) == 1 else "rows ") + ", ".join(str(i) for i in rows)


def _clip(text: str, limit: int = 120) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _validation_section(check: PrCheck) -> list[str]:
    lines = ["### 1. Data validation (Great Expectations, the head's data)", ""]
    if check.validation_error:
        return [*lines, f"The head's data could not be read: {check.validation_error}"]
    if check.contract:  # what ingest would have rejected (docs/operations.md)
        lines += ["The data contract ingest applies to every batch:", ""]
        lines += [f"- ❌ {problem}" for problem in check.contract] + [""]
    for r in check.validation:
        lines.append(
            f"`{r.source}`: {r.n_rows:,} rows, {r.evaluated} expectations of suite "
            f"`{r.suite}`, {len(r.failures)} failed ({len(r.blocking_failures)} blocking)."
        )
        if r.failures:
            rows = [
                [
                    ("❌ " if f.blocking else "⚠️ ") + f.severity,
                    f"`{f.column}`" if f.column else "(table)",
                    f"`{f.expectation}`",
                    ""
                    if f.unexpected_count is None
                    else f"{f.unexpected_count:,} of {r.n_rows:,}",
                    _examples(f),
                    f.why,
                ]
                for f in r.failures
            ]
            lines += [
                "",
                *_table(
                    ["severity", "column", "expectation", "unexpected", "examples", "why"],
                    rows,
                ),
            ]
        lines.append("")
    return lines


def _suites_section(check: PrCheck) -> list[str]:
    lines = ["### 2. Changes to the expectation suites", ""]
    if not check.suite_changes:
        return [*lines, "None: the suites are the same at base and head.", ""]
    rows = []
    for c in check.suite_changes:
        column = f"`{c.column}`" if c.column else "(table)"
        if c.condition:
            column += f" where `{c.condition}`"
        rows.append(
            [
                c.change,
                f"`{c.suite}`",
                f"`{c.expectation}`",
                column,
                c.severity or "",
                "; ".join(c.details),
            ]
        )
    return [
        *lines,
        *_table(["change", "suite", "expectation", "column", "severity", "what"], rows),
        "",
    ]


def _drift_section(check: PrCheck) -> list[str]:
    lines = ["### 3. Drift of the head's data against the base's data (Evidently)", ""]
    data = check.data
    if data is not None:
        short = lambda h: f"`{h[:8]}`" if h else "none"  # noqa: E731
        source = f", base data from the {data.base_source}" if data.base_source else ""
        lines.append(
            f"`{data.path}`: base pin {short(data.base_pin)}, head pin {short(data.head_pin)}"
            + (f" (workspace {short(data.head_workspace)}, not pinned)" if data.unpinned else "")
            + f"{source}."
        )
        if data.files:
            rows = [
                [f"`{f.path}`", f.status, _num(f.base_rows), _num(f.head_rows)] for f in data.files
            ]
            lines += ["", *_table(["file", "status", "base rows", "head rows"], rows)]
        lines.append("")
    drift = check.drift
    if drift is None:
        return [*lines, f"Drift: {check.drift_note or 'not computed'}.", ""]
    gate = drift["gate"]
    lines.append(
        f"{drift['reference_rows']:,} base rows against {drift['current_rows']:,} head rows; "
        f"{len(drift['drifted_features'])} of {len(drift['features'])} columns drifted "
        f"({drift['share_drifted']:.0%}). Gate: "
        + ("**tripped**: " + "; ".join(gate["reasons"]) if gate["tripped"] else "passed")
        + "."
    )
    columns = sorted(drift["features"].values(), key=lambda c: (not c["drifted"], -c["score"]))
    if drift.get("target"):
        columns.append(drift["target"])
    shift = drift.get("shift", {})
    rows = [
        [
            f"`{c['column']}`",
            c["kind"],
            shift.get(c["column"], ""),
            f"{c['method']} {c['score']:.3g}",
            f"{c['threshold']:g}",
            "**drifted**" if c["drifted"] else "no",
        ]
        for c in columns
    ]
    head = ["column", "kind", "base → head", "score", "threshold", "drifted"]
    drifted = [r for r, c in zip(rows, columns, strict=True) if c["drifted"]]
    calm = [r for r, c in zip(rows, columns, strict=True) if not c["drifted"]]
    if drifted:
        lines += ["", *_table(head, drifted)]
    if calm:
        lines += ["", *_details(f"{len(calm)} columns without drift", _table(head, calm))]
    return [*lines, ""]


def _metrics_table(check: PrCheck) -> list[str]:
    """The task's test metrics per model, base → head, and which way each is better."""
    metrics, source = check.pipeline.metrics_diff, check.metrics_file
    shown = TABLE_METRICS[check.task]
    matrix = [
        [m, *[_metric_change(metrics[f"{source}:{m}.{name}"]) for name in shown]]
        for m in MODEL_KEYS
        if all(f"{source}:{m}.{name}" in metrics for name in shown)
    ]
    if not matrix:
        return []
    return [
        "Test metrics, base → head (changed values in bold):",
        "",
        *_table(["model", *shown], matrix),
        "",
        directions(shown),
        "",
    ]


def _pipeline_section(check: PrCheck) -> list[str]:
    pipe = check.pipeline
    lines = ["### 4. Params and metrics (`dvc params diff`, `dvc metrics diff`)", ""]
    if check.params_error:
        lines += [f"params.yaml is invalid: {check.params_error}", ""]
    if pipe.params_diff:
        rows = [
            [f"`{k}`", _num(v.get("old")), _num(v.get("new"))]
            for k, v in sorted(pipe.params_diff.items())
        ]
        lines += [*_table(["param", "base", "head"], rows), ""]
    else:
        lines += ["Params: unchanged.", ""]
    if pipe.changed:
        why = "; ".join(f"{s}: {', '.join(r)}" for s, r in pipe.changed.items())
        lines.append(f"Inputs changed ({why}).")
        if pipe.reran:
            ran = ", ".join(pipe.stages_run) or "no stage"
            lines.append(f"`dvc repro` ran {ran}" + (f": {pipe.error}" if pipe.error else "."))
            if pipe.lock_changed:
                lines.append(
                    "`dvc.lock` changed: commit it with the pull request (and `dvc push` the "
                    "outputs) so that the base records this run once merged."
                )
        else:
            lines.append(f"The pipeline was not re-run ({pipe.skipped_because}).")
    else:
        lines.append("The pipeline is up to date with its inputs (`dvc status`): no re-run.")
    lines.append("")
    metrics = pipe.metrics_diff
    changed = {k: v for k, v in metrics.items() if _changed(v)}
    lines += _metrics_table(check)
    if changed:
        rows = [
            [f"`{k}`", _num(v.get("old")), _num(v.get("new"))] for k, v in sorted(changed.items())
        ]
        if len(rows) > MAX_ROWS:
            rows = rows[:MAX_ROWS] + [[f"... {len(rows) - MAX_ROWS} more in report.json", "", ""]]
        lines += [
            *_details(
                f"All {len(changed)} changed metrics", _table(["metric", "base", "head"], rows)
            ),
            "",
        ]
    elif metrics:
        lines += ["Metrics: unchanged.", ""]
    return lines


def render_markdown(check: PrCheck, *, artifacts_note: str | None = None) -> str:
    """The whole report. The first visible line is the verdict."""
    summary = [
        ("Data validation", _validation_summary(check)),
        ("Expectation suites", _suite_summary(check)),
        ("Drift against the base's data", _drift_summary(check)),
        ("Params", _params_summary(check)),
        ("Pipeline and metrics", _pipeline_summary(check)),
    ]
    lines = [
        MARKER,
        verdict_line(check),
        "",
        f"Head `{check.head}` against base `{check.base_ref}` (`{check.base_commit[:8]}`), "
        f"by `retrain check-pr --base {check.base_ref}`.",
        "",
        *_table(["", "check", "result"], [[icon, name, text] for name, (icon, text) in summary]),
        "",
    ]
    for title, items in (
        ("Blocking", check.blocking),
        ("Warnings", check.warnings),
        ("Could not check", check.errors),
    ):
        if items:
            lines += [f"**{title}:**", "", *[f"- {_cell(i)}" for i in items], ""]
    lines += _validation_section(check)
    lines += _suites_section(check)
    lines += _drift_section(check)
    lines += _pipeline_section(check)
    if check.artifacts:
        lines += ["### Reports", ""]
        lines += [f"- {name}: `{path}`" for name, path in check.artifacts.items()]
        if artifacts_note:
            lines += ["", artifacts_note]
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


README_BLOCK = "pr-report"
README_START, README_END = markers(README_BLOCK)


def readme_block(readme: str, markdown: str) -> str:
    """`readme` with the report between its pr-report markers, quoted so that the report's
    headings stay inside the README's own section."""
    quoted = "\n".join(f"> {line}".rstrip() for line in markdown.rstrip("\n").splitlines())
    return replace_block(readme, README_BLOCK, quoted + "\n")
