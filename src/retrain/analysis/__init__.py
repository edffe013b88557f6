"""Looking inside a trained model: attributions, slice metrics, calibration, the model card.

Kept out of `retrain.models` on purpose: tune and train depend on that whole folder in
dvc.yaml, so report-only code there would retrain the model whenever the report changes.
"""
