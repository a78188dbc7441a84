"""Benchmark harness: metrics, dataset loaders, scoring runs and reports (``samiam benchmark``)."""
