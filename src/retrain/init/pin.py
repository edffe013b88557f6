"""Placing the table in the raw data folder (the previous dataset's files removed) and
pinning that folder through DVC."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

from retrain.data.io import SUFFIXES
from retrain.errors import RetrainError
from retrain.init.errors import InitError


def pin(root: Path, raw_data: Path, data_pin: Path) -> str:
    """Pin `raw_data` in `data_pin`, updated in place (`dvc commit`, as ingest does); its md5.

    (`dvc add data/raw` would write a new `data/raw.dvc` beside the existing pin.)
    """
    from retrain.infra import dvc
    from retrain.infra.dvc import read_pin

    rel_pin = data_pin.relative_to(root)
    out_path = Path(os.path.relpath(raw_data, data_pin.parent)).as_posix()
    try:
        pinned = read_pin(data_pin).path.resolve() == raw_data.resolve()
    except RetrainError:
        pinned = False
    if not pinned:
        data_pin.write_text(f"outs:\n- path: {out_path}\n")
    done = dvc.run(root, "commit", "-f", "-q", str(rel_pin), check=False)
    if done.code != 0:
        lines = [ln for ln in done if ln.strip()] or ["failed"]
        raise InitError(f"{rel_pin}: dvc commit failed: {lines[-1]}")
    return read_pin(data_pin).md5


def place_table(table: Path, folder: Path, say: Callable[[str], None]) -> Path:
    """Copy `table` into the raw folder; remove the previous dataset's files there (listed)."""
    folder.mkdir(parents=True, exist_ok=True)
    dest = folder / table.name
    if dest.resolve() != table.resolve():
        tmp = folder.parent / f".{table.name}.init-tmp"
        shutil.copyfile(table, tmp)
        tmp.replace(dest)
    for old in sorted(p for p in folder.rglob("*") if p.is_file() or p.is_symlink()):
        if old != dest and old.suffix.lower() in SUFFIXES:
            old.unlink()
            say(f"removed {old} (previous dataset's raw file)")
    for d in sorted((d for d in folder.rglob("*") if d.is_dir()), reverse=True):
        if not any(d.iterdir()):
            d.rmdir()
    return dest
