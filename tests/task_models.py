"""Tiny ONNX models in the shape each task's model has (`retrain.task`), with a fitted
preprocessor and a suite, for the tests of predict and serve that need no trained network.

A linear layer over the design matrix, then the task's head: a sigmoid ("probability",
(rows, 1)), a softmax over the classes ("probabilities", (rows, C)), or the value itself
("prediction", (rows, 1)). `expected` computes the same in numpy, so a test can check which
column holds which class without trusting the code under test.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

NUMERIC = ["x1", "x2"]
CATEGORICAL = ["colour"]
COLOURS = ["blue", "green", "red"]
CLASSES = ["F", "M", "L", "VF"]  # deliberately not sorted: the pinned order is the outputs'
HEADS = {"binary": "probability", "multiclass": "probabilities", "regression": "prediction"}


def table(n: int = 12, seed: int = 0) -> pd.DataFrame:
    """Rows of the toy table (id, two numbers, a colour), no target."""
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "row_id": [f"r{i}" for i in range(n)],
            "x1": rng.normal(0, 1, n).round(3),
            "x2": rng.uniform(0, 10, n).round(3),
            "colour": rng.choice(COLOURS, n),
        }
    )


def labelled(kind: str, n: int, seed: int, first_id: int = 0) -> pd.DataFrame:
    """The toy table with a target of the task's kind (`dataset(kind)`: column y)."""
    df = table(n, seed=seed)
    df["row_id"] = [f"r{first_id + i}" for i in range(n)]
    rng = np.random.default_rng(seed)
    df["y"] = {
        "binary": lambda: rng.integers(0, 2, n),
        "multiclass": lambda: rng.choice(CLASSES, n),
        "regression": lambda: rng.normal(100, 20, n).round(2),
    }[kind]()
    return df


def weights(kind: str, n_features: int) -> tuple[np.ndarray, np.ndarray]:
    outputs = len(CLASSES) if kind == "multiclass" else 1
    rng = np.random.default_rng(7)
    w = rng.normal(0, 1, (n_features, outputs)).astype(np.float32)
    b = rng.normal(0, 0.5, outputs).astype(np.float32)
    if kind == "regression":  # a value in the target's units: wage-like
        w, b = w * 20, b + 100
    return w, b


def write_model(folder: Path, kind: str, pre: Any = None) -> tuple[Path, Path]:
    """model.onnx and preprocessor.json of a `kind` model under `folder`; `pre`: a fitted
    preprocessor (default: one fitted on the toy table)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    from retrain.data.preprocess import Preprocessor

    folder.mkdir(parents=True, exist_ok=True)
    pre = pre or Preprocessor.fit(table(40, seed=1), NUMERIC, CATEGORICAL)
    pre.save(folder / "preprocessor.json")
    w, b = weights(kind, pre.n_features)
    out = HEADS[kind]
    nodes = [helper.make_node("MatMul", ["features", "w"], ["xw"])]
    last = {"binary": "Sigmoid", "multiclass": "Softmax", "regression": "Identity"}[kind]
    nodes.append(helper.make_node("Add", ["xw", "b"], ["z"]))
    extra = {"axis": -1} if kind == "multiclass" else {}
    nodes.append(helper.make_node(last, ["z"], [out], **extra))
    graph = helper.make_graph(
        nodes,
        f"tiny_{kind}",
        [helper.make_tensor_value_info("features", TensorProto.FLOAT, ["rows", pre.n_features])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["rows", w.shape[1]])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(b, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    onnx.save(model, folder / "model.onnx")
    return folder / "model.onnx", folder / "preprocessor.json"


def expected(kind: str, preprocessor: Path, df: pd.DataFrame) -> np.ndarray:
    """What the model predicts for `df`, in numpy (float32 as ONNX computes it)."""
    from retrain.data.preprocess import Preprocessor

    pre = Preprocessor.load(preprocessor)
    w, b = weights(kind, pre.n_features)
    z = pre.transform(df) @ w + b
    if kind == "binary":
        return (1 / (1 + np.exp(-z)))[:, 0]
    if kind == "multiclass":
        e = np.exp(z - z.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)
    return z[:, 0]


def suite() -> dict[str, Any]:
    """The toy table's suite: x1 never null, x2 in [0, 10], the colours a set."""

    def expect(kind: str, column: str, **kwargs: Any) -> dict[str, Any]:
        return {"type": f"expect_column_values_to_{kind}", "kwargs": {"column": column, **kwargs}}

    return {
        "name": "toy",
        "expectations": [
            expect("not_be_null", "x1"),
            expect("be_between", "x2", min_value=0, max_value=10),
            expect("not_be_null", "colour"),
            expect("be_in_set", "colour", value_set=COLOURS),
        ],
    }


def dataset(kind: str) -> dict[str, Any]:
    """params.yaml's `dataset` section for the toy table as a `kind` task."""
    section: dict[str, Any] = {
        "name": "toy",
        "suite": "expectations/toy.json",
        "target": "y",
        "task": kind,
        "id_column": "row_id",
        "numeric": NUMERIC,
        "categorical": CATEGORICAL,
    }
    if kind == "binary":
        section["positive_class"] = 1
    if kind == "multiclass":
        section["classes"] = CLASSES
    return section


def checkout(root: Path, base_params: Path, kind: str) -> Path:
    """A checkout of the toy table as a `kind` task: params.yaml (`base_params` with the toy
    dataset), its suite, an empty git repository."""
    import subprocess

    raw = yaml.safe_load(base_params.read_text())
    raw["dataset"] = dataset(kind)
    # What names Telco's columns: the toy table has other ones.
    raw["report"]["slices"] = ["colour"]
    raw["registry"]["gate"]["slices"] = ["colour"]
    raw["prepare"]["fill_values"] = {}
    raw["registry"]["gate"].pop("metric", None)  # the task's default
    root.mkdir(parents=True, exist_ok=True)
    (root / "params.yaml").write_text(yaml.safe_dump(raw, sort_keys=False))
    (root / "expectations").mkdir(exist_ok=True)
    (root / "expectations" / "toy.json").write_text(json.dumps(suite()))
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    return root
