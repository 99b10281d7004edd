"""The reconstruction loss on ray-count data: noisy multinomial draws of a known PSF.

A PSF with a sharp core (60 % of the energy) and a faint 12 px halo (40 %) is drawn as 256-ray
histograms, the way a low-ray trace samples it; a free k x k image is fitted to the draws under each
loss. L1's optimum is the per-pixel median, zero where a pixel expects well under one ray, so it loses
the halo; the likelihood (CE) recovers the per-pixel mean, the PSF itself, within sampling error.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from training.losses import ReconLoss

K, RAYS, DRAWS = 32, 256, 200


def _true_psf() -> np.ndarray:
    y, x = np.mgrid[:K, :K] - K // 2
    r = np.hypot(x, y)
    core = np.exp(-0.5 * r**2)
    halo = (r <= 12).astype(np.float64)
    return 0.6 * core / core.sum() + 0.4 * halo / halo.sum()


def _fit(spec: str, draws: torch.Tensor, steps: int = 600) -> np.ndarray:
    torch.manual_seed(0)
    logits = torch.zeros(K * K, requires_grad=True)
    loss_fn = ReconLoss(spec)
    opt = torch.optim.Adam([logits], lr=0.05)
    for _ in range(steps):
        log_p = torch.log_softmax(logits, dim=0).reshape(1, K, K).expand(len(draws), K, K)
        loss = loss_fn(log_p, draws)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return torch.softmax(logits.detach(), dim=0).reshape(K, K).double().numpy()


@pytest.fixture(scope="module")
def draws() -> tuple[np.ndarray, torch.Tensor]:
    truth = _true_psf()
    counts = np.random.default_rng(1).multinomial(RAYS, truth.ravel(), size=DRAWS)
    return truth, torch.from_numpy((counts / RAYS).reshape(DRAWS, K, K).astype(np.float32))


def _halo_energy(p: np.ndarray) -> float:
    y, x = np.mgrid[:K, :K] - K // 2
    return float(p[np.hypot(x, y) > 3].sum())


def test_l1_on_low_ray_draws_loses_the_halo(draws):
    truth, batch = draws
    fitted = _fit("1*L1", batch)
    # the true halo outside r = 3 holds ~0.38 of the energy. L1's optimum is a per-pixel quantile of the
    # draws (the median, shifted until the image sums to 1): 0 or one ray's worth in a halo pixel that
    # expects 0.2 rays, never the truth
    assert _halo_energy(truth) > 0.35
    assert abs(_halo_energy(fitted) - _halo_energy(truth)) > 0.1
    assert np.abs(fitted - truth).sum() > 0.3


def test_likelihood_recovers_the_psf_within_sampling_error(draws):
    truth, batch = draws
    fitted = _fit("1*CE", batch)
    mean_draw = batch.double().mean(dim=0).numpy()  # the best any estimator can do from these draws
    sampling_error = float(np.abs(mean_draw - truth).sum())
    error = float(np.abs(fitted - truth).sum())
    assert abs(_halo_energy(fitted) - _halo_energy(truth)) < 0.02
    assert error < 1.1 * sampling_error + 0.01, (error, sampling_error)
    # and it is the same optimum: the fitted image is the mean of the draws
    assert np.abs(fitted - mean_draw).sum() < 0.02


def test_terms_take_log_probabilities():
    p = torch.full((2, 4, 4), 1.0 / 16)
    r = torch.zeros(2, 4, 4)
    r[:, 0, 0] = 1.0
    loss = ReconLoss("1*CE+1*L1+1*MSE")(p.log(), r)
    expected = np.log(16) + (15 / 16 + 15 / 16) + ((15 / 16) ** 2 + 15 / 256)
    assert float(loss) == pytest.approx(expected, rel=1e-5)
