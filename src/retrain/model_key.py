"""Our model's key in the evaluate stage's metrics, its display names, and how metrics written
before the key was renamed are read.

The key was `mlp`, the network before issue 14. Since then the network is TabM or TabM-mini
(`model.arch`) over piecewise-linear embeddings, so the key is `tabm` for both arch kinds,
and what a table shows is named from the model's own parameters (`network_name`).

A file written before the rename (a champion's metrics, a recorded run's, the base of a pull
request under `dvc metrics diff`) still says `mlp`: it is mapped to `tabm` on read, here and
nowhere else, and whoever reads it says so (`RENAME_NOTE`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from retrain.config import ModelParams

OURS = "tabm"
OLD_KEY = "mlp"
RENAME_NOTE = f"record from before the rename: key {OLD_KEY} read as {OURS}"
_ARCH_NAMES = {"tabm-mini": "TabM-mini", "tabm": "TabM"}


def network_name(model: ModelParams, *, embeddings: bool = True) -> str:
    """What the network is, from its parameters: "TabM-mini + PLE", "TabM", "MLP" (k = 1)."""
    name = _ARCH_NAMES[model.arch] if model.k > 1 else "MLP"
    if embeddings and model.num_embeddings == "ple":
        name += " + PLE"
    return name


def upgrade_metrics(metrics: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The evaluate stage's metrics with the old key read as the new one, and whether the
    file was from before the rename (a file holding both keys is left as it is)."""
    if OLD_KEY not in metrics or OURS in metrics:
        return metrics, False
    return {OURS if key == OLD_KEY else key: value for key, value in metrics.items()}, True


def _upgraded_name(name: str) -> str:
    """`mlp.roc_auc` or `metrics/evaluate.json:mlp.roc_auc` as `tabm.<...>`."""
    source, colon, key = name.rpartition(":")
    if key.startswith(f"{OLD_KEY}."):
        return f"{source}{colon}{OURS}.{key.removeprefix(OLD_KEY + '.')}"
    return name


def upgrade_metrics_diff(
    diff: dict[str, dict[str, Any]],
) -> tuple[dict[str, dict[str, Any]], bool]:
    """`dvc metrics diff` (keyed `file:key`) across the rename, one row per metric.

    When the base wrote `mlp.x` and the head writes `tabm.x`, DVC reports two rows, each
    with one side missing; they are one metric, so they become one row with both sides (and
    DVC's `diff` recomputed). Returns the rows and whether any old key was read.
    """
    merged: dict[str, dict[str, Any]] = {}
    renamed = False
    for name, entry in diff.items():
        new = _upgraded_name(name)
        renamed |= new != name
        if new not in merged:
            merged[new] = dict(entry)
            continue
        row = merged[new]
        for side in ("old", "new"):
            if row.get(side) is None and entry.get(side) is not None:
                row[side] = entry[side]
        old, now = row.get("old"), row.get("new")
        if isinstance(old, int | float) and isinstance(now, int | float):
            row["diff"] = now - old
    return merged, renamed
