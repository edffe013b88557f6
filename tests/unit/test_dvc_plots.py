"""The plots page: `dvc plots show` on this repository's dvc.yaml draws exactly the designed
charts (no default renderings of the plot files), ROC/PR lines in distinct colours, and the
confusion matrix with its counts written in."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from retrain.orchestration import browser
from tests.conftest import pipeline_env

REPO = Path(__file__).resolve().parents[2]
MODELS = ["ours", "logreg", "lightgbm"]  # any names: the test reads the y fields from dvc.yaml


def _designed() -> dict[str, dict]:
    entries = yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    return {name: spec for entry in entries for name, spec in entry.items()}


def _fields(name: str) -> list[str]:
    (fields,) = _designed()[name]["y"].values()
    return list(fields)


def _write_plot_data(root: Path) -> None:
    """Small, well-formed plot files at the paths params.yaml names."""
    paths = yaml.safe_load((REPO / "params.yaml").read_text())["paths"]
    out = {k: root / paths[k] for k in paths if k.endswith("_plot")}
    out["roc_plot"].parent.mkdir(parents=True)
    grid = [i / 10 for i in range(11)]
    roc = [
        {"fpr": x, **{m: min(1.0, x * (1.5 + j)) for j, m in enumerate(_fields("roc"))}}
        for x in grid
    ]
    pr = [
        {"recall": x, **{m: 1 - x / (2 + j) for j, m in enumerate(_fields("precision_recall"))}}
        for x in grid
    ]
    calib = [
        {"bin": b, "mean_predicted": b / 10, "fraction_positive": b / 11, "count": 5}
        for b in range(10)
    ]
    out["roc_plot"].write_text(json.dumps(roc))
    out["pr_plot"].write_text(json.dumps(pr))
    out["calibration_plot"].write_text(json.dumps(calib))
    out["calibration_scaled_plot"].write_text(json.dumps(calib[::-1]))
    attributions = [{"column": c, "mean_abs_attribution": i / 10} for i, c in enumerate("abc")]
    out["attributions_plot"].write_text(json.dumps(attributions))
    # 7 true negatives, 2 false positives, 1 false negative, 4 true positives.
    cells = [(0, 0)] * 7 + [(0, 1)] * 2 + [(1, 0)] * 1 + [(1, 1)] * 4
    out["confusion_plot"].write_text(
        "actual,predicted\n" + "".join(f"{a},{p}\n" for a, p in cells)
    )


@pytest.fixture(scope="module")
def plots_repo(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("plots_repo")
    env = pipeline_env()
    subprocess.run(
        [sys.executable, "-m", "dvc", "init", "--no-scm", "-q"], cwd=root, env=env, check=True
    )
    for name in ("dvc.yaml", "params.yaml"):
        shutil.copy(REPO / name, root / name)
    shutil.copy(REPO / ".dvc" / "plots.html", root / ".dvc" / "plots.html")
    shutil.copytree(REPO / ".dvc" / "plots", root / ".dvc" / "plots")
    config = (root / ".dvc" / "config").read_text()
    (root / ".dvc" / "config").write_text(config + "[plots]\n    html_template = plots.html\n")
    _write_plot_data(root)
    return root


def _dvc(root: Path, *args: str) -> str:
    cmd = [sys.executable, "-m", "dvc", "plots", "show", *args]
    return subprocess.run(
        cmd, cwd=root, env=pipeline_env(), check=True, capture_output=True, text=True
    ).stdout


def test_plots_show_draws_exactly_the_designed_plots(plots_repo):
    shown = json.loads(_dvc(plots_repo, "--json"))["data"]
    # Before: six more entries keyed by file (plots/pr.json ...), each drawn against "step".
    assert set(shown) == set(_designed()) and len(shown) == 5, sorted(shown)
    for renders in shown.values():
        assert all("step" not in json.dumps(r["content"].get("encoding", {})) for r in renders)
    for name in ("roc", "precision_recall"):
        (render,) = shown[name]
        color = render["content"]["encoding"]["color"]
        assert color["field"] == "field", color  # one colour per model, not per revision
        drawn = {row["field"] for row in render["content"]["data"]["values"]}
        assert drawn == set(_fields(name))


def _svg_of(dom: str, name: str) -> str:
    parts = re.split(r'<div id="([^"]+)" class="vega-embed', dom)
    return dict(zip(parts[1::2], parts[2::2], strict=True))[name]


@pytest.mark.slow
@pytest.mark.browser
def test_plots_page_colours_models_and_counts_the_confusion_matrix(plots_repo, tmp_path):
    if browser.chromium() is None:
        pytest.skip("no chromium on PATH: apt-get install -y chromium (.ci/run does)")
    _dvc(plots_repo, "-o", str(tmp_path / "page"))
    dom = browser.dump_dom(tmp_path / "page" / "index.html")
    assert dom.count('class="vega-embed') == 5
    for name in ("roc", "precision_recall"):
        lines = re.findall(
            r'<path aria-label="[^"]*field: (\w+)[^"]*"[^>]*stroke="(#\w+)"', _svg_of(dom, name)
        )
        colours = dict(lines)
        assert set(colours) == set(_fields(name)), lines
        assert len(set(colours.values())) == len(colours), colours  # distinct colours
    counts = re.findall(
        r'aria-roledescription="text mark"[^>]*>(\d+)</text>', _svg_of(dom, "confusion")
    )
    assert sorted(map(int, counts)) == [1, 2, 4, 7], counts


def test_binary_plots_are_the_shipped_dvc_yamls():
    # Telco's dvc.yaml is what dvc_plots gives a binary task, and dvc_yaml_for leaves it alone.
    from retrain.config import load_params
    from retrain.models.plots import dvc_plots, dvc_yaml_for
    from retrain.task import make_task

    paths = load_params(REPO / "params.yaml").paths
    binary = make_task("binary", positive_class="Yes")
    assert dvc_plots(binary, paths) == yaml.safe_load((REPO / "dvc.yaml").read_text())["plots"]
    text = (REPO / "dvc.yaml").read_text()
    assert dvc_yaml_for(text, binary, paths) == text


TASKS = ("multiclass", "regression")


def _task_plot_data(root: Path, kind: str) -> None:
    """The files a multiclass or regression checkout's evaluate and report stages write."""
    paths = yaml.safe_load((REPO / "params.yaml").read_text())["paths"]
    out = {k: root / paths[k] for k in paths if k.endswith("_plot")}
    out["attributions_plot"].parent.mkdir(parents=True, exist_ok=True)
    attributions = [{"column": c, "mean_abs_attribution": i / 10} for i, c in enumerate("abc")]
    out["attributions_plot"].write_text(json.dumps(attributions))
    if kind == "multiclass":
        cells = [("F", "F")] * 5 + [("F", "VF")] * 2 + [("M", "L")] * 3 + [("VF", "VF")] * 4
        out["confusion_plot"].write_text(
            "actual,predicted\n" + "".join(f"{a},{p}\n" for a, p in cells)
        )
    else:
        points = [(x, 2 * x + (-1) ** x) for x in range(10)]
        out["residuals_plot"].write_text(
            json.dumps([{"predicted": p, "residual": a - p} for a, p in points])
        )
        out["predicted_vs_actual_plot"].write_text(
            json.dumps([{"actual": a, "predicted": p} for a, p in points])
        )


