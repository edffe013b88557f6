"""`retrain serve`: the registry's prod model behind HTTP (FastAPI + onnxruntime).

- `schema`: request and response models derived from params.yaml's dataset schema.
- `checks`: the row-level expectations of the dataset's suite, applied to each request.
- `model`: an immutable model handle and the rollout that swaps it when GTO's prod moves.
- `log`: the predictions log, written by a background thread (Parquet, a folder per day).
- `app`: the FastAPI app factory `create_app(project_root, params)`.
- `run`: `serve(...)`, what the CLI calls (uvicorn, loopback by default).
"""
