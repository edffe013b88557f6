"""Score a raw table with the saved preprocessor and the ONNX model (no Lightning, no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from retrain.data.preprocess import Preprocessor

CHUNK_ROWS = 16_384  # rows per ONNX run: ~270 MB of activations for TabM-mini (k=32, 128 wide)


class Predictor:
    """preprocessor.json + model.onnx: probabilities of the positive class."""

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

    def predict_matrix(self, x: np.ndarray) -> np.ndarray:
        # In chunks: the ensemble's activations are rows x k x width floats, ~11 GB for a
        # 200k-row test split in one run (bench 6); each row's score does not depend on the
        # others in its chunk (tests/unit/models/test_predictor.py).
        x = x.astype(np.float32)
        parts = [
            self.session.run(None, {self.input: x[start : start + CHUNK_ROWS]})[0]
            for start in range(0, max(len(x), 1), CHUNK_ROWS)
        ]
        out = np.concatenate([np.asarray(p, dtype=np.float64) for p in parts])
        # One output per row (binary "probability", regression "prediction"): shape (rows,);
        # a multiclass model's "probabilities": (rows, classes), as retrain.task promises.
        return out[:, 0] if out.ndim == 2 and out.shape[1] == 1 else out

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        return self.predict_matrix(self.preprocessor.transform(df))
