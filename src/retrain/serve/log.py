"""The predictions log: every scored row with its inputs, prediction, version and time.

Requests only put their columns on a queue (microseconds); a background thread writes them
as Parquet, one file per flush (every serve.flush_s seconds or serve.flush_rows rows),
under `<paths.predictions_log>/<UTC date>/`, written to a temporary name and renamed, so a
reader never sees half a file. Day folders older than serve.keep_days are deleted (the
rotation). If the writer falls behind, rows are dropped and counted, never the request.
"""

from __future__ import annotations

import logging
import queue
import shutil
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

log = logging.getLogger("retrain.serve")

# The columns of an empty log (a binary model's outputs; see `Entry.outputs` for the others).
META = ["probability", "label", "model_version", "model_md5", "scored_at", "request_id"]
MAX_QUEUED = 10_000  # requests waiting for the writer; beyond this rows are dropped


@dataclass(frozen=True)
class Entry:
    columns: Mapping[str, np.ndarray]  # the request's input columns, as scored
    # What the model answered, as the task names it (`retrain.scoring.Scores.columns`):
    # probability and label (binary), predicted_class and probability_<class> (multiclass),
    # prediction and its interval (regression). What the monitor's prediction drift reads.
    outputs: Mapping[str, np.ndarray]
    model_version: str
    model_md5: str
    scored_at: datetime
    request_id: str

    @property
    def n(self) -> int:
        return len(next(iter(self.outputs.values())))


class PredictionLog:
    """A queue and the thread that drains it into Parquet files."""

    def __init__(
        self, folder: Path, flush_s: float, flush_rows: int, keep_days: int, columns: list[str]
    ) -> None:
        self.folder = folder
        self.flush_s = flush_s
        self.flush_rows = flush_rows
        self.keep_days = keep_days
        self.columns = columns  # id (if any) and features, in a fixed order
        self.written = 0
        self.dropped = 0
        self.files = 0
        self._queue: queue.Queue[Entry | None] = queue.Queue(MAX_QUEUED)
        self._thread: threading.Thread | None = None
        self._seq = 0

    def append(self, entry: Entry) -> None:
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            self.dropped += entry.n

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="predictions-log", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Write what is queued and stop the thread."""
        if self._thread is None:
            return
        self._queue.put(None)
        self._thread.join(timeout=60)
        self._thread = None

    def _run(self) -> None:
        pending: list[Entry] = []
        rows = 0
        deadline = time.monotonic() + self.flush_s
        while True:
            try:
                entry = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                entry = ...  # type: ignore[assignment]
            if entry is None:
                self._flush(pending)
                return
            if isinstance(entry, Entry):
                pending.append(entry)
                rows += entry.n
            if rows >= self.flush_rows or time.monotonic() >= deadline:
                self._flush(pending)
                pending, rows = [], 0
                deadline = time.monotonic() + self.flush_s

    def _flush(self, entries: list[Entry]) -> None:
        if not entries:
            return
        try:
            frame = self.frame(entries)
            now = datetime.now(UTC)
            day = self.folder / now.strftime("%Y-%m-%d")
            day.mkdir(parents=True, exist_ok=True)
            self._seq += 1
            name = f"part-{now.strftime('%Y%m%dT%H%M%S%fZ')}-{self._seq:06d}.parquet"
            tmp = day / f".{name}.tmp"
            frame.to_parquet(tmp, index=False)
            tmp.replace(day / name)
            self._rotate(now.date())
            self.written += len(frame)  # counters last: a reader seeing them sees it all done
            self.files += 1
        except Exception as err:  # a full disk must not stop the service; count the loss
            self.dropped += sum(e.n for e in entries)
            log.error("predictions log: could not write %d rows: %s", len(entries), err)

    def frame(self, entries: list[Entry]) -> pd.DataFrame:
        data: dict[str, Any] = {}
        for col in self.columns:
            parts = [
                e.columns[col] if col in e.columns else np.full(e.n, None, dtype=object)
                for e in entries
            ]
            data[col] = np.concatenate(parts)
        # Every entry of one service has the same outputs (one task; a canary has the prod's
        # classes); an entry without one (never expected) gets gaps rather than a lost batch.
        for name in dict.fromkeys(k for e in entries for k in e.outputs):
            data[name] = np.concatenate(
                [
                    e.outputs[name] if name in e.outputs else np.full(e.n, None, dtype=object)
                    for e in entries
                ]
            )
        for key in ("model_version", "model_md5", "request_id"):
            data[key] = np.concatenate(
                [np.full(e.n, getattr(e, key), dtype=object) for e in entries]
            )
        data["scored_at"] = pd.to_datetime(
            np.concatenate([np.full(e.n, e.scored_at.replace(tzinfo=None)) for e in entries])
        ).tz_localize("UTC")
        return pd.DataFrame(data)

    def _rotate(self, today: date) -> None:
        oldest = today - timedelta(days=self.keep_days)
        for day in self.folder.iterdir():
            try:
                when = date.fromisoformat(day.name)
            except ValueError:
                continue
            if day.is_dir() and when < oldest:
                shutil.rmtree(day, ignore_errors=True)


def read_log(folder: Path, since: datetime | None = None) -> pd.DataFrame:
    """Every logged row (scored after `since`, if given), oldest first; empty if none."""
    files = sorted(folder.glob("*/part-*.parquet")) if folder.exists() else []
    if not files:
        return pd.DataFrame(columns=META)
    frame = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    if since is not None:
        frame = frame[frame["scored_at"] > pd.Timestamp(since)]
    return frame.sort_values("scored_at", kind="stable").reset_index(drop=True)
