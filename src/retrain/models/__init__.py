"""The network, its LightningModule, training and export."""

# The score early stopping, pruning and the study maximise (a constant here, not in
# training.py, so that a stage can name it without importing torch).
MONITOR = "val/auroc"
