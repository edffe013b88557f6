"""The network, its module, its export and the Predictor for every task (retrain.task).

Small synthetic tables (a few hundred rows, k small): each test runs in about a second.
"""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
import torch
from lightning.pytorch.callbacks import Callback
from sklearn.metrics import log_loss

from retrain.config import ModelParams
from retrain.data.datamodule import TabularDataModule
from retrain.data.preprocess import Preprocessor
from retrain.models.export import export_onnx
from retrain.models.intervals import conformal_half_width, intervals_record
from retrain.models.network import network_from_record, scorer_from_record
from retrain.models.predictor import Predictor
from retrain.models.training import EpochLog, build_module, fit, make_trainer
from retrain.task import BinaryTask, MulticlassTask, RegressionTask, Task
from tests.unit.models.test_network import _table

HP = ModelParams(
    hidden_dim=16, n_layers=1, dropout=0.0, lr=0.01, weight_decay=0, batch_size=64, k=4
)
TASKS: dict[str, Task] = {
    "binary": BinaryTask(["no", "yes"]),
    "multiclass": MulticlassTask(["a", "b", "c"]),
    "regression": RegressionTask(),
}
Matrix = tuple[np.ndarray, np.ndarray]


@pytest.fixture(autouse=True)
def one_thread():
    # Tiny networks: one thread is fastest, and fair to the other tests on a shared machine.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _data(kind: str, n: int = 480, seed: int = 0) -> tuple[Matrix, Matrix]:
    """Train/val matrices whose target depends on the first two columns."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 4)).astype(np.float32)
    signal = 2.0 * x[:, 0] - 1.5 * x[:, 1]
    if kind == "binary":
        y = (signal + rng.standard_normal(n) > 0).astype(np.float64)
    elif kind == "multiclass":
        y = np.digitize(signal + 0.5 * rng.standard_normal(n), [-1.0, 1.0]).astype(np.float64)
    else:  # a target far from standardised, in its own units
        y = 50.0 + 10.0 * signal + rng.standard_normal(n)
    cut = n * 3 // 4
    return (x[:cut], y[:cut]), (x[cut:], y[cut:])


def _target(kind: str, train: Matrix) -> tuple[float, float] | None:
    return (float(train[1].mean()), float(train[1].std())) if kind == "regression" else None


@pytest.mark.parametrize("kind", TASKS)
def test_heads_and_forward_have_the_tasks_shapes(kind):
    task = TASKS[kind]
    torch.manual_seed(0)
    network = build_module(4, HP, task=task).network.eval()
    x = torch.randn(7, 4)
    with torch.no_grad():
        heads, out = network.heads(x), network(x)
    if kind == "multiclass":
        assert heads.shape == (7, 4, 3) and out.shape == (7, 3)
        # forward: the log of the mean of the members' softmax probabilities.
        assert torch.allclose(out.exp(), heads.softmax(-1).mean(1), atol=1e-6)
    else:
        assert heads.shape == (7, 4) and out.shape == (7, 1)
    if kind == "regression":
        assert torch.allclose(out.squeeze(-1), heads.mean(1), atol=1e-6)


@pytest.mark.parametrize("kind", TASKS)
def test_the_loss_decreases_and_the_monitor_is_the_ensembles_score(kind):
    task = TASKS[kind]
    train, val = _data(kind)
    target = _target(kind, train)
    torch.manual_seed(0)
    module = build_module(4, HP, task=task, target=target)
    data = TabularDataModule(train, val, batch_size=64, seed=0, eval_batch_size=64)
    losses: list[float] = []

    class Record(Callback):
        def on_validation_end(self, trainer, pl_module):
            losses.append(float(trainer.callback_metrics["val/loss"]))

    trainer = make_trainer(4, [Record()], "cpu")
    trainer.fit(module, datamodule=data)
    assert losses[-1] < 0.8 * losses[0], losses
    logged = trainer.callback_metrics
    assert set(logged) == {"train/loss", "val/loss", task.monitor}
    module.eval()
    with torch.no_grad():
        heads = module.network.heads(torch.as_tensor(val[0]))
    if kind == "multiclass":
        # val/log_loss: of the mean of the members' probabilities, not of the mean logits.
        mean_proba = heads.double().softmax(-1).mean(1).numpy()
        want = log_loss(val[1], mean_proba, labels=[0, 1, 2])
        assert float(logged["val/log_loss"]) == pytest.approx(want, rel=1e-4)
        # and the loss is each head's cross-entropy, averaged over heads
        per_head = [
            torch.nn.functional.cross_entropy(heads[:, i], torch.as_tensor(val[1]).long())
            for i in range(4)
        ]
        assert float(logged["val/loss"]) == pytest.approx(float(sum(per_head)) / 4, rel=1e-4)
    if kind == "regression":
        mean, std = target
        value = heads.mean(1).double().numpy() * std + mean
        rmse = float(np.sqrt(np.mean((value - val[1]) ** 2)))
        # val/rmse in the target's own units (the heads learn it standardised) ...
        assert float(logged["val/rmse"]) == pytest.approx(rmse, rel=1e-4)
        # ... and the loss is the heads' mean squared error on the standardised target.
        z = (torch.as_tensor(val[1]) - mean) / std
        mse = ((heads.double() - z.unsqueeze(-1)) ** 2).mean()
        assert float(logged["val/loss"]) == pytest.approx(float(mse), rel=1e-4)


def _fit(kind: str, seed: int = 0, **kw):
    train, val = _data(kind)
    return fit(
        train,
        val,
        HP,
        seed=seed,
        max_epochs=4,
        patience=4,
        accelerator="cpu",
        num_threads=1,
        task=TASKS[kind],
        target=_target(kind, train),
        **kw,
    )


@pytest.mark.parametrize("kind", TASKS)
def test_refits_export_byte_identical_onnx_equal_to_the_torch_module(kind, tmp_path):
    train, val = _data(kind)
    target = _target(kind, train)
    paths = []
    for run in ("a", "b"):
        result = _fit(kind)
        paths.append(
            export_onnx(
                result.module.network, 4, tmp_path / run / "m.onnx", kind=kind, target=target
            )
        )
    assert paths[0].read_bytes() == paths[1].read_bytes()
    pre = Preprocessor.fit(_table(), ["amount"], [])  # any file: predict_matrix skips it
    pre.save(tmp_path / "pre.json")
    predictor = Predictor(tmp_path / "pre.json", paths[0])
    scores = predictor.predict_matrix(val[0])
    with torch.no_grad():
        out = result.module.network(torch.as_tensor(val[0])).double()
    if kind == "binary":
        want = out.sigmoid().squeeze(-1).numpy()
    elif kind == "multiclass":
        want = out.exp().numpy()
    else:
        want = out.squeeze(-1).numpy() * target[1] + target[0]
    assert scores.shape == want.shape
    np.testing.assert_allclose(scores, want, rtol=1e-5, atol=1e-5)
    # The checkpoint's record rebuilds the same computation in torch.
    scorer = scorer_from_record(result.module.network, dict(result.module.hparams))
    with torch.no_grad():
        again = scorer(torch.as_tensor(val[0])).double().numpy()
    np.testing.assert_allclose(scores, again.reshape(scores.shape), rtol=1e-5, atol=1e-5)
    name = onnx.load(str(paths[0])).graph.output[0].name
    assert name == {"binary": "probability", "multiclass": "probabilities"}.get(kind, "prediction")


@pytest.mark.parametrize("kind", TASKS)
def test_predictor_gives_the_contracts_shape(kind, tmp_path):
    table = _table()
    pre = Preprocessor.fit(table, ["amount", "flag"], ["plan", "region"])
    pre.save(tmp_path / "pre.json")
    task = TASKS[kind]
    torch.manual_seed(0)
    network = build_module(pre.n_features, HP, task=task).network.eval()
    target = (100.0, 20.0) if kind == "regression" else None
    export_onnx(network, pre.n_features, tmp_path / "m.onnx", kind=kind, target=target)
    predictor = Predictor(tmp_path / "pre.json", tmp_path / "m.onnx")
    assert predictor.kind == kind
    got = predictor.predict(table)
    empty = predictor.predict(table.iloc[:0])
    if kind == "multiclass":
        assert got.shape == (len(table), 3) and empty.shape == (0, 3)
        np.testing.assert_allclose(got.sum(axis=1), 1.0, rtol=0, atol=1e-12)
    else:
        assert got.shape == (len(table),) and empty.shape == (0,)
    if kind == "binary":
        assert ((got > 0) & (got < 1)).all()
        assert np.array_equal(predictor.predict_proba(table), got)
    if kind == "regression":  # de-standardised in the graph: around the mean, in its units
        assert 40 < got.mean() < 160


def test_a_checkpoints_record_rebuilds_the_network_of_its_task():
    for kind, task in TASKS.items():
        target = (3.0, 2.0) if kind == "regression" else None
        module = build_module(4, HP, task=task, target=target)
        rebuilt = network_from_record(dict(module.hparams))
        rebuilt.load_state_dict(module.network.state_dict())
        assert rebuilt.kind == kind
    # A binary checkpoint records what it did before there were tasks.
    assert set(build_module(4, HP).hparams) == {"n_inputs", "bins", *HP.model_dump()}


def test_min_mode_monitor_keeps_the_lowest_epoch(tmp_path, capsys):
    scores: list[float] = []

    class Scores(Callback):
        def on_validation_end(self, trainer, pl_module):
            scores.append(float(trainer.callback_metrics["val/rmse"]))

    log = EpochLog("train", 4, TASKS["regression"])
    result = _fit("regression", checkpoint=tmp_path / "m.ckpt", callbacks=[Scores(), log])
    # Early stopping and the checkpoint watch the task's monitor in its direction: the best
    # RMSE is the lowest (a "max" mode would keep the worst epoch).
    assert result.best_score == pytest.approx(min(scores), rel=1e-6)
    assert result.best_epoch == int(np.argmin(scores)) + 1
    assert min(scores) < max(scores)
    # The training log names the task's monitor and its best so far is the lowest.
    lines = [line for line in capsys.readouterr().out.splitlines() if "epoch" in line]
    assert len(lines) == len(scores) and all("val/rmse" in line for line in lines)
    assert lines[-1].endswith(f"(best {min(scores):.4f})")


def test_target_scale_is_saved_for_a_regression_only(tmp_path):
    table = _table()
    plain = Preprocessor.fit(table, ["amount"], ["plan"])
    plain.save(tmp_path / "plain.json")
    assert "target" not in json.loads((tmp_path / "plain.json").read_text())
    assert Preprocessor.load(tmp_path / "plain.json").target_scale() is None
    scaled = Preprocessor.fit(table, ["amount"], ["plan"], target=table["amount"] * 10 + 3)
    scaled.save(tmp_path / "scaled.json")
    mean, std = Preprocessor.load(tmp_path / "scaled.json").target_scale()
    assert mean == pytest.approx(table["amount"].mean() * 10 + 3)
    assert std == pytest.approx(table["amount"].std(ddof=0) * 10)


def test_conformal_half_width_is_the_ceil_n_plus_1_level_order_statistic():
    residuals = np.array([-5.0, 1.0, -2.0, 4.0, 3.0, -0.5, 6.0, 2.5, -7.0, 0.0])
    # n = 10, level 0.8: rank ceil(11 * 0.8) = 9 of the sorted |r| 0 .5 1 2 2.5 3 4 5 6 7
    assert conformal_half_width(residuals, 0.8) == 6.0
    # level 0.5: rank ceil(5.5) = 6 -> 3.0
    assert conformal_half_width(residuals, 0.5) == 3.0
    # too few rows for the level: the largest residual
    assert conformal_half_width(residuals, 0.95) == 7.0
    record = intervals_record(0.8, np.arange(10.0), np.arange(10.0) - residuals)
    assert record == {"level": 0.8, "half_width": 6.0, "n_val": 10}
    assert intervals_record(None, np.zeros(5), None) == {
        "level": None,
        "half_width": None,
        "n_val": 5,
    }
    with pytest.raises(ValueError, match="between 0 and 1"):
        conformal_half_width(residuals, 1.0)
