"""Benchmarks run on demand (make bench); see bench/run_all.py and bench/RESULTS.md."""
