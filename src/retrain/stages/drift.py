"""Stage `drift`: the training reference against the newest ingested batch, so `dvc repro`
shows drift too. Writes Evidently's HTML for people and a JSON of named fields for machines.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from retrain.config import Params
from retrain.data.clean import TARGET, clean
from retrain.data.io import SUFFIXES, read_file
from retrain.stages._common import stage_main, write_json


def newest_ingested(params: Params) -> Any:
    batches = params.paths.batches
    files = (
        sorted(p for p in batches.glob("*") if p.suffix in SUFFIXES) if batches.exists() else []
    )
    return files[-1] if files else None


def labelled(frame: pd.DataFrame, target: str) -> pd.DataFrame:
    """The cleaned frame with its 0/1 target under the target's own name again."""
    return frame.rename(columns={TARGET: target})


def batch_drift(
    batch: pd.DataFrame, params: Params, html: Any = None, model: tuple[Any, Any] | None = None
) -> dict[str, Any]:
    """Drift of a raw batch against the train split, with a model's scores.

    Args:
        batch: the raw batch.
        params: schema, drift settings and the paths of the train split and workspace model.
        html: where to write Evidently's report for people, if anywhere.
        model: (preprocessor, ONNX model) to score with (the monitor flow passes the prod
            version's); default the workspace model, which is what this stage checks.
    """
    from retrain.models.predictor import Predictor
    from retrain.monitoring.drift import compute_drift, gate

    schema = params.dataset
    reference = pd.read_parquet(params.paths.train)
    current, _ = clean(batch, schema, params.prepare.fill_values, drop_duplicates=False)
    predictor = Predictor(*(model or (params.paths.preprocessor, params.paths.onnx_model)))
    report = compute_drift(
        labelled(reference, schema.target),
        labelled(current, schema.target),
        schema,
        params.drift,
        reference_scores=predictor.predict_proba(reference),
        current_scores=predictor.predict_proba(current),
        html=html,
    )
    verdict = gate(report, params.drift)
    return {**report.to_dict(), "gate": {"tripped": verdict.tripped, "reasons": verdict.reasons}}


def run(params: Params) -> dict[str, Any]:
    paths = params.paths
    batch = newest_ingested(params)
    if batch is None:
        summary: dict[str, Any] = {"batch": None, "gate": {"tripped": False, "reasons": []}}
        paths.drift_html.parent.mkdir(parents=True, exist_ok=True)
        paths.drift_html.write_text("<html><body><p>No batch ingested yet.</p></body></html>\n")
    else:
        summary = {"batch": batch.name, **batch_drift(read_file(batch), params, paths.drift_html)}
    write_json(paths.drift_report, summary)
    gate = summary["gate"]
    print(
        f"drift: {summary['batch'] or 'no batch'}: "
        + ("; ".join(gate["reasons"]) or "gate passed")
    )
    return summary


def main() -> None:
    stage_main("drift", run)


if __name__ == "__main__":
    main()
