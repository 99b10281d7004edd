"""Integration: a real fit of configs/ci.yml (ray tracing, CVAE, ONNX export, publish)."""

import json

import numpy as np
import onnxruntime as ort
import pytest
import torch

from models_store import Store
from models_store.engine import OnnxModel
from training.predictors import load_torch
from training.raytrace import LensTracer

from .conftest import run_cli


def test_run_folder_has_config_checkpoints_figure_and_metrics(fit_result):
    run_dir = fit_result["run_dir"]
    for name in ("config.yaml", "model.safetensors", "model_args.json", "metrics.json", "train_log.jsonl",
                 "validation/step_000150.png", "validation/step_000300.png", "validation/metrics.jsonl",
                 "evaluation/evaluation.json", "evaluation/error_maps.png"):
        assert (run_dir / name).is_file(), name
    # checkpoint every 150 steps of 300, at most 2 kept
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["checkpoint_0", "checkpoint_1"]
    metrics = json.loads((run_dir / "metrics.json").read_text())
    assert metrics["steps"] == 300 and metrics["ray_traced_samples"] == 512
    assert 0 < metrics["rel_l1_mean"] < 2
    assert set(metrics["methods"]) == {"surrogate", "raytrace_spp1024"}
    for key in ("rel_l1_mean", "rel_l1_p90", "centroid_px_mean", "ee80_pct_mean", "peak_ratio_mean"):
        assert np.isfinite(metrics["methods"]["surrogate"][key]), key
    assert metrics["interpolation"]["pairs"] == 2
    assert "held-out relative L1" in fit_result["stdout"]
    assert any((run_dir / "logs").rglob("events.out.tfevents*")), "TensorBoard events were not written"
    log = [json.loads(line) for line in (run_dir / "train_log.jsonl").read_text().splitlines()]
    assert len(log[-1]["kl_per_dim"]) == 4


def test_published_version_verifies_and_carries_the_card(trained_store, fit_result):
    store = Store(trained_store)
    assert store.models() == ["ci"] and store.versions("ci") == [1]
    assert store.verify() == {"ci@1": "ok"}
    manifest = store.manifest("ci")
    assert manifest.condition_names == ["field", "depth", "wavelength"]
    assert manifest.kernel_size == 16 and manifest.latent_size == 4
    assert manifest.lens.file == "cooke_triplet.json" and manifest.lens.pixel_pitch_um == 12.0
    assert manifest.training.steps == 300 and manifest.training.config["name"] == "ci"
    metrics = json.loads((fit_result["run_dir"] / "metrics.json").read_text())
    assert manifest.evaluation["rel_l1_mean"] == metrics["rel_l1_mean"]
    parity = manifest.evaluation["onnx_parity"]
    # onnxruntime's PSFs within 1 % of the model's own error (relative L1), latents within 1e-4 of their scale
    assert parity["psf_tolerance"] == pytest.approx(0.01 * max(metrics["rel_l1_mean"], 0.01))
    assert parity["psf_rel_l1_max"] <= parity["psf_tolerance"]
    assert parity["latent_max_rel_diff"] <= 1e-4


def test_onnx_graphs_match_torch_on_random_in_range_conditions(trained_store, fit_result):
    run_dir = fit_result["run_dir"]
    model = load_torch(run_dir).eval()
    rng = np.random.default_rng(123)
    cond = np.stack([rng.uniform(0, 1, 50), rng.uniform(2, 100, 50), rng.uniform(450, 650, 50)], 1).astype(np.float32)
    onnx = OnnxModel.from_store(trained_store, "ci", providers=["CPUExecutionProvider"])
    got = onnx.psf_from_condition(cond)
    with torch.no_grad():
        want = model.predict(torch.from_numpy(cond)).numpy()
    assert got.shape == (50, 16, 16)
    assert np.abs(got - want).max() <= 1e-5 * want.max()
    np.testing.assert_allclose(got.sum(axis=(1, 2)), 1.0, rtol=1e-5)
    assert (got >= 0).all()
    # dynamic batch axis and the latent graphs
    mu, logvar = onnx.prior(cond[:3])
    assert mu.shape == logvar.shape == (3, 4)
    np.testing.assert_allclose(onnx.decode_condition(mu, cond[:3]), got[:3], atol=1e-6)
    mu_e, _ = onnx.encode(got[:3], cond[:3])
    assert mu_e.shape == (3, 4)
    session = ort.InferenceSession(str(Store(trained_store).version_dir("ci") / "psf.onnx"))
    assert session.get_inputs()[0].shape[0] == "batch"


def test_surrogate_is_a_psf_model_not_noise(trained_store):
    """Even the tiny CI fit must be far closer to ray tracing than a blind guess (a uniform kernel, or
    the on-axis in-focus PSF everywhere)."""
    tracer = LensTracer("lenses/cooke_triplet.json", focus_m=10.0)
    cond = np.array([[0.0, 10.0, 550.0], [0.5, 3.0, 500.0], [0.9, 30.0, 600.0], [0.3, 6.0, 620.0]])
    ref = tracer.psf_conditions(cond, ks=16, spp=16384)
    pred = OnnxModel.from_store(trained_store, "ci").psf_from_condition(cond.astype(np.float32))
    err = np.abs(pred - ref).sum(axis=(1, 2)).mean()
    uniform = np.abs(1 / 256 - ref).sum(axis=(1, 2)).mean()
    sharp = np.abs(ref[:1] - ref).sum(axis=(1, 2))[1:].mean()
    assert err < 0.5 * uniform and err < sharp, (err, uniform, sharp)


@pytest.mark.slow
def test_bad_config_stops_before_tracing_with_the_key_named(tmp_path):
    proc = run_cli("-m", "training.fit", "configs/ci.yml", "--store", str(tmp_path), "train.stepz=3")
    assert proc.returncode == 2
    assert "train.stepz: unknown key" in proc.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_missing_lens_file_is_a_clear_error(tmp_path):
    proc = run_cli("-m", "training.fit", "configs/ci.yml", "--store", str(tmp_path / "s"),
                   "lens.file=lenses/nope.json", f"run_dir={tmp_path / 'runs'}")
    assert proc.returncode == 2
    assert "lens.file: Path does not point to a file (got 'lenses/nope.json')" in proc.stderr
    assert not (tmp_path / "runs").exists()
