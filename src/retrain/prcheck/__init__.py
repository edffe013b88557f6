"""The pull-request data check (`retrain check-pr`): validation, suite changes, drift and the
params/metrics diff of a head against its base, as one Markdown report with a verdict."""
