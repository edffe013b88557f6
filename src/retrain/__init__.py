"""retrain: validated, tuned, gated and reproducible retraining of a tabular classifier."""

__version__ = "0.1.0"
