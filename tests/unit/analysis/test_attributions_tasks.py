"""Integrated Gradients per task on tiny torch modules with the network's outputs per task
(`TabularNet.forward`): multiclass log-probabilities (rows, classes), regression one
standardised value (rows, 1). Completeness is checked per task."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from retrain.analysis.attributions import (
    EXPLAINED,
    global_attributions,
    integrated_gradients,
    per_class_attributions,
)

SOURCES = ["a", "b", "b", "c"]  # design column -> original column (b one-hot in two)


class LogSoftmaxNet(nn.Module):
    """A linear layer with C outputs returning log-probabilities, as a multiclass network."""

    def __init__(self, weight: torch.Tensor) -> None:
        super().__init__()
        self.linear = nn.Linear(weight.shape[1], weight.shape[0], bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.log_softmax(self.linear(x), dim=-1)


class StandardisedNet(nn.Module):
    """A linear regression on the standardised target: (rows, 1)."""

    def __init__(self, w: torch.Tensor) -> None:
        super().__init__()
        self.w = nn.Parameter(w)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x @ self.w).unsqueeze(-1)


def _rows(n: int = 60) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(n, 4)).astype(np.float32)
    return x, x.mean(axis=0)


def test_multiclass_attributes_each_row_s_predicted_class_log_probability():
    # Class 2's logit depends on column c alone; classes 0 and 1 on a and b.
    weight = torch.tensor([[2.0, 0.5, 0.0, 0.0], [-1.0, 0.0, 1.5, 0.0], [0.0, 0.0, 0.0, 3.0]])
    net = LogSoftmaxNet(weight)
    x, base = _rows()
    result = integrated_gradients(net, x, base, SOURCES, n_steps=200, kind="multiclass")
    with torch.no_grad():
        logp = net(torch.as_tensor(x)).double().numpy()
        base_logp = net(torch.as_tensor(base)[None]).double().numpy()[0]
    predicted = logp.argmax(axis=1)
    assert (result.classes == predicted).all() and len(set(predicted)) == 3
    assert np.allclose(result.logits, logp[np.arange(len(x)), predicted])
    assert np.allclose(result.baseline_outputs, base_logp[predicted])
    # Completeness: each row's attributions add up to its class's log-prob change.
    assert result.completeness_gap() < 1e-3
    assert np.abs(result.delta).max() < 1e-3
    per_class = per_class_attributions(result, ["F", "L", "M"])
    assert sum(v["rows"] for v in per_class.values()) == len(x)
    # c is the only column of M's logit: it leads the rows predicted as M.
    assert per_class["M"]["columns"][0]["column"] == "c"
    assert [r["column"] for r in global_attributions(result)] != []
    assert "predicted class" in EXPLAINED["multiclass"]


def test_regression_attributes_the_value_in_the_target_s_units():
    w = torch.tensor([0.5, -1.0, 2.0, 0.25])
    x, base = _rows()
    mean, std = 100.0, 20.0
    result = integrated_gradients(
        StandardisedNet(w), x, base, SOURCES, n_steps=50, kind="regression", target=(mean, std)
    )
    # IG of a linear model is exact: std * w_j * (x_j - base_j), summed per source column.
    design = std * w.numpy().astype(np.float64) * (x - base)
    expected = np.stack([design[:, 0], design[:, 1] + design[:, 2], design[:, 3]], axis=1)
    assert result.columns == ["a", "b", "c"]
    assert np.allclose(result.values, expected, atol=1e-3)
    assert np.allclose(result.logits, mean + std * (x @ w.numpy()), atol=1e-3)
    assert result.completeness_gap() < 1e-3
    assert result.baseline_logit == pytest.approx(mean + std * float(base @ w.numpy()), abs=1e-3)


def test_per_class_attributions_need_a_multiclass_explanation():
    x, base = _rows(10)
    result = integrated_gradients(
        StandardisedNet(torch.ones(4)), x, base, SOURCES, n_steps=10, kind="regression"
    )
    with pytest.raises(ValueError, match="multiclass"):
        per_class_attributions(result, ["a"])


def test_a_row_explanation_says_what_it_explains_per_task():
    from retrain.analysis.attributions import RowExplanation

    common = dict(id_column="id", row_id="7", split="test", baseline="train_mean", delta=0.0)
    binary = RowExplanation(score=0.7, baseline_score=0.3, contributions=[], **common)
    assert "task" not in binary.to_dict() and "predicted_class" not in binary.to_dict()
    assert binary.unit()[0] == "log-odds"
    multi = RowExplanation(
        score=0.6,
        baseline_score=0.2,
        contributions=[],
        task="multiclass",
        predicted_class="M",
        **common,
    )
    assert multi.to_dict()["predicted_class"] == "M"
    assert multi.unit() == (
        "log-probability of class 'M'",
        "its log-probability minus the baseline row's",
    )
    value = RowExplanation(
        score=120.5, baseline_score=100.0, contributions=[], task="regression", **common
    )
    assert value.unit()[0] == "units of the target"
