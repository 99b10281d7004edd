"""The separable decoder's radial profile: a flat defocus disc, which outer products draw with ripples."""

from __future__ import annotations

import numpy as np
import torch

from training.networks.args import SeparableArgs
from training.networks.separable import Separable

K = 32


def _disc(radius: float = 9.0, centre_y: float = 3.0) -> torch.Tensor:
    r, c = np.mgrid[:K, :K] - (K - 1) / 2
    inside = (c**2 + (-r - centre_y) ** 2 <= radius**2).astype(np.float64)
    return torch.tensor(inside / inside.sum(), dtype=torch.float32).reshape(1, K, K)


def _fit(profile: int, target: torch.Tensor, steps: int = 300) -> float:
    torch.manual_seed(0)
    net = Separable(4, K, SeparableArgs(hidden=32, depth=1, rank=4, profile=profile))
    x = torch.ones(1, 4)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    for _ in range(steps):
        log_p = torch.log_softmax(net(x), dim=-1).reshape(1, K, K)
        loss = -(target * log_p).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        p = torch.softmax(net(x), dim=-1).reshape(1, K, K)
    return float((p - target).abs().sum())


def test_a_radial_profile_draws_a_flat_disc_that_outer_products_cannot():
    disc = _disc()
    with_profile, without = _fit(32, disc), _fit(0, disc)
    assert with_profile < 0.5 * without, (with_profile, without)
    assert with_profile < 0.02, with_profile


def test_the_profile_is_off_by_default_and_adds_outputs_only_when_on():
    off = Separable(4, K, SeparableArgs())
    on = Separable(4, K, SeparableArgs(profile=16))
    assert off.body[-1].out_features == 2 * 16 * K
    assert on.body[-1].out_features == 2 * 16 * K + 3 + 16
