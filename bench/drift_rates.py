"""False-trigger rate and detection rate of the drift gate, on simulated batches.

Uses the trained model and train split of this checkout (run `make run` first): >= 20 seeded
no-drift batches, and seeded batches of each drift kind; prints a Markdown table and, with
`--readme`, writes it into README.md between the drift-rates markers.

    .venv/bin/python bench/drift_rates.py [--calm 20] [--per-kind 5] [--size 500] [--readme]
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import pandas as pd

from retrain.config import load_params_at
from retrain.data.simulate import KINDS, simulate
from retrain.ingest import check_batch
from retrain.monitoring.drift import batch_drift

REPO = Path(__file__).resolve().parents[1]
START, END = "<!-- drift-rates:start -->", "<!-- drift-rates:end -->"


def _tripped(batch: pd.DataFrame, params, tmp: Path) -> tuple[bool, str]:
    path = tmp / "batch.csv"
    batch.to_csv(path, index=False)
    reason, _ = check_batch(path, params)
    if reason is not None:
        return True, "validation"
    return bool(batch_drift(batch, params)["gate"]["tripped"]), "drift gate"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calm", type=int, default=20)
    parser.add_argument("--per-kind", type=int, default=5)
    parser.add_argument("--size", type=int, default=500)
    parser.add_argument("--readme", action="store_true")
    args = parser.parse_args()
    params = load_params_at(REPO)
    from retrain.data.io import read_table

    table = read_table(params.paths.raw_data)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        kinds: list[str | None] = [None, *KINDS]
        for kind in kinds:
            n = args.calm if kind is None else args.per_kind
            batches = simulate(
                table, params.dataset, n_batches=n, batch_size=args.size, seed=1000, drift=kind
            )
            results = [_tripped(b, params, Path(tmp)) for b in batches]
            hits = sum(t for t, _ in results)
            by = sorted({how for t, how in results if t}) or ["-"]
            label = "none (false-trigger rate)" if kind is None else kind
            rows.append(f"| {label} | {n} | {hits} | {hits / n:.0%} | {', '.join(by)} |")
            print(rows[-1], flush=True)
    table_md = "\n".join(
        [
            f"Batches of {args.size} rows, seeded; gate and thresholds from params.yaml `drift`.",
            "",
            "| injected drift | batches | triggered | rate | caught by |",
            "|---|---:|---:|---:|---|",
            *rows,
        ]
    )
    print(table_md)
    if args.readme:
        readme = REPO / "README.md"
        text = readme.read_text()
        pattern = re.compile(re.escape(START) + ".*?" + re.escape(END), re.S)
        readme.write_text(pattern.sub(lambda _: f"{START}\n{table_md}\n{END}", text))


if __name__ == "__main__":
    main()
