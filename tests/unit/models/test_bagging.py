"""train.bag_folds (issue 27): K fold models exported as one ONNX graph of their mean.

Real fits on small synthetic tables (max_epochs 2-3, K 2 or 3), real ONNX exports scored by
onnxruntime (the Predictor): the served graph is the mean of what each member, exported alone,
serves; the out-of-fold validation scores are each held-out row's member's; the checkpoint
rebuilds the served ensemble; two runs with one seed give the same bytes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from retrain.analysis.attributions import load_network
from retrain.config import ModelParams
from retrain.data.preprocess import Preprocessor
from retrain.models.bag_workers import BagError
from retrain.models.bagging import BagResult, fit_bag, save_checkpoint, scores
from retrain.models.export import export_onnx
from retrain.models.intervals import conformal_half_width
from retrain.models.network import BaggedNet, scorer_from_record
from retrain.models.predictor import Predictor
from retrain.models.training import fit
from retrain.tuning.folds import FoldError, fold_rows, pool
from tests.faults import DiesAtFirstEpoch
from tests.unit.models.test_network import _table
from tests.unit.models.test_tasks import HP, TASKS, Matrix, _data, _target

pytestmark = pytest.mark.model


@pytest.fixture(autouse=True)
def one_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _bag(kind: str, k: int = 3, seed: int = 0, hp: ModelParams = HP, **kw) -> BagResult:
    train, val = kw.pop("data", None) or _data(kind, n=360)
    options = {"max_epochs": 3, "patience": 2, "accelerator": "cpu", "num_threads": 1}
    return fit_bag(
        train,
        val,
        hp,
        k=k,
        seed=seed,
        task=TASKS[kind],
        target=_target(kind, train),
        **(options | kw),
    )


def _predictor(tmp: Path, model: Path) -> Predictor:
    pre = tmp / "pre.json"
    if not pre.exists():  # any preprocessor: predict_matrix does not use it
        Preprocessor.fit(_table(), ["amount"], []).save(pre)
    return Predictor(pre, model)


@pytest.mark.parametrize("kind", TASKS)
def test_the_served_graph_is_the_mean_of_the_members_exported_alone(kind, tmp_path):
    train, val = _data(kind, n=360)
    target = _target(kind, train)
    bag = _bag(kind, data=(train, val))
    assert len(bag.members) == 3 and isinstance(bag.network, BaggedNet)
    served = export_onnx(bag.network, 4, tmp_path / "bag.onnx", kind=kind, target=target)
    predictor = _predictor(tmp_path, served)
    assert predictor.kind == kind  # predict, serve, evaluate read it as any model of its task
    alone = [
        _predictor(
            tmp_path,
            export_onnx(m.module.network, 4, tmp_path / f"m{i}.onnx", kind=kind, target=target),
        ).predict_matrix(val[0])
        for i, m in enumerate(bag.members)
    ]
    got = predictor.predict_matrix(val[0])
    assert got.shape == alone[0].shape == ((len(val[1]), 3) if kind == "multiclass" else (90,))
    np.testing.assert_allclose(got, np.mean(alone, axis=0), rtol=1e-5, atol=1e-5)
    # The members differ (own folds, own seeds): the mean is not any one of them.
    assert min(np.abs(got - a).max() for a in alone) > 1e-3
    # Each validation row's out-of-fold score is that of the one member that held it out.
    n_train = len(train[1])
    folds = fold_rows(pool(train, val)[1], 3, 0, TASKS[kind], key="train.bag_folds")
    for i, (_, held) in enumerate(folds):
        rows = held[held >= n_train] - n_train
        assert len(rows) > 0
        np.testing.assert_allclose(bag.oof_val[rows], alone[i][rows], rtol=1e-5, atol=1e-5)
    # A member trains on the other folds and early-stops on its own (train+validation rows).
    assert bag.fit_rows == [len(f) for f, _ in folds] and bag.rows == 360


@pytest.mark.parametrize("kind", TASKS)
def test_the_checkpoint_rebuilds_the_served_ensemble(kind, tmp_path):
    train, val = _data(kind, n=240)
    target = _target(kind, train)
    bag = _bag(kind, k=2, data=(train, val), max_epochs=2)
    path = save_checkpoint(tmp_path / "model.ckpt", bag)
    network = load_network(path)  # what `report` explains
    assert isinstance(network, BaggedNet) and len(network.members) == 2
    record = torch.load(path, map_location="cpu", weights_only=True)["hyper_parameters"]
    rebuilt = scorer_from_record(network, dict(record))
    served = export_onnx(bag.network, 4, tmp_path / "bag.onnx", kind=kind, target=target)
    want = _predictor(tmp_path, served).predict_matrix(val[0])
    with torch.no_grad():
        got = rebuilt(torch.as_tensor(val[0])).double().numpy()
    np.testing.assert_allclose(got.reshape(want.shape), want, rtol=1e-5, atol=1e-5)


def test_two_runs_with_one_seed_write_the_same_bytes_and_another_seed_does_not(tmp_path):
    written = []
    for run, seed in (("a", 0), ("b", 0), ("c", 1)):
        bag = _bag("binary", k=2, seed=seed, max_epochs=2)
        onnx = export_onnx(bag.network, 4, tmp_path / run / "model.onnx")
        ckpt = save_checkpoint(tmp_path / run / "model.ckpt", bag)
        written.append((onnx.read_bytes(), ckpt.read_bytes(), bag.oof_val.tobytes()))
    assert written[0] == written[1]
    assert all(a != c for a, c in zip(written[0], written[2], strict=True))


def test_member_i_is_the_fit_of_its_folds_with_seed_plus_i(tmp_path):
    train, val = _data("regression", n=240)
    target = _target("regression", train)
    bag = _bag("regression", k=2, seed=5, data=(train, val), max_epochs=2)
    x, y = pool(train, val)
    fitted, held = fold_rows(y, 2, 5, TASKS["regression"])[1]
    again = fit(
        (x[fitted], y[fitted]),
        (x[held], y[held]),
        HP,
        seed=6,  # 5 + 1: distinct from member 0's, and the same on every run
        max_epochs=2,
        patience=2,
        accelerator="cpu",
        num_threads=1,
        checkpoint=tmp_path / "m.ckpt",
        task=TASKS["regression"],
        target=target,
    )
    want, got = again.module.network.state_dict(), bag.members[1].module.network.state_dict()
    assert all(torch.equal(want[name], got[name]) for name in want)


def test_a_bag_of_more_folds_than_a_class_has_rows_names_the_key():
    (x, y), val = _data("binary", n=120)
    y = np.zeros_like(y)
    y[:2] = 1.0  # two positives in train+validation: three folds cannot each hold one
    with pytest.raises(FoldError, match=r"^train.bag_folds 3: class .* has 2 rows"):
        _bag("binary", k=3, data=((x, y), (val[0], np.zeros_like(val[1]))))


def _wavy(n: int, seed: int) -> Matrix:
    """A target a network needs many epochs to fit (a product of waves) plus noise: by its best
    epoch, a wide network has memorised much of the noise of the rows it trained on."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    wave = 10.0 * np.sin(2 * x[:, 0]) * np.cos(2 * x[:, 1])
    return x, 50.0 + wave + 5.0 * x[:, 2] + 5.0 * rng.standard_normal(n)


