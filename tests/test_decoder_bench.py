"""The decoder comparison and the time-to-accuracy levers run end to end on a tiny setting and write
every figure (timings are never asserted, only that they exist and are positive)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from benchmarks.decoder_data import synthetic_psfs, window_for
from training.registry import NETWORKS

from .conftest import run_cli


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_synthetic_psfs_are_unit_sum_and_grow_with_defocus():
    near, far = synthetic_psfs(np.array([[0.0, 10.0, 550.0], [0.0, 2.0, 550.0]]), 64)
    np.testing.assert_allclose([near.sum(), far.sum()], 1.0, rtol=1e-5)
    assert near.max() > 2 * far.max(), "an object far from focus (2 m, focus 10 m) must be the blurrier one"
    assert window_for(32) == 40 and window_for(80) == 100


@pytest.mark.slow
def test_decoder_bench_writes_every_candidate(tmp_path):
    out = tmp_path / "out"
    proc = run_cli("-m", "benchmarks.decoders", "--cases", "synthetic128", "--seconds", "0.5", "--samples", "32",
                   "--held-out", "8", "--repeats", "1", "--threads", "1", "--out", str(out), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "decoders.json").read_text())
    (case,) = report["cases"]
    assert [r["network"] for r in case["candidates"]] == NETWORKS.names()  # every registered network
    for row in case["candidates"]:
        for key in ("rel_l1_mean", "onnx_psfs_per_s", "params_decoder", "steps", "train_cpu_s"):
            assert positive(row[key]), (row["network"], key)
        assert row["unit_sum_max_dev"] < 1e-4 and row["onnx_parity"] <= 1e-5
    assert case["lowest_error"] in {r["network"] for r in case["candidates"]}
    assert "| synthetic128 (128) | separable |" in (out / "decoders.md").read_text()


def test_time_to_accuracy_reads_a_run_breakdown(fit_result, tmp_path):
    proc = run_cli("-m", "benchmarks.time_to_accuracy", "--lenses", "cooke", "--skip", "trace,samples_vs_spp",
                   "--train-seconds", "0.2", "--threads", "1", "--runs", str(fit_result["run_dir"]),
                   "--out", str(tmp_path), timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((tmp_path / "time_to_accuracy.json").read_text())
    assert positive(report["lenses"]["cooke"]["train"]["batch128_threads1"])
    (row,) = report["breakdown"]
    assert row["samples"] == 512 and row["kernel_size"] == 16
    assert positive(row["train_s_est"]) and row["trace_s_est"] >= 0
