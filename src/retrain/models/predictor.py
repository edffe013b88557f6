"""Score a raw table with the saved preprocessor and the ONNX model (no Lightning, no torch)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from retrain.data.preprocess import Preprocessor


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
        (probs,) = self.session.run(None, {self.input: x.astype(np.float32)})
        return np.asarray(probs, dtype=np.float64).reshape(-1)

    def predict_proba(self, df: pd.DataFrame) -> np.ndarray:
        return self.predict_matrix(self.preprocessor.transform(df))
