"""Flow `predict`: batch scoring of a CSV/Parquet file with the production model.

The work is retrain.predicting.predict_file, which `retrain predict` runs too: the model is
always the registry's serving stage (`prod`), never whatever the workspace holds, and the
output stays inside the project.
"""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger

from retrain.config import load_params_at
from retrain.orchestration import artifacts
from retrain.predicting import predict_file


@flow(name="predict", log_prints=True)
def predict_flow(input_path: str, output_path: str | None = None, repo: str = ".") -> str:
    """Validate the table, score it, write probabilities with model version and timestamp.

    Args:
        input_path: the table to score (the target column may be absent).
        output_path: where to write (.parquet or .csv), inside the project; default
            paths.predictions_dir/<name>-<time>.parquet.
        repo: the project checkout.
    """
    root = Path(repo).resolve()
    done = predict_file(root, load_params_at(root), input_path, output_path)
    get_run_logger().info(
        "scored %d rows of %s with %s -> %s", done.rows, input_path, done.model, done.output
    )
    artifacts.publish_link("predictions", done.output, f"{done.rows} rows scored by {done.model}")
    return str(done.output)
