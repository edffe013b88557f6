"""How the model has done over time: every recorded retrain as a table, a chart and a page,
and two runs side by side (`retrain runs`, `retrain compare`, the model history page)."""
