"""`retrain serve`: the registry's prod model behind HTTP (FastAPI + onnxruntime).

- `schema`: request and response models derived from params.yaml's dataset schema and suite.
- `checks`: the row-level expectations of the dataset's suite, applied to each request.
- `encode`: a request's design matrix in numpy, bit for bit the predict flow's.
- `model`: an immutable model handle and the rollout that swaps it when GTO's prod moves.
- `log`: the predictions log, written by a background thread (Parquet, a folder per day).
- `state`: what requests need (config, checks, rollout, log, token), injected per app.
- `auth`, `errors`, `lifespan`: the bearer token, exceptions and their answers, the threads.
- `routes`: one router per concern (`health`, `scoring`, `docs`).
- `app`: the FastAPI app factory `create_app(project_root, params)`, wiring the above.
- `run`: `bind(...)` and `serve(...)`, what the CLI calls (uvicorn, loopback by default).
"""
