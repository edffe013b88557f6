"""How training ended and which epoch was best, as `fit` reports them to the model card."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np

from retrain.config import ModelParams
from retrain.models.training import MONITOR, fit, stop_reason


class _Scores(pl.Callback):
    """The validation ROC AUC of each epoch, in the order the training log prints them."""

    def __init__(self) -> None:
        self.scores: list[float] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.scores.append(float(trainer.callback_metrics[MONITOR]))


def _data(signal: float) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((640, 3)).astype(np.float32)
    y = (signal * x[:, 0] + rng.standard_normal(640) > 0).astype(np.float32)
    return (x[:512], y[:512]), (x[512:], y[512:])  # 8 steps per epoch


HP = ModelParams(hidden_dim=8, n_layers=1, dropout=0.0, lr=0.01, weight_decay=0, batch_size=64)


def test_stop_reason_names_the_limit_that_ended_training():
    assert stop_reason(early_stopped=True, epochs_run=5, budget=3, max_epochs=80) == (
        "early_stopping"
    )
    assert stop_reason(early_stopped=False, epochs_run=3, budget=3, max_epochs=80) == "max_steps"
    assert stop_reason(early_stopped=False, epochs_run=80, budget=80, max_epochs=80) == (
        "max_epochs"
    )


def test_best_epoch_is_the_logged_best_and_the_step_cut_is_named():
    scores = _Scores()
    capped = fit(
        *_data(1.0),
        HP,
        seed=0,
        max_epochs=50,
        patience=50,
        num_threads=1,
        max_steps=40,
        callbacks=[scores],
    )
    assert capped.epochs_run == len(scores.scores) == 5
    # 1-based like the log's "epoch 3/50"; the first of equal best scores, as early stopping
    # counts an improvement only when strictly better.
    assert capped.best_epoch == int(np.argmax(scores.scores)) + 1
    assert capped.stopped_by == "max_steps"
    assert capped.still_improving == (capped.best_epoch == capped.epochs_run)


def test_early_stopping_is_named_on_noise():
    scores = _Scores()
    noise = fit(
        *_data(0.0), HP, seed=0, max_epochs=50, patience=2, num_threads=1, callbacks=[scores]
    )
    assert noise.stopped_by == "early_stopping" and not noise.still_improving
    assert noise.epochs_run == len(scores.scores) < 50
    assert noise.best_epoch == int(np.argmax(scores.scores)) + 1 == noise.epochs_run - 2