def _task(kind: str):
    from retrain.task import make_task

    return make_task(kind, classes=["F", "L", "M", "VF"] if kind == "multiclass" else ())


@pytest.fixture(scope="module")
def task_checkouts(tmp_path_factory) -> tuple[Path, dict]:
    """One DVC repo holding a multiclass and a regression checkout (a folder each, with the
    dvc.yaml `dvc_yaml_for` writes and the files their stages write), and what one
    `dvc plots show --json` gives for both (one DVC start instead of two)."""
    from retrain.config import load_params
    from retrain.models.plots import dvc_yaml_for

    paths = load_params(REPO / "params.yaml").paths
    root = tmp_path_factory.mktemp("task_plots")
    subprocess.run(
        [sys.executable, "-m", "dvc", "init", "--no-scm", "-q"],
        cwd=root,
        env=pipeline_env(),
        check=True,
    )
    shutil.copytree(REPO / ".dvc" / "plots", root / ".dvc" / "plots")
    shipped = (REPO / "dvc.yaml").read_text()
    for kind in TASKS:
        (root / kind).mkdir()
        (root / kind / "dvc.yaml").write_text(dvc_yaml_for(shipped, _task(kind), paths))
        shutil.copy(REPO / "params.yaml", root / kind / "params.yaml")
        _task_plot_data(root / kind, kind)
    return root, json.loads(_dvc(root, "--json"))


