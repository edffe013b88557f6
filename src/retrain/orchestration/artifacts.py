"""What the flows show in the Prefect UI, built from the files the stages write.

The builders are plain functions over dicts (tested without Prefect); `publish_*` hand their
output to Prefect's artifact API and only work inside a flow or task run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from retrain.models.metrics import METRICS

MODEL_COLUMNS = {"mlp": "ours (MLP)", "logreg": "logistic regression", "lightgbm": "LightGBM"}


def metrics_rows(
    metrics: dict[str, Any], production: dict[str, Any] | None
) -> list[dict[str, Any]]:
    """One row per metric: this run's model, both baselines and the production model."""
    rows = []
    for name in METRICS:
        row: dict[str, Any] = {"metric": name}
        for key, label in MODEL_COLUMNS.items():
            row[label] = metrics.get(key, {}).get(name)
        row["production"] = (production or {}).get("mlp", {}).get(name)
        rows.append(row)
    return rows


def validation_markdown(summary: dict[str, Any]) -> str:
    """The validation summary as Markdown: verdict, then every failure with its column."""
    tables = summary.get("tables", [])
    ok = summary.get("success", all(t.get("success") for t in tables))
    lines = [f"## Data validation: {'passed' if ok else 'FAILED'}", ""]
    for table in tables:
        lines.append(f"**{table.get('source') or 'raw data'}** — {table.get('headline', '')}")
        failures = table.get("failures", [])
        if failures:
            lines += ["", "| severity | column | expectation | detail |", "|---|---|---|---|"]
            for f in failures:
                detail = str(f.get("detail", "")).replace("|", "\\|")
                lines.append(
                    f"| {f['severity']} | {f.get('column') or '(table)'} | "
                    f"{f['expectation']} | {detail} |"
                )
        lines.append("")
    return "\n".join(lines)


def drift_digest(summary: dict[str, Any]) -> dict[str, Any]:
    """The few fields of a drift summary worth passing to the retrain run."""
    return {
        "batch": summary.get("batch"),
        "share_drifted": summary.get("share_drifted"),
        "drifted_features": summary.get("drifted_features", []),
        "reasons": summary["gate"]["reasons"],
    }


def drift_markdown(summary: dict[str, Any]) -> str:
    """Verdict, gate reasons, then one row per column that was checked."""
    gate = summary["gate"]
    verdict = "gate TRIPPED: retrain" if gate["tripped"] else "gate passed"
    lines = [f"## Drift of `{summary.get('batch')}`: {verdict}", ""]
    lines += [f"- {reason}" for reason in gate["reasons"]]
    lines += [
        f"- rows: reference {summary.get('reference_rows')}, batch {summary.get('current_rows')}",
        "",
        "| column | kind | method | score | threshold | drifted |",
        "|---|---|---|---:|---:|---|",
    ]
    columns = list(summary.get("features", {}).values())
    columns += [summary[k] for k in ("prediction", "target") if summary.get(k)]
    for c in columns:
        lines.append(
            f"| {c['column']} | {c['kind']} | {c['method']} | {c['score']:.4g} | "
            f"{c['threshold']} | {'yes' if c['drifted'] else ''} |"
        )
    return "\n".join(lines)


def record_markdown(record: dict[str, Any]) -> str:
    """A run record in a few lines: what ran on which data, and what became of the model."""
    model, metric = record["model"], record["gate"]["metric"]
    promoted = "promoted to prod" if model["promoted"] else f"not promoted (prod: {model['prod']})"
    return "\n".join(
        [
            f"## Record `run/{record['run_id']}` ({record['reason']})",
            "",
            f"- code: `{record['code_revision'][:12]}`; data: `{record['data']['md5']}` "
            f"({len(record['data']['batches'])} batches)",
            f"- {metric}: {record['metrics'].get(metric)}; ECE {record['metrics'].get('ece')}",
            f"- model: {model['name']} {model['version']}, {promoted}",
            f"- replay: `retrain reproduce {record['run_id']}`",
        ]
    )


def file_link(path: Path) -> str:
    return path.resolve().as_uri()


def publish_table(key: str, rows: list[dict[str, Any]], description: str) -> None:
    from prefect.artifacts import create_table_artifact

    create_table_artifact(key=key, table=rows, description=description)


def publish_markdown(key: str, markdown: str, description: str) -> None:
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(key=key, markdown=markdown, description=description)


def publish_link(key: str, path: Path, description: str) -> None:
    from prefect.artifacts import create_link_artifact

    create_link_artifact(
        key=key, link=file_link(path), link_text=str(path), description=description
    )
