"""Bench 7 (bench/quality.py): the tables issue 27 added, the goals over all tables together,
reruns that keep the other tables' splits, and the tuned-vs-untuned hook.

The benchmark's own runs take an hour; these check its parts on the real tables' configuration
and on crafted split records, whose statistics are worked out by hand.
"""

from __future__ import annotations

import argparse
import json
import math

import pytest

from bench import quality
from bench.quality import (
    Table,
    arm_data,
    arm_label,
    arms_section,
    keep_other_tables,
    merged,
    quality_section,
    seed_range,
    together_goals,
    train_runs,
    tune_overrides,
    tuned_data,
    tuned_runs,
    tuned_section,
)


def _split(seed: int, ours: float, lightgbm: float, logreg: float = 0.5) -> dict:
    return {"seed": seed, "tabm": ours, "logreg": logreg, "lightgbm": lightgbm, "best_epoch": 3}


@pytest.mark.parametrize(
    ("name", "target", "rows", "numeric", "categorical", "rate"),
    [
        # The wide table: 85 integer-coded columns, all numeric; 6% "Yes".
        ("caravan", "Purchase", 5822, 85, 0, (0.05, 0.07)),
        # The rare positive class: 3.3% "Yes"; a student flag beside two amounts.
        ("default", "default", 10000, 2, 1, (0.03, 0.04)),
    ],
)
def test_the_new_tables_are_configured_by_retrain_init_alone(
    tmp_path, name, target, rows, numeric, categorical, rate
):
    import pandas as pd

    t = quality.table(name, tmp_path)
    dataset = t.sections["dataset"]
    assert (dataset["task"], dataset["target"], dataset["positive_class"]) == (
        "binary",
        target,
        "Yes",
    )
    assert (len(dataset["numeric"]), len(dataset["categorical"])) == (numeric, categorical)
    assert t.seeds == tuple(range(42, 52))  # ten splits
    df = pd.read_csv(t.raw)
    assert len(df) == rows
    assert rate[0] < (df[target] == "Yes").mean() < rate[1]  # a positive class under 10%
    # The sections make a valid params.yaml for the stages, nothing edited by hand.
    params = quality._params(
        quality.pipeline_params(), tmp_path / "s", 42, t.raw, None, {}, t.sections
    )
    assert params.dataset.name == name and params.dataset.target == target


def test_an_unknown_table_is_one_clear_error(tmp_path):
    with pytest.raises(ValueError, match="no table 'nope'; the tables are telco_churn"):
        quality.table("nope", tmp_path)


def test_together_goals_pool_every_split_and_judge_each_table():
    datasets = {
        "a": {"splits": [_split(42, 0.81, 0.80), _split(43, 0.83, 0.82)]},  # +0.01, +0.01
        "b": {"splits": [_split(42, 0.70, 0.71)]},  # −0.01
    }
    pooled, each = together_goals(datasets, quick=False)
    # Pooled over three splits: mean +0.01/3, sd of (.01, .01, −.01) = 0.011547, se /√3.
    sd = math.sqrt(((0.02 / 3) ** 2 * 2 + (0.04 / 3) ** 2) / 2)
    assert pooled.measured.startswith(
        f"+0.0033 ± {sd:.4f} (se {sd / math.sqrt(3):.4f}), 2/3 wins (the mean of the 2 table "
        "means, each table weighted alike: +0.0000)"
    )
    assert pooled.target == ">= +0.003" and pooled.met is True
    # Table b's mean is below 0: the per-table goal is missed, and says which table.
    assert each.met is False and each.measured.startswith("b -0.0100")
    assert "a +0.0100 ± 0.0000 (se 0.0000), 2/2 wins" in each.measured
    # A pooled mean under +0.003 misses, however many wins.
    datasets["a"]["splits"][1] = _split(43, 0.821, 0.82)
    assert together_goals(datasets, quick=False)[0].met is False
    # --quick judges nothing; no table, no goal (a quick run of `--tables` with none).
    assert {g.met for g in together_goals(datasets, quick=True)} == {None}
    assert together_goals({}, quick=True) == []


