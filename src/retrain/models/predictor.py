"""Score a raw table with the saved preprocessor and the ONNX model (no Lightning, no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from retrain.data.preprocess import Preprocessor
from retrain.task import TaskKind

CHUNK_ROWS = 16_384  # rows per ONNX run: ~270 MB of activations for TabM-mini (k=32, 128 wide)

# The ONNX output per task (retrain.models.export writes it): the model says what it predicts.
OUTPUTS: dict[TaskKind, str] = {
    "binary": "probability",  # (rows, 1): P(positive class)
    "multiclass": "probabilities",  # (rows, classes), in dataset.classes order
    "regression": "prediction",  # (rows, 1): the value in the target's units
}


class Predictor:
    """preprocessor.json + model.onnx: the task's prediction (retrain.task's contract).

    Which task the model was trained for is read from its output's name (`OUTPUTS`).

    Raises:
        ValueError: the ONNX model's output is none of `OUTPUTS`' names.
    """

    def __init__(self, preprocessor: Path, model: Path) -> None:
        import onnxruntime as ort

        self.preprocessor = Preprocessor.load(preprocessor)
        options = ort.SessionOptions()
        # One thread: scores are then identical on every machine.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(
            str(model), options, providers=["CPUExecutionProvider"]
        )
        self.input = self.session.get_inputs()[0].name
        output = self.session.get_outputs()[0]
        kinds = {name: kind for kind, name in OUTPUTS.items()}
        if output.name not in kinds:
            raise ValueError(
                f"{model}: output {output.name!r} is not a model `train` exports "
                f"(one of {', '.join(kinds)})"
            )
        self.kind: TaskKind = kinds[output.name]
        # Columns of a multiclass prediction: the graph's static width (the number of classes).
        width = output.shape[-1] if output.shape else 1
        self.width = width if isinstance(width, int) else None

    def predict_matrix(self, x: np.ndarray) -> np.ndarray:
        """The prediction for a design matrix: (rows,) for a binary model's P(positive) and a
        regression's value, (rows, classes) of probabilities for a multiclass model."""
        # In chunks: the ensemble's activations are rows x k x width floats, ~11 GB for a
        # 200k-row test split in one run (bench 6); each row's score does not depend on the
        # others in its chunk (tests/unit/models/test_predictor.py).
        x = x.astype(np.float32)
        parts = [
            self.session.run(None, {self.input: x[start : start + CHUNK_ROWS]})[0]
            for start in range(0, max(len(x), 1), CHUNK_ROWS)
        ]
        if self.kind != "multiclass":
            return np.concatenate([np.asarray(p, dtype=np.float64).reshape(-1) for p in parts])
        columns = self.width if self.width is not None else -1
        proba = np.concatenate(
            [np.asarray(p, dtype=np.float64).reshape(len(p), columns) for p in parts]
        )
        # float32 rows sum to 1 within ~1e-7; the metrics (sklearn's log loss among them) check
        # the sum to float64 precision, so each row is renormalised here, once, for every user.
        return proba / proba.sum(axis=1, keepdims=True) if len(proba) else proba

    def predict(self, df: pd.DataFrame) -> np.ndarray:
        """The prediction for a raw table (see `predict_matrix` for its shape per task)."""
        return self.predict_matrix(self.preprocessor.transform(df))

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        """A binary model's P(positive class) per row (what `predict` gives it)."""
        return self.predict(df)
