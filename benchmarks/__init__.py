"""Benchmarks run by hand (not by the tests): `python -m benchmarks.serving_bench --help`."""