def test_a_rerun_of_some_tables_keeps_the_others_splits_in_table_order():
    previous = {
        "seeds": list(range(42, 62)),
        "datasets": {
            "telco_churn": {"rows": 7043, "splits": [_split(61, 0.85, 0.84)]},
            "ibm_attrition": {"rows": 1470, "splits": [_split(42, 0.83, 0.81)]},
            "caravan": {"rows": 5822, "splits": [_split(42, 0.1, 0.2)]},  # the old run's
        },
    }
    fresh = {
        "default": {"rows": 10000, "splits": [_split(42, 0.95, 0.94)]},
        "caravan": {"rows": 5822, "splits": [_split(42, 0.76, 0.75)]},
    }
    data, kept = merged(fresh, previous)
    assert list(data["datasets"]) == ["telco_churn", "ibm_attrition", "caravan", "default"]
    assert kept == ["telco_churn", "ibm_attrition"]
    assert data["datasets"]["caravan"]["splits"][0]["tabm"] == 0.76  # this run's, not the old
    assert data["seeds"] == [42, 61]
    section = quality_section(data, quick=False, kept=kept)
    assert any("not rerun in this run: telco_churn, ibm_attrition" in n for n in section.notes)
    assert [r[0] for r in section.rows] == [
        "telco_churn (7,043)",
        "ibm_attrition (1,470)",
        "caravan (5,822)",
        "default (10,000)",
    ]
    names = [g.name for g in section.goals]
    assert (
        names[0].startswith("Telco: ours − tuned LightGBM") and "all bench 7 tables" in names[-2]
    )


def test_pr_auc_is_reported_for_the_imbalanced_tables():
    rows = [
        {**_split(42, 0.8, 0.7), "pr_auc": {"tabm": 0.30, "logreg": 0.20, "lightgbm": 0.25}},
        {**_split(43, 0.8, 0.7), "pr_auc": {"tabm": 0.20, "logreg": 0.20, "lightgbm": 0.25}},
    ]
    section = quality_section(
        {"seeds": [42, 43], "datasets": {"default": {"rows": 10, "splits": rows}}}, True, []
    )
    note = next(n for n in section.notes if n.startswith("default: test PR AUC"))
    assert "0.2500 / 0.2000 / 0.2500" in note  # ours / logreg / LightGBM, means
    assert "ours − LightGBM +0.0000 ± 0.0707 (se 0.0500), 1/2 wins" in note


def test_tune_overrides_reach_the_tuned_arm_only(tmp_path):
    raw = tmp_path / "t.csv"
    raw.write_text("a\n1\n")
    tables = {"telco_churn": Table(raw, (42, 43))}
    overrides = tune_overrides(["n_trials=3", "max_epochs=7"])
    assert overrides == {"n_trials": 3, "max_epochs": 7}  # read as YAML: ints
    runs = tuned_runs(tables, overrides, quick=False, work=tmp_path)
    assert [name for name, _ in runs] == ["telco_churn/untuned", "telco_churn/tuned"] * 2
    untuned, tuned = runs[0][1], runs[1][1]
    assert (untuned.tune.n_trials, tuned.tune.n_trials) == (0, 3)
    assert (untuned.tune.max_epochs, tuned.tune.max_epochs) != (
        7,
        7,
    ) and tuned.tune.max_epochs == 7
    assert untuned.tune.storage != tuned.tune.storage and untuned.seed == tuned.seed == 42
    with pytest.raises(ValueError, match="expected KEY=VALUE"):
        tune_overrides(["n_trials"])
    # A key the tune section does not have is an error that names it (params are strict).
    with pytest.raises(Exception, match="n_trails"):
        tuned_runs(tables, tune_overrides(["n_trails=3"]), quick=False, work=tmp_path)


