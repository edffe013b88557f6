"""`retrain init`'s orchestration: read the table, profile it, print every decision, write
params.yaml and the suite, then place and pin the table."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from retrain import PARAMS_FILE
from retrain.config import ConfigError, parse_params
from retrain.data.io import SUFFIXES, read_table
from retrain.init.errors import InitError
from retrain.init.params_edit import update_params
from retrain.init.pin import pin, place_table
from retrain.init.profile import Profile, profile, slug
from retrain.init.suite import build_suite


@dataclass(frozen=True)
class InitResult:
    profile: Profile
    params: Path
    suite: Path
    table: Path
    md5: str


def _role(p: Profile, col: str) -> str:
    if col == p.target:
        return "target"
    if col == p.id_column:
        return "id"
    if col in p.numeric:
        return "numeric"
    return "categorical" if col in p.categorical else "left out"


def report(df: pd.DataFrame, p: Profile, keep: Iterable[str], say: Callable[[str], None]) -> None:
    """Print each column's role with its reason, the leaks, the fill values and the slices."""
    width = max(len(str(c)) for c in df.columns)
    for col in df.columns:
        say(f"  {col:<{width}}  {_role(p, col):<11}  {p.reasons[col]}")
    for leak in p.leaks:
        kept = leak.column in keep
        action = "kept (--keep)" if kept else f"left out; keep it with --keep {leak.column}"
        say(f"  likely leak: {leak.column}: {leak.measure} {leak.score:.3f} alone: {action}")
    flagged = {leak.column for leak in p.leaks}
    for col in keep:
        if col not in flagged:
            say(f"  --keep {col}: not flagged as a leak; its role is as decided above")
    for col, value in p.fill_values.items():
        say(
            f"  prepare.fill_values.{col}: {value} (the median; review: a documented value "
            "may be right)"
        )
    say(f"  slices: {p.slices or 'none (no categorical with 2-8 levels)'}")


@dataclass(frozen=True)
class Drafts:
    """What init will write, checked before anything is: params.yaml's new text, the suite,
    and the paths (relative to the project) of the suite, the raw data and its pin."""

    params_text: str
    suite: dict[str, Any]
    suite_rel: Path
    raw_data: Path
    data_pin: Path


def draft(text: str, df: pd.DataFrame, p: Profile, params_file: Path) -> Drafts:
    """params.yaml's new text (parsed by the config, as every stage will) and the suite."""

    paths = yaml.safe_load(text)["paths"]
    raw_data = Path(paths["raw_data"])
    if raw_data.suffix.lower() in SUFFIXES:  # one file before: a folder from now on
        raw_data = raw_data.parent
    suite_rel = Path("expectations") / f"{p.name}.json"
    new_text = update_params(text, p, suite_rel, raw_data)
    try:
        parse_params(yaml.safe_load(new_text), params_file)
    except ConfigError as err:
        raise InitError(str(err)) from None
    return Drafts(new_text, build_suite(df, p), suite_rel, raw_data, Path(paths["data_pin"]))


def _write_dvc_yaml(
    root: Path, params_text: str, params_file: Path, say: Callable[[str], None]
) -> None:
    """dvc.yaml's plots for the table's task (retrain.models.plots): a regression or
    multiclass checkout draws only the charts its evaluate stage writes."""
    from retrain.models.plots import dvc_yaml_for
    from retrain.task import task_for

    path = root / "dvc.yaml"
    if not path.exists():
        return
    params = parse_params(yaml.safe_load(params_text), params_file)
    text = path.read_text()
    try:
        new = dvc_yaml_for(text, task_for(params.dataset), params.paths, str(path))
    except ValueError as err:
        raise InitError(str(err)) from None
    if new != text:
        path.write_text(new)
        say(f"wrote dvc.yaml (the plots of a {params.dataset.task} table)")


def run_init(
    root: Path,
    table: Path,
    *,
    target: str,
    positive_class: str | None = None,
    id_column: str | None = None,
    name: str | None = None,
    keep: Iterable[str] = (),
    task: str | None = None,
    params_file: Path | None = None,
    say: Callable[[str], None] = print,
) -> InitResult:
    """Profile `table`, write params.yaml and the suite, place and pin the table.

    The task is chosen from the target (`retrain.init.target`) unless `task` is given."""
    root = root.resolve()
    params_file = (params_file or root / PARAMS_FILE).resolve()
    if table.suffix not in SUFFIXES:
        raise InitError(f"{table}: unsupported file type {table.suffix!r}; use CSV or Parquet")
    df = read_table(table)
    name = slug(name or table.stem)
    keep = list(keep)
    p = profile(
        df,
        target=target,
        name=name,
        positive_class=positive_class,
        id_column=id_column,
        keep=keep,
        task=task,
    )
    say(f"{table}: {len(df)} rows, {len(df.columns)} columns -> dataset {name!r}")
    say(f"task: {p.task} ({p.task_reason})")
    report(df, p, keep, say)

    drafts = draft(params_file.read_text(), df, p, params_file)
    suite_path = root / drafts.suite_rel
    suite_path.parent.mkdir(parents=True, exist_ok=True)
    suite_path.write_text(json.dumps(drafts.suite, indent=2, sort_keys=False) + "\n")
    n_expectations = len(drafts.suite["expectations"])
    say(f"wrote {drafts.suite_rel} ({n_expectations} expectations, draft: review it)")
    params_file.write_text(drafts.params_text)
    shown = params_file.relative_to(root) if params_file.is_relative_to(root) else params_file
    say(f"wrote {shown}")
    _write_dvc_yaml(root, drafts.params_text, params_file, say)

    dest = place_table(table.resolve(), root / drafts.raw_data, say)
    data_pin = root / drafts.data_pin
    md5 = pin(root, root / drafts.raw_data, data_pin)
    say(
        f"pinned {drafts.raw_data} in {data_pin.name} ({md5}); commit params.yaml, "
        f"{drafts.suite_rel} and {data_pin.name}, then `dvc repro`"
    )
    return InitResult(p, params_file, suite_path, dest, md5)
