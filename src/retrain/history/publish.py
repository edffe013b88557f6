"""After each retrain and monitor run: the model history page is rewritten, and the Prefect
UI gets it as keyed artifacts (`model-history`, a table; `model-history-page`, its link):
Prefect keeps every version of a keyed artifact, so the UI's Artifacts page holds the history
as it was after each run."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from retrain.errors import RetrainError
from retrain.history.page import write_page
from retrain.history.table import HEADER, cells, direction, history
from retrain.orchestration import artifacts, reports
from retrain.project import Project

TABLE_KEY = "model-history"
PAGE_KEY = "model-history-page"


def publish(project: Project) -> Path:
    """Rewrite the page and publish both artifacts (inside a flow or task run)."""
    root, params = project.root, project.params
    rows = history(root, params)
    page = write_page(root, params)
    table = [dict(zip(HEADER, cells(r), strict=True)) for r in rows]
    metric = rows[0].metric if rows else params.registry.gate.metric
    description = f"Every retrain, oldest first ({metric}, {direction(metric)})"
    artifacts.publish_table(TABLE_KEY, table, description)
    artifacts.publish_link_url(
        PAGE_KEY,
        reports.url_for(params, page, root),
        "Model history: every retrain, its metric over time, drift per column",
        "The model history page (offline HTML)",
    )
    return page


@task(task_run_name="publish-history")
def publish_history(project: Project) -> Path | None:
    """The flows' last step. The run's own work is done (and recorded) by now, so a history
    that cannot be built is a warning, not the run's failure."""
    try:
        return publish(project)
    except (RetrainError, OSError, ValueError, KeyError) as err:
        get_run_logger().warning("model history not updated: %s", err)
        return None