def test_tuned_section_reports_the_paired_gain_and_the_cost_ratio():
    def arm(values: list[float], seconds: float) -> list[dict]:
        return [{**_split(42 + i, v, 0.8), "model_seconds": seconds} for i, v in enumerate(values)]

    done = [("telco_churn/untuned", r) for r in arm([0.80, 0.82], 10.0)]
    done += [("telco_churn/tuned", r) for r in arm([0.81, 0.81], 45.0)][::-1]  # any order
    data = tuned_data(done, {"telco_churn": "roc_auc"}, {"n_trials": 12}, (42, 43))
    section = tuned_section(data, quick=False)
    assert section.item == "7t" and "n_trials=12" in section.title
    # tuned − untuned: +0.01 and −0.01: mean 0, sd 0.0141, se 0.01, one win of two; 90/20 s.
    assert section.rows == [
        ["telco_churn", "roc_auc ↑", "2", "0.8100", "0.8100"]
        + ["+0.0000 ± 0.0141 (se 0.0100), 1/2 wins", "4.50x"]
    ]
    (goal,) = section.goals
    assert goal.met is True and "cost 4.50x" in goal.name
    # A split read back from a run that did not time it: no cost ratio, rather than a wrong one.
    data["datasets"]["telco_churn"]["tuned"][0]["model_seconds"] = None
    assert tuned_section(data, quick=False).rows[0][-1] == "n/a"


def test_tuned_section_signs_a_lower_is_better_metric_for_every_task():
    # Bench 7b's records (regression, multiclass): every metric under "models"; RMSE falls
    # when tuning helps, so a lower tuned RMSE is a positive gain.
    def rec(seed: int, rmse: float) -> dict:
        return {"seed": seed, "models": {"tabm": {"rmse": rmse}}, "model_seconds": 2.0}

    done = [("wage/untuned", rec(42, 34.0)), ("wage/untuned", rec(43, 35.0))]
    done += [("wage/tuned", rec(42, 33.5)), ("wage/tuned", rec(43, 35.5))]
    section = tuned_section(tuned_data(done, {"wage": "rmse"}, {"n_trials": 3}, (42, 43)), False)
    row = section.rows[0]
    assert row[:5] == ["wage", "rmse ↓", "2", "34.5000", "34.5000"]
    assert row[5] == "+0.0000 ± 0.7071 (se 0.5000), 1/2 wins" and row[6] == "1.00x"
    done[2] = ("wage/tuned", rec(42, 33.0))  # −1.0 and +0.5 RMSE: +0.25 on the mean
    assert tuned_section(tuned_data(done, {"wage": "rmse"}, {}, (42, 43)), False).goals[0].met


def test_a_finished_split_is_read_back_not_rerun(tmp_path):
    import json

    raw = tmp_path / "t.csv"
    raw.write_text("a\n1\n")
    params = quality._params(quality.pipeline_params(), tmp_path / "s", 44, raw, None, {})
    assert quality.finished(params) is None  # nothing run yet: run it
    scores = {"roc_auc": 0.8, "pr_auc": 0.5, "n": 3}
    metrics = {"tabm": scores, "logreg": {**scores, "roc_auc": 0.7}, "lightgbm": scores}
    card = {"best_epoch": 9, "epochs_run": 25, "stopped_by": "early_stopping"}
    for path, content in ((params.paths.metrics, metrics), (params.paths.model_card, card)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))
    # A run stopped before it wrote split.json: the record comes from its stages' outputs.
    row = quality.finished(params)
    assert row is not None and (row["seed"], row["tabm"], row["logreg"]) == (44, 0.8, 0.7)
    assert row["pr_auc"]["tabm"] == 0.5 and row["best_epoch"] == 9 and row["seconds"] is None
    # split.json, written when one_split ends, is the record (with its times).
    (tmp_path / "s" / "split.json").write_text(json.dumps({**row, "seconds": 61.0}))
    assert quality.finished(params)["seconds"] == 61.0
    # _run_splits reads it back instead of running the stages again (no stage could run here).
    assert quality._run_splits([("t", params)], jobs=1) == [("t", {**row, "seconds": 61.0})]
    # --finished-only (a run cut short): a split not finished there is left out, not run.
    other = quality._params(quality.pipeline_params(), tmp_path / "o", 45, raw, None, {})
    runs = [("t", params), ("t", other)]
    assert quality._run_splits(runs, jobs=1, run_rest=False) == [("t", {**row, "seconds": 61.0})]


