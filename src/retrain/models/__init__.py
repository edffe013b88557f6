"""The network, its LightningModule, training and export."""

# A binary model's validation score (what early stopping, pruning and the study watch for a
# binary task); every caller asks the task instead (retrain.task: `Task.monitor`).
MONITOR = "val/auroc"
