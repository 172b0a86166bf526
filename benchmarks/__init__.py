"""Benchmarks, run as modules from the repository root: ``python -m benchmarks.bench_x``.

Each prints a ratio against a baseline measured in the same run and writes
``benchmarks/results/``.
"""
