"""What the model card's renderers share (`retrain.analysis.card` for a binary model,
`retrain.analysis.card_task` for the others): the card's inputs, its sections and the helpers
both use."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from retrain.config import ModelParams
from retrain.markdown import table
from retrain.report import model_names

SECTIONS = (
    "Model",
    "Data",
    "Metrics",
    "Slices",
    "Calibration",
    "Explanations",
    "Known limits",
    "Reproduce",
)


@dataclass(frozen=True)
class CardInputs:
    """What the card is made of; each field is one output of the run, as JSON data."""

    # name, target, task, classes, positive_class, id_column, numeric, categorical
    dataset: dict[str, Any]
    train: dict[str, Any]  # the train stage's model_card.json
    prepare: dict[str, Any]  # metrics/prepare.json
    evaluate: dict[str, Any]  # metrics/evaluate.json
    slices: dict[str, Any]  # retrain.analysis.slices.slice_metrics
    calibration: dict[str, Any]  # the report stage's calibration metrics
    attributions: dict[str, Any]  # the report stage's attribution metrics
    top_features: int
    paths: dict[str, str]  # artifact paths named in the card


# A completeness error above this fraction of the top column's mean attribution is large
# enough to change the ranking's reading: the card says so in words.
MAX_RELATIVE_DELTA = 0.10


def fmt(value: Any, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def names_of(c: CardInputs) -> dict[str, str]:
    """The models' names, ours from the parameters it was trained with."""
    return model_names(ModelParams.model_validate(c.train["params"]))


def correlated_example(a: dict[str, Any]) -> str:
    """The most correlated pair of inputs, when one is (`retrain.analysis.correlation`)."""
    pairs = a.get("correlated") or []
    if not pairs:
        return ""
    first, second = pairs[0]["columns"]
    return f" (e.g. `{first}` and `{second}`, r = {pairs[0]['r']:+.2f})"


def reproduce(c: CardInputs) -> list[str]:
    revision = str(c.train["git_revision"])
    commit = revision.removesuffix("-dirty")
    note = []
    if commit == "unknown":
        commit = "<revision>"
        note = ["", "The training run was outside git; use the commit that holds its dvc.lock."]
    elif revision.endswith("-dirty"):
        note = [
            "",
            f"Tracked files differed from `{commit}` when the model was trained (`dvc repro` "
            "rewrites dvc.lock and the metrics as it goes); the commit that records this run's "
            "dvc.lock is the one to check out.",
        ]
    return [
        "```bash",
        f"git checkout {commit} && dvc pull && dvc repro",
        "```",
        "",
        "CPU runs are deterministic: the same commit and data give the same model and numbers.",
        "A recorded run (`run/<run id>` tag) is rebuilt with `retrain reproduce <run id>`, "
        "which also replays the run's overrides; the commands above do not.",
        *note,
    ]


def data_section(c: CardInputs, task_row: list[str], stratified_on: str) -> list[str]:
    """The card's Data section, for every task: `task_row` is the row that describes the
    target (binary: the positive rate per split), `stratified_on` what the split keeps."""
    from retrain.markdown import table

    d, p = c.train["data"], c.prepare
    rows = p.get("rows", {})
    # Target + frequency encoded columns (issue 27): named; a table without any reads as before.
    encoded = list(c.dataset.get("high_cardinality") or [])
    named = ", ".join(f"`{col}`" for col in encoded)
    splits = ["train", "val", "test"]
    return [
        *table(
            ["data", "value"],
            [
                ["dataset", f"`{c.train['dataset']}`"],
                ["raw data", f"`{d['path']}`"],
                ["data version (DVC md5, pinned by data.dvc)", f"`{d['md5']}`"],
                ["code version (git revision at training)", f"`{c.train['git_revision']}`"],
                ["rows in / after cleaning", f"{p.get('rows_in')} / {p.get('rows_out')}"],
                ["rows per split", ", ".join(f"{s} {rows.get(s)}" for s in splits)],
                task_row,
                [
                    "features",
                    f"{len(c.dataset['numeric'])} numeric, {len(c.dataset['categorical'])} "
                    f"categorical ({p.get('n_features')} design columns after one-hot"
                    + (f"; {named} target + frequency encoded)" if encoded else ")"),
                ],
                [
                    "id column",
                    f"`{c.dataset['id_column']}`, never a model input"
                    if c.dataset.get("id_column")
                    else "none",
                ],
            ],
        ),
        "",
        f"The split is {stratified_on}; scaling and one-hot encoding are fitted on the "
        + (
            "training split only (target encoding: out of fold on its own rows). "
            if encoded
            else "training split only. "
        )
        + "Validation checks the raw data (Great Expectations suite and the "
        "PII guard) before anything is trained.",
    ]


