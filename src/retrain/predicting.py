"""Batch scoring of a file with the production model: the one code path behind the predict
flow (flows/predict.py) and `retrain predict`.

The model is always the version in the registry's serving stage (`prod`), materialised from
the DVC cache or remote for the commit that stage's tag points at. The output is written
inside the project only (default paths.predictions_dir/<name>-<time>.parquet), never onto
a path the pipeline manages (a pinned batch, a stage output, the registry): the path is a
flow parameter, and anyone who reaches the API can set it. For the same reason the flow reads
its input only from the project's data folders (`input_for`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from retrain.config import Params
from retrain.data.io import read_table
from retrain.errors import DataError, RetrainError, ValidationFailed


class UnsafePath(RetrainError):
    """A path given to a flow or command points outside the project."""


@dataclass(frozen=True)
class Prediction:
    output: Path
    rows: int
    model: str  # "<dataset>-model@v2.0.0 (md5:...)"


def inside(root: Path, path: Path | str, what: str) -> Path:
    """`path` (relative ones under `root`) resolved, links included; refused outside `root`.

    Raises:
        UnsafePath: the resolved path is not under `root`.
    """
    root = root.resolve()
    candidate = Path(path)
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not resolved.is_relative_to(root):
        raise UnsafePath(
            f"{what} {path}: outside the project {root}; give a path under it "
            "(default: paths.predictions_dir)"
        )
    return resolved


def managed_areas(root: Path, params: Params) -> list[Path]:
    """What scores must never overwrite: every path in params.yaml's `paths` and the top
    folder holding it (data/, models/, registry/, ...: a new batch or stage output may land
    anywhere in them), every path DVC tracks, and git's and DVC's own folders. The top folder
    of paths.predictions_dir stays open (it is where scores go), its other paths do not."""
    from retrain.infra.dvc import tracked_outs
    from retrain.project import managed_paths

    root = root.resolve()
    scores = _absolute(root, params.paths.predictions_dir)
    areas = [root / ".git", root / ".dvc"]
    for rel_path in managed_paths(root, params):
        path = root / rel_path
        areas.append(path)
        top = root / Path(rel_path).parts[0]
        if top != path and not scores.is_relative_to(top):
            areas.append(top)
    areas += [p.resolve() for p in tracked_outs(root)]
    return [a for a in dict.fromkeys(areas) if a != root and a != scores]


def _absolute(root: Path, path: Path) -> Path:
    return (path if path.is_absolute() else root / path).resolve()


def output_for(
    root: Path, params: Params, source: Path, output: Path | str | None, now: datetime
) -> Path:
    """Where the scores of `source` go: `output`, or predictions_dir/<stem>-<time>.parquet.

    Raises:
        UnsafePath: outside the project, on a managed path (`managed_areas`), or not a
            .parquet/.csv name.
    """
    if output is None:
        stamp = now.strftime("%Y%m%dT%H%M%SZ")
        output = params.paths.predictions_dir / f"{source.stem}-{stamp}.parquet"
    out = inside(root, output, "output path")
    if out.suffix not in (".parquet", ".csv"):
        raise UnsafePath(f"output path {output}: use a .parquet or .csv file name")
    for area in managed_areas(root, params):
        if out.is_relative_to(area):
            managed = area.relative_to(root.resolve()).as_posix()
            raise UnsafePath(
                f"output path {output}: inside {managed}, which the pipeline manages (pinned "
                f"data, stage outputs, the registry); write under "
                f"{params.paths.predictions_dir.name}/ (paths.predictions_dir) instead"
            )
    return out


def input_for(root: Path, params: Params, source: Path | str) -> Path:
    """The predict flow's input, resolved (links and `..` followed): only inside the
    project's data folders (paths.predict_input, paths.landing, paths.raw_data), since anyone
    who reaches the API sets it and its values would be echoed in validation errors.

    Raises:
        UnsafePath: it resolves anywhere else (the message names the path, never its content).
    """
    root = root.resolve()
    folders = [params.paths.predict_input, params.paths.landing, params.paths.raw_data]
    allowed = [_absolute(root, f) for f in folders]
    candidate = Path(source)
    resolved = (candidate if candidate.is_absolute() else root / candidate).resolve()
    if not any(resolved.is_relative_to(a) for a in allowed):
        names = ", ".join(
            f"{a.relative_to(root).as_posix() if a.is_relative_to(root) else a}" for a in allowed
        )
        raise UnsafePath(
            f"input path {source}: outside the project's data folders ({names}); put the "
            "table to score in one of them"
        )
    return resolved


def read_checked(params: Params, source: Path) -> pd.DataFrame:
    """The table to score, read and validated (suite, declared columns, PII guard).

    Raises:
        DataError: the input is missing or unreadable. ValidationFailed: it fails validation.
    """
    from retrain.validation.raw import validate_raw

    if not source.exists():
        raise DataError(f"{source}: not found (the table to score)")
    df = read_table(source)
    result = validate_raw(df, params, str(source), scoring=True)
    if not result.success:
        raise ValidationFailed(result.headline())
    return df


def write_scores(scored: pd.DataFrame, out: Path) -> Path:
    """Write the scored table as Parquet or CSV (by `out`'s suffix)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    if out.suffix == ".csv":
        scored.to_csv(out, index=False)
    else:
        scored.to_parquet(out, index=False)
    return out


def predict_file(
    root: Path,
    params: Params,
    source: Path | str,
    output: Path | str | None = None,
    *,
    now: datetime | None = None,
) -> Prediction:
    """Validate the table, score it with the prod model, write scores, version and time.

    The predict flow runs the same steps (`output_for`, `read_checked`, `prod_model`,
    `score_frame`, `write_scores`) as tasks of its own.

    Args:
        root: the project checkout.
        params: its params (load_params_at(root)).
        source: the table to score (CSV/Parquet file or folder; the target may be absent).
        output: where to write (.parquet or .csv) inside `root`; default under
            paths.predictions_dir.
        now: the scoring time to stamp (default: now, UTC).

    Raises:
        DataError: the input is missing or unreadable. ValidationFailed: it fails the suite.
        UnsafePath: the output would be outside the project. NoProdModel: nothing in prod.
    """
    from retrain.registry.serving import prod_model
    from retrain.scoring import score_frame

    source = Path(source)
    now = now or datetime.now(UTC)
    out = output_for(root, params, source, output, now)  # refuse a bad path before any work
    df = read_checked(params, source)
    served = prod_model(root.resolve(), params)
    scored = score_frame(df, params, served, now=now)
    write_scores(scored, out)
    version = f"{served.label} ({scored['model_version'].iloc[0]})"
    return Prediction(out, len(scored), version)