def test_train_keys_reach_their_arm_only_on_the_same_splits(tmp_path):
    raw = tmp_path / "t.csv"
    raw.write_text("a\n1\n")
    tables = {"telco_churn": Table(raw, (42, 43))}
    overrides = tune_overrides(["bag_folds=5"], "--train")
    runs = train_runs(tables, overrides, quick=False, work=tmp_path)
    arm = arm_label(overrides)
    assert arm == "train:bag_folds=5"
    assert [name for name, _ in runs] == ["telco_churn/default", f"telco_churn/{arm}"] * 2
    default, bagged = runs[0][1], runs[1][1]
    assert (default.train.bag_folds, bagged.train.bag_folds) == (0, 5)
    assert default.seed == bagged.seed == 42 and default.train.max_epochs == 200
    # Each arm in its own folder: a --resume run of other keys never reads this arm back.
    assert default.paths.metrics != bagged.paths.metrics and arm in str(bagged.paths.metrics)
    # --quick's budgets reach both arms; the keys only theirs.
    quick = train_runs(tables, overrides, quick=True, work=tmp_path)
    assert [p.train.max_epochs for _, p in quick[:2]] == [2, 2]
    assert [p.train.bag_folds for _, p in quick[:2]] == [0, 5]
    with pytest.raises(ValueError, match="--train 'bag_folds': expected KEY=VALUE"):
        tune_overrides(["bag_folds"], "--train")
    with pytest.raises(Exception, match="bag_fold"):  # a key train does not have, named
        train_runs(tables, {"bag_fold": 5}, quick=False, work=tmp_path)


def test_arms_section_pairs_the_arms_and_judges_ours_against_lightgbm_in_each():
    def arm(values: list[float], seconds: float) -> list[dict]:
        return [
            {**_split(42 + i, v, 0.80), "model_seconds": seconds} for i, v in enumerate(values)
        ]

    label = arm_label({"bag_folds": 5})
    done = [("telco_churn/default", r) for r in arm([0.80, 0.82], 10.0)]
    done += [("telco_churn/arm", r) for r in arm([0.83, 0.81], 50.0)][::-1]  # any order
    data = arm_data(
        done, {"telco_churn": "roc_auc"}, (42, 43), {"train": {"bag_folds": 5}}, ("default", "arm")
    )
    section = arms_section(data, quick=False)
    assert section.item == "7e" and "bag_folds=5" in section.title and label.endswith("=5")
    # arm − default: +0.03 and −0.01: mean +0.01, sd 0.0283, se 0.02, one win of two.
    # ours − LightGBM: default 0.00 and +0.02; arm +0.03 and +0.01; cost 100 / 20 s.
    assert section.rows == [
        ["telco_churn", "2", "0.8100", "0.8200", "+0.0100 ± 0.0283 (se 0.0200), 1/2 wins"]
        + ["+0.0100 ± 0.0141 (se 0.0100), 1/2 wins", "+0.0200 ± 0.0141 (se 0.0100), 2/2 wins"]
        + ["5.00x"]
    ]
    gain, pooled, each = section.goals
    assert gain.met is True and "cost 5.00x" in gain.name
    # Issue 27's goals, for the arm: ours − tuned LightGBM +0.02 pooled, ≥ 0 on each table.
    assert pooled.met is True and pooled.name.startswith("train bag_folds=5: all bench 7")
    assert each.met is True
    assert {g.met for g in arms_section(data, quick=True).goals} == {None}


