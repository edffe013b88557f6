"""Export the trained network to ONNX: scoring needs neither Lightning nor torch."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from retrain.models.network import Scorer

INPUT = "features"
OUTPUT = "probability"


def export_onnx(network: nn.Module, n_inputs: int, path: Path) -> Path:
    """Write `network` followed by a sigmoid as ONNX with a dynamic batch dimension."""
    path.parent.mkdir(parents=True, exist_ok=True)
    scorer = Scorer(network).cpu().eval()
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
            output_names=[OUTPUT],
            dynamic_axes={INPUT: {0: "rows"}, OUTPUT: {0: "rows"}},
            dynamo=False,
        )
    return path
