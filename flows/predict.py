"""Flow `predict`: batch scoring of a CSV/Parquet file with the production model.

The model is always the version in the registry's serving stage (`prod`), materialised
from the DVC cache or remote for the commit that stage's tag points at; never whatever
the workspace happens to hold.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task

from retrain.config import Params, load_params_at
from retrain.data.io import read_table
from retrain.errors import ValidationFailed
from retrain.orchestration import artifacts, runview
from retrain.registry.serving import ServedModel, prod_model
from retrain.scoring import score_frame
from retrain.validation.raw import validate_raw


def _run_name() -> str:
    from prefect.runtime import flow_run

    source = flow_run.parameters.get("input_path") or "input"
    return f"predict-{Path(str(source)).name}"


@task(task_run_name="validate")
def validate(source: Path, params: Params) -> pd.DataFrame:
    df = read_table(source)
    result = validate_raw(df, params, str(source), scoring=True)
    if not result.success:
        raise ValidationFailed(result.headline())
    get_run_logger().info("%s: %d rows passed %s", source.name, len(df), result.suite)
    return df


@task(task_run_name="load-prod-model")
def load_model(repo: Path, params: Params) -> ServedModel:
    served = prod_model(repo, params)
    get_run_logger().info("serving %s", served.label)
    return served


@task(task_run_name="score")
def score(df: pd.DataFrame, params: Params, served: ServedModel, now: datetime) -> pd.DataFrame:
    return score_frame(df, params, served, now=now)


@task(task_run_name="write")
def write(scored: pd.DataFrame, out: Path, label: str) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    scored.to_parquet(out, index=False)
    artifacts.publish_markdown(
        "predictions", artifacts.predictions_markdown(scored, out, label), f"{out.name}"
    )
    return out


@flow(name="predict", log_prints=True, flow_run_name=_run_name)
def predict_flow(input_path: str, output_path: str | None = None, repo: str = ".") -> str:
    """Validate the table, score it, write probabilities with model version and timestamp.

    Args:
        input_path: the table to score (the target column may be absent).
        output_path: where to write Parquet; default paths.predictions_dir/<name>-<time>.parquet.
        repo: the project checkout.
    """
    params = load_params_at(repo)
    source = Path(input_path)
    df = validate(source, params)
    served = load_model(Path(repo).resolve(), params)
    now = datetime.now(UTC)
    scored = score(df, params, served, now)
    stamp = now.strftime("%Y%m%dT%H%M%SZ")
    out = (
        Path(output_path)
        if output_path
        else params.paths.predictions_dir / f"{source.stem}-{stamp}.parquet"
    )
    version: Any = scored["model_version"].iloc[0]
    write(scored, out, f"`{served.label}` ({version})")
    get_run_logger().info(
        "scored %d rows of %s with %s (%s) -> %s", len(scored), source, served.label, version, out
    )
    runview.add_tags([f"model:{served.label}"])
    return str(out)
