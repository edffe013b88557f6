"""The search space of params.yaml on an Optuna trial, and where the search starts (the
champion's values, else the model section's defaults) as its first trial. Light on purpose
(Optuna only for its types): the tune stage imports this module even when it has nothing to
search.
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
    Params,
    TuneParams,
)

if TYPE_CHECKING:
    import optuna

START = "trial_0_is_the_start"  # a study's user attribute, set when trial 0 was enqueued


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
    values = inside(space, champion)
    if not values:
        print("tune: none of the champion's parameters applies here: no warm start")
    return values or None


def inside(space: TuneParams, given: dict[str, Any]) -> dict[str, Any]:
    """The values of `given` that the search space names and admits (within a range's bounds,
    among a categorical's choices); the others are left to the sampler."""
    values: dict[str, Any] = {}
    for name, dim in space.search_space.items():
        if name not in given:
            continue
        value = given[name]
        if isinstance(dim, FloatRange | IntRange) and not dim.low <= value <= dim.high:
            continue
        if isinstance(dim, Categorical) and value not in dim.choices:
            continue
        values[name] = value
    return values


def start_trial(study: optuna.Study, params: Params) -> dict[str, Any] | None:
    """Enqueue where the search starts as trial 0: the champion's parameters (paths.warm_start),
    else the model section's defaults, each only where the search space admits it.

    Every trial is scored on the same folds and the study keeps the best, so the parameters
    chosen are never worse on them than this start: a search never selects what scores below
    the champion's (or the shipped) configuration.
    """
    cfg = params.tune
    start = warm_start_trial(params.paths.warm_start, cfg, params.model)
    what = "the champion's parameters"
    if start is None:
        start = inside(cfg, params.model.model_dump()) or None
        what = "the model section's defaults"
    if start is not None:
        study.enqueue_trial(start)
        print(f"tune: trial 0 is {what} {start}")
        if set(start) == set(cfg.search_space):
            # Marked on the study, so whoever reads it back (the stage, after a parallel study
            # too) knows trial 0 is the start and may keep it (retrain.tuning.select). Not
            # when the sampler drew some of its values: that trial is partly a random draw.
            study.set_user_attr(START, True)
        else:
            print(
                "tune: the sampler draws trial 0's "
                f"{', '.join(sorted(set(cfg.search_space) - set(start)))}: it is not kept "
                "over the best trial (tune.min_gain_se applies to a whole start only)"
            )
    return start
