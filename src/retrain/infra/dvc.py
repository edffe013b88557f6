"""What the project reads from DVC's output, parsed in one place.

`dvc repro` prints "Running stage '<name>':" before each stage it runs (and nothing for a
stage that is up to date); the retrain flow, the pull-request check and the benchmarks all
ask which stages ran, or when each began. Launching DVC lives in
`retrain.orchestration.dvc` (`run_dvc`, `dvc_env`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

RUNNING_STAGE = re.compile(r"Running stage '([^']+)'")


def stage_started(line: str) -> str | None:
    """The stage a line of `dvc repro` output starts, or None."""
    found = RUNNING_STAGE.search(line)
    return found.group(1) if found else None


def stages_run(output: str | Iterable[str]) -> list[str]:
    """The stages `dvc repro` ran, in the order it ran them (each once).

    Args:
        output: its whole output, or its lines.
    """
    lines = output.splitlines() if isinstance(output, str) else output
    ran: list[str] = []
    for line in lines:
        stage = stage_started(line)
        if stage is not None and stage not in ran:
            ran.append(stage)
    return ran
