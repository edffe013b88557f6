"""retrain: validated, tuned, gated and reproducible retraining of a tabular classifier."""

__version__ = "0.1.0"

# The project's one configuration file, at the checkout's root unless `--params` names another
# (every other path comes from its `paths`; `retrain.project.Project` carries them).
PARAMS_FILE = "params.yaml"