def attribution_rows(c: CardInputs) -> tuple[list[tuple[str, dict[str, Any]]], list[list[str]]]:
    """Every column's attribution by rank, and the card's table rows of the top ones."""
    ranked = sorted(c.attributions["columns"].items(), key=lambda kv: kv[1]["rank"])
    rows = [
        [
            str(r["rank"]),
            f"`{column}`",
            fmt(r["mean_abs"]),
            f"{100 * r['share']:.1f}%",
            f"{r['mean']:+.4f}",
        ]
        for column, r in ranked[: c.top_features]
    ]
    return ranked, rows


@dataclass(frozen=True)
class Explained:
    """A task's words for its attributions, in the card's Explanations section."""

    attributed: str  # what Integrated Gradients attributes, e.g. "the network's logit"
    unit: str  # an attribution's unit and how to read it
    change: str  # what the attributions add up to, e.g. "the score's change"
    after_table: tuple[str, ...] = ()  # lines after the ranking (multiclass: per class)


def explanations(c: CardInputs, words: Explained) -> list[str]:
    """The Explanations section of every task's card, in the task's `words`."""
    a = c.attributions
    ranked, rows = attribution_rows(c)
    who = c.dataset.get("id_column")
    return [
        f"Integrated Gradients (Captum) on {words.attributed}, {a['rows']} test rows (a seeded "
        f"sample), {a['n_steps']} steps, baseline `{a['baseline']}`; one-hot fragments summed "
        f"back into their original column. An attribution is in {words.unit}. Largest "
        f"completeness error (Captum's convergence delta): {a['max_abs_delta']:.2e}. "
        f"Machine-readable: `{c.paths['attributions']}`.",
        *_completeness_warning(a["max_abs_delta"], ranked, words.change),
        "",
        f"Top {len(rows)} of {len(ranked)} columns by mean absolute attribution:",
        "",
        *table(
            ["rank", "column", "mean abs. attribution", "share", "mean (signed)"], rows, "rlrrr"
        ),
        *words.after_table,
        "",
        "Explain one prediction: "
        + (f"`retrain explain --row-id <{who}>`." if who else "needs `dataset.id_column`."),
    ]


def _completeness_warning(
    delta: float, ranked: list[tuple[str, dict[str, Any]]], change: str
) -> list[str]:
    """A sentence when the completeness error is large next to the top attribution."""
    top = ranked[0][1]["mean_abs"] if ranked else 0.0
    if top <= 0 or delta <= MAX_RELATIVE_DELTA * top:
        return []
    return [
        "",
        f"**The completeness error is large**: {delta:.2e} is {100 * delta / top:.0f}% of "
        f"the top column's mean attribution ({fmt(top)}), so the attributions do not add up to "
        f"{change} and their ranking is approximate; more steps (`report.ig_steps`) reduce it.",
    ]


def training_rows(
    t: dict[str, Any], monitor: str, label: str, stopped: Callable[[dict[str, Any]], str]
) -> list[list[str]]:
    """The Model table's rows on how training went, from model_card.json `t`: `monitor` is the
    task's key (val/auroc ...), `label` its name, `stopped` says how one fit ended.

    A bag of fold models (train.bag_folds) has no one best epoch or stopping reason: each
    member's is shown, with the score on the fold it held out, so no row describes one member
    as the model."""
    members = t.get("members")
    if not members:
        return [
            ["best epoch / epochs run", f"{t['best_epoch']} / {t['epochs_run']}"],
            ["how training stopped", stopped(t)],
            ["trained on", t["device"]],
            [f"{label} (early stopping)", fmt(t["metrics"].get(monitor))],
        ]
    k = len(members)
    each = "; ".join
    return [
        [
            "fold models (`train.bag_folds`)",
            f"{k}, each trained on {k - 1} of {k} folds of the train and validation rows "
            f"({t['data']['rows']}) and early-stopped on the fold it left out; the served "
            "prediction is the mean of theirs",
        ],
        [
            "best epoch / epochs run, per member",
            each(f"{m['best_epoch']} / {m['epochs_run']}" for m in members),
        ],
        ["how each member stopped", each(stopped(m) for m in members)],
        ["trained on", t["device"]],
        [
            f"{label} on each member's held-out fold (early stopping)",
            each(fmt(m["metrics"].get(monitor)) for m in members)
            + f" (mean {fmt(t['metrics'].get(monitor))})",
        ],
    ]


def bagged(t: dict[str, Any], network: str) -> str:
    """The card's first sentence's model: `network`, or the mean of K such fold models."""
    k = len(t.get("members") or ())
    if not k:
        return network
    return f"The mean of {k} fold models, each one: {network[0].lower()}{network[1:]}"
