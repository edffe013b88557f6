"""The search space of params.yaml on an Optuna trial, and the champion's values as a first
trial. Light on purpose (Optuna only for its types): the tune stage imports this module even
when it has nothing to search.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from retrain.config import (
    ARCHITECTURE_KEYS,
    Categorical,
    FloatRange,
    IntRange,
    ModelParams,
    TuneParams,
)

if TYPE_CHECKING:
    import optuna


def suggest(trial: optuna.Trial, space: TuneParams) -> dict[str, Any]:
    """Sample every dimension of the search space declared in params.yaml."""
    values: dict[str, Any] = {}
    for name, dim in space.search_space.items():
        if isinstance(dim, FloatRange):
            values[name] = trial.suggest_float(name, dim.low, dim.high, log=dim.log)
        elif isinstance(dim, IntRange):
            values[name] = trial.suggest_int(name, dim.low, dim.high, log=dim.log)
        elif isinstance(dim, Categorical):
            values[name] = trial.suggest_categorical(name, dim.choices)
    return values


def warm_start_trial(
    path: Path, space: TuneParams, model: ModelParams | None = None
) -> dict[str, Any] | None:
    """The champion's values of the searched hyperparameters, to enqueue as trial 0.

    A value outside today's search space is left out (the sampler picks it instead), so a
    narrowed search space never sends the study outside its bounds. A champion of another
    network family than `model`'s (e.g. the plain MLP before issue 14, whose parameters lack
    the ensemble and embedding keys) passes on only what still applies, the optimiser's
    values; its widths, depth and dropout were chosen for another network. Said in the log.
    """
    if not path.exists():
        return None
    champion = json.loads(path.read_text()).get("params")
    if not champion:
        return None
    if model is not None:
        try:
            theirs: dict[str, Any] | None = ModelParams.model_validate(champion).architecture()
        except ValueError:  # pydantic's ValidationError: parameters of no network we know
            theirs = None
        if theirs != model.architecture():
            dropped = sorted(k for k in champion if k in ARCHITECTURE_KEYS)
            champion = {k: v for k, v in champion.items() if k not in ARCHITECTURE_KEYS}
            print(
                f"tune: the champion is another network ({theirs}, this run trains "
                f"{model.architecture()}): its {', '.join(dropped) or 'architecture'} "
                "not carried over"
            )
    values: dict[str, Any] = {}
    for name, dim in space.search_space.items():
        if name not in champion:
            continue
        value = champion[name]
        if isinstance(dim, FloatRange | IntRange) and not dim.low <= value <= dim.high:
            continue
        if isinstance(dim, Categorical) and value not in dim.choices:
            continue
        values[name] = value
    if not values:
        print("tune: none of the champion's parameters applies here: no warm start")
    return values or None
