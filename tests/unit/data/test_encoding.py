"""Target + frequency encoding of high-cardinality categoricals (issue 27), per task: the
training rows' values are out of fold (a row's own label never enters its encoding), every
other row gets the whole training split's smoothed means, an unseen or blank level the prior
and frequency 0; the encoding travels in preprocessor.json and is served bit for bit."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from retrain.data.encoding import TargetEncoding, fold_of_rows
from retrain.data.preprocess import Preprocessor
from retrain.models.predictor import Predictor
from retrain.serve.encode import RowEncoder
from tests.task_models import expected, write_model

FOLDS, SEED, M = 5, 7, 10.0
CLASSES = ["low", "mid", "high"]


def frame(n: int = 300, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    """A number, a one-hot column, `city` (60 shared levels, then 10 rows each their own
    level, a few blanks) and a 0/1 label that follows the city."""
    rng = np.random.default_rng(seed)
    city = rng.integers(0, 60, n).astype(object)
    city = np.array([f"c{c}" for c in city], dtype=object)
    city[:10] = [f"solo{i}" for i in range(10)]
    city[10:14] = None
    df = pd.DataFrame({"x": rng.normal(size=n), "plan": rng.choice(["a", "b"], n), "city": city})
    bias = {f"c{i}": rng.uniform(0.1, 0.9) for i in range(60)}
    p = np.array([bias.get(c, 0.5) for c in city])
    return df, (rng.random(n) < p).astype(np.float32)


def encode(df: pd.DataFrame, y: np.ndarray, kind: str = "binary") -> TargetEncoding:
    y64 = y.astype(np.float64)
    scale = (float(y64.mean()), float(y64.std())) if kind == "regression" else None
    outputs = CLASSES if kind == "multiclass" else ["target"]
    return TargetEncoding.fit(
        df, ["city"], y, kind=kind, outputs=outputs, scale=scale,
        folds=FOLDS, seed=SEED, smoothing=M,
    )  # fmt: skip


def raw(enc: TargetEncoding, block: np.ndarray) -> np.ndarray:
    """A standardised block back on its own scale (target means, frequency)."""
    col = enc.columns["city"]
    return block * np.asarray(col.std) + np.asarray(col.mean)


def units(value: np.ndarray, enc: TargetEncoding) -> np.ndarray:
    """A regression target mean in the target's units."""
    assert enc.scale is not None
    return value * enc.scale[1] + enc.scale[0]


def labels(y: np.ndarray, kind: str) -> np.ndarray:
    """What a level's mean is taken of, computed here without the module's helper."""
    if kind == "multiclass":
        return np.stack([(y == k).astype(float) for k in range(len(CLASSES))], axis=1)
    if kind == "regression":
        y = y.astype(np.float64)
        return ((y - y.mean()) / y.std())[:, None]
    return y[:, None].astype(float)


def targets_for(kind: str, n: int = 300) -> np.ndarray:
    df, y = frame(n)
    if kind == "multiclass":
        return (y + (df["x"].to_numpy() > 0.5)).astype(np.float32)  # classes 0, 1, 2
    if kind == "regression":
        return (50 + 30 * y + df["x"].to_numpy()).astype(np.float32)
    return y


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_training_rows_are_out_of_fold_and_other_rows_use_the_whole_split(kind):
    df, _ = frame()
    y = targets_for(kind)
    enc = encode(df, y, kind)
    width = 1 + (len(CLASSES) if kind == "multiclass" else 1)
    assert enc.width() == width
    train = raw(enc, enc.training_blocks(df, y)[0])
    want = labels(y, kind)
    levels = df["city"].fillna("__missing__").to_numpy()
    fold = fold_of_rows(len(df), FOLDS, SEED)
    for i in (0, 5, 20, 150, 299):  # solo levels and shared ones
        other = fold != fold[i]
        same = other & (levels == levels[i])
        prior = want[other].mean(axis=0)
        mean = (want[same].sum(axis=0) + M * prior) / (same.sum() + M)
        np.testing.assert_allclose(train[i, :-1], mean, rtol=1e-9, atol=1e-9)
        # A level seen once in training (its own row): the other folds' prior, never its label.
        if i < 10:
            np.testing.assert_allclose(train[i, :-1], prior, rtol=1e-9)
    # Every other row: the whole split's smoothed means (the solo row's own label included).
    scored = raw(enc, enc.transform(df.iloc[[0, 20]])[0])
    for row, i in enumerate((0, 20)):
        same = levels == levels[i]
        whole = (want[same].sum(axis=0) + M * want.mean(axis=0)) / (same.sum() + M)
        np.testing.assert_allclose(scored[row, :-1], whole, rtol=1e-9)
        assert scored[row, -1] == pytest.approx(same.mean())  # frequency: share of rows
    if kind == "multiclass":  # one column per class: a level's shares sum to 1
        np.testing.assert_allclose(train[:, :-1].sum(axis=1), 1.0)
        assert enc.names("city")[0] == "city:target=low"


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_a_rows_own_label_never_moves_its_training_encoding(kind):
    """Flip one training row's label: its out-of-fold value stays, the full mapping moves."""
    df, _ = frame()
    y = targets_for(kind)
    flipped = y.copy()
    flipped[20] = y[20] + 1 if kind != "binary" else 1 - y[20]
    if kind == "multiclass":
        flipped[20] = (y[20] + 1) % 3
    before, after = encode(df, y, kind), encode(df, flipped, kind)
    oof = [raw(e, e.training_blocks(df, t)[0])[20] for e, t in ((before, y), (after, flipped))]
    full = [raw(e, e.transform(df.iloc[[20]])[0])[0] for e in (before, after)]
    if kind == "regression":  # in the target's units: its standardisation is the whole split's
        oof = [units(v[:-1], e) for v, e in zip(oof, (before, after), strict=True)]
    # The prior of the other folds is unchanged too: row 20's own fold is left out.
    np.testing.assert_allclose(oof[0], oof[1], rtol=1e-9)
    assert not np.allclose(full[0][:-1], full[1][:-1])


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_an_unseen_or_blank_level_gets_the_prior_and_frequency_zero(kind):
    df, _ = frame()
    df = df.assign(city=df["city"].fillna("c0"))  # no blank in training
    y = targets_for(kind)
    enc = encode(df, y, kind)
    new = pd.DataFrame({"x": [0.0, 0.0], "plan": ["a", "a"], "city": ["nowhere", None]})
    out = raw(enc, enc.transform(new)[0])
    prior = labels(y, kind).mean(axis=0)
    for row in out:
        np.testing.assert_allclose(row, [*prior, 0.0], rtol=1e-9, atol=1e-9)


