"""The order in which ingest accepted the stored batches, kept beside them and pinned with them.

A stored batch is named `<landed stem>-<md5>.<ext>`, and those names do not sort in the order
the batches arrived (`zeta.csv` accepted before `alpha.csv`, or two md5 suffixes): the drift
stage that took the last name judged another batch than the one the monitor had just flagged.
File times do not survive a git or DVC checkout, so ingest writes the order down: each accepted
batch's stored name is appended to `arrivals.txt` in `paths.batches`, inside the raw folder
that data.dvc pins, so a fresh clone that pulls the batches pulls their order with them.
"""

from __future__ import annotations

from pathlib import Path

from retrain.data.io import SUFFIXES
from retrain.files import write_text

ARRIVALS = "arrivals.txt"  # in paths.batches: one stored batch name a line, oldest first


def arrivals_file(batches: Path) -> Path:
    return batches / ARRIVALS


def record_arrival(batches: Path, name: str) -> None:
    """Append a stored batch's file name to the record (rewritten atomically). Ingest calls it
    under the project lock and before placing the batch: a run killed between the two leaves
    a name without its file, which `in_arrival_order` passes over, never a batch without its
    place in the order."""
    record = arrivals_file(batches)
    before = record.read_text() if record.exists() else ""
    write_text(record, before + name + "\n")


def in_arrival_order(batches: Path) -> list[Path]:
    """The stored batches (the table files in `batches`), the first to arrive first.

    Batches the record does not name (stored before it was kept, or put there by hand) come
    first, in name order as before; the named ones follow in the order they were recorded (a
    name recorded twice, its batch placed again after a kill, counts where it was last).
    """
    if not batches.is_dir():
        return []
    stored = sorted(
        p
        for p in batches.iterdir()
        if p.is_file() and p.suffix in SUFFIXES and not p.name.startswith(".")
    )
    record = arrivals_file(batches)
    names = record.read_text().splitlines() if record.exists() else []
    at = {name: i for i, name in enumerate(names)}
    return sorted(stored, key=lambda p: (p.name in at, at.get(p.name, -1)))


def newest_batch(batches: Path) -> Path | None:
    """The stored batch that arrived last, or None when none is stored."""
    stored = in_arrival_order(batches)
    return stored[-1] if stored else None
