"""Steered decoders: a log-PSF predicted in the meridian frame, turned to the azimuth inside the graph."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.config import ConfigError, load_config
from training.export import check_parity, export_onnx, psf_tolerance
from training.fit import build_model
from training.steering import Steer

K = 24


def _meridian_logits(k: int = K) -> torch.Tensor:
    """An elongated blob 5 px above the centre (image +y), as log-PSF logits [1, k*k]."""
    r, c = np.mgrid[:k, :k] - (k - 1) / 2
    x, y = c, -r
    return torch.tensor(-(x**2 / (2 * 1.2**2) + (y - 5) ** 2 / (2 * 2.5**2)), dtype=torch.float32).reshape(1, -1)


def _centroid(p: np.ndarray) -> tuple[float, float]:
    r, c = np.mgrid[: p.shape[0], : p.shape[1]] - (p.shape[0] - 1) / 2
    return float((p * c).sum()), float((p * -r).sum())  # (x, y), y up


def test_on_the_meridian_the_psf_is_the_softmax_of_the_logits():
    logits = _meridian_logits()
    got = Steer(K)(logits, torch.tensor([90.0])).exp()
    np.testing.assert_allclose(got.numpy().ravel(), torch.softmax(logits, dim=-1).numpy().ravel(), atol=1e-6)
    # a full turn takes the interpolating path (the one the graph exports) and lands on the same PSF
    turned = Steer(K)(logits, torch.tensor([450.0])).exp()
    np.testing.assert_allclose(turned.numpy(), got.numpy(), atol=1e-6)


@pytest.mark.parametrize(("azimuth", "turns"), [(0.0, -1), (180.0, 1), (270.0, 2)])
def test_quarter_turns_land_on_the_pixel_grid(azimuth, turns):
    logits = _meridian_logits()
    meridian = torch.softmax(logits, dim=-1).reshape(K, K).numpy()
    got = Steer(K)(logits, torch.tensor([azimuth])).exp()[0].numpy()
    np.testing.assert_allclose(got, np.rot90(meridian, turns), atol=1e-5)


@pytest.mark.parametrize("azimuth", [10.0, 30.0, 45.0, 75.0])
def test_a_point_turned_counter_clockwise_turns_its_psf_counter_clockwise(azimuth):
    got = Steer(K)(_meridian_logits(), torch.tensor([azimuth])).exp()[0].numpy()
    x, y = _centroid(got)
    assert np.degrees(np.arctan2(y, x)) == pytest.approx(azimuth, abs=1.0)
    assert got.sum() == pytest.approx(1.0, abs=1e-5)


def test_the_exported_gathers_interpolate_as_grid_sample_does():
    steer = Steer(K)
    logits = torch.randn(3, K * K) + _meridian_logits()
    azimuth = torch.tensor([5.0, 37.0, 88.0])
    phi = torch.deg2rad(azimuth - 90.0).reshape(-1, 1, 1)
    src_x = steer.u * torch.cos(phi) + steer.v * torch.sin(phi)
    src_y = -steer.u * torch.sin(phi) + steer.v * torch.cos(phi)
    via_gathers = torch.log_softmax(steer._bilinear_gather(logits, src_x, src_y), dim=-1)
    np.testing.assert_allclose(via_gathers.exp().numpy(), steer(logits, azimuth).exp().reshape(3, -1).numpy(),
                               atol=1e-6)


def test_supersampling_integrates_each_pixel_over_its_cells():
    fine = _meridian_logits(2 * K)
    got = Steer(K, supersample=2)(fine, torch.tensor([90.0])).exp()[0].numpy()
    cells = torch.softmax(fine, dim=-1).reshape(K, 2, K, 2).sum(dim=(1, 3)).numpy()
    np.testing.assert_allclose(got, cells, atol=1e-6)


def test_meridian_training_samples_are_mirror_averaged():
    from training.datasets.sampling import mirror_average, training_conditions

    cfg = load_config("configs/ci.yml", ["conditions.azimuth={min: 0, max: 90}", "data.sampling.azimuth=meridian"])
    assert np.all(training_conditions(cfg)[:, -1] == 90.0)
    uniform = load_config("configs/ci.yml", ["conditions.azimuth={min: 0, max: 90}"])
    assert np.ptp(training_conditions(uniform)[:, -1]) > 45
    psf = np.random.default_rng(0).random((2, 6, 6))
    mirrored = mirror_average(psf)
    np.testing.assert_allclose(mirrored, mirrored[..., ::-1])
    np.testing.assert_allclose(mirrored.sum(axis=(1, 2)), psf.sum(axis=(1, 2)))


def test_steering_needs_the_azimuth_condition():
    cfg = load_config("configs/ci.yml", ["model.steer=true", "data.kernel_size=16"])
    with pytest.raises(ConfigError, match="model.steer: true turns the PSF to the azimuth condition"):
        build_model(cfg)


def test_a_steered_model_exports_four_graphs_that_match_torch(tmp_path):
    cfg = load_config("configs/ci.yml", ["model.steer=true", "conditions.azimuth={min: 0, max: 90}"])
    model = build_model(cfg)
    assert model.args.steer and model.args.supersample == 2  # 16 px: the finer grid
    # the decoder's network never sees the azimuth: one latent at two azimuths gives one PSF, turned
    cond = torch.tensor([[0.6, 5.0, 550.0, 90.0], [0.6, 5.0, 550.0, 0.0]])
    with torch.no_grad():
        psf = model.decoder(torch.randn(1, model.args.latent_size).expand(2, -1), cond).numpy()
    np.testing.assert_allclose(psf[1], np.rot90(psf[0], -1), atol=1e-6)
    specs = export_onnx(model, tmp_path, cfg.export.opset)
    report = check_parity(model, tmp_path, specs, cfg)
    assert report["psf.psf"] <= psf_tolerance(cfg, None)


def test_export_refuses_a_graph_that_differs_from_torch(tmp_path):
    from training.export import ExportError

    cfg = load_config("configs/ci.yml")
    model = build_model(cfg)
    specs = export_onnx(model, tmp_path, cfg.export.opset)
    with torch.no_grad():  # the torch model moves on after export: the graphs no longer match it
        model.decoder.net.body[-1].bias.add_(0.5 * torch.randn_like(model.decoder.net.body[-1].bias))
    with pytest.raises(ExportError, match=r"psf.onnx output 'psf': onnxruntime differs from torch by .* relative L1"):
        check_parity(model, tmp_path, specs, cfg, model_error=0.05)
