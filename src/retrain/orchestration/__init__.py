"""Running the pipeline from Prefect: DVC as the engine, the local stack, artifacts."""
