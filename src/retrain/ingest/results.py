"""What ingest says about each landed entry, and about one pass over the landing folder."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Status = Literal["accepted", "rejected", "duplicate", "refused", "skipped", "pending"]


@dataclass(frozen=True)
class IngestResult:
    source: str
    status: Status
    reason: str
    destination: str | None
    md5: str
    rows: int | None = None  # data rows in the landed table (None: never read)
    # Accepted and split (ingest.holdout_share): the file of its rows held out for the gate,
    # and how many; `rows` = rows in the training batch + holdout_rows.
    holdout: str | None = None
    holdout_rows: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class IngestRun:
    """What one pass over the landing folder did to each entry, and whether DVC has it."""

    results: list[IngestResult] = field(default_factory=list)
    versioned: bool | None = None  # None: nothing to version; False: see version_error
    version_error: str | None = None
    retried: bool = False  # placed batches of an earlier, interrupted or failed run

    @property
    def ok(self) -> bool:
        """Every entry accepted, a duplicate or pending, and everything placed is pushed."""
        fine = {"accepted", "duplicate", "pending"}
        return all(r.status in fine for r in self.results) and self.versioned is not False

    def summary(self) -> str:
        counts: dict[str, int] = {}
        for r in self.results:
            counts[r.status] = counts.get(r.status, 0) + 1
        told = ", ".join(f"{n} {s}" for s, n in counts.items()) or "no landed file"
        if self.versioned is None:
            dvc = "nothing to push"
        elif self.versioned:
            dvc = "pushed to the DVC remote" + (" (with an earlier run's)" if self.retried else "")
        else:
            dvc = (
                "NOT pushed (kept in the workspace, retried by the next ingest): "
                f"{self.version_error}"
            )
        return f"ingest: {told}; {dvc}"


def one_line(text: str, limit: int = 300) -> str:
    """`text` on one line of at most `limit` characters (every reason is one line)."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."
