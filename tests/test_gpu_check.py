"""benchmarks/gpu_check.sh --dry-run: every step of the GPU check, with the CPU provider in place of CUDA."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from .conftest import ROOT


def test_gpu_check_dry_run_writes_every_figure(trained_store, tmp_path):
    out = tmp_path / "gpu.json"
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--dry-run", "--no-install",
                           "--store", str(trained_store), "--out", str(out),
                           "--", "--min-time", "0.05", "--requests", "100"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHON": sys.executable, "FIT_PYTHON": sys.executable})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "DRY RUN" in proc.stdout
    report = json.loads(out.read_text())
    assert report["dry_run"] is True and report["kernel_size"] == 16
    (figures,) = report["providers"].values()
    assert figures["providers"][0] == "CPUExecutionProvider"
    assert set(figures["batches"]) == {"1", "256", "4096"}
    assert all(v["session_run_psfs_per_s"] > 0 and v["iobinding_psfs_per_s"] > 0 for v in figures["batches"].values())
    assert figures["max_abs_diff_vs_cpu"] == 0.0
    http_get = report["http_get_psf"]
    assert http_get["p50_ms"] > 0 and http_get["server_providers"] == ["CPUExecutionProvider"]
    assert report["target"]["met"] is None  # a dry run says nothing about the GPU target
    fit_speed = report["fit_speed"]  # benchmarks/gpu_fit_speed.py, on the CPU
    assert fit_speed["dry_run"] is True and "DRY RUN" in proc.stdout and "fit end to end" in proc.stdout
    trace = fit_speed["raytrace"]
    assert trace["kernel_size"] == 32 and trace["device"] in ("cpu", None) and set(trace["spp"]) == {"2048", "8192"}
    assert all(v["psfs_per_s"] > 0 for v in trace["spp"].values())
    train = fit_speed["train"]
    assert train["device"] == "cpu" and train["steps_per_s"] > 0 and train["psfs_per_s"] > 0
    fit = fit_speed["fit_end_to_end"]
    assert fit["ok"] and fit["wall_s"] > 0 and fit["steps"] == 20 and fit["published"] == "ci@1", fit


def test_gpu_check_refuses_unknown_arguments():
    proc = subprocess.run(["bash", "benchmarks/gpu_check.sh", "--fast"], cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "unknown argument --fast" in proc.stderr
