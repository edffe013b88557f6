"""Reproducible retraining: run records, the GTO model registry, the gate, replay.

- `git`: the few git plumbing commands a record needs (commit and tags published at once).
- `versions`: model versions and stages as GTO tags (`gto show` reads the same tags).
- `serving`: a version's ONNX model and preprocessor, materialised from the DVC cache/remote.
- `gate`: champion against challenger on the same holdout; `champion` feeds it, `evidence`
  gives it the paired bootstrap interval of the difference.
- `record`: a retrain's pinned record (built, then published by `publish`: commit +
  `run/<id>` tag + GTO tags at once) and the list of them.
- `lock`: one retrain at a time.
- `reproduce`: replay a record in a fresh clone and compare.
"""
