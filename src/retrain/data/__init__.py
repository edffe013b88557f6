"""Loading, cleaning, splitting and feeding tabular data."""
