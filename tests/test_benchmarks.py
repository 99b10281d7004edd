"""The benchmark suite runs end to end (its tiny --smoke setting) and writes every section.

Timings are never asserted: only that every figure exists and is a positive number.
"""

from __future__ import annotations

import json
import math

import pytest

from benchmarks.http_api import NOT_AVAILABLE

from .conftest import run_cli

SECTIONS = ("benchmark", "machine", "model", "reference", "limits", "raytrace", "psfnet", "ours_inprocess", "http",
            "targets")


def positive(value) -> bool:
    return isinstance(value, (int, float)) and math.isfinite(value) and value > 0


def test_smoke_benchmark_writes_every_section(fit_result, tmp_path):
    out = tmp_path / "bench"
    proc = run_cli("-m", "benchmarks", "--smoke", "--store", str(fit_result["store"]), "--model", "ci",
                   "--run", str(fit_result["run_dir"]), "--out", str(out), "--cache", str(tmp_path / "cache"),
                   "--threads", "1", timeout=300)
    assert proc.returncode == 0, f"benchmark failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    result = json.loads((out / "benchmark.json").read_text())

    assert all(key in result for key in SECTIONS), f"missing: {[k for k in SECTIONS if k not in result]}"
    assert result["errors"] == {}
    assert result["benchmark"]["profile"]["name"] == "smoke"
    assert positive(result["model"]["time_to_train_s"])
    assert positive(result["limits"]["memory"]["bytes_per_s"]) and positive(result["limits"]["matmul"]["flops_per_s"])
    assert positive(result["limits"]["flops"]["psf.onnx"]["flops_per_psf"])

    http = result["http"]
    rows = [*result["raytrace"], *result["psfnet"], *result["ours_inprocess"], http["get_psf"]]
    assert {r["kind"] for r in rows} == {"raytrace", "psfnet", "ours_onnx", "ours_torch", "ours_http"}
    batch = http["post_psf_batch"]
    if batch["available"]:
        rows.append(batch)
    else:  # the route may not exist in this build; then it says so instead of a number
        assert batch["note"] == NOT_AVAILABLE and "psfs_per_s" not in batch
    for row in rows:
        assert positive(row["psfs_per_s"]), row["method"]
        assert positive(row["limits"]["fraction_of_bandwidth_limit"]), row["method"]
        if row.get("accuracy") is not None:
            assert positive(row["accuracy"]["rel_l1_mean"]), row["method"]
    assert len(result["raytrace"]) == len(result["benchmark"]["profile"]["spp"])
    assert positive(http["get_psf"]["p50_ms"]) and positive(http["get_psf"]["p99_ms"])
    assert positive(http["server"]["memory"]["after_load"]["rss_mib"])
    assert {t["target"].split()[0] for t in result["targets"]} >= {"in-process", "HTTP", "single"}

    table = (out / "benchmark.md").read_text()
    assert "| method |" in table and "Targets" in table and "SMOKE" in table
    assert (out / "speed_vs_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_serving_bench_runs_both_servers_and_reports_every_figure(trained_store, tmp_path):
    out = tmp_path / "serving"
    proc = run_cli("-m", "benchmarks.serving_bench", "--store", str(trained_store), "--out", str(out),
                   "--requests", "50", "--seconds", "0.5", "--rounds", "2", "--clients", "8", timeout=300)
    assert proc.returncode == 0, f"serving bench failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    result = json.loads((out / "serving_bench.json").read_text())
    on, conc = result["batching_on"], result["concurrent"]
    assert positive(on["get_uncached"]["p50_ms"]) and positive(on["get_cached"]["p99_ms"])
    assert positive(on["batch256"]["http_psf_per_s"]) and positive(on["batch256"]["in_process_psf_per_s"])
    for label in ("batching_on", "batching_off"):
        assert len(conc["runs"][label]) == 2
        assert conc[label]["errors"] == 0 and positive(conc[label]["requests_per_s"])
    assert conc["batching_off"]["mean_batch_size"] == 1.0  # off means off
    assert len(conc["ratios"]) == 2 and positive(conc["ratio"])
    assert positive(result["psf_graph_batch256"]["iobinding_us"])
    assert "micro-batching ratio" in proc.stdout


def test_render_bench_reports_time_and_peak_memory_per_case(tmp_path):
    out = tmp_path / "render"
    proc = run_cli("-m", "benchmarks.render_bench", "--ks", "24", "--backend", "numpy", "--size", "240", "180",
                   "--out", str(out), timeout=300)
    assert proc.returncode == 0, f"render bench failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    rows = json.loads((out / "render_bench.json").read_text())["rows"]
    assert [(r["case"], r["ks"]) for r in rows] == [("blur", 24), ("resample", 64)]
    assert all(positive(r["seconds"]) and positive(r["peak_rss_gib"]) for r in rows), rows
    assert rows[0]["out_shape"] == [180, 240, 3] and rows[1]["out_shape"][-1] >= 240  # 64 px onto 0.27x pixels


def test_bigkernel_bench_measures_get_batch_and_grid_per_store(trained_store, tmp_path):
    out = tmp_path / "bigkernel"
    proc = run_cli("-m", "benchmarks.bigkernel_bench", "--store", str(trained_store), "--out", str(out),
                   "--requests", "30", "--batches", "2", "--grids", "2", timeout=300)
    assert proc.returncode == 0, f"bigkernel bench failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    (row,) = json.loads((out / "bigkernel_bench.json").read_text())["rows"]
    assert row["kernel_size"] == 16 and positive(row["get_psf"]["p50_ms"])
    assert positive(row["post_psf_batch_256"]["ratio"]) and positive(row["psf_grid_16x12"]["http_ms"])
    assert positive(row["psf_grid_16x12"]["in_process_ms"])


# configs/ci.yml cut to seconds: three checkpoints (20, 40, 60; ci.yml keeps 2), two held-out points, a small reference
TINY_FIT = ("train.steps=60", "checkpoint.every=20", "data.train_samples=128", "evaluation.grid=[2,1,1]",
            "evaluation.rays=8192", "validation.samples=4", "tracking.report_to=[]")


@pytest.mark.slow
def test_time_to_accuracy_fits_then_scores_every_checkpoint_beside_ray_tracing(tmp_path):
    out = tmp_path / "tta"
    overrides = [*TINY_FIT, f"evaluation.cache_dir={tmp_path / 'references'}"]
    proc = run_cli("-m", "benchmarks.time_to_accuracy", "--fit", "configs/ci.yml",
                   *(f"--fit-override={o}" for o in overrides), "--spp", "256,1024", "--repeats", "1",
                   "--torch-threads", "1", "--out", str(out), timeout=600)
    assert proc.returncode == 0, f"time to accuracy failed:\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
    report = json.loads((out / "time_to_accuracy.json").read_text())

    (lens,) = report["lenses"].values()
    (run,) = lens["runs"]
    points = run["points"]
    assert [p["step"] for p in points] == [20, 40, 60], "checkpoint.total_limit=null must keep every checkpoint"
    assert all(p["step_from"] == "TrainState" for p in points)
    seconds = [p["fit_s"] for p in points]
    assert all(positive(s) for s in seconds) and seconds == sorted(set(seconds)), seconds
    for p in points:
        assert positive(p["rel_l1_mean"]) and positive(p["rel_l1_p90"]) and p["rel_l1_p90"] >= p["rel_l1_mean"]
    # the last checkpoint holds the final weights: scored again against the same cached reference, it must
    # give metrics.json's figure
    final = run["final"]
    assert math.isclose(points[-1]["rel_l1_mean"], final["rel_l1_mean"], rel_tol=1e-3), (points[-1], final)
    assert positive(final["published_wall_s"]) and final["published_wall_s"] >= final["train_wall_s"]

    (curve,) = lens["raytrace"]
    assert [r["spp"] for r in curve["levels"]] == [256, 1024]
    for r in curve["levels"]:
        assert positive(r["s_per_psf"]) and positive(r["rel_l1_mean"]), r
    assert curve["levels"][0]["rel_l1_mean"] > curve["levels"][1]["rel_l1_mean"], "4x the rays, less noise"
    # adaptive: at most evaluation.rays per point, fewer where the PSF is sharp
    assert 0 < curve["reference"]["rays_per_point"] <= 8192 and positive(curve["reference"]["noise_rel_l1_mean"])
    speed = run["speedup"]  # the published model beside DeepLens at its kernel, in this process
    assert speed["kernel_size"] == 16 and positive(speed["onnx_psfs_per_s"]) and positive(speed["raytrace_psfs_per_s"])
    assert speed["speedup"] == pytest.approx(speed["onnx_psfs_per_s"] / speed["raytrace_psfs_per_s"], rel=0.01)
    assert len(report["loadavg_start"]) == 3 and report["date"]

    assert "| checkpoint step |" in proc.stdout and "| rays / PSF |" in proc.stdout
    assert (out / "time_to_accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_fit_seconds_reads_the_fit_clock_and_interpolates_between_log_lines():
    from benchmarks.time_to_accuracy import fit_seconds

    loop_only = [{"step": 10, "elapsed_s": 4.0}, {"step": 30, "elapsed_s": 8.0}]
    assert fit_seconds(loop_only, 30) == (8.0, "logged")
    assert fit_seconds(loop_only, 20) == (6.0, "interpolated")
    assert fit_seconds(loop_only, 5) == (2.0, "interpolated")  # step 0 at the loop's start
    # fit_elapsed_s also counts the probe and setup before the loop (here 50 s)
    with_fit = [{**r, "fit_elapsed_s": r["elapsed_s"] + 50.0} for r in loop_only]
    assert fit_seconds(with_fit, 30) == (58.0, "logged")
    assert fit_seconds(with_fit, 20) == (56.0, "interpolated")
    assert fit_seconds(with_fit, 0) == (50.0, "interpolated")
