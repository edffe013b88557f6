"""Flow `predict`: batch scoring of a CSV/Parquet file with the production model.

The model is always the version in the registry's serving stage (`prod`), materialised
from the DVC cache or remote for the commit that stage's tag points at; never whatever
the workspace happens to hold.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from prefect import flow, get_run_logger

from retrain.config import load_params_at
from retrain.data.io import read_table
from retrain.errors import ValidationFailed
from retrain.orchestration import artifacts
from retrain.registry.serving import prod_model
from retrain.scoring import score_frame
from retrain.validation.raw import validate_raw


@flow(name="predict", log_prints=True)
def predict_flow(input_path: str, output_path: str | None = None, repo: str = ".") -> str:
    """Validate the table, score it, write probabilities with model version and timestamp.

    Args:
        input_path: the table to score (the target column may be absent).
        output_path: where to write Parquet; default paths.predictions_dir/<name>-<time>.parquet.
        repo: the project checkout.
    """
    params = load_params_at(repo)
    source = Path(input_path)
    df = read_table(source)
    result = validate_raw(df, params, str(source), scoring=True)
    if not result.success:
        raise ValidationFailed(result.headline())
    served = prod_model(Path(repo).resolve(), params)
    now = datetime.now(UTC)
    scored = score_frame(df, params, served, now=now)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    out = (
        Path(output_path)
        if output_path
        else params.paths.predictions_dir / f"{source.stem}-{stamp}.parquet"
    )
    out.parent.mkdir(parents=True, exist_ok=True)
    scored.to_parquet(out, index=False)
    version = f"{served.label} ({scored['model_version'].iloc[0]})"
    get_run_logger().info("scored %d rows of %s with %s -> %s", len(scored), source, version, out)
    artifacts.publish_link("predictions", out, f"{len(scored)} rows scored by {version}")
    return str(out)
