"""Flow `predict`: batch scoring of a CSV/Parquet file with the production model.

The steps are retrain.predicting's, which `retrain predict` runs too: the model is
always the registry's serving stage (`prod`), never whatever the workspace holds, and the
output stays inside the project.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
from prefect import flow, get_run_logger, task

from retrain.config import Params
from retrain.orchestration import artifacts, runview
from retrain.predicting import input_for, output_for, read_checked, write_scores
from retrain.project import Project
from retrain.registry.serving import ServedModel, prod_model
from retrain.scoring import score_frame
from retrain.task import task_for


def _run_name() -> str:
    from prefect.runtime import flow_run

    source = flow_run.parameters.get("input_path") or "input"
    return f"predict-{Path(str(source)).name}"


@task(task_run_name="validate")
def validate(source: Path, params: Params) -> pd.DataFrame:
    df = read_checked(params, source)
    get_run_logger().info("%s: %d rows passed validation", source.name, len(df))
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
def write(scored: pd.DataFrame, out: Path, label: str, params: Params) -> Path:
    write_scores(scored, out)
    artifacts.publish_markdown(
        "predictions",
        artifacts.predictions_markdown(scored, out, label, task=task_for(params.dataset)),
        f"{out.name}",
    )
    return out


@flow(name="predict", log_prints=True, flow_run_name=_run_name)
def predict_flow(input_path: str, output_path: str | None = None, repo: str = ".") -> str:
    """Validate the table, score it, write its predictions with model version and time.

    Args:
        input_path: the table to score (the target column may be absent), inside
            paths.predict_input, paths.landing or paths.raw_data (relative to `repo`).
        output_path: where to write (.parquet or .csv), inside the project; default
            paths.predictions_dir/<name>-<time>.parquet.
        repo: the project checkout.
    """
    project = Project.load(repo)
    root, params = project.root, project.params
    source = input_for(root, params, input_path)  # only the project's data folders
    now = datetime.now(UTC)
    out = output_for(root, params, source, output_path, now)  # refused before any work
    df = validate(source, params)
    served = load_model(root, params)
    scored = score(df, params, served, now)
    version: Any = scored["model_version"].iloc[0]
    write(scored, out, f"`{served.label}` ({version})", params)
    get_run_logger().info(
        "scored %d rows of %s with %s (%s) -> %s", len(scored), source, served.label, version, out
    )
    runview.add_tags([f"model:{served.label}"])
    return str(out)


if __name__ == "__main__":
    # `python flows/predict.py INPUT [OUTPUT] [REPO]`: score one table here.
    import sys

    if not 2 <= len(sys.argv) <= 4:
        raise SystemExit("usage: python flows/predict.py INPUT [OUTPUT] [REPO]")
    given = sys.argv[1:] + [None] * (4 - len(sys.argv))
    predict_flow(input_path=sys.argv[1], output_path=given[1], repo=given[2] or ".")
