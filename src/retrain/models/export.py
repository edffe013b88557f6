"""Export the trained network to ONNX: scoring needs neither Lightning nor torch."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from retrain.models.network import make_scorer
from retrain.models.predictor import OUTPUTS
from retrain.task import TaskKind

INPUT = "features"
OUTPUT = OUTPUTS["binary"]


def export_onnx(
    network: nn.Module,
    n_inputs: int,
    path: Path,
    *,
    kind: TaskKind = "binary",
    target: tuple[float, float] | None = None,
) -> Path:
    """Write `network` and the task's prediction (`make_scorer`) as ONNX with a dynamic
    batch dimension: a sigmoid (binary), the mean class probabilities (multiclass), the
    value de-standardised with `target`, the training split's (mean, std) (regression)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scorer = make_scorer(network, kind, target).cpu().eval()
    output = OUTPUTS[kind]
    with warnings.catch_warnings():
        # The TorchScript-based exporter needs no onnxscript and writes identical bytes for
        # identical weights, which the reproducibility promise depends on.
        warnings.simplefilter("ignore", DeprecationWarning)
        # tabm's shape checks compare shapes in Python while tracing; with a dynamic batch
        # axis they hold for any batch (tests/model/test_behaviour.py scores other sizes).
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            scorer,
            (torch.zeros(2, n_inputs),),
            str(path),
            input_names=[INPUT],
            output_names=[output],
            dynamic_axes={INPUT: {0: "rows"}, output: {0: "rows"}},
            dynamo=False,
        )
    return path