def test_out_of_fold_scores_keep_an_overfit_bags_interval_honest():
    # Deliberately overfit: wide, small batches, 40 epochs of patience; K = 5, so each
    # validation row is a training row of 4 of the 5 members (~3 s).
    wide = HP.model_copy(update={"hidden_dim": 128, "n_layers": 2, "batch_size": 16})
    train, val, fresh = _wavy(160, 0), _wavy(160, 1), _wavy(2000, 2)
    bag = _bag("regression", k=5, hp=wide, data=(train, val), max_epochs=40, patience=40)
    target = _target("regression", train)
    in_sample = scores(bag.network, val[0], "regression", target)
    level = 0.9
    honest = conformal_half_width(val[1] - bag.oof_val, level)
    naive = conformal_half_width(val[1] - in_sample, level)
    assert naive < 0.85 * honest  # the served model's own validation residuals are too small
    served = scores(bag.network, fresh[0], "regression", target)

    def coverage(half_width: float) -> float:
        return float(np.mean(np.abs(fresh[1] - served) <= half_width))

    # On fresh rows the out-of-fold interval keeps its level; the in-sample one falls short.
    assert coverage(honest) >= level - 0.02
    assert coverage(naive) < level - 0.05


# Spawned processes cost ~3 s each to import torch and Lightning: the binary case runs in
# `make test`; the regression case and the failures with the parallel tuning workers' tests.
@pytest.mark.parametrize("kind", ["binary", pytest.param("regression", marks=pytest.mark.engines)])
def test_members_fitted_two_at_a_time_are_the_same_bytes_as_one_at_a_time(kind, tmp_path):
    # train.workers 2: each member in a spawned process of its own (~5 s on 2 cores).
    train, val = _data(kind, n=240)
    target = _target(kind, train)
    runs = []
    for workers in (1, 2):
        bag = _bag(kind, k=3, data=(train, val), max_epochs=2, workers=workers)
        out = tmp_path / f"workers{workers}"
        onnx = export_onnx(bag.network, 4, out / "model.onnx", kind=kind, target=target)
        ckpt = save_checkpoint(out / "model.ckpt", bag)
        runs.append((bag, onnx.read_bytes(), ckpt.read_bytes()))
    (one, onnx_one, ckpt_one), (two, onnx_two, ckpt_two) = runs
    assert onnx_two == onnx_one and ckpt_two == ckpt_one
    assert two.oof_val.tobytes() == one.oof_val.tobytes()
    for a, b in zip(one.members, two.members, strict=True):
        want, got = a.module.state_dict(), b.module.state_dict()
        assert want.keys() == got.keys()
        assert all(torch.equal(want[name], got[name]) for name in want)
        assert (a.best_score, a.best_epoch, a.epochs_run, a.stopped_by, a.still_improving) == (
            b.best_score,
            b.best_epoch,
            b.epochs_run,
            b.stopped_by,
            b.still_improving,
        )
        assert dict(a.module.hparams) == dict(b.module.hparams)


@pytest.mark.engines
@pytest.mark.parametrize(
    ("kill", "why"),
    [(False, "raised RuntimeError: the loss diverged"), (True, "was killed by SIGKILL")],
)
def test_a_member_whose_process_dies_fails_the_bag_naming_the_member(kill, why):
    with pytest.raises(BagError) as raised:
        _bag(
            "binary",
            k=2,
            seed=7,
            max_epochs=2,
            workers=2,
            callbacks=lambda i: [DiesAtFirstEpoch(kill)] if i == 1 else [],
        )
    # Member 1 was still training, or done: either way the bag fails with member 2's line.
    assert str(raised.value) == f"train.bag_folds: member 2/2 (seed 8) {why}; no model written"