def test_a_bags_card_gives_its_members_epochs_to_the_split_record(tmp_path):
    import json

    raw = tmp_path / "t.csv"
    raw.write_text("a\n1\n")
    params = quality._params(quality.pipeline_params(), tmp_path / "s", 44, raw, None, {})
    scores = {"roc_auc": 0.8, "pr_auc": 0.5, "n": 3}
    metrics = {"tabm": scores, "logreg": scores, "lightgbm": scores}
    members = [
        {"best_epoch": 4, "epochs_run": 9, "stopped_by": "early_stopping"},
        {"best_epoch": 6, "epochs_run": 11, "stopped_by": "max_steps"},
    ]
    card = {"bag_folds": 2, "members": members}
    for path, content in ((params.paths.metrics, metrics), (params.paths.model_card, card)):
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(content))
    row = quality.split_row(params)
    assert row["best_epoch"] == [4, 6] and row["stopped_by"] == ["early_stopping", "max_steps"]


def test_a_rerun_of_one_tables_arms_keeps_the_other_tables_of_the_same_arms(tmp_path):
    # Last session `--train bag_folds=5 --tables caravan default` rewrote section 7e with only
    # the two tables it ran and dropped Telco's and attrition's splits.
    def arms(table: str, seeds: tuple[int, ...], train: dict) -> dict:
        timed = {"model_seconds": 1.0}
        done = [(f"{table}/default", {**_split(s, 0.80, 0.79), **timed}) for s in seeds]
        done += [(f"{table}/arm", {**_split(s, 0.82, 0.79), **timed}) for s in seeds]
        return arm_data(done, {table: "roc_auc"}, seeds, {"train": train}, ("default", "arm"))

    path = tmp_path / "quality_bagged.json"
    path.write_text(json.dumps(arms("telco_churn", (42, 43), {"bag_folds": 5})))
    rerun = keep_other_tables(arms("caravan", (52,), {"bag_folds": 5}), path, "train")
    assert list(rerun["datasets"]) == ["telco_churn", "caravan"]  # bench 7's table order
    assert rerun["datasets"]["telco_churn"]["seeds"] == [42, 43]
    assert rerun["datasets"]["caravan"]["seeds"] == [52] and rerun["seeds"] == [42, 43, 52]
    section = arms_section(rerun, quick=False)
    assert [r[0] for r in section.rows] == ["telco_churn", "caravan"]
    # Tables on other seeds sit side by side: the section names each one's.
    assert "splits (seeds): telco_churn 42-43; caravan 52" in section.notes
    # Splits of other arms answer another question: not merged.
    other = keep_other_tables(arms("caravan", (42,), {"bag_folds": 3}), path, "train")
    assert list(other["datasets"]) == ["caravan"]


def test_seeds_name_new_splits_or_fail_in_one_line():
    assert seed_range("52-61") == tuple(range(52, 62)) and seed_range("7") == (7,)
    for bad in ("52-x", "61-52"):
        with pytest.raises(argparse.ArgumentTypeError, match="seeds: "):
            seed_range(bad)


@pytest.mark.parametrize("arm", ["tune", "train"])
def test_finished_only_runs_no_split_of_the_arms(tmp_path, monkeypatch, arm):
    # --finished-only renders what a --resume folder holds; before, 7t and 7e ran the rest.
    results = tmp_path / "RESULTS.md"
    results.write_text(quality.RESULTS.read_text())
    for name in ("TUNED_JSON", "ARMS_JSON"):
        monkeypatch.setattr(quality, name, tmp_path / f"{name}.out")
    monkeypatch.setattr(quality, "RESULTS", results)
    monkeypatch.setattr(quality, "REPO", tmp_path)
    shared = {
        arm: ["n_trials=2"] if arm == "tune" else ["bag_folds=2"],
        "tables": ["ibm_attrition"],
        "seeds": (52,),
        "resume": tmp_path / "resume",
        "finished_only": True,
        "jobs": 1,
    }
    section = quality.run(False, shared)
    assert section.rows == [] and quality.READ_BACK in section.notes
    assert not list((tmp_path / "resume").rglob("metrics")), "a split ran"
