"""Benchmarks run by hand (the tests only smoke-run them).

- ``python -m benchmarks [--quick]``: speed and accuracy of the PSF surrogate side by side with DeepLens
  ray tracing and DeepLens's own surrogate (PSFNetLens), measured in one run on one machine. One module
  per thing measured (raytrace, psfnet, surrogate, http_api, limits); ``setup`` holds what they share
  (the model, the held-out conditions, the converged reference), ``report`` writes the JSON, the
  markdown table and the speed-vs-accuracy plot.
- ``python -m benchmarks.serving_bench --help``: the server alone (latency, batch throughput,
  micro-batching under concurrent clients).
"""
