"""`make screenshots`: the README's pictures of the UI, taken from a real run.

Needs the stack (`make up`). Takes the newest completed `retrain` run (or starts one with
`--run`), then photographs, in headless Chromium with the network refused: the run's page in
the Prefect UI, its gate and metrics artifacts, and its DVC plots page as the UI's link
serves it.

    python -m retrain.orchestration.screenshots [--run] [--out docs/screenshots]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
from pathlib import Path
from typing import Any

from retrain.orchestration import browser
from retrain.orchestration.stack import state_file

SHOTS = ("retrain-run.png", "gate-artifact.png", "metrics-artifact.png", "plots.png")


async def _latest(api_url: str) -> dict[str, Any]:
    os.environ["PREFECT_API_URL"] = api_url
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        ArtifactFilter,
        ArtifactFilterFlowRunId,
        FlowFilter,
        FlowFilterName,
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.client.schemas.sorting import FlowRunSort

    async with get_client() as client:
        runs = await client.read_flow_runs(
            flow_filter=FlowFilter(name=FlowFilterName(any_=["retrain"])),
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.COMPLETED]))
            ),
            sort=FlowRunSort.START_TIME_DESC,
            limit=1,
        )
        if not runs:
            raise SystemExit("no completed retrain run: start one (--run) or from the UI")
        run = runs[0]
        arts = await client.read_artifacts(
            artifact_filter=ArtifactFilter(flow_run_id=ArtifactFilterFlowRunId(any_=[run.id]))
        )
        return {
            "id": str(run.id),
            "name": run.name,
            "artifacts": {a.key: {"id": str(a.id), "data": a.data} for a in arts if a.key},
        }


def _link(data: Any) -> str:
    """A link artifact's address (Prefect stores links as Markdown `[text](url)`)."""
    found = re.fullmatch(r"\[[^\]]*\]\((\S+)\)", str(data).strip())
    return found[1] if found else str(data)


def take(repo: Path, out: Path, start_run: bool = False) -> list[Path]:
    """Photograph the newest completed retrain run; returns the PNGs written."""
    stack = json.loads(state_file(repo).read_text())
    if start_run:
        os.environ["PREFECT_API_URL"] = stack["api_url"]
        from prefect.deployments import run_deployment

        run_deployment("retrain/retrain", timeout=3600, poll_interval=5)
    run = asyncio.run(_latest(stack["api_url"]))
    ui, arts = stack["ui_url"], run["artifacts"]
    targets = [
        f"{ui}/runs/flow-run/{run['id']}",
        f"{ui}/artifacts/artifact/{arts['gate']['id']}",
        f"{ui}/artifacts/artifact/{arts['metrics']['id']}",
        _link(arts["plots"]["data"]),
    ]
    shots = []
    for name, url in zip(SHOTS, targets, strict=True):
        shots.append(browser.screenshot(url, out / name, size=(1400, 1000), budget_ms=15000))
    return shots


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true", help="start a retrain run first")
    parser.add_argument("--out", type=Path, default=Path("docs/screenshots"))
    args = parser.parse_args(argv)
    for path in take(Path.cwd(), args.out, args.run):
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