@pytest.mark.parametrize("kind", TASKS)
def test_a_task_checkout_draws_only_its_own_plots(task_checkouts, kind):
    from retrain.config import load_params
    from retrain.models.plots import dvc_plots, evaluate_plots

    root, shown = task_checkouts
    task, paths = _task(kind), load_params(REPO / "params.yaml").paths
    stages = yaml.safe_load((root / kind / "dvc.yaml").read_text())["stages"]
    plot_outs = [next(iter(o)) for o in stages["evaluate"]["outs"] if isinstance(o, dict)]
    assert [o for o in plot_outs if "plot" in o] == [
        f"${{paths.{k}}}" for k in evaluate_plots(task)
    ]
    # train's interval (every task writes it): its out, and a dep of evaluate (coverage)
    assert "${paths.intervals}" in stages["train"]["outs"]
    assert "${paths.intervals}" in stages["evaluate"]["deps"]
    # Before: the shipped ROC/PR/calibration charts, whose files a non-binary task never
    # writes, came back as errors ("failed to load" on the page).
    assert not shown.get("errors"), shown.get("errors")
    # DVC prefixes a chart's name with its dvc.yaml only where both checkouts have it.
    charts = {k: [next(iter(p)) for p in dvc_plots(_task(k), paths)] for k in TASKS}
    shared = set(charts["multiclass"]) & set(charts["regression"])

    def shown_as(name: str, of: str) -> str:
        return f"{of}/dvc.yaml::{name}" if name in shared else name

    everything = {shown_as(name, k) for k in TASKS for name in charts[k]}
    assert set(shown["data"]) == everything  # nothing else drawn, nothing left out
    mine = {name: shown["data"][shown_as(name, kind)] for name in charts[kind]}
    for name, renders in mine.items():
        assert renders and all(r["content"]["data"]["values"] for r in renders), name
    if kind == "multiclass":
        (render,) = mine["confusion"]
        assert {row["actual"] for row in render["content"]["data"]["values"]} == {"F", "M", "VF"}


def test_init_again_for_another_task_rewrites_the_plots_both_ways():
    """`retrain init` rewrites dvc.yaml per task; a checkout re-initialised for a table of
    another task (multiclass -> regression -> binary) gets that task's layout each time."""
    from retrain.config import load_params
    from retrain.models.plots import dvc_yaml_for, evaluate_plots

    paths = load_params(REPO / "params.yaml").paths
    shipped = (REPO / "dvc.yaml").read_text()
    text = shipped
    for kind in ("multiclass", "regression", "multiclass", "binary"):
        text = dvc_yaml_for(text, _task(kind), paths)
        stages = yaml.safe_load(text)["stages"]
        outs = [next(iter(o)) for o in stages["evaluate"]["outs"] if isinstance(o, dict)]
        assert [o for o in outs if "plot" in o] == [
            f"${{paths.{k}}}" for k in evaluate_plots(_task(kind))
        ]
        shown = [next(iter(p)) for p in yaml.safe_load(text)["plots"]]
        assert ("roc" in shown) == (kind == "binary"), shown
    assert dvc_yaml_for(shipped, _task("binary"), paths) == shipped
