"""Each run's reports in a folder of its own, and the address the Prefect UI links to.

The workspace's reports (reports/plots, the Data Docs, the model card, a drift report) are
overwritten by the next run, and the UI cannot open `file://` links. So a run copies what it
links to paths.run_reports/<run name>/ (never reused: the name holds the run's id), keeps the
newest ui.keep_runs folders, and links to them over HTTP: `retrain stack up` serves that
folder on loopback and tells the worker where (RETRAIN_REPORTS_URL). Outside a stack the
links fall back to `file://` paths.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from urllib.parse import quote

from retrain.config import Params

ENV_URL = "RETRAIN_REPORTS_URL"


def base_url(repo: Path | None = None) -> str | None:
    """Where the stack serves paths.run_reports: the worker's environment, else the running
    stack's state file (a flow started by hand while `make up` runs)."""
    url = os.environ.get(ENV_URL)
    if url:
        return url.rstrip("/")
    if repo is not None:
        state = repo / ".prefect" / "stack.json"
        if state.exists():
            found = json.loads(state.read_text()).get("reports_url")
            return str(found).rstrip("/") if found else None
    return None


def run_folder(params: Params, run: str) -> Path:
    return params.paths.run_reports / run


def publish(params: Params, run: str, items: dict[str, Path]) -> dict[str, Path]:
    """Copy each file or folder of `items` to run_reports/<run>/<key>, then prune old runs.

    Returns:
        The copies, by key (items that do not exist are left out).
    """
    dest_root = run_folder(params, run)
    copies: dict[str, Path] = {}
    for key, src in items.items():
        if not src.exists():
            continue
        dest = dest_root / key
        if dest.exists():
            shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
        dest.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir():
            shutil.copytree(src, dest)
        else:
            shutil.copy2(src, dest)
        copies[key] = dest
    prune(params.paths.run_reports, params.ui.keep_runs, keep=run)
    return copies


def prune(root: Path, n: int, keep: str | None = None) -> list[Path]:
    """Delete all but the `n` newest run folders under `root` (never `keep`)."""
    if not root.is_dir():
        return []
    folders = sorted(
        (p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime, reverse=True
    )
    gone = [p for p in folders[n:] if p.name != keep]
    for path in gone:
        shutil.rmtree(path, ignore_errors=True)
    return gone


def url_for(params: Params, path: Path, repo: Path | None = None) -> str:
    """The address of a published file: HTTP when a stack serves it, else `file://`."""
    base = base_url(repo)
    root = params.paths.run_reports.resolve()
    path = path.resolve()
    if base is None or not path.is_relative_to(root):
        return path.as_uri()
    return f"{base}/{quote(path.relative_to(root).as_posix())}"
