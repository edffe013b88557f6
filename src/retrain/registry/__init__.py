"""Reproducible retraining: run records, the GTO model registry, the gate, replay.

- `git`: the few git plumbing commands a record needs (commit and tags published at once).
- `versions`: model versions and stages as GTO tags (`gto show` reads the same tags).
- `serving`: a version's ONNX model and preprocessor, materialised from the DVC cache/remote.
- `gate`: champion against challenger on the same holdout; `champion` feeds it.
- `record`: a retrain's pinned record (commit + `run/<id>` tag) and the list of them.
- `lock`: one retrain at a time.
- `reproduce`: replay a record in a fresh clone and compare.
"""