def test_training_matrix_is_only_for_the_rows_it_was_fitted_on():
    df, y = frame()
    pre = Preprocessor.fit(df, ["x"], ["plan"], encoding=encode(df, y))
    with pytest.raises(ValueError, match="the 300 training rows they were fitted on, not 299"):
        pre.training_matrix(df.iloc[1:], y[1:])


def test_design_matrix_names_groups_and_sources_agree(tmp_path):
    df, y = frame()
    pre = Preprocessor.fit(df, ["x"], ["plan"], encoding=encode(df, y))
    x_train, x_other = pre.training_matrix(df, y), pre.transform(df)
    assert x_train.shape == x_other.shape == (300, pre.n_features)
    assert pre.feature_names == ["x", "plan=a", "plan=b", "city:target", "city:frequency"]
    assert pre.groups() == [1, 2, 2] and pre.sources() == ["x", "plan", "plan", "city", "city"]
    # Only the encoded target column differs between the two (out of fold vs full means).
    np.testing.assert_array_equal(x_train[:, :3], x_other[:, :3])
    np.testing.assert_array_equal(x_train[:, 4], x_other[:, 4])
    assert not np.array_equal(x_train[:, 3], x_other[:, 3])
    # What the network trains on is standardised like the numerics.
    np.testing.assert_allclose(x_train[:, 3:].mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(x_train[:, 3:].std(axis=0), 1.0, atol=1e-5)


def test_preprocessor_json_carries_the_encoding_only_when_a_column_is_encoded(tmp_path):
    df, y = frame()
    plain = Preprocessor.fit(df, ["x"], ["plan", "city"])
    plain.save(tmp_path / "plain.json")
    assert "encoded" not in json.loads((tmp_path / "plain.json").read_text())
    pre = Preprocessor.fit(df, ["x"], ["plan"], encoding=encode(df, y))
    pre.save(tmp_path / "p.json")
    loaded = Preprocessor.load(tmp_path / "p.json")
    assert loaded == pre
    np.testing.assert_array_equal(loaded.training_matrix(df, y), pre.training_matrix(df, y))
    # Deterministic: the same split and seed give the same bytes.
    Preprocessor.fit(df, ["x"], ["plan"], encoding=encode(df, y)).save(tmp_path / "again.json")
    assert (tmp_path / "again.json").read_bytes() == (tmp_path / "p.json").read_bytes()


def test_two_encoded_columns_keep_one_order_in_memory_and_in_the_file(tmp_path):
    df, y = frame()
    df["zone"] = df["city"].str[-1:]  # a second encoded column, listed first below
    enc = TargetEncoding.fit(
        df, ["zone", "city"], y, kind="binary", outputs=["target"], scale=None,
        folds=FOLDS, seed=SEED, smoothing=M,
    )  # fmt: skip
    pre = Preprocessor.fit(df, ["x"], ["plan"], encoding=enc)
    pre.save(tmp_path / "p.json")
    loaded = Preprocessor.load(tmp_path / "p.json")
    assert loaded.encoded_columns == pre.encoded_columns == ["city", "zone"]
    assert loaded.feature_names == pre.feature_names
    np.testing.assert_array_equal(loaded.transform(df), pre.transform(df))
    np.testing.assert_array_equal(loaded.training_matrix(df, y), pre.training_matrix(df, y))


def _scored_rows() -> pd.DataFrame:
    df, _ = frame(40, seed=3)
    return df.assign(city=["nowhere", None, "solo3", *df["city"].iloc[3:]])


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_serving_and_predict_score_an_unseen_level(tmp_path: Path, kind):
    """The served fast path is `transform` bit for bit, an unseen city included, and the
    ONNX model plus preprocessor.json score such rows (as the predict flow does)."""
    df, _ = frame()
    pre = Preprocessor.fit(df, ["x"], ["plan"], encoding=encode(df, targets_for(kind), kind))
    rows = _scored_rows()
    cols = {c: rows[c].to_numpy(dtype=object if c != "x" else "float64") for c in rows}
    np.testing.assert_array_equal(RowEncoder(pre, {}).encode(cols), pre.transform(rows))
    onnx_path, pre_path = write_model(tmp_path, kind, pre)
    got = Predictor(pre_path, onnx_path).predict(rows)
    np.testing.assert_allclose(got, expected(kind, pre_path, rows), rtol=1e-5, atol=1e-5)
    assert np.isfinite(got).all()
