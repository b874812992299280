"""Benchmark scripts (run as files). A package so `bench/prototypes.py` is `bench.prototypes` to
mypy, not a second `prototypes`."""
