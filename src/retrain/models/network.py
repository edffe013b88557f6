"""The network: a plain MLP over the preprocessed design matrix."""

from __future__ import annotations

from torch import Tensor, nn


def build_mlp(n_inputs: int, hidden_dim: int, n_layers: int, dropout: float) -> nn.Sequential:
    """`n_layers` blocks of Linear-ReLU-Dropout, then one logit."""
    layers: list[nn.Module] = []
    width = n_inputs
    for _ in range(n_layers):
        layers += [nn.Linear(width, hidden_dim), nn.ReLU(), nn.Dropout(dropout)]
        width = hidden_dim
    layers.append(nn.Linear(width, 1))
    return nn.Sequential(*layers)


class Scorer(nn.Module):
    """Network plus sigmoid: the exported artifact returns probabilities, not logits."""

    def __init__(self, network: nn.Module) -> None:
        super().__init__()
        self.network = network

    def forward(self, features: Tensor) -> Tensor:
        return self.network(features).sigmoid()
