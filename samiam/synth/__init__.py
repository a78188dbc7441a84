"""Synthetic micrographs with known truth, for tests, examples and benchmarks."""
